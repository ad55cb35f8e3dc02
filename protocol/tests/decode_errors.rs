//! Every class of malformed message, per serializer and direction, with the exact [`DecodeError`]
//! it must produce; and the lenient cases a Phoenix peer relies on (extra elements, integer and
//! `null` refs, escaped topics, replies).

use alight_protocol::Field;
use alight_protocol::{Body, DecodeError, Direction, Frame, Payload, Serializer};
use bytes::Bytes;

const BOTH: [Direction; 2] = [Direction::ToServer, Direction::ToClient];

fn v2_text(direction: Direction, text: &str) -> Result<Frame, DecodeError> {
    Serializer::V2.decode_text(direction, text)
}

fn v1_text(direction: Direction, text: &str) -> Result<Frame, DecodeError> {
    Serializer::V1Json.decode_text(direction, text)
}

fn v2_binary(direction: Direction, data: &[u8]) -> Result<Frame, DecodeError> {
    Serializer::V2.decode_binary(direction, Bytes::copy_from_slice(data))
}

/// A binary message: `kind`, one length byte per field, the fields, the payload.
fn binary(kind: u8, fields: &[&[u8]], payload: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    for field in fields {
        out.push(u8::try_from(field.len()).expect("test fields fit a length byte"));
    }
    for field in fields {
        out.extend_from_slice(field);
    }
    out.extend_from_slice(payload);
    out
}

fn json(text: &str) -> Payload {
    Payload::from_json_str(text).expect("test payloads are valid JSON")
}

fn some(s: &str) -> Option<String> {
    Some(s.to_owned())
}

fn assert_invalid_json(result: Result<Frame, DecodeError>, input: &str) {
    assert!(
        matches!(result, Err(DecodeError::InvalidJson(_))),
        "{input:?}: expected InvalidJson, got {result:?}"
    );
}

fn assert_wrong_type(result: Result<Frame, DecodeError>, want: Field, input: &str) {
    match result {
        Err(DecodeError::WrongType { field, .. }) if field == want => {}
        other => panic!("{input:?}: expected WrongType({want}), got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// V2 JSON
// ---------------------------------------------------------------------------------------------

#[test]
fn v2_text_not_json() {
    let inputs = [
        "",
        " ",
        "[",
        "nope",
        "[\"1\",\"1\",\"t\",\"e\",{}",
        "[\"1\",\"1\",\"t\",\"e\",{},]",
        "[\"1\",\"1\",\"t\",\"e\",{}] trailing",
        "[\"1\",\"1\",\"t\",\"e\",{}][]",
        "['1','1','t','e',{}]",
        "[\"1\",\"1\",\"t\\x\",\"e\",{}]",
        "[\"1\",\"1\",\"t\",\"e\",{\"a\":}]",
        "[\"1\",\"1\",\"t\",\"e\",NaN]",
        "[01,\"1\",\"t\",\"e\",{}]",
        "\u{feff}[\"1\",\"1\",\"t\",\"e\",{}]",
    ];
    for direction in BOTH {
        for input in inputs {
            assert_invalid_json(v2_text(direction, input), input);
        }
    }
}

#[test]
fn v2_text_deep_nesting_neither_overflows_the_stack_nor_is_rejected() {
    // Payloads are skipped over, not parsed recursively, so depth costs no stack.
    let payload = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let input = format!(r#"["1","1","t","e",{payload}]"#);
    for direction in BOTH {
        let frame = v2_text(direction, &input).expect("deeply nested JSON is still JSON");
        assert_eq!(frame.payload().as_json(), Some(payload.as_str()));
    }
    let unbalanced = format!(r#"["1","1","t","e",{}]"#, "[".repeat(100_000));
    for direction in BOTH {
        assert_invalid_json(v2_text(direction, &unbalanced), "unbalanced nesting");
    }
}

#[test]
fn v2_text_not_an_array() {
    let inputs = [
        "{}",
        r#"{"topic":"t","event":"e","payload":{},"ref":"1"}"#,
        r#""[null,null,\"t\",\"e\",{}]""#,
        "42",
        "null",
        "true",
    ];
    for direction in BOTH {
        for input in inputs {
            let result = v2_text(direction, input);
            assert!(
                matches!(result, Err(DecodeError::NotAnArray)),
                "{input:?}: expected NotAnArray, got {result:?}"
            );
        }
    }
}

#[test]
fn v2_text_wrong_arity() {
    let inputs = [
        (0, "[]"),
        (1, r#"["1"]"#),
        (2, r#"["1","1"]"#),
        (3, r#"["1","1","room:1"]"#),
        (4, r#"["1","1","room:1","phx_join"]"#),
        (4, r#" [ null , null , "room:1" , "phx_join" ] "#),
    ];
    for direction in BOTH {
        for (n, input) in inputs {
            let result = v2_text(direction, input);
            assert!(
                matches!(result, Err(DecodeError::WrongArity { found }) if found == n),
                "{input:?}: expected WrongArity {{ found: {n} }}, got {result:?}"
            );
        }
    }
}

#[test]
fn v2_text_join_ref_of_the_wrong_type() {
    for direction in BOTH {
        for join_ref in [
            "{}", "[]", r#"["3"]"#, "true", "false", "1.5", "1e3", "-2.0",
        ] {
            let input = format!(r#"[{join_ref},"1","room:1","e",{{}}]"#);
            assert_wrong_type(v2_text(direction, &input), Field::JoinRef, &input);
        }
    }
}

#[test]
fn v2_text_ref_of_the_wrong_type() {
    for direction in BOTH {
        for msg_ref in ["{}", "[]", r#"["3"]"#, "true", "1.5", "3E2"] {
            let input = format!(r#"["1",{msg_ref},"room:1","e",{{}}]"#);
            assert_wrong_type(v2_text(direction, &input), Field::Ref, &input);
        }
    }
}

#[test]
fn v2_text_topic_of_the_wrong_type() {
    for direction in BOTH {
        for topic in ["1", "null", "{}", r#"["room:1"]"#, "true"] {
            let input = format!(r#"["1","1",{topic},"e",{{}}]"#);
            assert_wrong_type(v2_text(direction, &input), Field::Topic, &input);
        }
    }
}

#[test]
fn v2_text_event_of_the_wrong_type() {
    for direction in BOTH {
        for event in ["{}", "[]", r#"{"event":"e"}"#, "7", "null", "false"] {
            let input = format!(r#"["1","1","room:1",{event},{{}}]"#);
            assert_wrong_type(v2_text(direction, &input), Field::Event, &input);
        }
    }
}

#[test]
fn v2_text_lone_surrogate_in_a_string_field_is_a_type_error() {
    // JSON.parse accepts `"\ud800"`, but no Rust string can hold it.
    for direction in BOTH {
        let input = r#"["1","1","room:\ud800","e",{}]"#;
        assert_wrong_type(v2_text(direction, input), Field::Topic, input);
        let input = r#"["1","1","room:1","\udc00",{}]"#;
        assert_wrong_type(v2_text(direction, input), Field::Event, input);
    }
}

#[test]
fn v2_text_extra_trailing_elements_are_refused_from_clients() {
    for input in [
        r#"["3","4","room:1","new_msg",{},"extra"]"#,
        r#"["3","4","room:1","new_msg",{},null,null]"#,
    ] {
        let result = v2_text(Direction::ToServer, input);
        assert!(
            matches!(result, Err(DecodeError::WrongArity { found }) if found > 5),
            "{input}: {result:?}"
        );
    }
}

#[test]
fn v1_text_without_a_ref_is_refused_from_clients() {
    let input = r#"{"topic":"t","event":"e","payload":{}}"#;
    let result = v1_text(Direction::ToServer, input);
    assert!(
        matches!(result, Err(DecodeError::MissingField(Field::Ref))),
        "{result:?}"
    );
    let with_null = r#"{"topic":"t","event":"e","payload":{},"ref":null}"#;
    assert!(v1_text(Direction::ToServer, with_null).is_ok());
    assert!(v1_text(Direction::ToClient, input).is_ok());
}

#[test]
fn v2_text_extra_trailing_elements_from_servers_are_ignored() {
    let input = r#"["3","4","room:1","new_msg",{"body":"hi"},"extra",{"x":[1,2]},null,[[]]]"#;
    let frame = v2_text(Direction::ToClient, input).expect("extra elements are ignored");
    assert_eq!(
        frame,
        Frame::message(
            some("3"),
            some("4"),
            "room:1",
            "new_msg",
            json(r#"{"body":"hi"}"#)
        )
    );
}

#[test]
fn v2_text_extra_trailing_elements_must_still_be_json() {
    let input = r#"["3","4","room:1","new_msg",{},nope]"#;
    assert_invalid_json(v2_text(Direction::ToClient, input), input);
}

#[test]
fn v2_text_integer_refs_are_kept_as_decimal_strings() {
    for direction in BOTH {
        let frame = v2_text(direction, r#"[3,12345678901234567890123,"room:1","e",{}]"#)
            .expect("integer refs are accepted");
        assert_eq!(frame.join_ref, some("3"));
        assert_eq!(frame.msg_ref, some("12345678901234567890123"));
        let frame = v2_text(direction, r#"[-1,0,"room:1","e",{}]"#).expect("any integer");
        assert_eq!(frame.join_ref, some("-1"));
        assert_eq!(frame.msg_ref, some("0"));
    }
}

#[test]
fn v2_text_null_refs() {
    for direction in BOTH {
        let frame = v2_text(direction, r#"[null,null,"room:1","shout",{"a":1}]"#)
            .expect("a broadcast has no refs");
        assert_eq!(
            frame,
            Frame::broadcast("room:1", "shout", json(r#"{"a":1}"#))
        );
        let frame = v2_text(direction, r#"[null,"4","phoenix","heartbeat",{}]"#)
            .expect("a heartbeat has no join_ref");
        assert_eq!(frame.join_ref, None);
        assert_eq!(frame.msg_ref, some("4"));
    }
}

#[test]
fn v2_text_unicode_and_escapes_in_topics_and_events() {
    let input = r#"["1","1","room:\u00e9\n\t\"q\"\\\/\ud83d\ude00 ünï €","ev\u0000\u001f",{}]"#;
    for direction in BOTH {
        let frame = v2_text(direction, input).expect("escapes are decoded");
        assert_eq!(frame.topic, "room:é\n\t\"q\"\\/😀 ünï €");
        assert_eq!(frame.event(), "ev\u{0}\u{1f}");
    }
}

#[test]
fn v2_text_payload_can_be_any_json_value_and_keeps_its_text() {
    for payload in [
        "{}",
        "null",
        "[1,2]",
        r#""s""#,
        "1.50",
        r#"{ "b" : 1 ,"a":[ ] }"#,
    ] {
        let input = format!(r#"["1","1","room:1","e", {payload} ]"#);
        for direction in BOTH {
            let frame = v2_text(direction, &input).expect("payloads are any JSON value");
            assert_eq!(frame.payload().as_json(), Some(payload));
        }
    }
}

#[test]
fn v2_text_reply_to_a_client_is_a_reply() {
    let frame = v2_text(
        Direction::ToClient,
        r#"["3","5","room:1","phx_reply",{"status":"ok","response":{"id":7}}]"#,
    )
    .expect("a well-formed reply");
    assert_eq!(frame.join_ref, some("3"));
    assert_eq!(frame.msg_ref, some("5"));
    assert_eq!(frame.topic, "room:1");
    assert_eq!(frame.event(), "phx_reply");
    assert_eq!(
        frame.body,
        Body::Reply {
            status: "ok".to_owned(),
            response: json(r#"{"id":7}"#),
        }
    );
}

#[test]
fn v2_text_reply_members_in_any_order_with_extras_and_without_response() {
    let frame = v2_text(
        Direction::ToClient,
        r#"[null,"4","phoenix","phx_reply",{"response":{},"extra":[1],"status":"error"}]"#,
    )
    .expect("member order does not matter");
    assert_eq!(
        frame.body,
        Body::Reply {
            status: "error".to_owned(),
            response: Payload::empty(),
        }
    );
    let frame = v2_text(
        Direction::ToClient,
        r#"["1","1","room:1","phx_reply",{"status":"ok"}]"#,
    )
    .expect("a reply without response");
    assert_eq!(frame.payload().as_json(), Some("null"));
}

#[test]
fn v2_text_reply_repeated_member_keeps_the_last_value_as_json_parse_does() {
    let frame = v2_text(
        Direction::ToClient,
        r#"["1","1","room:1","phx_reply",{"status":"ok","status":"error","response":1}]"#,
    )
    .expect("repeated members are allowed");
    assert_eq!(
        frame.body,
        Body::Reply {
            status: "error".to_owned(),
            response: json("1"),
        }
    );
}

#[test]
fn v2_text_reply_to_the_server_is_an_ordinary_event() {
    let input = r#"["1","1","room:1","phx_reply",{"whatever":true}]"#;
    let frame = v2_text(Direction::ToServer, input).expect("servers do not interpret replies");
    assert_eq!(
        frame,
        Frame::message(
            some("1"),
            some("1"),
            "room:1",
            "phx_reply",
            json(r#"{"whatever":true}"#)
        )
    );
}

#[test]
fn v2_text_reply_without_status() {
    for payload in ["{}", r#"{"response":{}}"#, r#"{"Status":"ok"}"#] {
        let input = format!(r#"["1","1","room:1","phx_reply",{payload}]"#);
        let result = v2_text(Direction::ToClient, &input);
        assert!(
            matches!(result, Err(DecodeError::MissingField(Field::Status))),
            "{input:?}: expected MissingField(status), got {result:?}"
        );
    }
}

#[test]
fn v2_text_reply_status_of_the_wrong_type() {
    for status in ["null", "1", "{}", r#"["ok"]"#, "true"] {
        let input = format!(r#"["1","1","room:1","phx_reply",{{"status":{status}}}]"#);
        assert_wrong_type(v2_text(Direction::ToClient, &input), Field::Status, &input);
    }
}

#[test]
fn v2_text_reply_payload_that_is_not_an_object() {
    // An array must not be read as `[status, response]`.
    for payload in ["null", "1", r#""ok""#, "[]", r#"["ok",{}]"#] {
        let input = format!(r#"["1","1","room:1","phx_reply",{payload}]"#);
        assert_wrong_type(v2_text(Direction::ToClient, &input), Field::Payload, &input);
    }
}

// ---------------------------------------------------------------------------------------------
// V2 binary
// ---------------------------------------------------------------------------------------------

#[test]
fn v2_binary_empty() {
    for direction in BOTH {
        let result = v2_binary(direction, &[]);
        assert!(
            matches!(result, Err(DecodeError::Truncated { needed: 1, len: 0 })),
            "{direction:?}: got {result:?}"
        );
    }
}

/// (direction, kind, number of length bytes after the kind).
const LAYOUTS: [(Direction, u8, usize); 4] = [
    (Direction::ToServer, 0, 4),
    (Direction::ToClient, 0, 3),
    (Direction::ToClient, 1, 4),
    (Direction::ToClient, 2, 2),
];

#[test]
fn v2_binary_header_truncated() {
    for (direction, kind, lengths) in LAYOUTS {
        for len in 1..=lengths {
            // The kind byte, then fewer length bytes than the layout has.
            let mut data = vec![kind];
            data.resize(len, 0);
            let result = v2_binary(direction, &data);
            assert!(
                matches!(result, Err(DecodeError::Truncated { needed, len: l })
                    if needed == 1 + lengths && l == len),
                "{direction:?} kind {kind} with {len} bytes: got {result:?}"
            );
        }
    }
}

#[test]
fn v2_binary_strings_truncated() {
    for (direction, kind, lengths) in LAYOUTS {
        // Every field claims 3 bytes; give one byte fewer than all of them, down to none.
        let needed = 1 + lengths + 3 * lengths;
        for len in (1 + lengths)..needed {
            let mut data = vec![kind];
            data.resize(1 + lengths, 3);
            data.resize(len, b'a');
            let result = v2_binary(direction, &data);
            assert!(
                matches!(result, Err(DecodeError::Truncated { needed: n, len: l })
                    if n == needed && l == len),
                "{direction:?} kind {kind} with {len} of {needed} bytes: got {result:?}"
            );
        }
    }
}

#[test]
fn v2_binary_maximum_lengths_past_a_short_buffer() {
    let data = [0, 255, 255, 255, 255, b'x'];
    let result = v2_binary(Direction::ToServer, &data);
    assert!(
        matches!(
            result,
            Err(DecodeError::Truncated {
                needed: 1025,
                len: 6
            })
        ),
        "got {result:?}"
    );
}

#[test]
fn v2_binary_invalid_utf8_in_each_field() {
    let cases: [(Direction, u8, &[Field]); 4] = [
        (
            Direction::ToServer,
            0,
            &[Field::JoinRef, Field::Ref, Field::Topic, Field::Event],
        ),
        (
            Direction::ToClient,
            0,
            &[Field::JoinRef, Field::Topic, Field::Event],
        ),
        (
            Direction::ToClient,
            1,
            &[Field::JoinRef, Field::Ref, Field::Topic, Field::Status],
        ),
        (Direction::ToClient, 2, &[Field::Topic, Field::Event]),
    ];
    let bad: [&[u8]; 4] = [
        b"\xff",
        b"room:\xc3",         // truncated two-byte sequence
        b"\xed\xa0\x80",      // UTF-8 encoded surrogate
        b"\xc0\xaf overlong", // overlong encoding of '/'
    ];
    for (direction, kind, fields) in cases {
        for (at, &field) in fields.iter().enumerate() {
            for bad in bad {
                let strings: Vec<&[u8]> = (0..fields.len())
                    .map(|i| if i == at { bad } else { b"ok".as_slice() })
                    .collect();
                let data = binary(kind, &strings, b"\xff payload bytes are not checked");
                let result = v2_binary(direction, &data);
                assert!(
                    matches!(result, Err(DecodeError::InvalidUtf8(f)) if f == field),
                    "{direction:?} kind {kind}, {bad:?} in {field}: got {result:?}"
                );
            }
        }
    }
}

#[test]
fn v2_binary_a_character_split_across_two_fields_is_invalid() {
    // "é" is c3 a9: the topic ends half-way through it and the event starts with the other half.
    let data = binary(2, &[b"room:\xc3", b"\xa9vent"], b"");
    let result = v2_binary(Direction::ToClient, &data);
    assert!(
        matches!(result, Err(DecodeError::InvalidUtf8(Field::Topic))),
        "got {result:?}"
    );
}

#[test]
fn v2_binary_unknown_kind_to_server() {
    // Clients only ever send pushes.
    for kind in [1, 2, 3, 4, 127, 255] {
        let data = binary(kind, &[b"1", b"1", b"t", b"e"], b"");
        let result = v2_binary(Direction::ToServer, &data);
        assert!(
            matches!(result, Err(DecodeError::UnknownKind(k)) if k == kind),
            "kind {kind}: got {result:?}"
        );
        let result = v2_binary(Direction::ToServer, &[kind]);
        assert!(
            matches!(result, Err(DecodeError::UnknownKind(k)) if k == kind),
            "bare kind {kind}: got {result:?}"
        );
    }
}

#[test]
fn v2_binary_unknown_kind_to_client() {
    for kind in [3, 4, 127, 255] {
        let data = binary(kind, &[b"1", b"1", b"t", b"e"], b"");
        let result = v2_binary(Direction::ToClient, &data);
        assert!(
            matches!(result, Err(DecodeError::UnknownKind(k)) if k == kind),
            "kind {kind}: got {result:?}"
        );
    }
}

#[test]
fn v2_binary_each_kind_decodes() {
    let frame = v2_binary(
        Direction::ToServer,
        &binary(0, &[b"3", b"5", b"room:1", b"upload"], b"\x00\x01\xff"),
    )
    .expect("a client push");
    assert_eq!(
        frame,
        Frame::message(
            some("3"),
            some("5"),
            "room:1",
            "upload",
            Payload::Binary(Bytes::from_static(b"\x00\x01\xff"))
        )
    );

    let frame = v2_binary(
        Direction::ToClient,
        &binary(0, &[b"3", b"room:1", b"chunk"], b"data"),
    )
    .expect("a server push");
    assert_eq!(
        frame,
        Frame::message(
            some("3"),
            None,
            "room:1",
            "chunk",
            Payload::Binary(Bytes::from_static(b"data"))
        )
    );

    let frame = v2_binary(
        Direction::ToClient,
        &binary(1, &[b"3", b"5", b"room:1", b"ok"], b"\x01\x02"),
    )
    .expect("a reply");
    assert_eq!(frame.join_ref, some("3"));
    assert_eq!(frame.msg_ref, some("5"));
    assert_eq!(frame.event(), "phx_reply");
    assert_eq!(
        frame.body,
        Body::Reply {
            status: "ok".to_owned(),
            response: Payload::Binary(Bytes::from_static(b"\x01\x02")),
        }
    );

    let frame = v2_binary(Direction::ToClient, &binary(2, &[b"room:1", b"b"], b""))
        .expect("a broadcast with an empty payload");
    assert_eq!(
        frame,
        Frame::broadcast("room:1", "b", Payload::Binary(Bytes::new()))
    );
}

#[test]
fn v2_binary_empty_fields_and_exactly_full_buffers_are_fine() {
    let frame = v2_binary(Direction::ToServer, &[0, 0, 0, 0, 0]).expect("all fields empty");
    assert_eq!(
        frame,
        Frame::message(some(""), some(""), "", "", Payload::Binary(Bytes::new()))
    );
    let frame = v2_binary(Direction::ToClient, &[2, 1, 1, b't', b'e']).expect("no payload");
    assert_eq!(
        frame,
        Frame::broadcast("t", "e", Payload::Binary(Bytes::new()))
    );
}

#[test]
fn v2_binary_push_to_server_is_not_read_with_the_client_layout() {
    // The same bytes mean different things per direction: to a client, kind 0 has no ref length.
    let data = binary(0, &[b"3", b"5", b"t", b"e"], b"");
    let to_server = v2_binary(Direction::ToServer, &data).expect("client layout");
    assert_eq!(to_server.topic, "t");
    // To a client: lengths 1, 1, 1, then the fourth length byte (1) is read as the join_ref.
    let to_client = v2_binary(Direction::ToClient, &data).expect("server layout");
    assert_eq!(
        to_client,
        Frame::message(
            some("\u{1}"),
            None,
            "3",
            "5",
            Payload::Binary(Bytes::from_static(b"te"))
        )
    );
}

#[test]
fn v1_binary_is_unsupported() {
    let valid_v2 = binary(0, &[b"3", b"5", b"room:1", b"upload"], b"x");
    for direction in BOTH {
        for data in [&[][..], &[0][..], &valid_v2[..]] {
            let result = Serializer::V1Json.decode_binary(direction, Bytes::copy_from_slice(data));
            assert!(
                matches!(result, Err(DecodeError::BinaryUnsupported)),
                "{direction:?} {data:?}: got {result:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// V1 JSON
// ---------------------------------------------------------------------------------------------

#[test]
fn v1_text_not_json() {
    let inputs = [
        "",
        "{",
        "nope",
        r#"{"topic":"t","event":"e",}"#,
        r#"{"topic":"t","event":"e"} trailing"#,
        r#"{topic:"t",event:"e"}"#,
        r#"{"topic":"t\x","event":"e"}"#,
    ];
    for direction in BOTH {
        for input in inputs {
            assert_invalid_json(v1_text(direction, input), input);
        }
    }
}

#[test]
fn v1_text_not_an_object() {
    let inputs = [
        "[]",
        // Positional fields must not be read as {topic, event, payload, ref, join_ref}.
        r#"["room:1","phx_join",{},"1","1"]"#,
        r#"["3","3","room:1","phx_join",{}]"#,
        r#""{}""#,
        "1",
        "null",
        "false",
    ];
    for direction in BOTH {
        for input in inputs {
            let result = v1_text(direction, input);
            assert!(
                matches!(result, Err(DecodeError::NotAnObject)),
                "{input:?}: expected NotAnObject, got {result:?}"
            );
        }
    }
}

#[test]
fn v1_text_missing_fields() {
    let inputs = [
        ("{}", Field::Topic),
        (r#"{"event":"e","payload":{},"ref":"1"}"#, Field::Topic),
        (r#"{"topic":"t"}"#, Field::Event),
        (r#"{"topic":"t","payload":{},"ref":"1"}"#, Field::Event),
        (r#"{"Topic":"t","Event":"e"}"#, Field::Topic),
    ];
    for direction in BOTH {
        for (input, field) in inputs {
            let result = v1_text(direction, input);
            assert!(
                matches!(result, Err(DecodeError::MissingField(f)) if f == field),
                "{input:?}: expected MissingField({field}), got {result:?}"
            );
        }
    }
}

#[test]
fn v1_text_optional_fields_may_be_missing() {
    let frame = v1_text(Direction::ToClient, r#"{"topic":"t","event":"e"}"#).expect("minimal");
    assert_eq!(frame, Frame::broadcast("t", "e", json("null")));
    for direction in BOTH {
        let frame = v1_text(
            direction,
            r#"{"event":"e","payload":null,"topic":"t","ref":null}"#,
        )
        .expect("nulls and any order");
        assert_eq!(frame, Frame::broadcast("t", "e", json("null")));
    }
}

#[test]
fn v1_text_wrong_types() {
    let inputs = [
        (r#"{"topic":1,"event":"e"}"#, Field::Topic),
        (r#"{"topic":null,"event":"e"}"#, Field::Topic),
        (r#"{"topic":["t"],"event":"e"}"#, Field::Topic),
        (r#"{"topic":"t","event":{}}"#, Field::Event),
        (r#"{"topic":"t","event":null}"#, Field::Event),
        (r#"{"topic":"t","event":"e","ref":[]}"#, Field::Ref),
        (r#"{"topic":"t","event":"e","ref":1.5}"#, Field::Ref),
        (r#"{"topic":"t","event":"e","ref":true}"#, Field::Ref),
        (r#"{"topic":"t","event":"e","join_ref":{}}"#, Field::JoinRef),
        (
            r#"{"topic":"t","event":"e","join_ref":["1"]}"#,
            Field::JoinRef,
        ),
    ];
    for direction in BOTH {
        for (input, field) in inputs {
            assert_wrong_type(v1_text(direction, input), field, input);
        }
    }
}

#[test]
fn v1_text_unknown_members_are_ignored_and_repeated_ones_keep_the_last_value() {
    let input = r#"{"topic":"old","extra":{"deep":[1,{"topic":2}]},"event":"e","payload":{"a":1},"ref":"2","join_ref":"1","topic":"room:1"}"#;
    for direction in BOTH {
        let frame = v1_text(direction, input).expect("extra members are ignored");
        assert_eq!(
            frame,
            Frame::message(some("1"), some("2"), "room:1", "e", json(r#"{"a":1}"#))
        );
    }
}

#[test]
fn v1_text_integer_and_null_refs() {
    for direction in BOTH {
        let frame = v1_text(
            direction,
            r#"{"topic":"t","event":"e","payload":{},"ref":12,"join_ref":-3}"#,
        )
        .expect("integer refs");
        assert_eq!(frame.msg_ref, some("12"));
        assert_eq!(frame.join_ref, some("-3"));
        let frame = v1_text(
            direction,
            r#"{"topic":"t","event":"e","payload":{},"ref":null,"join_ref":null}"#,
        )
        .expect("null refs");
        assert_eq!(frame.msg_ref, None);
        assert_eq!(frame.join_ref, None);
    }
}

#[test]
fn v1_text_unicode_and_escapes_in_member_names_and_topics() {
    // `\u0074opic` is `topic`: member names are compared after unescaping.
    let input =
        r#"{"\u0074opic":"room:\u00e9\ud83d\ude00\"","event":"e\n","payload":{},"ref":null}"#;
    for direction in BOTH {
        let frame = v1_text(direction, input).expect("escapes are decoded");
        assert_eq!(frame.topic, "room:é😀\"");
        assert_eq!(frame.event(), "e\n");
    }
}

#[test]
fn v1_text_reply_to_a_client_is_a_reply() {
    let frame = v1_text(
        Direction::ToClient,
        r#"{"topic":"room:1","event":"phx_reply","payload":{"status":"ok","response":{"a":1}},"ref":"5"}"#,
    )
    .expect("a reply");
    assert_eq!(frame.msg_ref, some("5"));
    assert_eq!(frame.join_ref, None);
    assert_eq!(
        frame.body,
        Body::Reply {
            status: "ok".to_owned(),
            response: json(r#"{"a":1}"#),
        }
    );
}

#[test]
fn v1_text_reply_without_status() {
    let input = r#"{"topic":"room:1","event":"phx_reply","payload":{"response":{}},"ref":"5"}"#;
    let result = v1_text(Direction::ToClient, input);
    assert!(
        matches!(result, Err(DecodeError::MissingField(Field::Status))),
        "got {result:?}"
    );
    // A reply with no payload at all has no status either: its payload is `null`, not an object.
    let input = r#"{"topic":"room:1","event":"phx_reply","ref":"5"}"#;
    assert_wrong_type(v1_text(Direction::ToClient, input), Field::Payload, input);
}

#[test]
fn v1_text_reply_to_the_server_is_an_ordinary_event() {
    let input = r#"{"topic":"room:1","event":"phx_reply","payload":{},"ref":"5"}"#;
    let frame = v1_text(Direction::ToServer, input).expect("servers do not interpret replies");
    assert_eq!(
        frame,
        Frame::message(None, some("5"), "room:1", "phx_reply", Payload::empty())
    );
}

#[test]
fn errors_have_actionable_messages() {
    let cases: [(Result<Frame, DecodeError>, &str); 5] = [
        (v2_text(Direction::ToServer, "{}"), "must be a JSON array"),
        (v2_text(Direction::ToServer, "[]"), "has 0 elements"),
        (
            v2_text(Direction::ToServer, r#"["1","1",1,"e",{}]"#),
            "`topic` must be a string",
        ),
        (
            v2_binary(Direction::ToServer, &[0, 9]),
            "truncated: needs 5 bytes, has 2",
        ),
        (
            v2_binary(Direction::ToServer, &[7]),
            "kind 7 is not valid in this direction",
        ),
    ];
    for (result, want) in cases {
        let message = result.expect_err("malformed input").to_string();
        assert!(message.contains(want), "{message:?} should say {want:?}");
    }
}
