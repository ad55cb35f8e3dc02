//! V1 JSON: `{"topic", "event", "payload", "ref", "join_ref"}` objects in text frames.
//!
//! Phoenix's V1 serializer sends `topic`, `event`, `payload` and `ref` to clients (no `join_ref`);
//! clients may send `join_ref`, and Alight keeps it when they do. phoenix.js sends the members in the
//! order `topic, event, payload, ref, join_ref` and leaves `join_ref` out when it has none
//! (heartbeats); the encoder does the same, so its output is byte-for-byte what phoenix.js sends.

use super::json;
use crate::Direction;
use crate::error::{DecodeError, Field};
use crate::frame::FrameRef;

pub(super) fn decode(direction: Direction, text: &str) -> Result<FrameRef<'_>, DecodeError> {
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
    let frame = FrameRef {
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

/// The frame's text, in a `String` of exactly its length.
pub(super) fn encode(direction: Direction, frame: &FrameRef<'_>) -> String {
    const TOPIC: &str = "{\"topic\":";
    const EVENT: &str = ",\"event\":";
    const PAYLOAD: &str = ",\"payload\":";
    const REF: &str = ",\"ref\":";
    const JOIN_REF: &str = ",\"join_ref\":";
    // phoenix.js leaves `join_ref` out of heartbeats rather than sending `null`; do the same.
    let join_ref = match direction {
        Direction::ToServer => frame.join_ref.as_deref(),
        Direction::ToClient => None,
    };
    let msg_ref = frame.msg_ref.as_deref();
    let len = TOPIC.len()
        + json::str_len(&frame.topic)
        + EVENT.len()
        + json::str_len(frame.event())
        + PAYLOAD.len()
        + json::payload_len(&frame.body)
        + REF.len()
        + json::opt_str_len(msg_ref)
        + join_ref.map_or(0, |join_ref| JOIN_REF.len() + json::str_len(join_ref))
        + 1;
    let mut out = String::with_capacity(len);
    out.push_str(TOPIC);
    json::push_str(&mut out, &frame.topic);
    out.push_str(EVENT);
    json::push_str(&mut out, frame.event());
    out.push_str(PAYLOAD);
    json::push_payload(&mut out, &frame.body);
    out.push_str(REF);
    json::push_opt_str(&mut out, msg_ref);
    if let Some(join_ref) = join_ref {
        out.push_str(JOIN_REF);
        json::push_str(&mut out, join_ref);
    }
    out.push('}');
    debug_assert_eq!(out.len(), len, "the length worked out beforehand");
    out
}
