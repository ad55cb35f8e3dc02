//! Properties of every serializer: what it encodes it decodes back to the same frame (within what
//! the format can carry), over-long binary fields are refused, arbitrary input never panics, and
//! JSON payload text travels byte-for-byte.

use alight_protocol::Field;
use alight_protocol::{
    Body, DecodeError, Direction, EncodeError, Frame, Payload, Serializer, SharedBroadcast, Wire,
};
use bytes::Bytes;
use proptest::prelude::*;
use serde_json::Value;

const BOTH: [Direction; 2] = [Direction::ToServer, Direction::ToClient];

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

/// Any string of up to `max_chars` characters, control characters, quotes, backslashes and
/// astral-plane characters included.
fn any_string(max_chars: usize) -> impl Strategy<Value = String> + Clone {
    prop::collection::vec(any::<char>(), 0..=max_chars).prop_map(String::from_iter)
}

/// A string that fits a binary length byte (at most 63 chars of at most 4 bytes each).
fn short_string() -> impl Strategy<Value = String> + Clone {
    any_string(63)
}

/// A string a little like real refs and topics, so that shrinking lands on readable cases, or
/// one made of the characters JSON encoders disagree about.
fn wordy_string() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        3 => "[a-z0-9:_]{0,12}",
        1 => any_string(24),
        1 => tricky_string(),
    ]
}

/// Characters with short escapes, control characters, `/`, DEL, non-ASCII and U+2028 (which
/// `JSON.stringify` leaves alone).
fn tricky_string() -> impl Strategy<Value = String> + Clone {
    let tricky = vec![
        '\u{0}', '\u{8}', '\t', '\n', '\u{b}', '\u{c}', '\r', '\u{1f}', '"', '\\', '/', '\u{7f}',
        'a', 'é', '€', '😀', '\u{2028}', '\u{feff}',
    ];
    prop::collection::vec(prop::sample::select(tricky), 0..12).prop_map(String::from_iter)
}

/// Any JSON value, nested at most four deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinities", |f| f.is_finite())
            .prop_map(Value::from),
        any_string(16).prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(any_string(8), inner, 0..8)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn json_payload() -> impl Strategy<Value = Payload> {
    json_value().prop_map(|value| Payload::json(&value).expect("a Value always serializes"))
}

fn binary_payload() -> impl Strategy<Value = Payload> {
    prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| Payload::Binary(Bytes::from(b)))
}

fn opt(s: impl Strategy<Value = String>) -> impl Strategy<Value = Option<String>> {
    prop::option::of(s)
}

/// An event frame with a JSON payload; the event is never `phx_reply`, which to a client means a
/// reply and is covered by [`json_reply`].
fn json_event(text: impl Strategy<Value = String> + Clone) -> impl Strategy<Value = Frame> {
    (
        opt(text.clone()),
        opt(text.clone()),
        text.clone(),
        text.prop_filter("phx_reply is a reply", |e| e != "phx_reply"),
        json_payload(),
    )
        .prop_map(|(join_ref, msg_ref, topic, event, payload)| {
            Frame::message(join_ref, msg_ref, topic, event, payload)
        })
}

/// A reply with a JSON response.
fn json_reply(text: impl Strategy<Value = String> + Clone) -> impl Strategy<Value = Frame> {
    (
        opt(text.clone()),
        opt(text.clone()),
        text.clone(),
        text,
        json_payload(),
    )
        .prop_map(|(join_ref, msg_ref, topic, status, response)| Frame {
            join_ref,
            msg_ref,
            topic,
            body: Body::Reply { status, response },
        })
}

/// A frame a client can send as a text message.
fn json_to_server() -> impl Strategy<Value = Frame> {
    prop_oneof![json_event(wordy_string()), json_event(any_string(40))]
}

/// A frame a server can send as a text message.
fn json_to_client() -> impl Strategy<Value = Frame> {
    prop_oneof![
        json_event(wordy_string()),
        json_event(any_string(40)),
        json_reply(wordy_string()),
        json_reply(any_string(40)),
    ]
}

/// A binary push from a client: both refs are required.
fn binary_to_server() -> impl Strategy<Value = Frame> {
    (
        short_string(),
        short_string(),
        short_string(),
        short_string(),
        binary_payload(),
    )
        .prop_map(|(join_ref, msg_ref, topic, event, payload)| {
            Frame::message(Some(join_ref), Some(msg_ref), topic, event, payload)
        })
}

/// A binary frame from a server: a push (join_ref, no ref), a broadcast (no refs) or a reply.
fn binary_to_client() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (
            short_string(),
            short_string(),
            short_string(),
            binary_payload()
        )
            .prop_map(|(join_ref, topic, event, payload)| {
                Frame::message(Some(join_ref), None, topic, event, payload)
            }),
        (short_string(), short_string(), binary_payload())
            .prop_map(|(topic, event, payload)| Frame::broadcast(topic, event, payload)),
        (
            short_string(),
            short_string(),
            short_string(),
            short_string(),
            binary_payload()
        )
            .prop_map(|(join_ref, msg_ref, topic, status, response)| Frame {
                join_ref: Some(join_ref),
                msg_ref: Some(msg_ref),
                topic,
                body: Body::Reply { status, response },
            }),
    ]
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn decode(serializer: Serializer, direction: Direction, wire: &Wire) -> Result<Frame, DecodeError> {
    match wire {
        Wire::Text(text) => serializer.decode_text(direction, text.as_str()),
        Wire::Binary(bytes) => serializer.decode_binary(direction, bytes.clone()),
    }
}

fn roundtrip(serializer: Serializer, direction: Direction, frame: &Frame) -> Frame {
    let wire = serializer
        .encode(direction, frame)
        .expect("the strategies only build encodable frames");
    decode(serializer, direction, &wire).expect("what we encode we can decode")
}

/// What V1 can carry to a client: Phoenix's V1 serializer sends no `join_ref`.
fn without_join_ref(frame: &Frame) -> Frame {
    Frame {
        join_ref: None,
        ..frame.clone()
    }
}

/// The string fields of a frame, by the name binary encoding gives them.
fn binary_fields(frame: &mut Frame) -> Vec<(Field, &mut String)> {
    let mut fields = Vec::new();
    if let Some(join_ref) = frame.join_ref.as_mut() {
        fields.push((Field::JoinRef, join_ref));
    }
    if let Some(msg_ref) = frame.msg_ref.as_mut() {
        fields.push((Field::Ref, msg_ref));
    }
    fields.push((Field::Topic, &mut frame.topic));
    match &mut frame.body {
        Body::Event { event, .. } => fields.push((Field::Event, event)),
        Body::Reply { status, .. } => fields.push((Field::Status, status)),
    }
    fields
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn v2_json_to_server_roundtrips(frame in json_to_server()) {
        prop_assert_eq!(roundtrip(Serializer::V2, Direction::ToServer, &frame), frame);
    }

    #[test]
    fn v2_json_to_client_roundtrips(frame in json_to_client()) {
        prop_assert_eq!(roundtrip(Serializer::V2, Direction::ToClient, &frame), frame);
    }

    #[test]
    fn v1_json_to_server_roundtrips(frame in json_to_server()) {
        prop_assert_eq!(roundtrip(Serializer::V1Json, Direction::ToServer, &frame), frame);
    }

    #[test]
    fn v1_json_to_client_roundtrips_without_join_ref(frame in json_to_client()) {
        let back = roundtrip(Serializer::V1Json, Direction::ToClient, &frame);
        prop_assert_eq!(back, without_join_ref(&frame));
    }

    #[test]
    fn v2_binary_to_server_roundtrips(frame in binary_to_server()) {
        let wire = Serializer::V2.encode(Direction::ToServer, &frame).expect("fields fit");
        prop_assert!(matches!(wire, Wire::Binary(_)), "binary payloads go in binary frames");
        prop_assert_eq!(decode(Serializer::V2, Direction::ToServer, &wire).expect("decodes"), frame);
    }

    #[test]
    fn v2_binary_to_client_roundtrips(frame in binary_to_client()) {
        let wire = Serializer::V2.encode(Direction::ToClient, &frame).expect("fields fit");
        prop_assert!(matches!(wire, Wire::Binary(_)), "binary payloads go in binary frames");
        prop_assert_eq!(decode(Serializer::V2, Direction::ToClient, &wire).expect("decodes"), frame);
    }

    /// The binary layout is exactly the documented one: kind, lengths, strings, payload.
    #[test]
    fn v2_binary_layout_is_kind_lengths_strings_payload(frame in binary_to_client()) {
        let wire = Serializer::V2.encode(Direction::ToClient, &frame).expect("fields fit");
        let bytes = wire.as_binary().expect("binary");
        let topic = frame.topic.as_str();
        let (kind, strings) = match (&frame.body, frame.join_ref.as_deref()) {
            (Body::Event { event, .. }, Some(join_ref)) => (0, vec![join_ref, topic, event]),
            (Body::Event { event, .. }, None) => (2, vec![topic, event]),
            (Body::Reply { status, .. }, join_ref) => (
                1,
                vec![
                    join_ref.unwrap_or_default(),
                    frame.msg_ref.as_deref().unwrap_or_default(),
                    topic,
                    status,
                ],
            ),
        };
        let mut expected = vec![kind];
        expected.extend(strings.iter().map(|s| u8::try_from(s.len()).expect("short")));
        for s in &strings {
            expected.extend_from_slice(s.as_bytes());
        }
        expected.extend_from_slice(frame.payload().as_binary().expect("binary payload"));
        prop_assert_eq!(&bytes[..], &expected[..]);
    }

    /// Every field longer than 255 bytes is refused by name, whichever field and direction.
    #[test]
    fn v2_binary_fields_longer_than_255_bytes_are_refused(
        frame in prop_oneof![binary_to_server(), binary_to_client()],
        pick in any::<prop::sample::Index>(),
        long in "[a-zé€😀]{256,300}",
    ) {
        let direction = if frame.msg_ref.is_some() && matches!(frame.body, Body::Event { .. }) {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let mut frame = frame;
        let field = {
            let mut fields = binary_fields(&mut frame);
            let (field, slot) = pick.get_mut(&mut fields);
            **slot = long.clone();
            *field
        };
        let result = Serializer::V2.encode(direction, &frame);
        prop_assert_eq!(result, Err(EncodeError::FieldTooLong { field, len: long.len() }));
    }

    /// JSON payloads are copied as text: whitespace, key order, number spelling and escapes
    /// survive decoding and re-encoding byte for byte.
    #[test]
    fn json_payload_text_survives_byte_for_byte(
        value in json_value(),
        pretty in any::<bool>(),
        refs in (opt(wordy_string()), opt(wordy_string())),
    ) {
        let text = if pretty {
            serde_json::to_string_pretty(&value).expect("serializes")
        } else {
            serde_json::to_string(&value).expect("serializes")
        };
        let payload = Payload::from_json_str(&text).expect("valid JSON");
        prop_assert_eq!(payload.as_json(), Some(text.as_str()));
        let frame = Frame::message(refs.0, refs.1, "room:1", "e", payload);
        for serializer in [Serializer::V2, Serializer::V1Json] {
            for direction in BOTH {
                let wire = serializer.encode(direction, &frame).expect("JSON encodes");
                let encoded = wire.as_text().expect("JSON goes in text frames");
                prop_assert!(encoded.contains(&text), "{} lost the payload text", encoded);
                let back = decode(serializer, direction, &wire).expect("decodes");
                prop_assert_eq!(back.payload().as_json(), Some(text.as_str()));
            }
        }
    }

    /// A payload written by hand (spaces, unusual escapes, exponent numbers) keeps its exact text.
    #[test]
    fn hand_written_payload_text_is_kept(
        pad in "[ \t\r\n]{0,3}",
        payload in prop::sample::select(vec![
            r#"{ "a" : 1 , "a" : 2 }"#,
            r#"["\u0041\/\ud83d\ude00", 1E+2, -0.0, 1.000]"#,
            r#"{"nested":{"deep":[[[]],{}]}}"#,
            "\"\\u00e9\"",
            "12345678901234567890123456789",
        ]),
    ) {
        let text = format!(r#"[null,"1","room:1","e",{pad}{payload}{pad}]"#);
        for direction in BOTH {
            let frame = Serializer::V2.decode_text(direction, &text).expect("valid frame");
            prop_assert_eq!(frame.payload().as_json(), Some(payload));
            let wire = Serializer::V2.encode(direction, &frame).expect("encodes");
            let expected = format!(r#"[null,"1","room:1","e",{payload}]"#);
            prop_assert_eq!(wire.as_text(), Some(expected.as_str()));
        }
    }

    /// Refs, topics and events are escaped byte-for-byte as serde_json (and JSON.stringify)
    /// escape them.
    #[test]
    fn text_encoding_matches_serde_json(frame in json_to_server()) {
        let frame = Frame::message(
            frame.join_ref.clone(),
            frame.msg_ref.clone(),
            frame.topic.clone(),
            frame.event(),
            Payload::empty(),
        );
        let wire = Serializer::V2.encode(Direction::ToServer, &frame).expect("encodes");
        let expected = serde_json::to_string(&(
            &frame.join_ref,
            &frame.msg_ref,
            &frame.topic,
            frame.event(),
            serde_json::json!({}),
        ))
        .expect("serializes");
        prop_assert_eq!(wire.as_text(), Some(expected.as_str()));
    }

    #[test]
    fn decoding_arbitrary_text_never_panics(text in any::<String>()) {
        for serializer in [Serializer::V2, Serializer::V1Json] {
            for direction in BOTH {
                let _ = serializer.decode_text(direction, &text);
            }
        }
    }

    /// Text built from JSON tokens reaches deeper into the decoders than random characters do.
    #[test]
    fn decoding_json_like_text_never_panics_and_reencodes(
        tokens in prop::collection::vec(prop::sample::select(vec![
            "[", "]", "{", "}", ",", ":", "null", "\"1\"", "\"room:1\"", "\"phx_reply\"",
            "\"status\"", "\"response\"", "\"topic\"", "\"event\"", "\"payload\"", "\"ref\"",
            "\"join_ref\"", "\"ok\"", "1", "-2", "1.5", "true", " ", "\"\\u00e9\"", "\"\\ud800\"",
        ]), 0..24),
    ) {
        let text = tokens.concat();
        for serializer in [Serializer::V2, Serializer::V1Json] {
            for direction in BOTH {
                if let Ok(frame) = serializer.decode_text(direction, &text) {
                    let expected = match (serializer, direction) {
                        (Serializer::V1Json, Direction::ToClient) => without_join_ref(&frame),
                        _ => frame.clone(),
                    };
                    prop_assert_eq!(roundtrip(serializer, direction, &frame), expected);
                }
            }
        }
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(data in prop::collection::vec(any::<u8>(), 0..300)) {
        for serializer in [Serializer::V2, Serializer::V1Json] {
            for direction in BOTH {
                let _ = serializer.decode_binary(direction, Bytes::from(data.clone()));
            }
        }
    }

    /// Bytes that start like a real binary frame, so the length checks are what is exercised.
    #[test]
    fn decoding_binary_like_bytes_never_panics_and_reencodes(
        kind in 0u8..4,
        lengths in prop::collection::vec(0u8..12, 0..5),
        rest in prop::collection::vec(any::<u8>(), 0..48),
    ) {
        let mut data = vec![kind];
        data.extend(&lengths);
        data.extend(&rest);
        for direction in BOTH {
            if let Ok(frame) = Serializer::V2.decode_binary(direction, Bytes::from(data.clone())) {
                let wire = Serializer::V2.encode(direction, &frame).expect("decoded fields fit");
                prop_assert_eq!(wire.as_binary().map(|b| &b[..]), Some(&data[..]));
            }
        }
    }

    #[test]
    fn shared_broadcast_matches_a_plain_encode(
        topic in wordy_string(),
        event in wordy_string(),
        payload in prop_oneof![json_payload(), binary_payload()],
    ) {
        let broadcast = SharedBroadcast::new(topic, event, payload);
        for serializer in [Serializer::V2, Serializer::V1Json] {
            prop_assert_eq!(
                broadcast.wire(serializer),
                serializer.encode(Direction::ToClient, broadcast.frame())
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Examples at the edges
// ---------------------------------------------------------------------------------------------

#[test]
fn binary_fields_of_exactly_255_bytes_fit_and_256_do_not() {
    let fits = "é".repeat(127) + "x"; // 255 bytes
    let frame = Frame::message(
        Some(fits.clone()),
        Some(fits.clone()),
        fits.clone(),
        fits.clone(),
        Payload::Binary(Bytes::from_static(b"p")),
    );
    assert_eq!(
        roundtrip(Serializer::V2, Direction::ToServer, &frame),
        frame
    );

    let too_long = "é".repeat(128); // 256 bytes
    let frame = Frame::broadcast(
        "room:1",
        too_long,
        Payload::Binary(Bytes::from_static(b"p")),
    );
    assert_eq!(
        Serializer::V2.encode(Direction::ToClient, &frame),
        Err(EncodeError::FieldTooLong {
            field: Field::Event,
            len: 256
        })
    );
}

#[test]
fn long_fields_are_fine_in_json() {
    let long = "x".repeat(10_000);
    let frame = Frame::message(
        Some(long.clone()),
        Some(long.clone()),
        long.clone(),
        long,
        Payload::empty(),
    );
    for serializer in [Serializer::V2, Serializer::V1Json] {
        assert_eq!(roundtrip(serializer, Direction::ToServer, &frame), frame);
    }
}

#[test]
fn binary_push_from_a_client_needs_both_refs() {
    let payload = Payload::Binary(Bytes::from_static(b"p"));
    let no_join_ref = Frame::message(None, Some("1".into()), "t", "e", payload.clone());
    assert_eq!(
        Serializer::V2.encode(Direction::ToServer, &no_join_ref),
        Err(EncodeError::MissingField(Field::JoinRef))
    );
    let no_ref = Frame::message(Some("1".into()), None, "t", "e", payload);
    assert_eq!(
        Serializer::V2.encode(Direction::ToServer, &no_ref),
        Err(EncodeError::MissingField(Field::Ref))
    );
}

#[test]
fn binary_push_to_a_client_drops_its_ref_as_phoenix_does() {
    let frame = Frame::message(
        Some("3".into()),
        Some("9".into()),
        "room:1",
        "chunk",
        Payload::Binary(Bytes::from_static(b"p")),
    );
    let back = roundtrip(Serializer::V2, Direction::ToClient, &frame);
    assert_eq!(
        back,
        Frame {
            msg_ref: None,
            ..frame
        }
    );
}

#[test]
fn v1_carries_no_binary_payloads() {
    let frame = Frame::broadcast("t", "e", Payload::Binary(Bytes::from_static(b"p")));
    for direction in BOTH {
        assert_eq!(
            Serializer::V1Json.encode(direction, &frame),
            Err(EncodeError::BinaryUnsupported)
        );
    }
    let reply = Frame::reply(&frame, "ok", Payload::Binary(Bytes::new()));
    assert_eq!(
        Serializer::V1Json.encode(Direction::ToClient, &reply),
        Err(EncodeError::BinaryUnsupported)
    );
}

#[test]
fn text_encodings_are_what_phoenix_sends() {
    let join = Frame::message(
        Some("3".into()),
        Some("3".into()),
        "room:1",
        "phx_join",
        Payload::empty(),
    );
    let heartbeat = Frame::message(
        None,
        Some("4".into()),
        "phoenix",
        "heartbeat",
        Payload::empty(),
    );
    let reply = Frame::reply(&join, "ok", Payload::empty());
    let cases = [
        (
            Serializer::V2,
            Direction::ToServer,
            &join,
            r#"["3","3","room:1","phx_join",{}]"#,
        ),
        (
            Serializer::V2,
            Direction::ToServer,
            &heartbeat,
            r#"[null,"4","phoenix","heartbeat",{}]"#,
        ),
        (
            Serializer::V2,
            Direction::ToClient,
            &reply,
            r#"["3","3","room:1","phx_reply",{"status":"ok","response":{}}]"#,
        ),
        (
            Serializer::V1Json,
            Direction::ToServer,
            &join,
            r#"{"topic":"room:1","event":"phx_join","payload":{},"ref":"3","join_ref":"3"}"#,
        ),
        (
            Serializer::V1Json,
            Direction::ToServer,
            &heartbeat,
            r#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"4"}"#,
        ),
        (
            Serializer::V1Json,
            Direction::ToClient,
            &reply,
            r#"{"topic":"room:1","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"3"}"#,
        ),
    ];
    for (serializer, direction, frame, expected) in cases {
        let wire = serializer.encode(direction, frame).expect("encodes");
        assert_eq!(
            wire.as_text(),
            Some(expected),
            "{serializer:?} {direction:?}"
        );
    }
}

#[test]
fn control_characters_are_escaped_like_json_stringify() {
    let frame = Frame::broadcast(
        "\u{8}\u{c}\n\r\t\u{0}\u{1f}\u{7f}\"\\/",
        "e",
        Payload::empty(),
    );
    let wire = Serializer::V2
        .encode(Direction::ToClient, &frame)
        .expect("encodes");
    // JSON.stringify and serde_json use the short escapes where there is one, `\u00xx` for the
    // other control characters, and leave DEL and `/` alone.
    assert_eq!(
        wire.as_text(),
        Some("[null,null,\"\\b\\f\\n\\r\\t\\u0000\\u001f\u{7f}\\\"\\\\/\",\"e\",{}]")
    );
}

// ---------------------------------------------------------------------------------------------
// SharedBroadcast
// ---------------------------------------------------------------------------------------------

fn wire_ptr(wire: &Wire) -> *const u8 {
    match wire {
        Wire::Text(text) => text.as_bytes().as_ptr(),
        Wire::Binary(bytes) => bytes.as_ptr(),
    }
}

#[test]
fn shared_broadcast_encodes_once_per_serializer() {
    let json = SharedBroadcast::new(
        "room:1",
        "shout",
        Payload::json(&serde_json::json!({"body": "hi"})).expect("serializes"),
    );
    let binary = SharedBroadcast::new(
        "room:1",
        "chunk",
        Payload::Binary(Bytes::from_static(b"\x00\x01")),
    );
    let cases = [
        (&json, Serializer::V2),
        (&json, Serializer::V1Json),
        (&binary, Serializer::V2),
    ];
    for (broadcast, serializer) in cases {
        let first = broadcast.wire(serializer).expect("encodes");
        let again = broadcast.wire(serializer).expect("encodes");
        assert_eq!(first, again);
        assert_eq!(
            wire_ptr(&first),
            wire_ptr(&again),
            "{serializer:?}: the same bytes, not a second encoding"
        );
        assert!(!first.is_empty());
    }
    let v2 = json.wire(Serializer::V2).expect("encodes");
    let v1 = json.wire(Serializer::V1Json).expect("encodes");
    assert_eq!(
        v2.as_text(),
        Some(r#"[null,null,"room:1","shout",{"body":"hi"}]"#)
    );
    assert_eq!(
        v1.as_text(),
        Some(r#"{"topic":"room:1","event":"shout","payload":{"body":"hi"},"ref":null}"#)
    );
    assert_eq!(
        binary
            .wire(Serializer::V2)
            .expect("encodes")
            .as_binary()
            .map(|b| &b[..]),
        Some(&b"\x02\x06\x05room:1chunk\x00\x01"[..])
    );
}

#[test]
fn shared_broadcast_of_a_binary_payload_has_no_v1_form() {
    let broadcast = SharedBroadcast::new(
        "room:1",
        "chunk",
        Payload::Binary(Bytes::from_static(b"\x00")),
    );
    for _ in 0..2 {
        assert_eq!(
            broadcast.wire(Serializer::V1Json),
            Err(EncodeError::BinaryUnsupported)
        );
    }
    // The V1 failure does not spoil the V2 encoding.
    assert!(matches!(
        broadcast.wire(Serializer::V2),
        Ok(Wire::Binary(_))
    ));
}

#[test]
fn shared_broadcast_is_shareable_across_threads() {
    let broadcast = std::sync::Arc::new(SharedBroadcast::new("t", "e", Payload::empty()));
    let pointers: Vec<usize> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let broadcast = &broadcast;
                scope.spawn(move || {
                    wire_ptr(&broadcast.wire(Serializer::V2).expect("encodes")) as usize
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("no panic"))
            .collect()
    });
    assert!(pointers.windows(2).all(|w| w[0] == w[1]), "{pointers:?}");
}
