//! Many long-polls of one shape: a commit wakes them all, one read is built for all of them, and
//! each gets the change; a read is never served once the feed has moved past it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alight_sync::{Config, Denied, Filter, Identity, ShapeRequest, SqlValue, SyncDb, SyncTable};
use rusqlite::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const SCHEMA: &str =
    "CREATE TABLE items (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, title TEXT NOT NULL);";

fn open(name: &str) -> Result<(SyncDb, Connection, PathBuf), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("alight-sync-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("test.db");
    let writer = Connection::open(&path)?;
    writer.execute_batch(SCHEMA)?;
    writer.busy_timeout(Duration::from_secs(5))?;
    let items = SyncTable::new("items").authorize(|who: Option<&Identity>| {
        let who = who.ok_or(Denied::Unauthenticated)?;
        Ok(Filter::eq(
            "owner",
            SqlValue::Text(who.subject().to_owned()),
        ))
    });
    let db = SyncDb::open(&path, vec![items], Config::default())?;
    Ok((db, writer, dir))
}

/// Waits until the feed's head reaches `id` (fails after 5 s).
async fn feed_reaches(db: &SyncDb, id: i64) -> TestResult {
    let mut heads = db.feed().subscribe();
    tokio::time::timeout(Duration::from_secs(5), heads.wait_for(|head| *head >= id)).await??;
    Ok(())
}

fn items() -> ShapeRequest {
    ShapeRequest {
        table: "items".into(),
        ..ShapeRequest::default()
    }
}

#[tokio::test]
async fn reads_at_one_offset_are_shared_until_the_feed_moves() -> TestResult {
    let (db, writer, dir) = open("shared-read")?;
    let shape = db.shape(&items(), Some(&Identity::new("alice")))?;
    let start = db.feed().head();
    let empty = db
        .shared_read(&shape, start)
        .ok_or("the feed holds the start")?;
    assert!(!empty.has_messages && empty.up_to_date);
    let again = db.shared_read(&shape, start).ok_or("still held")?;
    assert!(Arc::ptr_eq(&empty, &again), "nothing moved: the same read");

    writer.execute(
        "INSERT INTO items (owner, title) VALUES ('alice', 'one')",
        [],
    )?;
    feed_reaches(&db, start + 1).await?;
    let read = db.shared_read(&shape, start).ok_or("the feed holds it")?;
    assert!(!Arc::ptr_eq(&empty, &read), "the head moved: read again");
    assert!(read.has_messages && read.up_to_date);
    assert!(std::str::from_utf8(&read.body)?.contains(r#""title":"one""#));
    assert_eq!(read.next, db.feed().head());
    // Every request at that offset now gets those very bytes.
    let shared = db.shared_read(&shape, start).ok_or("held")?;
    assert!(Arc::ptr_eq(&read, &shared));
    // Another offset is another read.
    let later = db.shared_read(&shape, read.next).ok_or("held")?;
    assert!(!later.has_messages);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// A raw `GET` of `path`; the status line and the body.
async fn get(addr: std::net::SocketAddr, path: String) -> Result<String, std::io::Error> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer alice\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response)
}

#[tokio::test]
async fn one_commit_answers_every_long_poll_of_a_shape() -> TestResult {
    let (db, writer, dir) = open("long-polls")?;
    let shape = db.shape(&items(), Some(&Identity::new("alice")))?;
    let app: axum::Router = alight_sync::http::router(db.clone(), |headers| {
        alight_sync::http::bearer(headers).map(Identity::new)
    });
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    const POLLS: usize = 20;
    let start = db.feed().head();
    let path = format!(
        "/v1/shape?table=items&offset={start}_0&handle={}&live=true",
        shape.handle
    );
    let polls: Vec<_> = (0..POLLS)
        .map(|_| tokio::spawn(get(addr, path.clone())))
        .collect();
    // Every poll is held on the shape before the commit (the polls and the server run on this
    // test's thread: yielding lets them get there).
    tokio::time::timeout(Duration::from_secs(5), async {
        while shape.subscribers() < POLLS {
            tokio::task::yield_now().await;
        }
    })
    .await?;
    writer.execute(
        "INSERT INTO items (owner, title) VALUES ('alice', 'ping')",
        [],
    )?;
    writer.execute(
        "INSERT INTO items (owner, title) VALUES ('bob', 'not alice')",
        [],
    )?;

    let mut bodies = Vec::new();
    for poll in polls {
        let response = tokio::time::timeout(Duration::from_secs(10), poll).await???;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        let (_, body) = response.split_once("\r\n\r\n").ok_or("a body")?;
        bodies.push(body.to_owned());
    }
    assert!(bodies[0].contains(r#""title":"ping""#), "{}", bodies[0]);
    assert!(!bodies[0].contains("not alice"), "{}", bodies[0]);
    // One read for the shape at that offset, so the same bytes for all (unless a poll woke after
    // the second commit moved the head: then it read again, and still saw alice's row only).
    for body in &bodies {
        assert!(body.contains(r#""title":"ping""#), "{body}");
        assert!(!body.contains("not alice"), "{body}");
    }
    server.abort();
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
