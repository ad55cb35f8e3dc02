//! V1 JSON: `{"topic", "event", "payload", "ref", "join_ref"}` objects in text frames.
//!
//! Phoenix's V1 serializer sends `topic`, `event`, `payload` and `ref` to clients (no `join_ref`);
//! clients may send `join_ref`, and Alight keeps it when they do.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::json;
use crate::error::{DecodeError, Field};
use crate::{Direction, Frame};

#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow)]
    topic: Option<&'a RawValue>,
    #[serde(borrow)]
    event: Option<&'a RawValue>,
    #[serde(borrow)]
    payload: Option<&'a RawValue>,
    #[serde(borrow, rename = "ref")]
    msg_ref: Option<&'a RawValue>,
    #[serde(borrow)]
    join_ref: Option<&'a RawValue>,
}

pub(super) fn decode(direction: Direction, text: &str) -> Result<Frame, DecodeError> {
    let fields: Fields<'_> =
        serde_json::from_str(text).map_err(|e| json::classify(e, DecodeError::NotAnObject))?;
    let topic = fields
        .topic
        .ok_or(DecodeError::MissingField(Field::Topic))?;
    let event = fields
        .event
        .ok_or(DecodeError::MissingField(Field::Event))?;
    // `"payload": null` and a missing payload both mean JSON null.
    let payload = fields.payload.unwrap_or(RawValue::NULL);
    let event = json::string(event, Field::Event)?;
    Ok(Frame {
        join_ref: json::optional_ref(fields.join_ref, Field::JoinRef)?,
        msg_ref: json::optional_ref(fields.msg_ref, Field::Ref)?,
        topic: json::string(topic, Field::Topic)?,
        body: json::body(direction, event, payload)?,
    })
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
    if direction == Direction::ToServer {
        out.push_str(",\"join_ref\":");
        json::push_opt_str(&mut out, frame.join_ref.as_deref());
    }
    out.push('}');
    out
}
