//! V1 JSON: `{"topic", "event", "payload", "ref", "join_ref"}` objects in text frames.
//!
//! Phoenix's V1 serializer sends `topic`, `event`, `payload` and `ref` to clients (no `join_ref`);
//! clients may send `join_ref`, and Alight keeps it when they do. phoenix.js sends the members in the
//! order `topic, event, payload, ref, join_ref` and leaves `join_ref` out when it has none
//! (heartbeats); the encoder does the same, so its output is byte-for-byte what phoenix.js sends.

use super::json;
use crate::error::{DecodeError, Field};
use crate::{Direction, Frame};

pub(super) fn decode(direction: Direction, text: &str) -> Result<Frame, DecodeError> {
    let [topic, event, payload, msg_ref, join_ref] = json::object_members(
        text,
        ["topic", "event", "payload", "ref", "join_ref"],
        DecodeError::NotAnObject,
    )?;
    let topic = topic.ok_or(DecodeError::MissingField(Field::Topic))?;
    let event = event.ok_or(DecodeError::MissingField(Field::Event))?;
    // `"payload": null` and a missing payload both mean JSON null.
    let payload = payload.unwrap_or("null");
    let event = json::string(event, Field::Event)?;
    let frame = Frame {
        join_ref: json::optional_ref(join_ref, Field::JoinRef)?,
        msg_ref: json::optional_ref(msg_ref, Field::Ref)?,
        topic: json::string(topic, Field::Topic)?,
        body: json::body(direction, event, payload)?,
    };
    // Phoenix requires the `ref` member from clients (`null` when no reply is wanted); servers
    // leave it out of some pushes.
    if direction == Direction::ToServer && msg_ref.is_none() {
        return Err(DecodeError::MissingField(Field::Ref));
    }
    Ok(frame)
}

pub(super) fn encode(direction: Direction, frame: &Frame) -> String {
    let mut out = String::with_capacity(json::size_hint(frame) + 40);
    out.push_str("{\"topic\":");
    json::push_str(&mut out, &frame.topic);
    out.push_str(",\"event\":");
    json::push_str(&mut out, frame.event());
    out.push_str(",\"payload\":");
    json::push_payload(&mut out, frame);
    out.push_str(",\"ref\":");
    json::push_opt_str(&mut out, frame.msg_ref.as_deref());
    // phoenix.js leaves `join_ref` out of heartbeats rather than sending `null`; do the same.
    if let (Direction::ToServer, Some(join_ref)) = (direction, frame.join_ref.as_deref()) {
        out.push_str(",\"join_ref\":");
        json::push_str(&mut out, join_ref);
    }
    out.push('}');
    out
}
