//! Channels: joins, rejoins and their backoff, server errors and closes, stale join_refs, leave.

use super::{Client, json, reply};
use crate::client::{
    Action, ChannelState, ClientConfig, Event, JoinError, LeaveError, PushError, StateCause,
    Timestamp,
};
use crate::error::Field;
use crate::{EncodeError, Payload, Serializer};

#[test]
fn join_before_connecting_is_sent_when_the_connection_opens() {
    let mut c = Client::quiet();
    let room = c.session.channel("room:lobby", json(r#"{"token":"t"}"#));
    let join = c.session.join(room, None, c.now).expect("joins");
    assert_eq!(c.state(room), ChannelState::Joining);
    assert_eq!(c.sent(), Vec::<String>::new());
    assert_eq!(c.actions(), [], "joining does not connect");

    c.open();
    assert_eq!(
        c.sent(),
        [r#"["3","3","room:lobby","phx_join",{"token":"t"}]"#]
    );
    c.ok_join(room);
    let events = c.events();
    assert!(events.contains(&Event::Reply {
        push: join,
        channel: room,
        status: "ok".into(),
        response: json("{}"),
    }));
    assert_eq!(c.state(room), ChannelState::Joined);
}

#[test]
fn reconnecting_rejoins_with_a_new_join_ref_and_drops_the_old_one() {
    let mut c = Client::quiet();
    c.open();
    let room = c.joined("room:lobby");
    let join = c.join_ref(room);
    c.reconnect();
    assert_eq!(c.sent(), [r#"["4","4","room:lobby","phx_join",{}]"#]);
    c.ok_join(room);
    c.drain();

    let message = |join_ref: &str| format!(r#"[{join_ref},null,"room:lobby","new_msg",{{}}]"#);
    c.recv(&message(&format!("\"{join}\"")));
    assert_eq!(c.events(), [], "a message for the previous join is dropped");
    c.recv(&message("\"4\""));
    c.recv(&message("null"));
    assert_eq!(c.events().len(), 2, "the current join, and broadcasts");
}

#[test]
fn a_refused_join_rejoins_on_the_rejoin_backoff() {
    let mut c = Client::quiet();
    c.open();
    let room = c.session.channel("room:lobby", Payload::empty());
    let join = c.session.join(room, None, c.now).expect("joins");
    let mut delays = Vec::new();
    for _ in 0..5 {
        let join_ref = c.join_ref(room);
        c.drain();
        c.recv(&reply(
            &join_ref,
            &join_ref,
            "room:lobby",
            "error",
            r#"{"reason":"no"}"#,
        ));
        let events = c.events();
        assert_eq!(
            Client::state_changes(&events),
            [(room, ChannelState::Errored, StateCause::JoinRefused)]
        );
        assert!(events.contains(&Event::Reply {
            push: join,
            channel: room,
            status: "error".into(),
            response: json(r#"{"reason":"no"}"#),
        }));
        let delay = c.next_timeout_in().expect("rejoin scheduled");
        delays.push(delay);
        c.advance(delay);
        let sent = c.sent();
        assert_eq!(sent.len(), 1);
        assert!(sent[0].contains("phx_join"));
    }
    assert_eq!(delays, [1000, 2000, 5000, 10_000, 10_000]);

    // Joined at last: the backoff starts over.
    c.ok_join(room);
    c.drain();
    let join_ref = c.join_ref(room);
    c.recv(&format!(
        r#"["{join_ref}","{join_ref}","room:lobby","phx_error",{{}}]"#
    ));
    assert_eq!(c.next_timeout_in(), Some(1000));
}

#[test]
fn phx_error_errors_the_channel_and_rejoins() {
    let mut c = Client::quiet();
    c.open();
    let room = c.joined("room:lobby");
    c.recv(r#"["3","3","room:lobby","phx_error",{"reason":"channel_crash"}]"#);
    assert_eq!(
        Client::state_changes(&c.events()),
        [(
            room,
            ChannelState::Errored,
            StateCause::ServerError(json(r#"{"reason":"channel_crash"}"#))
        )]
    );
    c.advance(999);
    assert_eq!(c.sent(), Vec::<String>::new());
    c.advance(1);
    assert_eq!(c.sent(), [r#"["4","4","room:lobby","phx_join",{}]"#]);
    c.ok_join(room);
    c.drain();

    // The crash report of the previous join, repeated, concerns nothing any more.
    c.recv(r#"["3","3","room:lobby","phx_error",{}]"#);
    c.recv(r#"["3","3","room:lobby","phx_close",{}]"#);
    assert_eq!(c.events(), []);
    assert_eq!(c.state(room), ChannelState::Joined);
    c.recv(r#"["4","4","room:lobby","phx_close",{}]"#);
    assert_eq!(
        Client::state_changes(&c.events()),
        [(
            room,
            ChannelState::Closed,
            StateCause::ServerClose(json("{}"))
        )]
    );
    assert_eq!(c.session.poll_timeout(), None);
}

#[test]
fn a_join_without_reply_times_out_leaves_and_rejoins() {
    let mut c = Client::quiet();
    c.open();
    let room = c.session.channel("room:lobby", Payload::empty());
    let join = c.session.join(room, None, c.now).expect("joins");
    assert_eq!(c.sent(), [r#"["3","3","room:lobby","phx_join",{}]"#]);
    c.drain();

    c.advance(10_000);
    // The server is told to drop that join, then the channel errors and the timeout is reported.
    assert_eq!(c.sent(), [r#"["3","4","room:lobby","phx_leave",{}]"#]);
    let events = c.events();
    assert_eq!(
        events,
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
    assert_eq!(c.session.join_ref(room), None);

    // The late reply to the abandoned join changes nothing.
    c.recv(&reply("3", "3", "room:lobby", "ok", "{}"));
    assert_eq!(c.state(room), ChannelState::Errored);

    c.advance(1000);
    assert_eq!(c.sent(), [r#"["5","5","room:lobby","phx_join",{}]"#]);
    c.ok_join(room);
    assert_eq!(c.state(room), ChannelState::Joined);
}

#[test]
fn join_timeout_counts_from_the_join_call_even_while_disconnected() {
    let mut c = Client::quiet();
    let room = c.session.channel("room:lobby", Payload::empty());
    c.session
        .join(room, Some(super::ms(2000)), c.now)
        .expect("joins");
    c.advance(2000);
    assert_eq!(c.state(room), ChannelState::Errored);
    // Not connected, so neither the join nor its leave goes out, and no rejoin timer runs:
    // the channel rejoins when the connection opens.
    assert_eq!(c.session.poll_timeout(), None);
    c.open();
    assert_eq!(c.sent(), [r#"["5","5","room:lobby","phx_join",{}]"#]);
}

#[test]
fn leave_sends_phx_leave_and_closes_at_once() {
    let mut c = Client::quiet();
    c.open();
    let room = c.joined("room:lobby");
    let leave = c.session.leave(room, c.now).expect("leaves");
    assert_eq!(c.sent(), [r#"["3","4","room:lobby","phx_leave",{}]"#]);
    assert_eq!(
        c.events(),
        [
            Event::ChannelState {
                channel: room,
                state: ChannelState::Closed,
                cause: StateCause::Leave
            },
            Event::Reply {
                push: leave,
                channel: room,
                status: "ok".into(),
                response: Payload::empty()
            }
        ]
    );
    // The server's own answers change nothing, and nothing more reaches the channel.
    c.recv(&reply("3", "4", "room:lobby", "ok", "{}"));
    c.recv(r#"["3","3","room:lobby","phx_close",{}]"#);
    c.recv(r#"[null,null,"room:lobby","shout",{}]"#);
    assert_eq!(c.events(), []);

    assert_eq!(c.session.leave(room, c.now), Err(LeaveError::NotJoined));
    assert_eq!(
        c.session.push(room, "shout", json("{}"), None, c.now),
        Err(PushError::NotJoined)
    );
    // Unlike phoenix.js, a closed channel can be joined again.
    c.session.join(room, None, c.now).expect("joins again");
    assert_eq!(c.sent(), [r#"["5","5","room:lobby","phx_join",{}]"#]);
}

#[test]
fn leave_while_disconnected_is_not_sent() {
    let mut c = Client::quiet();
    c.open();
    let room = c.joined("room:lobby");
    c.session.handle_close(c.now, None);
    c.session.leave(room, c.now).expect("leaves");
    assert_eq!(c.state(room), ChannelState::Closed);
    c.advance(10);
    c.session.handle_open(c.now);
    assert_eq!(
        c.sent(),
        Vec::<String>::new(),
        "nothing to leave on a new connection"
    );
}

#[test]
fn joining_a_topic_leaves_the_other_channel_of_that_topic() {
    let mut c = Client::quiet();
    c.open();
    let first = c.joined("room:lobby");
    let second = c.session.channel("room:lobby", Payload::empty());
    c.session.join(second, None, c.now).expect("joins");
    assert_eq!(
        c.sent(),
        [
            r#"["3","6","room:lobby","phx_leave",{}]"#,
            r#"["7","7","room:lobby","phx_join",{}]"#
        ]
    );
    assert_eq!(
        Client::state_changes(&c.events()),
        [
            (first, ChannelState::Closed, StateCause::Replaced),
            (second, ChannelState::Joining, StateCause::Join)
        ]
    );
}

#[test]
fn a_joining_channel_whose_connection_fails_rejoins_with_a_fresh_join() {
    let mut c = Client::quiet();
    c.session.connect(c.now);
    let room = c.session.channel("room:lobby", Payload::empty());
    c.session.join(room, None, c.now).expect("joins");
    c.session.handle_error(c.now);
    c.session.handle_close(c.now, Some(1006));
    assert_eq!(c.state(room), ChannelState::Errored);
    c.advance(10);
    c.session.handle_open(c.now);
    // The join buffered for the failed attempt is outdated; only the rejoin goes out.
    assert_eq!(c.sent(), [r#"["4","4","room:lobby","phx_join",{}]"#]);
}

#[test]
fn disconnect_while_connecting_keeps_the_buffered_join() {
    let mut c = Client::quiet();
    c.session.connect(c.now);
    let room = c.session.channel("room:lobby", Payload::empty());
    c.session.join(room, None, c.now).expect("joins");
    c.session.disconnect(c.now, None);
    assert_eq!(c.state(room), ChannelState::Joining);
    c.drain();
    c.open();
    assert_eq!(c.sent(), [r#"["3","3","room:lobby","phx_join",{}]"#]);
}

#[test]
fn join_errors() {
    let mut c = Client::quiet();
    let room = c.session.channel("room:lobby", Payload::empty());
    c.session.join(room, None, c.now).expect("joins");
    assert_eq!(
        c.session.join(room, None, c.now),
        Err(JoinError::AlreadyJoined)
    );
    assert!(c.session.remove_channel(room));
    assert!(!c.session.remove_channel(room));
    assert_eq!(c.session.channel_state(room), None);
    assert_eq!(
        c.session.join(room, None, c.now),
        Err(JoinError::UnknownChannel)
    );
    assert_eq!(
        c.session.leave(room, c.now),
        Err(LeaveError::UnknownChannel)
    );

    let mut v1 = Client::new(ClientConfig::default().serializer(Serializer::V1Json));
    let binary = v1
        .session
        .channel("room:1", Payload::Binary(bytes::Bytes::from_static(b"x")));
    assert_eq!(
        v1.session.join(binary, None, v1.now),
        Err(JoinError::Encode(EncodeError::BinaryUnsupported))
    );
    let long = c
        .session
        .channel("t".repeat(300), Payload::Binary(bytes::Bytes::new()));
    assert_eq!(
        c.session.join(long, None, c.now),
        Err(JoinError::Encode(EncodeError::FieldTooLong {
            field: Field::Topic,
            len: 300
        }))
    );
}

#[test]
fn removing_a_channel_forgets_it_and_its_pushes() {
    let mut c = Client::quiet();
    c.open();
    let room = c.joined("room:lobby");
    c.session
        .push(room, "shout", json("{}"), None, c.now)
        .expect("pushes");
    c.drain();
    assert!(c.session.remove_channel(room));
    c.recv(&reply("3", "4", "room:lobby", "ok", "{}"));
    c.recv(r#"[null,null,"room:lobby","shout",{}]"#);
    c.advance(60_000);
    assert_eq!(c.events(), []);
    assert_eq!(c.actions(), Vec::<Action>::new());
}

#[test]
fn a_late_join_reply_after_leave_does_not_rejoin() {
    let mut c = Client::quiet();
    c.open();
    let room = c.session.channel("room:lobby", Payload::empty());
    c.session.join(room, None, c.now).expect("joins");
    c.session.leave(room, c.now).expect("leaves");
    c.drain();
    // phoenix.js would mark the channel joined here, although it was left.
    c.recv(&reply("3", "3", "room:lobby", "ok", "{}"));
    assert_eq!(c.events(), []);
    assert_eq!(c.state(room), ChannelState::Closed);
    c.advance(60_000);
    assert_eq!(c.sent(), Vec::<String>::new());
}

#[test]
fn a_rejoin_timer_and_a_reopened_connection_do_not_both_rejoin() {
    let mut c = Client::quiet();
    c.open();
    let room = c.session.channel("room:lobby", Payload::empty());
    c.session.join(room, None, c.now).expect("joins");
    c.recv(&reply("3", "3", "room:lobby", "error", "{}"));
    assert_eq!(c.next_timeout_in(), Some(1000), "rejoin scheduled");
    c.drain();

    c.advance(500);
    c.reconnect();
    assert_eq!(c.sent(), [r#"["4","4","room:lobby","phx_join",{}]"#]);
    // The old timer was due at 1 s; the new join times out at 10.51 s.
    c.advance_to(10_000);
    assert_eq!(c.sent(), Vec::<String>::new());
}

#[test]
fn replaced_params_go_with_the_next_join_and_every_rejoin_after_it() {
    let mut c = Client::quiet();
    let room = c.session.channel("room:lobby", json(r#"{"n":0}"#));
    c.session
        .set_channel_params(room, json(r#"{"n":1}"#))
        .expect("the channel exists");
    c.session.join(room, None, c.now).expect("joins");
    // The join waits for the connection with the params of the `join` call; params set before
    // the connection opens do not rewrite it.
    c.session
        .set_channel_params(room, json(r#"{"n":2}"#))
        .expect("the channel exists");
    c.open();
    assert_eq!(c.sent(), [r#"["3","3","room:lobby","phx_join",{"n":1}]"#]);
    c.ok_join(room);
    c.drain();

    // Rejoin after a lost connection: the params set by then. The rejoin comes with the
    // connection, not a rejoin timer.
    c.session.handle_close(c.now, Some(1006));
    assert!(
        !c.session
            .rejoin_due(room, c.now + std::time::Duration::from_secs(60))
    );
    let delay = c.next_timeout_in().expect("a reconnect is scheduled");
    c.advance(delay);
    assert_eq!(c.actions(), [Action::Connect]);
    c.session
        .set_channel_params(room, json(r#"{"n":3}"#))
        .expect("the channel exists");
    c.session.handle_open(c.now);
    assert_eq!(c.sent(), [r#"["4","4","room:lobby","phx_join",{"n":3}]"#]);
    c.ok_join(room);
    c.drain();

    // Rejoin on the rejoin timer after a crash: likewise.
    c.recv(r#"["4","4","room:lobby","phx_error",{}]"#);
    c.drain();
    let delay = c.next_timeout_in().expect("a rejoin is scheduled");
    c.advance(delay - 1);
    assert!(!c.session.rejoin_due(room, c.now));
    c.session
        .set_channel_params(room, json(r#"{"n":4}"#))
        .expect("the channel exists");
    assert!(
        c.session
            .rejoin_due(room, Timestamp::from_millis(c.millis() + 1))
    );
    c.advance(1);
    assert!(!c.session.rejoin_due(room, c.now), "rejoined");
    assert_eq!(c.sent(), [r#"["5","5","room:lobby","phx_join",{"n":4}]"#]);
}

#[cfg(feature = "v1")]
#[test]
fn params_that_cannot_be_sent_are_refused_and_the_old_ones_kept() {
    let mut v1 = Client::new(ClientConfig::default().serializer(Serializer::V1Json));
    let room = v1.session.channel("room:1", json(r#"{"a":1}"#));
    assert_eq!(
        v1.session
            .set_channel_params(room, Payload::Binary(bytes::Bytes::from_static(b"x"))),
        Err(JoinError::Encode(EncodeError::BinaryUnsupported))
    );
    v1.session.join(room, None, v1.now).expect("joins");
    v1.open();
    assert_eq!(
        v1.sent(),
        [r#"{"topic":"room:1","event":"phx_join","payload":{"a":1},"ref":"3","join_ref":"3"}"#]
    );
    assert!(v1.session.remove_channel(room));
    assert_eq!(
        v1.session.set_channel_params(room, Payload::empty()),
        Err(JoinError::UnknownChannel)
    );
}

#[test]
fn a_frame_decoded_by_the_driver_is_handled_as_its_text_is() {
    let decode = |text: &str| {
        Serializer::V2
            .decode_text(crate::Direction::ToClient, text)
            .expect("test frames decode")
    };
    let broadcast = r#"[null,null,"room:lobby","shout",{"body":"hi"}]"#;
    let mut c = Client::quiet();
    let room = c.session.channel("room:lobby", Payload::empty());
    c.session.handle_frame(c.now, decode(broadcast));
    assert_eq!(c.events(), [], "ignored while not connected");

    c.open();
    c.drain();
    c.session.join(room, None, c.now).expect("joins");
    c.session.handle_frame(
        c.now,
        decode(r#"["3","3","room:lobby","phx_reply",{"status":"ok","response":{}}]"#),
    );
    assert_eq!(c.state(room), ChannelState::Joined);
    c.drain();
    c.session.handle_frame(c.now, decode(broadcast));
    assert_eq!(
        c.events(),
        [Event::Message {
            channel: room,
            event: "shout".into(),
            payload: json(r#"{"body":"hi"}"#),
            position: None,
        }]
    );
}
