//! Golden frames captured from the official phoenix.js client, shared with the JS tests.
//!
//! Each file in `tests/golden/` is named after the format it holds (`v2_json.json`,
//! `v2_binary.json`, `v1_json.json`) and is an array of
//!
//! ```json
//! {"name": "...", "direction": "client_to_server" | "server_to_client",
//!  "text": "..." | "binary_hex": "...",
//!  "decoded": {"join_ref": ..., "ref": ..., "topic": ..., "event": ..., "payload": ...}}
//! ```
//!
//! where a binary payload inside `decoded` is `{"binary_hex": "..."}` and a reply has event
//! `phx_reply` and payload `{"status": ..., "response": ...}`. Every frame must decode to
//! `decoded`, and re-encode to what was captured: byte for byte for what phoenix.js sent (and for
//! binary frames either way); for JSON sent by a server, to the same JSON value, since Phoenix's
//! encoder orders object members its own way.

use std::path::{Path, PathBuf};

use alight_protocol::{Body, Direction, Frame, Payload, Serializer, Wire};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

/// The golden files and the serializer each one is read with.
const FILES: [(&str, Serializer, Kind); 3] = [
    ("v2_json.json", Serializer::V2, Kind::Text),
    ("v2_binary.json", Serializer::V2, Kind::Binary),
    ("v1_json.json", Serializer::V1Json, Kind::Text),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Binary,
}

#[derive(Debug, Deserialize)]
struct Golden {
    name: String,
    direction: GoldenDirection,
    text: Option<String>,
    binary_hex: Option<String>,
    decoded: Decoded,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum GoldenDirection {
    ClientToServer,
    ServerToClient,
}

impl GoldenDirection {
    fn direction(self) -> Direction {
        match self {
            GoldenDirection::ClientToServer => Direction::ToServer,
            GoldenDirection::ServerToClient => Direction::ToClient,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Decoded {
    join_ref: Option<String>,
    #[serde(rename = "ref")]
    msg_ref: Option<String>,
    topic: String,
    event: String,
    payload: Value,
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn load(file: &str) -> Vec<Golden> {
    let path = golden_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!(
            "cannot read golden file {}: {err} (it is produced from phoenix.js; see tests/golden.rs)",
            path.display()
        )
    });
    let frames: Vec<Golden> = serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("{} is not in the golden format: {err}", path.display()));
    assert!(!frames.is_empty(), "{} holds no frames", path.display());
    frames
}

fn hex(text: &str, what: &str) -> Vec<u8> {
    let digits = text.as_bytes();
    assert!(
        digits.len().is_multiple_of(2),
        "{what}: odd number of hex digits in {text:?}"
    );
    digits
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).expect("ASCII hex digits");
            u8::from_str_radix(pair, 16)
                .unwrap_or_else(|err| panic!("{what}: {pair:?} is not hex: {err}"))
        })
        .collect()
}

/// A `{"binary_hex": "..."}` placeholder, as the golden files write binary payloads.
fn binary_placeholder(value: &Value, what: &str) -> Option<Vec<u8>> {
    let object = value.as_object()?;
    match (object.len(), object.get("binary_hex")) {
        (1, Some(Value::String(digits))) => Some(hex(digits, what)),
        _ => None,
    }
}

/// Checks that `ours` is the payload the golden file describes.
fn assert_payload(ours: &Payload, expected: &Value, what: &str) {
    match (ours, binary_placeholder(expected, what)) {
        (Payload::Binary(bytes), Some(expected)) => {
            assert_eq!(&bytes[..], &expected[..], "{what}: binary payload");
        }
        (Payload::Json(raw), None) => {
            let ours: Value = serde_json::from_str(raw.get()).expect("decoded payloads are JSON");
            assert_eq!(&ours, expected, "{what}: JSON payload");
        }
        (ours, _) => panic!("{what}: payload {ours:?} is not the expected {expected}"),
    }
}

fn assert_decoded(frame: &Frame, golden: &Golden, what: &str) {
    let decoded = &golden.decoded;
    assert_eq!(frame.join_ref, decoded.join_ref, "{what}: join_ref");
    assert_eq!(frame.msg_ref, decoded.msg_ref, "{what}: ref");
    assert_eq!(frame.topic, decoded.topic, "{what}: topic");
    assert_eq!(frame.event(), decoded.event, "{what}: event");
    match &frame.body {
        Body::Event { payload, .. } => {
            assert!(
                !(matches!(golden.direction, GoldenDirection::ServerToClient)
                    && decoded.event == "phx_reply"),
                "{what}: a phx_reply to a client must decode as a reply"
            );
            assert_payload(payload, &decoded.payload, what);
        }
        Body::Reply { status, response } => {
            let expected_status = decoded.payload.get("status").and_then(Value::as_str);
            assert_eq!(Some(status.as_str()), expected_status, "{what}: status");
            let expected_response = decoded.payload.get("response").unwrap_or(&Value::Null);
            assert_payload(response, expected_response, what);
        }
    }
}

/// The captured message and how our encoding of the decoded frame must compare with it.
fn assert_reencoded(wire: &Wire, golden: &Golden, what: &str) {
    match (wire, &golden.text, &golden.binary_hex) {
        (Wire::Binary(ours), None, Some(digits)) => {
            assert_eq!(
                hex_string(ours),
                digits.to_ascii_lowercase(),
                "{what}: re-encoded bytes"
            );
        }
        (Wire::Text(ours), Some(text), None) => match golden.direction {
            GoldenDirection::ClientToServer => {
                assert_eq!(ours.as_str(), text, "{what}: re-encoded text");
            }
            GoldenDirection::ServerToClient => {
                let ours: Value = serde_json::from_str(ours.as_str()).expect("we encode JSON");
                let theirs: Value = serde_json::from_str(text)
                    .unwrap_or_else(|err| panic!("{what}: captured text is not JSON: {err}"));
                assert_eq!(ours, theirs, "{what}: re-encoded JSON");
            }
        },
        (wire, _, _) => panic!("{what}: re-encoded as {wire:?}, which is not the captured kind"),
    }
}

fn hex_string(bytes: &Bytes) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn check_file(file: &str, serializer: Serializer, kind: Kind) {
    let frames = load(file);
    for golden in &frames {
        let what = format!("{file} / {}", golden.name);
        let direction = golden.direction.direction();
        let frame = match (kind, &golden.text, &golden.binary_hex) {
            (Kind::Text, Some(text), None) => serializer.decode_text(direction, text),
            (Kind::Binary, None, Some(digits)) => {
                serializer.decode_binary(direction, Bytes::from(hex(digits, &what)))
            }
            _ => panic!("{what}: a {kind:?} file needs exactly the matching `text`/`binary_hex`"),
        }
        .unwrap_or_else(|err| panic!("{what}: does not decode: {err}"));
        assert_decoded(&frame, golden, &what);

        let wire = serializer
            .encode(direction, &frame)
            .unwrap_or_else(|err| panic!("{what}: does not re-encode: {err}"));
        assert_reencoded(&wire, golden, &what);

        let again = match &wire {
            Wire::Text(text) => serializer.decode_text(direction, text.as_str()),
            Wire::Binary(bytes) => serializer.decode_binary(direction, bytes.clone()),
        }
        .unwrap_or_else(|err| panic!("{what}: our re-encoding does not decode: {err}"));
        assert_eq!(again, frame, "{what}: decode(encode(frame))");
    }
}

#[test]
fn v2_json_golden_frames() {
    let (file, serializer, kind) = FILES[0];
    check_file(file, serializer, kind);
}

#[test]
fn v2_binary_golden_frames() {
    let (file, serializer, kind) = FILES[1];
    check_file(file, serializer, kind);
}

#[test]
fn v1_json_golden_frames() {
    let (file, serializer, kind) = FILES[2];
    check_file(file, serializer, kind);
}

/// A golden file this test does not know about would silently go unchecked.
#[test]
fn every_golden_file_is_checked() {
    let dir = golden_dir();
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("cannot list {}: {err}", dir.display()));
    for entry in entries {
        let name = entry.expect("readable directory entry").file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".json") {
            assert!(
                FILES.iter().any(|(file, _, _)| *file == name),
                "tests/golden/{name} is not checked by tests/golden.rs"
            );
        }
    }
}
