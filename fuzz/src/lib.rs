//! The oracle behind the fuzz targets: decode an input in both directions, and whatever decodes
//! must re-encode and decode again to the same frame.
//!
//! Each function panics (which libFuzzer reports as a crash) when the decoder panics or when a
//! decoded frame does not survive re-encoding; it returns how many directions decoded the input.
//! `protocol/tests/fuzz_seeds.rs` includes this file to run the committed seeds in plain
//! `cargo test`, so the same checks hold in CI without libFuzzer.

use alight_protocol::{DecodeError, Direction, Frame, Serializer, Wire};
use bytes::Bytes;

const BOTH: [Direction; 2] = [Direction::ToServer, Direction::ToClient];

/// A V2 text message (`[join_ref, ref, topic, event, payload]`).
///
/// WebSocket text messages are UTF-8 before they reach the decoder, so other input is skipped.
pub fn decode_v2_text(data: &[u8]) -> usize {
    match std::str::from_utf8(data) {
        Ok(text) => text_roundtrip(Serializer::V2, text),
        Err(_) => 0,
    }
}

/// A V1 text message (`{"topic", "event", "payload", "ref", "join_ref"}`); V1 also refuses every
/// binary message.
pub fn decode_v1_text(data: &[u8]) -> usize {
    for direction in BOTH {
        let binary = Serializer::V1Json.decode_binary(direction, Bytes::copy_from_slice(data));
        assert!(
            matches!(binary, Err(DecodeError::BinaryUnsupported)),
            "V1 decoded a binary message: {binary:?}"
        );
    }
    match std::str::from_utf8(data) {
        Ok(text) => text_roundtrip(Serializer::V1Json, text),
        Err(_) => 0,
    }
}

/// A V2 binary message. What decodes re-encodes to exactly the same bytes: the layout has one
/// spelling per frame.
pub fn decode_v2_binary(data: &[u8]) -> usize {
    let mut decoded = 0;
    for direction in BOTH {
        let Ok(frame) = Serializer::V2.decode_binary(direction, Bytes::copy_from_slice(data))
        else {
            continue;
        };
        decoded += 1;
        let wire = Serializer::V2
            .encode(direction, &frame)
            .expect("decoded binary fields are at most 255 bytes, so they re-encode");
        assert_eq!(
            wire.as_binary().map(|bytes| &bytes[..]),
            Some(data),
            "{direction:?}: {frame:?} re-encodes to other bytes"
        );
        assert_eq!(decode(Serializer::V2, direction, &wire), frame);
    }
    decoded
}

fn text_roundtrip(serializer: Serializer, text: &str) -> usize {
    let mut decoded = 0;
    for direction in BOTH {
        let Ok(frame) = serializer.decode_text(direction, text) else {
            continue;
        };
        decoded += 1;
        let wire = serializer
            .encode(direction, &frame)
            .expect("a frame decoded from text has JSON payloads, which always encode");
        assert!(
            matches!(wire, Wire::Text(_)),
            "JSON payloads go in text messages"
        );
        let again = decode(serializer, direction, &wire);
        assert_eq!(
            again,
            carried(serializer, direction, &frame),
            "{direction:?}"
        );
        // The encoding is a fixed point: encoding what it decodes to gives the same text.
        let rewire = serializer
            .encode(direction, &again)
            .expect("it encoded once");
        assert_eq!(rewire, wire, "{direction:?}: the re-encoding is not stable");
    }
    decoded
}

/// The part of `frame` that `serializer` carries in `direction`: V1 sends clients no `join_ref`.
fn carried(serializer: Serializer, direction: Direction, frame: &Frame) -> Frame {
    match (serializer, direction) {
        (Serializer::V1Json, Direction::ToClient) => Frame {
            join_ref: None,
            ..frame.clone()
        },
        _ => frame.clone(),
    }
}

fn decode(serializer: Serializer, direction: Direction, wire: &Wire) -> Frame {
    match wire {
        Wire::Text(text) => serializer.decode_text(direction, text.as_str()),
        Wire::Binary(bytes) => serializer.decode_binary(direction, bytes.clone()),
    }
    .unwrap_or_else(|err| panic!("{direction:?}: our own encoding {wire:?} does not decode: {err}"))
}
