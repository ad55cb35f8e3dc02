//! JSON pieces shared by the V1 and V2 text serializers.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::{DecodeError, Field};
use crate::frame::{Body, Frame, Payload};
use crate::{Direction, event};

/// Maps a serde_json error to a decode error: syntax problems are `InvalidJson`, shape problems
/// are reported as `shape` (not an array / not an object).
pub(super) fn classify(err: serde_json::Error, shape: DecodeError) -> DecodeError {
    match err.classify() {
        serde_json::error::Category::Data => shape,
        _ => DecodeError::InvalidJson(err),
    }
}

/// A `ref` or `join_ref`: a string, `null`, or (leniently) an integer kept as its decimal text.
pub(super) fn optional_ref(
    raw: Option<&RawValue>,
    field: Field,
) -> Result<Option<String>, DecodeError> {
    let Some(raw) = raw else { return Ok(None) };
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'n') => Ok(None),
        Some(b'"') => serde_json::from_str(text)
            .map(Some)
            .map_err(|_| DecodeError::WrongType {
                field,
                expected: "a string or null",
            }),
        Some(b'-' | b'0'..=b'9') if text.bytes().all(|b| b == b'-' || b.is_ascii_digit()) => {
            Ok(Some(text.to_owned()))
        }
        _ => Err(DecodeError::WrongType {
            field,
            expected: "a string or null",
        }),
    }
}

/// A required string field.
pub(super) fn string(raw: &RawValue, field: Field) -> Result<String, DecodeError> {
    serde_json::from_str(raw.get()).map_err(|_| DecodeError::WrongType {
        field,
        expected: "a string",
    })
}

/// Reads the members `names` of the JSON object `text`, leaving their values unparsed.
///
/// Only an object is accepted: a serde-derived struct would also accept an array and read
/// `["room:1","shout",{}]` as `{topic, event, payload}`, which no Phoenix peer would. Other members
/// are skipped, and a repeated member keeps its last value, as `JSON.parse` and Jason do.
pub(super) fn object_members<'a, const N: usize>(
    text: &'a str,
    names: [&'static str; N],
) -> Result<[Option<&'a RawValue>; N], serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let members = Members(names).deserialize(&mut de)?;
    de.end()?;
    Ok(members)
}

/// Deserializes an object into the values of the members it names, by position.
struct Members<const N: usize>([&'static str; N]);

impl<'de, const N: usize> DeserializeSeed<'de> for Members<N> {
    type Value = [Option<&'de RawValue>; N];

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for Members<N> {
    type Value = [Option<&'de RawValue>; N];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut values = [None; N];
        while let Some(index) = map.next_key_seed(MemberName(&self.0))? {
            match index.and_then(|i| values.get_mut(i)) {
                Some(slot) => *slot = Some(map.next_value::<&'de RawValue>()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(values)
    }
}

/// Deserializes a member name into its position in the list of wanted names.
struct MemberName<'n>(&'n [&'static str]);

impl<'de> DeserializeSeed<'de> for MemberName<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for MemberName<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|wanted| *wanted == name))
    }
}

/// Builds the frame body: a `phx_reply` travelling to a client becomes [`Body::Reply`].
pub(super) fn body(
    direction: Direction,
    event: String,
    payload: &RawValue,
) -> Result<Body, DecodeError> {
    if direction == Direction::ToClient && event == event::REPLY {
        let [status, response] =
            object_members(payload.get(), ["status", "response"]).map_err(|_| {
                DecodeError::WrongType {
                    field: Field::Payload,
                    expected: "an object {status, response}",
                }
            })?;
        let status = status.ok_or(DecodeError::MissingField(Field::Status))?;
        let status = string(status, Field::Status)?;
        let response = match response {
            Some(raw) => raw.to_owned(),
            None => RawValue::NULL.to_owned(),
        };
        return Ok(Body::Reply {
            status,
            response: Payload::Json(response),
        });
    }
    Ok(Body::Event {
        event,
        payload: Payload::Json(payload.to_owned()),
    })
}

/// Appends `s` as a JSON string literal, escaped exactly as `JSON.stringify` and serde_json do
/// (short escapes for `"`, `\`, `\b`, `\f`, `\n`, `\r`, `\t`; `\u00xx` for other control
/// characters; nothing else), so a frame re-encoded here is byte-for-byte what phoenix.js sends.
pub(super) fn push_str(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0x08 => Some("\\b"),
            0x0c => Some("\\f"),
            0x00..=0x1f => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match escape {
            Some(e) => out.push_str(e),
            None => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xf) as usize] as char);
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends an optional string (`null` when absent).
pub(super) fn push_opt_str(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => push_str(out, s),
        None => out.push_str("null"),
    }
}

/// Appends the JSON of an event payload, or `{"status":..,"response":..}` for a reply.
///
/// Binary payloads never reach here: the serializer sends them as binary frames.
pub(super) fn push_payload(out: &mut String, frame: &Frame) {
    match &frame.body {
        Body::Event { payload, .. } => push_json(out, payload),
        Body::Reply { status, response } => {
            out.push_str("{\"status\":");
            push_str(out, status);
            out.push_str(",\"response\":");
            push_json(out, response);
            out.push('}');
        }
    }
}

fn push_json(out: &mut String, payload: &Payload) {
    match payload {
        Payload::Json(raw) => out.push_str(raw.get()),
        Payload::Binary(_) => out.push_str("null"),
    }
}

/// A rough size for the output buffer.
pub(super) fn size_hint(frame: &Frame) -> usize {
    let payload = match &frame.body {
        Body::Event { payload, .. } => payload,
        Body::Reply { response, .. } => response,
    };
    let payload_len = payload.as_json().map_or(4, str::len);
    48 + frame.topic.len() + frame.event().len() + payload_len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_serde_json() {
        for s in [
            "plain",
            "q\"uote",
            "back\\slash",
            "nl\n\r\t",
            "\u{1}\u{1f}\u{8}\u{c}\u{7f}",
            "ünï€😀",
            "",
        ] {
            let mut out = String::new();
            push_str(&mut out, s);
            let back: String = serde_json::from_str(&out).expect("valid JSON string");
            assert_eq!(back, s);
            let theirs = serde_json::to_string(s).expect("a string serializes");
            assert_eq!(out, theirs, "same bytes as serde_json for {s:?}");
        }
    }
}
