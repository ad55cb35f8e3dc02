//! JSON pieces shared by the V1 and V2 text serializers.

use std::borrow::Cow;

use crate::error::{DecodeError, Field};
use crate::frame::{BodyRef, PayloadRef};
use crate::json::{Scanner, skip_plain};
use crate::{Direction, event};

/// The values of the first five elements of the JSON array `text`, as text, and how many
/// elements it has.
///
/// Every element is checked, and the array must be the whole text. Valid JSON that is not an
/// array is `not_an_array`.
pub(super) fn array_elements(text: &str) -> Result<([&str; 5], usize), DecodeError> {
    let mut scanner = Scanner::new(text);
    if !scanner.eat(b'[') {
        return Err(not_a(text, DecodeError::NotAnArray));
    }
    let mut items = [""; 5];
    let mut found = 0;
    if !scanner.eat(b']') {
        loop {
            let value = scanner.value().map_err(DecodeError::InvalidJson)?;
            if let Some(slot) = items.get_mut(found) {
                *slot = value;
            }
            found += 1;
            if !scanner.next_item(b']').map_err(DecodeError::InvalidJson)? {
                break;
            }
        }
    }
    scanner.end().map_err(DecodeError::InvalidJson)?;
    Ok((items, found))
}

/// The values of the members `names` of the JSON object `text`, as text.
///
/// Only an object is accepted: `["room:1","shout",{}]` is not `{topic, event, payload}`, which
/// no Phoenix peer would send; valid JSON that is not an object is `not_an_object`. Other members
/// are skipped (and checked), and a repeated member keeps its last value, as `JSON.parse` and
/// Jason do.
pub(super) fn object_members<'a, const N: usize>(
    text: &'a str,
    names: [&str; N],
    not_an_object: DecodeError,
) -> Result<[Option<&'a str>; N], DecodeError> {
    let mut scanner = Scanner::new(text);
    if !scanner.eat(b'{') {
        return Err(not_a(text, not_an_object));
    }
    let mut values = [None; N];
    if !scanner.eat(b'}') {
        loop {
            let name = scanner.member_name().map_err(DecodeError::InvalidJson)?;
            let value = scanner.value().map_err(DecodeError::InvalidJson)?;
            if let Some(slot) = member_index(name, &names).and_then(|i| values.get_mut(i)) {
                *slot = Some(value);
            }
            if !scanner.next_item(b'}').map_err(DecodeError::InvalidJson)? {
                break;
            }
        }
    }
    scanner.end().map_err(DecodeError::InvalidJson)?;
    Ok(values)
}

/// Where a member name (quoted, as written) is among `names`, compared after unescaping.
fn member_index(name: &str, names: &[&str]) -> Option<usize> {
    let unescaped;
    let inner = match name.get(1..name.len().saturating_sub(1)) {
        Some(inner) if !inner.contains('\\') => inner,
        _ => {
            unescaped = Scanner::unescape(name)?;
            &unescaped
        }
    };
    names.iter().position(|wanted| *wanted == inner)
}

/// The error for text that is not of the expected shape: `shape` if it is JSON, else why not.
fn not_a(text: &str, shape: DecodeError) -> DecodeError {
    match Scanner::new(text).whole_value() {
        Ok(_) => shape,
        Err(error) => DecodeError::InvalidJson(error),
    }
}

/// A `ref` or `join_ref`: a string, `null`, or (leniently) an integer kept as its decimal text.
pub(super) fn optional_ref(
    value: Option<&str>,
    field: Field,
) -> Result<Option<Cow<'_, str>>, DecodeError> {
    let Some(value) = value else { return Ok(None) };
    match value.as_bytes().first() {
        Some(b'n') => Ok(None),
        Some(b'"') => string(value, field).map(Some),
        Some(b'-' | b'0'..=b'9') if value.bytes().all(|b| b == b'-' || b.is_ascii_digit()) => {
            Ok(Some(Cow::Borrowed(value)))
        }
        _ => Err(DecodeError::WrongType {
            field,
            expected: "a string or null",
        }),
    }
}

/// A required string field, from its (validated) JSON text: borrowed unless it has escapes.
pub(super) fn string(value: &str, field: Field) -> Result<Cow<'_, str>, DecodeError> {
    let expected = match field {
        Field::JoinRef | Field::Ref => "a string or null",
        _ => "a string",
    };
    let wrong_type = DecodeError::WrongType { field, expected };
    if !value.starts_with('"') {
        return Err(wrong_type);
    }
    match value.get(1..value.len().saturating_sub(1)) {
        Some(inner) if !inner.contains('\\') => Ok(Cow::Borrowed(inner)),
        _ => Scanner::unescape(value).map(Cow::Owned).ok_or(wrong_type),
    }
}

/// Builds the frame body from the event and the payload's (validated) JSON text: a `phx_reply`
/// travelling to a client becomes [`BodyRef::Reply`].
pub(super) fn body<'a>(
    direction: Direction,
    event: Cow<'a, str>,
    payload: &'a str,
) -> Result<BodyRef<'a>, DecodeError> {
    if direction == Direction::ToClient && event == event::REPLY {
        let not_an_object = DecodeError::WrongType {
            field: Field::Payload,
            expected: "an object {status, response}",
        };
        let [status, response] = object_members(payload, ["status", "response"], not_an_object)?;
        let status = status.ok_or(DecodeError::MissingField(Field::Status))?;
        let status = string(status, Field::Status)?;
        return Ok(BodyRef::Reply {
            status,
            response: PayloadRef::Json(response.unwrap_or("null")),
        });
    }
    Ok(BodyRef::Event {
        event,
        payload: PayloadRef::Json(payload),
    })
}

/// The short escape of a byte a JSON string cannot hold as it is, as `JSON.stringify` writes
/// it; `None` for the other control characters, written `\u00xx`.
fn short_escape(b: u8) -> Option<&'static str> {
    match b {
        b'"' => Some("\\\""),
        b'\\' => Some("\\\\"),
        b'\n' => Some("\\n"),
        b'\r' => Some("\\r"),
        b'\t' => Some("\\t"),
        0x08 => Some("\\b"),
        0x0c => Some("\\f"),
        _ => None,
    }
}

/// Appends `s` as a JSON string literal, escaped exactly as `JSON.stringify` and serde_json do
/// (short escapes for `"`, `\`, `\b`, `\f`, `\n`, `\r`, `\t`; `\u00xx` for other control
/// characters; nothing else), so a frame re-encoded here is byte-for-byte what phoenix.js sends.
pub(super) fn push_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    loop {
        let at = skip_plain(bytes, start);
        // Escaped bytes are ASCII, so these are character boundaries.
        out.push_str(s.get(start..at).unwrap_or_default());
        let Some(&b) = bytes.get(at) else { break };
        match short_escape(b) {
            Some(e) => out.push_str(e),
            None => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xf) as usize] as char);
            }
        }
        start = at + 1;
    }
    out.push('"');
}

/// The length of `s` as [`push_str`] writes it.
pub(super) fn str_len(s: &str) -> usize {
    let bytes = s.as_bytes();
    let mut len = 2 + bytes.len();
    let mut at = skip_plain(bytes, 0);
    while let Some(&b) = bytes.get(at) {
        len += if short_escape(b).is_some() { 1 } else { 5 };
        at = skip_plain(bytes, at + 1);
    }
    len
}

/// Appends an optional string (`null` when absent).
pub(super) fn push_opt_str(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => push_str(out, s),
        None => out.push_str("null"),
    }
}

/// The length of an optional string as [`push_opt_str`] writes it.
pub(super) fn opt_str_len(s: Option<&str>) -> usize {
    s.map_or(4, str_len)
}

/// Appends the JSON of an event payload, or `{"status":..,"response":..}` for a reply.
///
/// Binary payloads never reach here: the serializer sends them as binary frames.
pub(super) fn push_payload(out: &mut String, body: &BodyRef<'_>) {
    match body {
        BodyRef::Event { payload, .. } => out.push_str(json_text(*payload)),
        BodyRef::Reply { status, response } => {
            out.push_str(REPLY_STATUS);
            push_str(out, status);
            out.push_str(REPLY_RESPONSE);
            out.push_str(json_text(*response));
            out.push('}');
        }
    }
}

/// The length of what [`push_payload`] writes.
pub(super) fn payload_len(body: &BodyRef<'_>) -> usize {
    match body {
        BodyRef::Event { payload, .. } => json_text(*payload).len(),
        BodyRef::Reply { status, response } => {
            REPLY_STATUS.len()
                + str_len(status)
                + REPLY_RESPONSE.len()
                + json_text(*response).len()
                + 1
        }
    }
}

const REPLY_STATUS: &str = "{\"status\":";
const REPLY_RESPONSE: &str = ",\"response\":";

fn json_text(payload: PayloadRef<'_>) -> &str {
    payload.as_json().unwrap_or("null")
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
            "a long plain run, then \"quotes\" and a \\ and\ttabs\u{0} past eight bytes",
            "ünï€😀",
            "",
        ] {
            let mut out = String::new();
            push_str(&mut out, s);
            let back: String = serde_json::from_str(&out).expect("valid JSON string");
            assert_eq!(back, s);
            let theirs = serde_json::to_string(s).expect("a string serializes");
            assert_eq!(out, theirs, "same bytes as serde_json for {s:?}");
            assert_eq!(str_len(s), out.len(), "the length of {s:?} as written");
        }
    }
}
