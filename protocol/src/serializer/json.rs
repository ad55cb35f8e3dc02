//! JSON pieces shared by the V1 and V2 text serializers.

use serde::Deserialize;
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

#[derive(Deserialize)]
struct ReplyFields<'a> {
    status: Option<&'a RawValue>,
    #[serde(borrow)]
    response: Option<&'a RawValue>,
}

/// Builds the frame body: a `phx_reply` travelling to a client becomes [`Body::Reply`].
pub(super) fn body(
    direction: Direction,
    event: String,
    payload: &RawValue,
) -> Result<Body, DecodeError> {
    if direction == Direction::ToClient && event == event::REPLY {
        let fields: ReplyFields<'_> =
            serde_json::from_str(payload.get()).map_err(|_| DecodeError::WrongType {
                field: Field::Payload,
                expected: "an object {status, response}",
            })?;
        let status = fields
            .status
            .ok_or(DecodeError::MissingField(Field::Status))?;
        let status = string(status, Field::Status)?;
        let response = match fields.response {
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

/// Appends `s` as a JSON string literal.
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
            "\u{1}\u{1f}",
            "ünï€😀",
            "",
        ] {
            let mut out = String::new();
            push_str(&mut out, s);
            let back: String = serde_json::from_str(&out).expect("valid JSON string");
            assert_eq!(back, s);
        }
    }
}
