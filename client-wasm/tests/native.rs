//! The Rust API on its native driver against the fixture server (`alight_tests::fixture`) over
//! loopback: joins, pushes, broadcasts, reconnects, crashes, token refresh and a typed schema.
//!
//! Every wait is on an event (a reply, a stream item) under a [`WAIT`] deadline, so a broken
//! behaviour fails the test instead of hanging it; nothing sleeps. Timeouts under test are
//! configured short (a few hundred milliseconds) and run on the real clock: a paused tokio clock
//! would auto-advance while the runtime waits on loopback I/O.
#![cfg(feature = "native")]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alight_client::native::{Builder, ConnectParams, TransportError};
use alight_client::rust_api::{
    ClientJoinError, ClientSocket, EventError, Message, PushError, SocketError, SocketEvent,
    StateChange, Subscription,
};
use alight_protocol::Payload;
use alight_protocol::client::{Backoff, ChannelState, ClientConfig, StateCause};
use alight_protocol::schema::{Schema, SchemaError, SerdeEvents};
use alight_server::Config;
use alight_tests::fixture::{self, Server};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

/// How long any single expected event may take.
const WAIT: Duration = Duration::from_secs(10);

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Awaits `future`, failing the test after [`WAIT`].
async fn within<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(WAIT, future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// The next item of `stream` that `pick` accepts, skipping the others.
async fn next_matching<T, R>(
    what: &str,
    stream: &mut Subscription<T>,
    mut pick: impl FnMut(&T) -> Option<R>,
) -> R {
    within(what, async {
        loop {
            match stream.next().await {
                Some(Ok(item)) => {
                    if let Some(found) = pick(&item) {
                        return found;
                    }
                }
                Some(Err(lagged)) => panic!("{what}: the stream lagged: {lagged}"),
                None => panic!("{what}: the stream ended"),
            }
        }
    })
    .await
}

async fn server() -> Server {
    match fixture::start(Config::default()).await {
        Ok(server) => server,
        Err(error) => panic!("the fixture server did not start: {error}"),
    }
}

fn endpoint(addr: SocketAddr) -> String {
    format!("ws://{addr}/socket")
}

/// Quick rejoins, no heartbeats (tests are shorter than an interval anyway).
fn config() -> ClientConfig {
    ClientConfig::default()
        .heartbeat_interval(None)
        .rejoin_after(Backoff::steps(
            [Duration::from_millis(50)],
            Duration::from_millis(100),
        ))
}

fn connected(addr: SocketAddr) -> ClientSocket {
    let socket = Builder::new(endpoint(addr)).config(config()).build();
    socket.connect();
    socket
}

fn json(value: serde_json::Value) -> Payload {
    Payload::json(&value).unwrap_or_else(|_| Payload::empty())
}

#[tokio::test]
async fn joins_succeed_or_fail_with_the_servers_reason() -> TestResult {
    let server = server().await;
    let socket = connected(server.addr);

    let room = socket.channel("room:join", Payload::empty());
    let reply = within("the join", room.join()).await?;
    assert_eq!(reply.as_json(), Some(r#"{"user":null}"#));
    assert_eq!(room.state(), ChannelState::Joined);

    let refused = socket.channel("room:refused", json(serde_json::json!({"refuse": "nope"})));
    match within("the refused join", refused.join()).await {
        Err(ClientJoinError::Refused { status, response }) => {
            assert_eq!(status, "error");
            assert_eq!(response.as_json(), Some(r#"{"reason":"nope"}"#));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A refused join stops there rather than rejoining forever.
    assert_eq!(refused.state(), ChannelState::Closed);

    let private = socket.channel("private:1", Payload::empty());
    match within("the unauthorized join", private.join()).await {
        Err(ClientJoinError::Refused { response, .. }) => {
            assert_eq!(response.as_json(), Some(r#"{"reason":"unauthorized"}"#));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn pushes_resolve_with_the_reply_an_error_or_a_timeout() -> TestResult {
    let server = server().await;
    let socket = connected(server.addr);
    let room = socket.channel("room:push", Payload::empty());
    within("the join", room.join()).await?;

    let echoed = within("ping", room.push("ping", json(serde_json::json!({"n": 1})))).await?;
    assert_eq!(echoed.as_json(), Some(r#"{"n":1}"#));

    match within("fail", room.push("fail", Payload::empty())).await {
        Err(PushError::Reply { status, response }) => {
            assert_eq!(status, "error");
            assert_eq!(response.as_json(), Some(r#"{"reason":"failed"}"#));
        }
        other => panic!("expected an error reply, got {other:?}"),
    }

    let silent = room.push_with_timeout("noreply", Payload::empty(), Duration::from_millis(200));
    assert!(matches!(
        within("noreply", silent).await,
        Err(PushError::Timeout)
    ));

    // Pushes are sent in call order, whatever order their futures are awaited in.
    let first = room.push("count", Payload::empty());
    let second = room.push("count", Payload::empty());
    assert_eq!(
        within("count", second).await?.as_json(),
        Some(r#"{"count":2}"#)
    );
    assert_eq!(
        within("count", first).await?.as_json(),
        Some(r#"{"count":1}"#)
    );
    Ok(())
}

#[tokio::test]
async fn event_streams_receive_broadcasts_and_pushes() -> TestResult {
    let server = server().await;
    let alice = connected(server.addr);
    let bob = connected(server.addr);
    let alice_room = alice.channel("room:events", Payload::empty());
    let bob_room = bob.channel("room:events", Payload::empty());
    let mut alice_events = alice_room.events();
    let mut bob_events = bob_room.events();
    within("alice's join", alice_room.join()).await?;
    within("bob's join", bob_room.join()).await?;

    within(
        "the shout",
        bob_room.push("shout", json(serde_json::json!({"body": "hi"}))),
    )
    .await?;
    let expected = Message {
        event: "shout".to_owned(),
        payload: json(serde_json::json!({"body": "hi"})),
        position: None,
    };
    for events in [&mut alice_events, &mut bob_events] {
        let got = next_matching("the broadcast", events, |m| Some(m.clone())).await;
        assert_eq!(got, expected);
    }

    // A push to one socket reaches only its own stream.
    within(
        "push_me",
        alice_room.push("push_me", json(serde_json::json!({"x": 1}))),
    )
    .await?;
    let pushed = next_matching("the push", &mut alice_events, |m| Some(m.clone())).await;
    assert_eq!(pushed.event, "pushed");
    assert!(bob_events.is_empty());
    Ok(())
}

#[tokio::test]
async fn reconnects_after_a_restart_rejoins_and_delivers_a_push_made_offline() -> TestResult {
    let server = server().await;
    let addr = server.addr;
    let socket = connected(addr);
    let mut socket_events = socket.events();
    let room = socket.channel("room:restart", Payload::empty());
    let mut states = room.states();
    within("the join", room.join()).await?;

    server.shutdown().await?;
    next_matching("the close", &mut socket_events, |e| {
        matches!(e, SocketEvent::Close { .. }).then_some(())
    })
    .await;
    next_matching("the errored channel", &mut states, |c| {
        (c.state == ChannelState::Errored && c.cause == StateCause::ConnectionLost).then_some(())
    })
    .await;

    // Offline: the push waits for the channel to rejoin.
    let offline = room.push("ping", json(serde_json::json!({"offline": true})));

    let restarted = fixture::start_on(addr, Config::default().shutdown_timeout(WAIT)).await?;
    let reply = within("the push made offline", offline).await?;
    assert_eq!(reply.as_json(), Some(r#"{"offline":true}"#));
    next_matching("the reopened connection", &mut socket_events, |e| {
        matches!(e, SocketEvent::Open).then_some(())
    })
    .await;
    assert_eq!(room.state(), ChannelState::Joined);
    drop(restarted);
    Ok(())
}

#[tokio::test]
async fn disconnect_then_connect_rejoins() -> TestResult {
    let server = server().await;
    let socket = connected(server.addr);
    let mut socket_events = socket.events();
    let room = socket.channel("room:disconnect", Payload::empty());
    let mut states = room.states();
    within("the join", room.join()).await?;

    socket.disconnect();
    let code = next_matching("the close", &mut socket_events, |e| match e {
        SocketEvent::Close { code } => Some(*code),
        _ => None,
    })
    .await;
    assert_eq!(code, Some(1000));
    assert_eq!(room.state(), ChannelState::Errored);
    assert!(matches!(
        within(
            "a push while disconnected",
            room.push_with_timeout("ping", Payload::empty(), Duration::from_millis(100))
        )
        .await,
        Err(PushError::Timeout)
    ));

    socket.connect();
    next_matching("the rejoin", &mut states, |c| {
        (c.state == ChannelState::Joined && c.cause == StateCause::JoinOk).then_some(())
    })
    .await;
    let count = within("count", room.push("count", Payload::empty())).await?;
    assert_eq!(count.as_json(), Some(r#"{"count":1}"#));
    Ok(())
}

#[tokio::test]
async fn a_crashed_channel_errors_and_rejoins_by_itself() -> TestResult {
    let server = server().await;
    let socket = connected(server.addr);
    let room = socket.channel("room:crash", Payload::empty());
    let mut states = room.states();
    within("the join", room.join()).await?;
    within("count", room.push("count", Payload::empty())).await?;

    // The channel process panics: no reply, a phx_error instead.
    let crash = room.push_with_timeout("crash", Payload::empty(), Duration::from_millis(300));
    let crashed: StateChange = next_matching("phx_error", &mut states, |c| {
        (c.state == ChannelState::Errored).then(|| c.clone())
    })
    .await;
    assert!(
        matches!(&crashed.cause, StateCause::ServerError(payload)
            if payload.as_json() == Some(r#"{"reason":"channel_crash"}"#)),
        "{crashed:?}"
    );
    next_matching("the rejoin", &mut states, |c| {
        (c.state == ChannelState::Joined).then_some(())
    })
    .await;
    assert!(matches!(
        within("crash", crash).await,
        Err(PushError::Timeout)
    ));

    // A new channel process: its counter starts again.
    let count = within("count", room.push("count", Payload::empty())).await?;
    assert_eq!(count.as_json(), Some(r#"{"count":1}"#));
    Ok(())
}

#[tokio::test]
async fn the_token_provider_is_evaluated_on_every_connect() -> TestResult {
    // The refusal as an HTTP 403 (a transport error to the client); the default, a socket closed
    // with 4001, is the client's refusal handling.
    let server = match fixture::start(Config::default().close_on_refusal(false)).await {
        Ok(server) => server,
        Err(error) => panic!("the fixture server did not start: {error}"),
    };
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let socket = Builder::new(endpoint(server.addr))
        .config(config())
        .connect_params(move || {
            // The first attempt carries a token the server refuses; later ones a valid one.
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                let token = if n == 0 { "bad-token" } else { "valid-token" };
                Ok(ConnectParams::new()
                    .param("attempt", n.to_string())
                    .auth_token(token))
            }
        })
        .build();
    let mut socket_events = socket.events();
    let room = socket.channel("private:alice", Payload::empty());
    // Joined before connecting: the join waits for the connection.
    let joined = room.join();
    socket.connect();

    let refused = next_matching("the refused connect", &mut socket_events, |e| match e {
        SocketEvent::Error(SocketError::Transport(cause)) => Some(cause.to_string()),
        _ => None,
    })
    .await;
    assert_eq!(refused, "could not open the WebSocket");
    let reply = within("the join", joined).await?;
    assert_eq!(reply.as_json(), Some(r#"{"user":"alice"}"#));
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // The server drops the user's sockets: the client reconnects with a freshly provided token
    // and rejoins.
    let mut states = room.states();
    server.alight.disconnect("user_socket:alice");
    next_matching("the rejoin", &mut states, |c| {
        (c.state == ChannelState::Joined && c.cause == StateCause::JoinOk).then_some(())
    })
    .await;
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    Ok(())
}

#[tokio::test]
async fn a_write_queue_past_its_bound_drops_the_connection_and_reconnects() -> TestResult {
    let server = server().await;
    let socket = Builder::new(endpoint(server.addr))
        .config(config())
        .max_queued_frames(2)
        .build();
    socket.connect();
    let mut socket_events = socket.events();
    let room = socket.channel("room:queue", Payload::empty());
    within("the join", room.join()).await?;

    // Five pushes in one go (the driver task cannot run in between on this single-threaded
    // runtime): more than the write queue may hold.
    let pushes: Vec<_> = (0..5)
        .map(|_| room.push_with_timeout("ping", Payload::empty(), Duration::from_millis(300)))
        .collect();
    let queued = next_matching("the backpressure error", &mut socket_events, |e| match e {
        SocketEvent::Error(SocketError::Transport(cause)) => {
            match cause.downcast_ref::<TransportError>() {
                Some(TransportError::Backpressure { queued }) => Some(*queued),
                _ => None,
            }
        }
        _ => None,
    })
    .await;
    assert_eq!(queued, 5);
    for push in pushes {
        assert!(matches!(
            within("a dropped push", push).await,
            Err(PushError::Timeout)
        ));
    }
    // Reconnected and rejoined.
    let count = within("count", room.push("count", Payload::empty())).await?;
    assert_eq!(count.as_json(), Some(r#"{"count":1}"#));
    Ok(())
}

/// The fixture's `room:*` as a schema.
struct Room;

#[derive(Debug, Default, Serialize, Deserialize)]
struct JoinRoom {
    #[serde(skip_serializing_if = "Option::is_none")]
    refuse: Option<String>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Joined {
    user: Option<String>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", content = "payload", rename_all = "snake_case")]
enum RoomIn {
    Shout { body: String },
    Count,
}
impl SerdeEvents for RoomIn {}

/// The replies of `room:*`: `{}`, or `{"count": n}` for `count`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Ack {
    #[serde(default)]
    count: Option<u64>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", content = "payload", rename_all = "snake_case")]
enum RoomOut {
    Shout { body: String },
}
impl SerdeEvents for RoomOut {}

impl Schema for Room {
    const TOPIC: &'static str = "room:*";
    type JoinParams = JoinRoom;
    type JoinReply = Joined;
    type In = RoomIn;
    type Reply = Ack;
    type Out = RoomOut;
}

#[tokio::test]
async fn a_typed_channel_speaks_its_schema() -> TestResult {
    let server = server().await;
    let socket = connected(server.addr);
    let room = socket.typed_channel::<Room>("room:typed")?;
    let mut events = room.events();

    let refused = room.join(&JoinRoom {
        refuse: Some("full".to_owned()),
    });
    assert!(matches!(
        within("the refused join", refused).await,
        Err(ClientJoinError::Refused { .. })
    ));
    let joined = within("the join", room.join(&JoinRoom::default())).await?;
    assert_eq!(joined, Joined { user: None });

    let ack = within("count", room.push(&RoomIn::Count)).await?;
    assert_eq!(ack, Ack { count: Some(1) });
    let shout = RoomIn::Shout {
        body: "typed".to_owned(),
    };
    assert_eq!(
        within("shout", room.push(&shout)).await?,
        Ack { count: None }
    );
    let received = within("the typed broadcast", events.next()).await;
    assert!(
        matches!(&received, Some(Ok(RoomOut::Shout { body })) if body == "typed"),
        "{received:?}"
    );

    // An event outside the schema is reported, and the stream goes on.
    within("push_me", room.untyped().push("push_me", Payload::empty())).await?;
    let unknown = within("the unknown event", events.next()).await;
    assert!(
        matches!(
            &unknown,
            Some(Err(EventError::Schema(SchemaError::UnknownEvent { event }))) if event == "pushed"
        ),
        "{unknown:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_history_channel_resumes_after_the_server_drops_the_socket() -> TestResult {
    let server = server().await;
    let socket = Builder::new(endpoint(server.addr))
        .config(config())
        .auth_token("valid-token")
        .build();
    socket.connect();
    let room = socket.channel("history:native", Payload::empty());
    let mut events = room.events();
    let mut recoveries = room.recoveries();
    let joined = within("the join", room.join()).await?;
    let epoch = joined
        .deserialize::<serde_json::Value>()?
        .get("position")
        .and_then(serde_json::Value::as_str)
        .and_then(|p| p.split_once('-'))
        .map(|(epoch, _)| epoch.to_owned())
        .ok_or("the join reply carries a position")?;
    let publish = |n: u64| {
        server
            .alight
            .broadcast("history:native", "n", json(serde_json::json!({"n": n})))
    };
    let mut got = Vec::new();
    let mut next = async |got: &mut Vec<(Payload, Option<String>)>| {
        let message =
            next_matching("a broadcast", &mut events, |m: &Message| Some(m.clone())).await;
        got.push((message.payload, message.position));
    };
    publish(1);
    publish(2);
    next(&mut got).await;
    next(&mut got).await;

    // The server drops the socket; what is published meanwhile is replayed on the rejoin.
    server.alight.disconnect("user_socket:alice");
    publish(3);
    publish(4);
    let recovery = next_matching("the recovery", &mut recoveries, |r| Some(*r)).await;
    assert!(recovery.recovered);
    next(&mut got).await;
    next(&mut got).await;
    let expected: Vec<(Payload, Option<String>)> = (1..=4)
        .map(|n| {
            (
                json(serde_json::json!({"n": n})),
                Some(format!("{epoch}-{n}")),
            )
        })
        .collect();
    assert_eq!(
        got, expected,
        "each broadcast once, in order, with its position"
    );
    assert_eq!(room.position(), Some(format!("{epoch}-4")));
    Ok(())
}
