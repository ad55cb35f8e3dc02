//! Pushes: buffering until joined, timeouts, reply routing, binary payloads.

use std::time::Duration;

use bytes::Bytes;

use super::{Client, config, json, ms, reply};
use crate::client::{ChannelState, Event, PushError, StateCause};
use crate::error::Field;
use crate::{EncodeError, Payload, Serializer};

#[test]
fn pushes_wait_for_the_join_and_go_out_in_order() {
    let mut c = Client::quiet();
    c.open();
    let room = c.session.channel("room:lobby", Payload::empty());
    c.session.join(room, None, c.now).expect("joins");
    assert_eq!(c.sent(), [r#"["3","3","room:lobby","phx_join",{}]"#]);
    let ids: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|event| {
            c.session
                .push(room, event, json("{}"), None, c.now)
                .expect("pushes")
        })
        .collect();
    assert_eq!(c.sent(), Vec::<String>::new());

    c.ok_join(room);
    // Buffering took refs 4 to 6 and sending takes fresh ones, as in phoenix.js.
    assert_eq!(
        c.sent(),
        [
            r#"["3","7","room:lobby","a",{}]"#,
            r#"["3","8","room:lobby","b",{}]"#,
            r#"["3","9","room:lobby","c",{}]"#
        ]
    );
    c.events();
    c.recv(&reply("3", "8", "room:lobby", "ok", r#"{"n":2}"#));
    assert_eq!(
        c.events(),
        [Event::Reply {
            push: ids[1],
            channel: room,
            status: "ok".into(),
            response: json(r#"{"n":2}"#)
        }]
    );
}

#[test]
fn a_push_that_times_out_while_buffered_is_never_sent() {
    let mut c = Client::quiet();
    c.open();
    let room = c.session.channel("room:lobby", Payload::empty());
    c.session.join(room, None, c.now).expect("joins");
    c.drain();
    let short = c
        .session
        .push(room, "short", json("{}"), Some(ms(2000)), c.now)
        .expect("pushes");
    let long = c
        .session
        .push(room, "long", json("{}"), None, c.now)
        .expect("pushes");
    c.advance(2000);
    assert_eq!(
        c.events(),
        [Event::Timeout {
            push: short,
            channel: room
        }]
    );
    c.advance(3000);
    c.ok_join(room);
    assert_eq!(c.sent(), [r#"["3","6","room:lobby","long",{}]"#]);
    c.drain();

    // Sending restarted the long push's timeout (phoenix.js restarts it in `send`): 10 s from
    // the flush at 5 s, not from the push at 0.
    c.advance_to(14_999);
    assert_eq!(c.events(), []);
    c.advance_to(15_000);
    assert_eq!(
        c.events(),
        [Event::Timeout {
            push: long,
            channel: room
        }]
    );
}

#[test]
fn pushes_made_while_disconnected_go_out_after_the_rejoin() {
    let mut c = Client::quiet();
    c.open();
    let room = c.joined("room:lobby");
    c.session.handle_close(c.now, None);
    c.session
        .push(room, "offline", json(r#"{"n":1}"#), None, c.now)
        .expect("an errored channel buffers");
    c.advance(10);
    c.session.handle_open(c.now);
    assert_eq!(c.sent(), [r#"["5","5","room:lobby","phx_join",{}]"#]);
    c.ok_join(room);
    assert_eq!(c.sent(), [r#"["5","6","room:lobby","offline",{"n":1}]"#]);
}

#[test]
fn replies_are_routed_by_ref_topic_and_join_ref() {
    let mut c = Client::quiet();
    c.open();
    let room = c.joined("room:lobby");
    let first = c
        .session
        .push(room, "a", json("{}"), None, c.now)
        .expect("pushes");
    let second = c
        .session
        .push(room, "b", json("{}"), None, c.now)
        .expect("pushes");
    assert_eq!(
        c.sent(),
        [
            r#"["3","4","room:lobby","a",{}]"#,
            r#"["3","5","room:lobby","b",{}]"#
        ]
    );
    // Wrong topic, wrong join_ref, unknown ref: not for these pushes.
    c.recv(&reply("3", "4", "room:other", "ok", "{}"));
    c.recv(&reply("2", "4", "room:lobby", "ok", "{}"));
    c.recv(&reply("3", "77", "room:lobby", "ok", "{}"));
    assert_eq!(c.events(), []);

    c.recv(&reply("3", "5", "room:lobby", "error", r#"{"reason":"b"}"#));
    c.recv(r#"[null,"4","room:lobby","phx_reply",{"status":"ok","response":"a"}]"#);
    let replies: Vec<_> = c
        .events()
        .into_iter()
        .map(|e| match e {
            Event::Reply { push, status, .. } => (push, status),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        replies,
        [(second, "error".to_owned()), (first, "ok".to_owned())]
    );
    // Answered pushes do not time out.
    c.advance(60_000);
    assert_eq!(c.events(), []);
}

#[test]
fn a_sent_push_without_reply_times_out_once() {
    let mut c = Client::quiet();
    c.open();
    let room = c.joined("room:lobby");
    let push = c
        .session
        .push(room, "a", json("{}"), Some(ms(500)), c.now)
        .expect("pushes");
    c.advance(499);
    assert_eq!(c.events(), []);
    c.advance(1);
    assert_eq!(
        c.events(),
        [Event::Timeout {
            push,
            channel: room
        }]
    );
    c.recv(&reply("3", "4", "room:lobby", "ok", "{}"));
    assert_eq!(c.events(), [], "too late");
}

#[test]
fn a_push_in_flight_when_the_connection_drops_times_out() {
    let mut c = Client::quiet();
    c.open();
    let room = c.joined("room:lobby");
    let push = c
        .session
        .push(room, "a", json("{}"), None, c.now)
        .expect("pushes");
    c.drain();
    c.reconnect();
    c.ok_join(room);
    c.drain();
    c.advance_to(10_000);
    assert_eq!(
        c.events(),
        [Event::Timeout {
            push,
            channel: room
        }]
    );
}

#[test]
fn the_reply_to_a_push_made_before_a_leave_is_delivered() {
    let mut c = Client::quiet();
    c.open();
    let room = c.joined("room:lobby");
    let push = c
        .session
        .push(room, "a", json("{}"), None, c.now)
        .expect("pushes");
    c.session.leave(room, c.now).expect("leaves");
    c.drain();
    c.recv(&reply("3", "4", "room:lobby", "ok", "{}"));
    assert!(matches!(&c.events()[..], [Event::Reply { push: p, .. }] if *p == push));
}

#[test]
fn binary_pushes_and_replies() {
    let mut c = Client::quiet();
    c.open();
    let room = c.joined("room:lobby");
    let push = c
        .session
        .push(
            room,
            "upload",
            Payload::Binary(Bytes::from_static(&[0, 1, 0xff])),
            None,
            c.now,
        )
        .expect("pushes");
    // Kind 0, lengths 1, 1, 10, 6, then "3", "4", "room:lobby", "upload" and the bytes.
    assert_eq!(
        c.sent(),
        ["bin:0001010a06333472\
          6f6f6d3a6c6f626279\
          75706c6f6164\
          0001ff"]
    );
    let reply = [&[1u8, 1, 1, 10, 2][..], b"34room:lobbyok", &[9, 8, 7]].concat();
    c.session
        .handle_binary(c.now, Bytes::from(reply))
        .expect("decodes");
    assert_eq!(
        c.events(),
        [Event::Reply {
            push,
            channel: room,
            status: "ok".into(),
            response: Payload::Binary(Bytes::from_static(&[9, 8, 7]))
        }]
    );
}

#[test]
fn push_errors() {
    let mut c = Client::quiet();
    let room = c.session.channel("room:lobby", Payload::empty());
    assert_eq!(
        c.session.push(room, "a", json("{}"), None, c.now),
        Err(PushError::NotJoined),
        "before join"
    );
    c.session.join(room, None, c.now).expect("joins");
    assert_eq!(
        c.session.push(
            room,
            "e".repeat(256),
            Payload::Binary(Bytes::new()),
            None,
            c.now
        ),
        Err(PushError::Encode(EncodeError::FieldTooLong {
            field: Field::Event,
            len: 256
        }))
    );
    c.session.remove_channel(room);
    assert_eq!(
        c.session.push(room, "a", json("{}"), None, c.now),
        Err(PushError::UnknownChannel)
    );

    let mut v1 = Client::new(super::config().serializer(Serializer::V1Json));
    let room = v1.session.channel("room:lobby", Payload::empty());
    v1.session.join(room, None, v1.now).expect("joins");
    assert_eq!(
        v1.session
            .push(room, "a", Payload::Binary(Bytes::new()), None, v1.now),
        Err(PushError::Encode(EncodeError::BinaryUnsupported))
    );
    assert_eq!(v1.state(room), ChannelState::Joining);
}

#[test]
fn undecodable_messages_are_reported_and_dropped() {
    let mut c = Client::quiet();
    c.open();
    let room = c.joined("room:lobby");
    assert!(c.session.handle_text(c.now, "not json").is_err());
    assert!(c.session.handle_text(c.now, r#"["3"]"#).is_err());
    assert!(
        c.session
            .handle_binary(c.now, Bytes::from_static(&[7]))
            .is_err()
    );
    assert_eq!(c.events(), []);
    assert_eq!(c.state(room), ChannelState::Joined);
    assert!(c.session.is_connected());
}

#[test]
fn poll_timeout_follows_the_earliest_push_still_waiting() {
    let mut c = Client::quiet();
    c.open();
    let room = c.session.channel("room:lobby", Payload::empty());
    c.session.join(room, None, c.now).expect("joins");
    c.ok_join(room);
    c.drain();
    let start = c.now;
    for (event, timeout) in [("a", 5000), ("b", 1000), ("c", 3000)] {
        c.session
            .push(room, event, json("{}"), Some(ms(timeout)), c.now)
            .expect("pushes");
    }
    assert_eq!(c.session.poll_timeout(), Some(start + ms(1000)));
    c.recv(&reply("3", "5", "room:lobby", "ok", "{}"));
    assert_eq!(c.session.poll_timeout(), Some(start + ms(3000)));
    c.recv(&reply("3", "4", "room:lobby", "ok", "{}"));
    assert_eq!(c.session.poll_timeout(), Some(start + ms(3000)));
    c.recv(&reply("3", "6", "room:lobby", "ok", "{}"));
    assert_eq!(c.session.poll_timeout(), None);
}

#[test]
fn deadlines_due_together_fire_earliest_first_in_one_call() {
    let mut c = Client::quiet();
    c.open();
    let room = c.joined("room:lobby");
    let start = c.now;
    let pushes: Vec<_> = [300, 100, 200]
        .into_iter()
        .map(|timeout| {
            c.session
                .push(room, "a", json("{}"), Some(ms(timeout)), c.now)
                .expect("pushes")
        })
        .collect();
    c.drain();
    c.now = start + ms(1000);
    c.session.handle_timeout(c.now);
    let timeout = |push| Event::Timeout {
        push,
        channel: room,
    };
    assert_eq!(
        c.events(),
        [timeout(pushes[1]), timeout(pushes[2]), timeout(pushes[0])]
    );
    assert_eq!(c.session.poll_timeout(), None);
}

#[test]
fn a_zero_timeout_fires_at_the_next_call() {
    let mut c = Client::new(config().heartbeat_interval(None).timeout(Duration::ZERO));
    c.open();
    let room = c.session.channel("room:lobby", Payload::empty());
    let join = c.session.join(room, None, c.now).expect("joins");
    c.drain();
    c.session.handle_timeout(c.now);
    assert_eq!(c.events(), [], "not in the call that set it");
    assert_eq!(c.advance_to_next(), Duration::from_micros(1));
    assert_eq!(
        c.events(),
        [
            Event::ChannelState {
                channel: room,
                state: ChannelState::Errored,
                cause: StateCause::JoinTimeout
            },
            Event::Timeout {
                push: join,
                channel: room
            }
        ]
    );
    assert_eq!(c.next_timeout_in(), Some(1000), "the rejoin backoff");
}
