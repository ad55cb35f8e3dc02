//! Unit tests of the Rust API over a scripted driver and a virtual clock: the frames a server
//! would send are fed by hand, so every step is deterministic.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use alight_protocol::Payload;
use alight_protocol::client::{Action, Backoff, ChannelState, ClientConfig, StateCause, Timestamp};
use alight_protocol::schema::{Schema, SerdeEvents};
use futures_util::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::*;

/// A socket on a virtual clock, with heartbeats off and no jitter.
struct Harness {
    socket: ClientSocket,
    driver: Driver,
    millis: Arc<AtomicU64>,
}

impl Harness {
    fn new() -> Self {
        Self::with_options(SocketOptions::default())
    }

    fn with_options(options: SocketOptions) -> Self {
        let config = ClientConfig::default()
            .heartbeat_interval(None)
            .jitter(0.0)
            .rejoin_after(Backoff::steps(
                [Duration::from_millis(100)],
                Duration::from_millis(100),
            ));
        let millis = Arc::new(AtomicU64::new(0));
        let clock_millis = Arc::clone(&millis);
        let clock: Clock =
            Arc::new(move || Timestamp::from_millis(clock_millis.load(Ordering::SeqCst)));
        let (socket, driver) = ClientSocket::new(config, options, clock);
        Harness {
            socket,
            driver,
            millis,
        }
    }

    /// Connects and opens the transport.
    fn open(&self) {
        self.socket.connect();
        let work = self.driver.take_work();
        assert_eq!(work.actions, vec![Action::Connect]);
        self.driver.handle_open();
    }

    /// The text frames the driver would send now.
    fn sent(&self) -> Vec<String> {
        self.driver
            .take_work()
            .transmits
            .iter()
            .filter_map(|w| w.as_text().map(str::to_owned))
            .collect()
    }

    fn receive(&self, text: &str) {
        self.driver.handle_text(text).expect("a valid frame");
    }

    /// Moves the clock to `millis` and fires what is due.
    fn advance_to(&self, millis: u64) {
        self.millis.store(millis, Ordering::SeqCst);
        self.driver.handle_timeout();
    }
}

fn json(text: &str) -> Payload {
    Payload::from_json_str(text).expect("valid JSON")
}

#[test]
fn join_and_push_resolve_with_their_replies() {
    let h = Harness::new();
    h.open();
    let room = h.socket.channel("room:1", Payload::empty());
    let mut join = room.join();
    assert_eq!(h.sent(), [r#"["3","3","room:1","phx_join",{}]"#]);
    assert!((&mut join).now_or_never().is_none(), "no reply yet");
    h.receive(r#"["3","3","room:1","phx_reply",{"status":"ok","response":{"user":null}}]"#);
    let reply = join.now_or_never().expect("answered").expect("joined");
    assert_eq!(reply, json(r#"{"user":null}"#));
    assert_eq!(room.state(), ChannelState::Joined);

    let push = room.push("ping", json(r#"{"n":1}"#));
    assert_eq!(h.sent(), [r#"["3","4","room:1","ping",{"n":1}]"#]);
    h.receive(r#"["3","4","room:1","phx_reply",{"status":"ok","response":{"n":1}}]"#);
    assert_eq!(
        push.now_or_never().expect("answered").expect("ok"),
        json(r#"{"n":1}"#)
    );

    let fail = room.push("fail", Payload::empty());
    h.receive(
        r#"["3","5","room:1","phx_reply",{"status":"error","response":{"reason":"failed"}}]"#,
    );
    match fail.now_or_never().expect("answered") {
        Err(PushError::Reply { status, response }) => {
            assert_eq!(status, "error");
            assert_eq!(response, json(r#"{"reason":"failed"}"#));
        }
        other => panic!("expected an error reply, got {other:?}"),
    }
}

#[test]
fn a_refused_join_closes_the_channel_and_can_be_retried() {
    let h = Harness::new();
    h.open();
    let room = h.socket.channel("private:1", Payload::empty());
    let mut states = room.states();
    let join = room.join();
    h.sent();
    h.receive(r#"["3","3","private:1","phx_reply",{"status":"error","response":{"reason":"unauthorized"}}]"#);
    assert!(matches!(
        join.now_or_never(),
        Some(Err(ClientJoinError::Refused { status, .. })) if status == "error"
    ));
    assert_eq!(room.state(), ChannelState::Closed);
    // No rejoin is scheduled: nothing is due, ever.
    assert_eq!(h.driver.take_work().timeout, None);
    let seen: Vec<(ChannelState, StateCause)> = std::iter::from_fn(|| states.next().now_or_never())
        .flatten()
        .map(|c| c.map(|c| (c.state, c.cause)).expect("no lag"))
        .collect();
    assert_eq!(
        seen,
        [
            (ChannelState::Joining, StateCause::Join),
            (ChannelState::Errored, StateCause::JoinRefused),
            (ChannelState::Closed, StateCause::JoinRefused),
        ]
    );
    // Pushing to it is refused at the call.
    assert!(matches!(
        room.push("ping", Payload::empty()).now_or_never(),
        Some(Err(PushError::Rejected(_)))
    ));
    // Joining again sends a new join.
    let _again = room.join();
    let sent = h.sent();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].contains(r#""private:1","phx_join""#), "{sent:?}");
}

#[test]
fn timeouts_run_on_the_socket_clock() {
    let h = Harness::new();
    h.open();
    let room = h.socket.channel("room:1", Payload::empty());
    let join = room.join();
    h.sent();
    h.receive(r#"["3","3","room:1","phx_reply",{"status":"ok","response":{}}]"#);
    assert!(join.now_or_never().is_some());

    let mut push = room.push_with_timeout("noreply", Payload::empty(), Duration::from_millis(500));
    assert_eq!(
        h.driver.take_work().timeout,
        Some(Timestamp::from_millis(500))
    );
    h.advance_to(499);
    assert!((&mut push).now_or_never().is_none());
    h.advance_to(500);
    assert!(matches!(push.now_or_never(), Some(Err(PushError::Timeout))));

    // A join that times out closes its channel.
    let other = h.socket.channel("room:2", Payload::empty());
    let join = other.join_with_timeout(Duration::from_millis(100));
    h.advance_to(600);
    assert!(matches!(
        join.now_or_never(),
        Some(Err(ClientJoinError::Timeout))
    ));
    assert_eq!(other.state(), ChannelState::Closed);
}

#[test]
fn a_slow_subscriber_loses_the_oldest_events_and_is_told_how_many() {
    let h = Harness::new();
    h.open();
    let room = h.socket.channel("room:1", Payload::empty());
    let mut slow = room.events_with_capacity(2);
    let mut fast = room.events();
    let _join = room.join();
    h.sent();
    h.receive(r#"["3","3","room:1","phx_reply",{"status":"ok","response":{}}]"#);
    for n in 0..5 {
        h.receive(&format!(r#"[null,null,"room:1","shout",{{"n":{n}}}]"#));
    }
    let next = |s: &mut Subscription<Message>| s.next().now_or_never().flatten();
    assert_eq!(next(&mut slow), Some(Err(Lagged { missed: 3 })));
    for n in 3..5 {
        let message = next(&mut slow).expect("queued").expect("no more lag");
        assert_eq!(message.payload, json(&format!(r#"{{"n":{n}}}"#)));
    }
    assert_eq!(slow.missed_total(), 3);
    for _ in 0..5 {
        assert!(matches!(next(&mut fast), Some(Ok(_))));
    }
}

#[test]
fn a_crashed_channel_rejoins_and_sends_what_was_pushed_meanwhile() {
    let h = Harness::new();
    h.open();
    let room = h.socket.channel("room:1", Payload::empty());
    let mut states = room.states();
    let _join = room.join();
    h.sent();
    h.receive(r#"["3","3","room:1","phx_reply",{"status":"ok","response":{}}]"#);
    h.receive(r#"["3","3","room:1","phx_error",{"reason":"channel_crash"}]"#);
    assert_eq!(room.state(), ChannelState::Errored);
    let push = room.push("ping", Payload::empty());
    assert!(h.sent().is_empty(), "the push waits for the rejoin");
    h.advance_to(100);
    assert_eq!(h.sent(), [r#"["5","5","room:1","phx_join",{}]"#]);
    h.receive(r#"["5","5","room:1","phx_reply",{"status":"ok","response":{}}]"#);
    assert_eq!(h.sent(), [r#"["5","6","room:1","ping",{}]"#]);
    h.receive(r#"["5","6","room:1","phx_reply",{"status":"ok","response":{}}]"#);
    assert!(matches!(push.now_or_never(), Some(Ok(_))));
    let causes: Vec<StateCause> = std::iter::from_fn(|| states.next().now_or_never())
        .flatten()
        .map(|c| c.expect("no lag").cause)
        .collect();
    assert_eq!(
        causes,
        [
            StateCause::Join,
            StateCause::JoinOk,
            StateCause::ServerError(json(r#"{"reason":"channel_crash"}"#)),
            StateCause::Rejoin,
            StateCause::JoinOk,
        ]
    );
}

#[test]
fn dropping_the_last_channel_handle_leaves_it() {
    let h = Harness::new();
    h.open();
    let room = h.socket.channel("room:1", Payload::empty());
    let mut events = room.events();
    let _join = room.join();
    h.sent();
    h.receive(r#"["3","3","room:1","phx_reply",{"status":"ok","response":{}}]"#);
    let clone = room.clone();
    drop(room);
    assert!(h.sent().is_empty(), "a clone still holds it");
    drop(clone);
    assert_eq!(h.sent(), [r#"["3","4","room:1","phx_leave",{}]"#]);
    assert!(
        matches!(events.next().now_or_never(), Some(None)),
        "its stream ended"
    );
}

#[test]
fn dropping_every_handle_shuts_the_driver_down_and_fails_what_waits() {
    let h = Harness::new();
    h.open();
    let room = h.socket.channel("room:1", Payload::empty());
    let mut socket_events = h.socket.events();
    let join = room.join();
    h.sent();
    let Harness { socket, driver, .. } = h;
    drop(room);
    drop(socket);
    let work = driver.take_work();
    assert!(work.shutdown);
    assert!(matches!(
        work.actions.as_slice(),
        [Action::Close {
            code: Some(1000),
            ..
        }]
    ));
    drop(driver);
    assert!(matches!(
        join.now_or_never(),
        Some(Err(ClientJoinError::Closed))
    ));
    assert!(matches!(
        socket_events.next().now_or_never(),
        Some(Some(Ok(SocketEvent::Close { code: Some(1000) })))
    ));
    assert!(matches!(socket_events.next().now_or_never(), Some(None)));
}

#[test]
fn transport_errors_reach_the_socket_stream_with_their_cause() {
    let h = Harness::new();
    let mut events = h.socket.events();
    h.socket.connect();
    h.driver.take_work();
    let cause: Cause = Arc::new(std::io::Error::other("refused"));
    h.driver.handle_error(Some(cause));
    h.driver.handle_close(None);
    match events.next().now_or_never().flatten() {
        Some(Ok(SocketEvent::Error(SocketError::Transport(cause)))) => {
            assert_eq!(cause.to_string(), "refused");
        }
        other => panic!("expected a transport error, got {other:?}"),
    }
    assert!(matches!(
        events.next().now_or_never().flatten(),
        Some(Ok(SocketEvent::Close { code: None }))
    ));
    // A bad frame is reported too, and the connection stays.
    h.advance_to(10);
    assert_eq!(h.driver.take_work().actions, vec![Action::Connect]);
    h.driver.handle_open();
    assert!(h.driver.handle_text("not json").is_err());
    let reported: Vec<_> = std::iter::from_fn(|| events.next().now_or_never().flatten()).collect();
    assert!(matches!(
        reported.as_slice(),
        [
            Ok(SocketEvent::Open),
            Ok(SocketEvent::Error(SocketError::BadFrame(_)))
        ]
    ));
    assert!(h.socket.is_connected());
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct JoinParams {
    nickname: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Joined {
    user: Option<String>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", content = "payload", rename_all = "snake_case")]
enum RoomIn {
    Shout { body: String },
}
impl SerdeEvents for RoomIn {}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", content = "payload", rename_all = "snake_case")]
enum RoomOut {
    Shout { body: String },
}
impl SerdeEvents for RoomOut {}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Ack {}

struct Room;

impl Schema for Room {
    const TOPIC: &'static str = "room:*";
    type JoinParams = JoinParams;
    type JoinReply = Joined;
    type In = RoomIn;
    type Reply = Ack;
    type Out = RoomOut;
}

#[test]
fn typed_channels_speak_their_schema() {
    let h = Harness::new();
    h.open();
    assert!(matches!(
        h.socket.typed_channel::<Room>("lobby"),
        Err(WrongTopic {
            pattern: "room:*",
            ..
        })
    ));
    let room = h
        .socket
        .typed_channel::<Room>("room:1")
        .expect("in the family");
    let mut events = room.events();
    let join = room.join(&JoinParams {
        nickname: "ann".into(),
    });
    assert_eq!(
        h.sent(),
        [r#"["3","3","room:1","phx_join",{"nickname":"ann"}]"#]
    );
    h.receive(r#"["3","3","room:1","phx_reply",{"status":"ok","response":{"user":"ann"}}]"#);
    assert_eq!(
        join.now_or_never().expect("answered").expect("joined"),
        Joined {
            user: Some("ann".into())
        }
    );
    let shout = room.push(&RoomIn::Shout { body: "hi".into() });
    assert_eq!(h.sent(), [r#"["3","4","room:1","shout",{"body":"hi"}]"#]);
    h.receive(r#"["3","4","room:1","phx_reply",{"status":"ok","response":{}}]"#);
    assert_eq!(shout.now_or_never().expect("answered").expect("ok"), Ack {});

    h.receive(r#"[null,null,"room:1","shout",{"body":"hi"}]"#);
    h.receive(r#"[null,null,"room:1","dance",{}]"#);
    assert_eq!(
        events.next().now_or_never().flatten().map(|e| e.ok()),
        Some(Some(RoomOut::Shout { body: "hi".into() }))
    );
    assert!(matches!(
        events.next().now_or_never().flatten(),
        Some(Err(EventError::Schema(
            alight_protocol::schema::SchemaError::UnknownEvent { .. }
        )))
    ));

    // A reply that does not fit the schema is an error, not a panic.
    let bad = room.push(&RoomIn::Shout { body: "x".into() });
    h.sent();
    h.receive(r#"["3","5","room:1","phx_reply",{"status":"ok","response":[1]}]"#);
    assert!(matches!(
        bad.now_or_never(),
        Some(Err(PushError::DecodeReply(_)))
    ));
}

#[test]
fn a_history_channel_resumes_and_reports_whether_it_recovered() {
    let h = Harness::new();
    h.open();
    let room = h.socket.channel("history:1", json(r#"{"a":1}"#));
    let mut events = room.events();
    let mut recoveries = room.recoveries();
    let join = room.join();
    h.sent();
    h.receive(r#"["3","3","history:1","phx_reply",{"status":"ok","response":{"position":"0123456789ab-0"}}]"#);
    join.now_or_never().expect("answered").expect("joined");
    h.receive(r#"[null,"0123456789ab-1","history:1","n",{"n":1}]"#);
    let first = events.next().now_or_never().flatten().expect("an event");
    assert_eq!(
        first.expect("not lagged").position.as_deref(),
        Some("0123456789ab-1")
    );
    assert_eq!(room.position().as_deref(), Some("0123456789ab-1"));

    // The connection drops; the rejoin carries since, and the replay overlaps.
    h.driver.handle_close(Some(1006));
    h.advance_to(10);
    assert_eq!(h.driver.take_work().actions, vec![Action::Connect]);
    h.driver.handle_open();
    assert_eq!(
        h.sent(),
        [r#"["4","4","history:1","phx_join",{"a":1,"since":"0123456789ab-1"}]"#]
    );
    h.receive(r#"["4","4","history:1","phx_reply",{"status":"ok","response":{"position":"0123456789ab-2","recovered":true}}]"#);
    assert_eq!(
        recoveries.next().now_or_never().flatten(),
        Some(Ok(Recovery { recovered: true }))
    );
    h.receive(r#"[null,"0123456789ab-1","history:1","n",{"n":1}]"#);
    h.receive(r#"[null,"0123456789ab-2","history:1","n",{"n":2}]"#);
    let next = events.next().now_or_never().flatten().expect("an event");
    assert_eq!(
        next.expect("not lagged").payload,
        json(r#"{"n":2}"#),
        "1 was had"
    );
    assert!(events.next().now_or_never().is_none());
}

#[test]
fn a_forbidden_close_stops_reconnecting_and_is_reported() {
    let h = Harness::new();
    let mut events = h.socket.events();
    h.open();
    h.driver.handle_close(Some(4003));
    let mut seen = Vec::new();
    while let Some(Some(Ok(event))) = events.next().now_or_never() {
        seen.push(event);
    }
    assert!(
        seen.iter()
            .any(|e| matches!(e, SocketEvent::Error(SocketError::Refused { code: 4003 }))),
        "{seen:?}"
    );
    assert_eq!(
        h.driver.take_work().timeout,
        None,
        "no reconnect is scheduled"
    );
}
