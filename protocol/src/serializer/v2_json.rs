//! V2 JSON: `[join_ref, ref, topic, event, payload]` in a text frame.
//!
//! From a server, elements after the fifth are ignored, as phoenix.js ignores them, so later
//! server versions can append metadata without breaking stock clients. From a client, exactly
//! five are required: every known client sends five, and a server that keeps what it does not
//! understand gives an attacker room (Phoenix itself ignores extra elements there too).

use super::json;
use crate::Direction;
use crate::error::{DecodeError, Field};
use crate::frame::FrameRef;

pub(super) fn decode(direction: Direction, text: &str) -> Result<FrameRef<'_>, DecodeError> {
    let ([join_ref, msg_ref, topic, event, payload], found) = json::array_elements(text)?;
    if found < 5 || (found > 5 && direction == Direction::ToServer) {
        return Err(DecodeError::WrongArity { found });
    }
    let event = json::string(event, Field::Event)?;
    Ok(FrameRef {
        join_ref: json::optional_ref(Some(join_ref), Field::JoinRef)?,
        msg_ref: json::optional_ref(Some(msg_ref), Field::Ref)?,
        topic: json::string(topic, Field::Topic)?,
        body: json::body(direction, event, payload)?,
    })
}

/// The frame's text, in a `String` of exactly its length (which becomes shared bytes without a
/// copy or a second allocation).
pub(super) fn encode(frame: &FrameRef<'_>) -> String {
    let join_ref = frame.join_ref.as_deref();
    let msg_ref = frame.msg_ref.as_deref();
    let len = 6
        + json::opt_str_len(join_ref)
        + json::opt_str_len(msg_ref)
        + json::str_len(&frame.topic)
        + json::str_len(frame.event())
        + json::payload_len(&frame.body);
    let mut out = String::with_capacity(len);
    out.push('[');
    json::push_opt_str(&mut out, join_ref);
    out.push(',');
    json::push_opt_str(&mut out, msg_ref);
    out.push(',');
    json::push_str(&mut out, &frame.topic);
    out.push(',');
    json::push_str(&mut out, frame.event());
    out.push(',');
    json::push_payload(&mut out, &frame.body);
    out.push(']');
    debug_assert_eq!(out.len(), len, "the length worked out beforehand");
    out
}
