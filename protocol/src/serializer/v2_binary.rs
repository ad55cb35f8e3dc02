//! V2 binary frames: a kind byte, one length byte per string field, the strings, then the payload.
//!
//! The layouts are in the doc of [`Serializer::decode_binary`](crate::Serializer::decode_binary).
//! Lengths are checked against the buffer before any slice is taken, and strings are checked for
//! UTF-8, so a hostile frame yields a [`DecodeError`], never a panic.

use bytes::Bytes;

use crate::Direction;
use crate::error::{DecodeError, EncodeError, Field};
use crate::frame::{Body, Frame, Payload};

const PUSH: u8 = 0;
const REPLY: u8 = 1;
const BROADCAST: u8 = 2;

/// Reads the string fields named in `fields` after a header of `1 + fields.len()` bytes.
fn split(data: &Bytes, fields: &[Field]) -> Result<(Vec<String>, Bytes), DecodeError> {
    let header = 1 + fields.len();
    if data.len() < header {
        return Err(DecodeError::Truncated {
            needed: header,
            len: data.len(),
        });
    }
    let lengths = &data[1..header];
    let needed = header + lengths.iter().map(|&l| usize::from(l)).sum::<usize>();
    if data.len() < needed {
        return Err(DecodeError::Truncated {
            needed,
            len: data.len(),
        });
    }
    let mut offset = header;
    let mut strings = Vec::with_capacity(fields.len());
    for (&field, &len) in fields.iter().zip(lengths) {
        let end = offset + usize::from(len);
        let text =
            std::str::from_utf8(&data[offset..end]).map_err(|_| DecodeError::InvalidUtf8(field))?;
        strings.push(text.to_owned());
        offset = end;
    }
    Ok((strings, data.slice(offset..)))
}

pub(super) fn decode(direction: Direction, data: Bytes) -> Result<Frame, DecodeError> {
    let Some(&kind) = data.first() else {
        return Err(DecodeError::Truncated { needed: 1, len: 0 });
    };
    let fields: &[Field] = match (direction, kind) {
        (Direction::ToServer, PUSH) => &[Field::JoinRef, Field::Ref, Field::Topic, Field::Event],
        (Direction::ToClient, PUSH) => &[Field::JoinRef, Field::Topic, Field::Event],
        (Direction::ToClient, REPLY) => &[Field::JoinRef, Field::Ref, Field::Topic, Field::Status],
        (Direction::ToClient, BROADCAST) => &[Field::Topic, Field::Event],
        (_, other) => return Err(DecodeError::UnknownKind(other)),
    };
    let (strings, payload) = split(&data, fields)?;
    // One loop over the layout's fields rather than one constructor per layout: the same
    // frames, in less code for the browser package.
    let (mut join_ref, mut msg_ref, mut topic, mut event, mut status) =
        (None, None, String::new(), String::new(), None);
    for (field, text) in fields.iter().zip(strings) {
        match field {
            Field::JoinRef => join_ref = Some(text),
            Field::Ref => msg_ref = Some(text),
            Field::Topic => topic = text,
            Field::Status => status = Some(text),
            _ => event = text,
        }
    }
    let payload = Payload::Binary(payload);
    Ok(Frame {
        join_ref,
        msg_ref,
        topic,
        body: match status {
            Some(status) => Body::Reply {
                status,
                response: payload,
            },
            None => Body::Event { event, payload },
        },
    })
}

/// Checks a field's length and returns it as the length byte.
fn len_byte(field: Field, s: &str) -> Result<u8, EncodeError> {
    u8::try_from(s.len()).map_err(|_| EncodeError::FieldTooLong {
        field,
        len: s.len(),
    })
}

fn write(kind: u8, fields: &[(Field, &str)], payload: &Bytes) -> Result<Bytes, EncodeError> {
    let mut lengths = Vec::with_capacity(fields.len());
    for (field, s) in fields {
        lengths.push(len_byte(*field, s)?);
    }
    let strings: usize = fields.iter().map(|(_, s)| s.len()).sum();
    // A `Vec` of the exact size becomes `Bytes` without a copy; `BytesMut` would add its own
    // code to the browser package for nothing.
    let mut out = Vec::with_capacity(1 + fields.len() + strings + payload.len());
    out.push(kind);
    out.extend_from_slice(&lengths);
    for (_, s) in fields {
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(payload);
    Ok(Bytes::from(out))
}

pub(super) fn encode(direction: Direction, frame: &Frame) -> Result<Bytes, EncodeError> {
    let join_ref = frame.join_ref.as_deref();
    let msg_ref = frame.msg_ref.as_deref();
    let topic = frame.topic.as_str();
    let empty = Bytes::new();
    match (&frame.body, direction) {
        (Body::Event { event, payload }, Direction::ToServer) => {
            let join_ref = join_ref.ok_or(EncodeError::MissingField(Field::JoinRef))?;
            let msg_ref = msg_ref.ok_or(EncodeError::MissingField(Field::Ref))?;
            let payload = payload.as_binary().unwrap_or(&empty);
            write(
                PUSH,
                &[
                    (Field::JoinRef, join_ref),
                    (Field::Ref, msg_ref),
                    (Field::Topic, topic),
                    (Field::Event, event),
                ],
                payload,
            )
        }
        (Body::Event { event, payload }, Direction::ToClient) => {
            let payload = payload.as_binary().unwrap_or(&empty);
            match (join_ref, msg_ref) {
                (None, None) => write(
                    BROADCAST,
                    &[(Field::Topic, topic), (Field::Event, event)],
                    payload,
                ),
                _ => write(
                    PUSH,
                    &[
                        (Field::JoinRef, join_ref.unwrap_or_default()),
                        (Field::Topic, topic),
                        (Field::Event, event),
                    ],
                    payload,
                ),
            }
        }
        (Body::Reply { status, response }, _) => {
            let payload = response.as_binary().unwrap_or(&empty);
            write(
                REPLY,
                &[
                    (Field::JoinRef, join_ref.unwrap_or_default()),
                    (Field::Ref, msg_ref.unwrap_or_default()),
                    (Field::Topic, topic),
                    (Field::Status, status),
                ],
                payload,
            )
        }
    }
}
