//! V2 JSON: `[join_ref, ref, topic, event, payload]` in a text frame.
//!
//! From a server, elements after the fifth are ignored, as phoenix.js ignores them, so later
//! server versions can append metadata without breaking stock clients. From a client, exactly
//! five are required: every known client sends five, and a server that keeps what it does not
//! understand gives an attacker room (Phoenix itself ignores extra elements there too).

use super::json;
use crate::error::{DecodeError, Field};
use crate::{Direction, Frame};

pub(super) fn decode(direction: Direction, text: &str) -> Result<Frame, DecodeError> {
    let ([join_ref, msg_ref, topic, event, payload], found) = json::array_elements(text)?;
    if found < 5 || (found > 5 && direction == Direction::ToServer) {
        return Err(DecodeError::WrongArity { found });
    }
    let event = json::string(event, Field::Event)?;
    Ok(Frame {
        join_ref: json::optional_ref(Some(join_ref), Field::JoinRef)?,
        msg_ref: json::optional_ref(Some(msg_ref), Field::Ref)?,
        topic: json::string(topic, Field::Topic)?,
        body: json::body(direction, event, payload)?,
    })
}

pub(super) fn encode(frame: &Frame) -> String {
    let mut out = String::with_capacity(json::size_hint(frame));
    out.push('[');
    json::push_opt_str(&mut out, frame.join_ref.as_deref());
    out.push(',');
    json::push_opt_str(&mut out, frame.msg_ref.as_deref());
    out.push(',');
    json::push_str(&mut out, &frame.topic);
    out.push(',');
    json::push_str(&mut out, frame.event());
    out.push(',');
    json::push_payload(&mut out, frame);
    out.push(']');
    out
}
