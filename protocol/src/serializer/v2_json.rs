//! V2 JSON: `[join_ref, ref, topic, event, payload]` in a text frame.
//!
//! Elements after the fifth are ignored, as phoenix.js and Phoenix ignore them, so later versions
//! can append metadata without breaking stock clients.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::json;
use crate::error::{DecodeError, Field};
use crate::{Direction, Frame};

/// The first five elements of the array, unparsed.
struct Elements<'a> {
    items: [Option<&'a RawValue>; 5],
    found: usize,
}

impl<'de> Deserialize<'de> for Elements<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ElementsVisitor;
        impl<'de> Visitor<'de> for ElementsVisitor {
            type Value = Elements<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array [join_ref, ref, topic, event, payload]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = [None; 5];
                let mut found = 0;
                while found < 5 {
                    match seq.next_element::<&'de RawValue>()? {
                        Some(raw) => items[found] = Some(raw),
                        None => return Ok(Elements { items, found }),
                    }
                    found += 1;
                }
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Elements { items, found })
            }
        }
        deserializer.deserialize_seq(ElementsVisitor)
    }
}

pub(super) fn decode(direction: Direction, text: &str) -> Result<Frame, DecodeError> {
    let elements: Elements<'_> =
        serde_json::from_str(text).map_err(|e| json::classify(e, DecodeError::NotAnArray))?;
    let [
        Some(join_ref),
        Some(msg_ref),
        Some(topic),
        Some(event),
        Some(payload),
    ] = elements.items
    else {
        return Err(DecodeError::WrongArity {
            found: elements.found,
        });
    };
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
