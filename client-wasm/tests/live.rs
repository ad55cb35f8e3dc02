//! `rust_api::LiveCollection` on the native driver against a shape server over loopback
//! (`alight_tests::shapes`: `items`, each user seeing the rows they own): the snapshot and the
//! changes committed by another connection, a snapshot of many chunks, a resume after the
//! connection drops (only the missed changes), a shape that cannot be resumed (a fresh snapshot)
//! and a refused join.
//!
//! Connections are cut by a TCP proxy between client and server, as a network drop would. Every
//! wait is on an event under a [`WAIT`] deadline; nothing sleeps.
#![cfg(feature = "native")]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alight_client::native::Builder;
use alight_client::rust_api::{
    ClientSocket, LiveCollection, LiveError, LiveEvent, Operation, ShapeRequest, SocketEvent,
};
use alight_tests::shapes::ShapeServer;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// How long any single expected event may take.
const WAIT: Duration = Duration::from_secs(10);

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// A row of `items` as the shape sends it. The channel's values are Electric's text unless the
/// server sends the column types, so the test reads the columns whose type it asserts loosely.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Item {
    id: serde_json::Value,
    owner: String,
    title: String,
    done: serde_json::Value,
}

impl Item {
    fn is_done(&self) -> bool {
        self.done == serde_json::json!(true) || self.done == serde_json::json!("true")
    }
}

async fn server() -> ShapeServer {
    match ShapeServer::start().await {
        Ok(server) => server,
        Err(error) => panic!("the shape server did not start: {error}"),
    }
}

fn connected(url: &str, user: Option<&str>) -> ClientSocket {
    let params: Vec<(&str, &str)> = user.map(|user| ("token", user)).into_iter().collect();
    let socket = Builder::new(url).params(params).build();
    socket.connect();
    socket
}

/// The collection's next event, failing the test after [`WAIT`] or if the stream ended.
async fn next(items: &mut LiveCollection<Item>, what: &str) -> Result<LiveEvent<Item>, LiveError> {
    match tokio::time::timeout(WAIT, items.next()).await {
        Ok(Some(event)) => event,
        Ok(None) => panic!("{what}: the collection ended"),
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// The next `Changes` event, skipping empty recovered ones.
async fn changes(
    items: &mut LiveCollection<Item>,
    what: &str,
) -> Result<(Vec<(Operation, String)>, bool), LiveError> {
    loop {
        if let LiveEvent::Changes { changes, recovered } = next(items, what).await? {
            if changes.is_empty() {
                continue;
            }
            let seen = changes.into_iter().map(|c| (c.operation, c.value.title));
            return Ok((seen.collect(), recovered));
        }
    }
}

fn titles(items: &LiveCollection<Item>) -> Vec<String> {
    let mut titles: Vec<String> = items.rows().values().map(|i| i.title.clone()).collect();
    titles.sort();
    titles
}

/// A TCP proxy to `upstream`; [`Proxy::cut`] drops every connection through it and refuses new
/// ones until [`Proxy::restore`].
struct Proxy {
    url: String,
    open: Arc<Mutex<Vec<AbortHandle>>>,
    down: Arc<AtomicBool>,
    accept: AbortHandle,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let url = format!("ws://{}/socket", listener.local_addr()?);
        let open = Arc::new(Mutex::new(Vec::new()));
        let down = Arc::new(AtomicBool::new(false));
        let (tasks, refusing) = (open.clone(), down.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if refusing.load(Ordering::SeqCst) {
                    continue;
                }
                let Ok(mut server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let relay = tokio::spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
                tasks
                    .lock()
                    .expect("no test thread panics holding the lock")
                    .push(relay.abort_handle());
            }
        })
        .abort_handle();
        Ok(Proxy {
            url,
            open,
            down,
            accept,
        })
    }

    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for relay in self
            .open
            .lock()
            .expect("no test thread panics holding the lock")
            .drain(..)
        {
            relay.abort();
        }
    }
}

impl Proxy {
    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// Waits until `socket` reports its connection closed.
async fn closed(socket: &mut alight_client::rust_api::Subscription<SocketEvent>) {
    let wait = async {
        while let Some(event) = socket.next().await {
            if matches!(event, Ok(SocketEvent::Close { .. })) {
                return;
            }
        }
        panic!("the socket's events ended");
    };
    if tokio::time::timeout(WAIT, wait).await.is_err() {
        panic!("timed out waiting for the connection to close");
    }
}

#[tokio::test]
async fn the_snapshot_then_inserts_updates_and_deletes_as_they_commit() -> TestResult {
    let server = server().await;
    server
        .exec(
            "INSERT INTO items (owner, title) VALUES ('alice', 'one'), ('alice', 'two'), \
             ('bob', 'his');",
        )
        .await?;
    let socket = connected(&server.ws_url(), Some("alice"));
    let request = ShapeRequest::new()
        .filter("owner = $1 OR owner = $2")
        .params(["bob", "alice"]);
    let mut items = LiveCollection::<Item>::new(&socket, "items", request);

    assert_eq!(next(&mut items, "the snapshot").await?, LiveEvent::Snapshot);
    assert_eq!(titles(&items), ["one", "two"]);
    let (key, one) = items
        .rows()
        .iter()
        .find(|(_, item)| item.title == "one")
        .map(|(k, v)| (k.clone(), v.clone()))
        .expect("the snapshot holds `one`");
    assert!(key.starts_with("\"main\".\"items\"/"), "{key}");

    server
        .exec("INSERT INTO items (owner, title) VALUES ('bob', 'not hers'), ('alice', 'three');")
        .await?;
    let (seen, recovered) = changes(&mut items, "the insert").await?;
    assert_eq!(seen, [(Operation::Insert, "three".to_owned())]);
    assert!(!recovered);

    server
        .exec("UPDATE items SET done = 1 WHERE title = 'one';")
        .await?;
    let (seen, _) = changes(&mut items, "the update").await?;
    assert_eq!(seen, [(Operation::Update, "one".to_owned())]);
    let updated = items.get(&key).expect("`one` is still held");
    assert!(updated.is_done());
    assert_eq!(
        (&updated.id, &updated.owner, &updated.title),
        (&one.id, &one.owner, &one.title),
        "the update's columns merge into the whole row"
    );

    server
        .exec("DELETE FROM items WHERE title = 'two';")
        .await?;
    let (seen, _) = changes(&mut items, "the delete").await?;
    assert_eq!(seen, [(Operation::Delete, "two".to_owned())]);
    assert_eq!(titles(&items), ["one", "three"]);
    assert!(items.rows().values().all(|item| item.owner == "alice"));
    Ok(())
}

#[tokio::test]
async fn a_snapshot_of_many_chunks_arrives_whole() -> TestResult {
    let server = server().await;
    server
        .exec(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1200)
             INSERT INTO items (owner, title) SELECT 'alice', 'row ' || i FROM n;",
        )
        .await?;
    let socket = connected(&server.ws_url(), Some("alice"));
    let mut items = LiveCollection::<Item>::new(&socket, "items", ShapeRequest::new());
    assert_eq!(next(&mut items, "the snapshot").await?, LiveEvent::Snapshot);
    assert_eq!(items.rows().len(), 1200);
    server
        .exec("INSERT INTO items (owner, title) VALUES ('alice', 'row 1201');")
        .await?;
    let (seen, _) = changes(&mut items, "the insert after the snapshot").await?;
    assert_eq!(seen, [(Operation::Insert, "row 1201".to_owned())]);
    assert_eq!(items.rows().len(), 1201);
    Ok(())
}

#[tokio::test]
async fn after_a_dropped_connection_the_rejoin_brings_only_the_missed_changes() -> TestResult {
    let server = server().await;
    server
        .exec("INSERT INTO items (owner, title) VALUES ('alice', 'before');")
        .await?;
    let proxy = Proxy::start(server.addr).await?;
    let socket = connected(&proxy.url, Some("alice"));
    let mut events = socket.events();
    let mut items = LiveCollection::<Item>::new(&socket, "items", ShapeRequest::new());
    assert_eq!(next(&mut items, "the snapshot").await?, LiveEvent::Snapshot);

    proxy.cut();
    closed(&mut events).await;
    server
        .exec("INSERT INTO items (owner, title) VALUES ('alice', 'while away');")
        .await?;
    proxy.restore();
    // The resuming rejoin's reply carries it, or the broadcast right after the reply does, if
    // the server's capture had not read the write yet.
    let mut recovered_seen = false;
    let missed = loop {
        match next(&mut items, "the missed insert").await? {
            LiveEvent::Snapshot => panic!("a resumed rejoin brings changes, not a snapshot"),
            LiveEvent::Changes { changes, recovered } => {
                recovered_seen |= recovered;
                if !changes.is_empty() {
                    break changes;
                }
            }
        }
    };
    assert!(recovered_seen, "the rejoin's reply says it recovered");
    let missed: Vec<_> = missed
        .into_iter()
        .map(|c| (c.operation, c.value.title))
        .collect();
    assert_eq!(missed, [(Operation::Insert, "while away".to_owned())]);
    assert_eq!(titles(&items), ["before", "while away"]);

    server
        .exec("INSERT INTO items (owner, title) VALUES ('alice', 'after');")
        .await?;
    let (seen, _) = changes(&mut items, "the later insert").await?;
    assert_eq!(seen, [(Operation::Insert, "after".to_owned())]);
    Ok(())
}

#[tokio::test]
async fn a_shape_rotated_while_away_is_fetched_again() -> TestResult {
    let server = server().await;
    server
        .exec("INSERT INTO items (owner, title) VALUES ('alice', 'kept'), ('alice', 'gone');")
        .await?;
    let proxy = Proxy::start(server.addr).await?;
    let socket = connected(&proxy.url, Some("alice"));
    let mut events = socket.events();
    let mut items = LiveCollection::<Item>::new(&socket, "items", ShapeRequest::new());
    assert_eq!(next(&mut items, "the snapshot").await?, LiveEvent::Snapshot);

    proxy.cut();
    closed(&mut events).await;
    server.rotate();
    server
        .exec("DELETE FROM items WHERE title = 'gone'; INSERT INTO items (owner, title) VALUES ('alice', 'new');")
        .await?;
    proxy.restore();
    loop {
        if next(&mut items, "the fresh snapshot").await? == LiveEvent::Snapshot {
            break;
        }
    }
    assert_eq!(titles(&items), ["kept", "new"]);
    Ok(())
}

#[tokio::test]
async fn a_refused_shape_is_an_error_and_ends_the_stream() -> TestResult {
    let server = server().await;
    let anonymous = connected(&server.ws_url(), None);
    let mut items = LiveCollection::<Item>::new(&anonymous, "items", ShapeRequest::new());
    match next(&mut items, "the refusal").await {
        Err(LiveError::Refused { reason, .. }) => assert_eq!(reason, "unauthorized"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(items.next().await.is_none());

    let alice = connected(&server.ws_url(), Some("alice"));
    let request = ShapeRequest::new().filter("owner = 'bob' OR 1=1");
    let mut bad = LiveCollection::<Item>::new(&alice, "items", request);
    match next(&mut bad, "the refusal").await {
        Err(LiveError::Refused { reason, message }) => {
            assert_eq!(reason, "bad_request");
            assert!(!message.is_empty());
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn a_shape_rotated_while_connected_is_fetched_again() -> TestResult {
    let server = server().await;
    server
        .exec("INSERT INTO items (owner, title) VALUES ('alice', 'x');")
        .await?;
    let socket = connected(&server.ws_url(), Some("alice"));
    let mut items = LiveCollection::<Item>::new(&socket, "items", ShapeRequest::new());
    assert_eq!(next(&mut items, "the snapshot").await?, LiveEvent::Snapshot);

    server.rotate();
    assert_eq!(
        next(&mut items, "the refetched snapshot").await?,
        LiveEvent::Snapshot
    );
    server
        .exec("INSERT INTO items (owner, title) VALUES ('alice', 'y');")
        .await?;
    let (seen, _) = changes(&mut items, "a change after the refetch").await?;
    assert_eq!(seen, [(Operation::Insert, "y".to_owned())]);
    assert_eq!(titles(&items), ["x", "y"]);
    Ok(())
}
