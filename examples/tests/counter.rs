//! The counter app end to end, as its examples run it: the typed server channel with presence and
//! the HTTP API, and native Rust clients with the shared schema's types, on a real socket.

use std::time::Duration;

use alight_client::native;
use alight_client::rust_api::{ClientSocket, PresenceView, TypedClientChannel, TypedEvents};
use alight_protocol::presence::PresenceEvent;
use alight_server::axum::body::{Body, to_bytes};
use alight_server::axum::http::{Request, StatusCode};
use alight_server::{Alight, PublishError, axum};
use counter_schema::{CounterIn, CounterOut, CounterSchema, JoinCounter, Total};
use futures_util::StreamExt;
use tokio::sync::oneshot;
use tower_service::Service;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const KEY: &str = "test-key";
/// A guard against a hang, not a synchronisation: every wait below is for an event.
const WAIT: Duration = Duration::from_secs(10);

struct Server {
    alight: Alight,
    router: axum::Router,
    url: String,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn start() -> Result<Server, std::io::Error> {
    let (alight, router) = alight_examples::app(KEY);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}/socket", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = alight.clone();
    let app = router.clone();
    tokio::spawn(async move {
        let _ = serving
            .serve(listener, app, async {
                let _ = stopped.await;
            })
            .await;
    });
    Ok(Server {
        alight,
        router,
        url,
        stop: Some(stop),
    })
}

struct Member {
    _socket: ClientSocket,
    counter: TypedClientChannel<CounterSchema>,
    presence: PresenceView,
    events: TypedEvents<CounterSchema>,
}

async fn member(
    server: &Server,
    name: &str,
) -> Result<(Member, Total), Box<dyn std::error::Error + Send + Sync>> {
    let socket = native::Builder::new(server.url.clone()).build();
    socket.connect();
    let counter = socket.typed_channel::<CounterSchema>("counter:lobby")?;
    let presence = counter.presence();
    let events = counter.events();
    let total =
        tokio::time::timeout(WAIT, counter.join(&JoinCounter { name: name.into() })).await??;
    let member = Member {
        _socket: socket,
        counter,
        presence,
        events,
    };
    Ok((member, total))
}

/// Reads the presence view until a sync shows exactly `keys`.
async fn presence_shows(presence: &mut PresenceView, keys: &[&str]) -> TestResult {
    loop {
        let event = tokio::time::timeout(WAIT, presence.next())
            .await?
            .ok_or("the presence view ended")??;
        if event == PresenceEvent::Sync && presence.keys() == keys {
            return Ok(());
        }
    }
}

async fn next_event(
    events: &mut TypedEvents<CounterSchema>,
) -> Result<CounterOut, Box<dyn std::error::Error + Send + Sync>> {
    let event = tokio::time::timeout(WAIT, events.next())
        .await?
        .ok_or("the event stream ended")??;
    Ok(event)
}

async fn api_broadcast(
    server: &Server,
    body: &str,
) -> Result<(StatusCode, String), Box<dyn std::error::Error + Send + Sync>> {
    let request = Request::post("/api/broadcast")
        .header("authorization", format!("Bearer {KEY}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))?;
    let mut router = server.router.clone();
    let response = router.call(request).await?;
    let status = response.status();
    let body = to_bytes(response.into_body(), 64 * 1024).await?;
    Ok((status, String::from_utf8(body.to_vec())?))
}

#[tokio::test]
async fn typed_pushes_broadcasts_and_presence_between_two_members() -> TestResult {
    let server = start().await?;
    let (mut ada, total) = member(&server, "ada").await?;
    assert_eq!(total, Total { value: 0 });
    presence_shows(&mut ada.presence, &["ada"]).await?;
    let (mut bob, _) = member(&server, "bob").await?;
    presence_shows(&mut ada.presence, &["ada", "bob"]).await?;
    presence_shows(&mut bob.presence, &["ada", "bob"]).await?;

    for n in 1..=100 {
        let total = bob.counter.push(&CounterIn::Add { by: 1 }).await?;
        assert_eq!(total, Total { value: n });
    }
    // Ada's typed stream holds exactly the broadcasts, in order: the presence_diff of Bob's
    // arrival went to her presence view, not into her events as a schema error.
    for n in 1..=100 {
        let expected = CounterOut::Changed {
            value: n,
            by: "bob".into(),
        };
        assert_eq!(next_event(&mut ada.events).await?, expected);
    }

    bob.counter.leave().await?;
    presence_shows(&mut ada.presence, &["ada"]).await?;
    Ok(())
}

#[tokio::test]
async fn the_api_checks_broadcasts_against_the_schema() -> TestResult {
    let server = start().await?;
    let (mut ada, _) = member(&server, "ada").await?;

    let refused = [
        // A payload of the wrong shape: the field and the type are named.
        (
            r#"{"topic":"counter:lobby","event":"changed","payload":{"value":"seven","by":"api"}}"#,
            "field `value`: invalid type: string \"seven\", expected u64",
        ),
        (
            r#"{"topic":"counter:lobby","event":"changed","payload":{"value":7}}"#,
            "missing field `by`",
        ),
        // An event the schema does not declare, and a client → server event.
        (
            r#"{"topic":"counter:lobby","event":"dance","payload":{}}"#,
            "unknown event `dance`",
        ),
        (
            r#"{"topic":"counter:lobby","event":"add","payload":{"by":1}}"#,
            "unknown event `add`",
        ),
    ];
    for (body, reason) in refused {
        let (status, answer) = api_broadcast(&server, body).await?;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let answer: serde_json::Value = serde_json::from_str(&answer)?;
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(reason), "{body}: {error}");
    }

    let accepted =
        r#"{"topic":"counter:lobby","event":"changed","payload":{"value":7,"by":"api"}}"#;
    let (status, _) = api_broadcast(&server, accepted).await?;
    assert_eq!(status, StatusCode::ACCEPTED);
    // Topics without a typed channel take any event, as before.
    let untyped = r#"{"topic":"elsewhere","event":"anything","payload":[1]}"#;
    assert_eq!(
        api_broadcast(&server, untyped).await?.0,
        StatusCode::ACCEPTED
    );

    // The typed publish call, from the server's own code.
    let published = CounterOut::Changed {
        value: 8,
        by: "server".into(),
    };
    server
        .alight
        .publish::<CounterSchema>("counter:lobby", &published)?;
    assert!(matches!(
        server.alight.publish::<CounterSchema>("room:1", &published),
        Err(PublishError::WrongTopic { .. })
    ));

    // Only what was accepted arrived, in order, and decodes as the schema's events.
    let api = CounterOut::Changed {
        value: 7,
        by: "api".into(),
    };
    assert_eq!(next_event(&mut ada.events).await?, api);
    assert_eq!(next_event(&mut ada.events).await?, published);
    Ok(())
}

#[tokio::test]
async fn a_push_the_schema_refuses_says_why() -> TestResult {
    let server = start().await?;
    let (ada, _) = member(&server, "ada").await?;
    // A client speaking another version of the schema: the untyped channel shows the reply.
    let error = ada
        .counter
        .untyped()
        .push(
            "add",
            alight_protocol::Payload::from_json_str(r#"{"by":-1}"#)?,
        )
        .await
        .expect_err("a negative number is not a u64");
    let message = error.to_string();
    assert!(message.contains("invalid payload"), "{message}");
    assert!(
        message.contains("invalid value: integer `-1`, expected u64"),
        "{message}"
    );
    Ok(())
}
