//! Change capture end to end: writes from other connections and from another process reach the
//! feed whole and in commit order, and a snapshot joins the feed without a gap or a duplicate.

use std::path::PathBuf;
use std::time::Duration;

use alight_sync::db::SnapshotPart;
use alight_sync::feed::{Feed, Op};
use alight_sync::{Config, Denied, Filter, Identity, ShapeRequest, SqlValue, SyncDb, SyncTable};
use rusqlite::Connection;
use serde_json::Value;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const SCHEMA: &str = "CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    owner TEXT NOT NULL,
    title TEXT NOT NULL,
    done INTEGER
);";

fn temp_db(name: &str) -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("alight-sync-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir.join("test.db"))
}

fn open(name: &str) -> Result<(SyncDb, Connection, PathBuf), Box<dyn std::error::Error>> {
    let path = temp_db(name)?;
    let writer = Connection::open(&path)?;
    writer.execute_batch(SCHEMA)?;
    let items = SyncTable::new("items").authorize(|who: Option<&Identity>| {
        let who = who.ok_or(Denied::Unauthenticated)?;
        Ok(Filter::eq(
            "owner",
            SqlValue::Text(who.subject().to_owned()),
        ))
    });
    let db = SyncDb::open(&path, vec![items], Config::default())?;
    writer.busy_timeout(Duration::from_secs(5))?;
    Ok((db, writer, path))
}

/// Waits until the feed's head reaches `id` (fails after 5 s).
async fn feed_reaches(feed: &Feed, id: i64) -> TestResult {
    let mut heads = feed.subscribe();
    tokio::time::timeout(Duration::from_secs(5), heads.wait_for(|head| *head >= id)).await??;
    Ok(())
}

fn request(where_: Option<&str>) -> ShapeRequest {
    ShapeRequest {
        table: "items".into(),
        where_: where_.map(str::to_owned),
        ..ShapeRequest::default()
    }
}

fn alice() -> Identity {
    Identity::new("alice")
}

async fn snapshot(
    db: &SyncDb,
    where_: Option<&str>,
) -> Result<(i64, Vec<Value>), Box<dyn std::error::Error>> {
    let shape = db.shape(&request(where_), Some(&alice()))?;
    let (head, mut chunks) = db.snapshot(shape).await?;
    let mut body = b"[".to_vec();
    loop {
        match chunks.recv().await {
            Some(Ok(SnapshotPart::Rows(chunk))) => body.extend_from_slice(&chunk),
            Some(Ok(SnapshotPart::End)) => break,
            Some(Err(err)) => return Err(err.into()),
            None => return Err("the snapshot stopped before its end".into()),
        }
    }
    if body.last() == Some(&b',') {
        body.pop();
    }
    body.push(b']');
    Ok((head, serde_json::from_slice(&body)?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_connections_transaction_arrives_whole_and_in_order() -> TestResult {
    let (db, mut writer, _) = open("connection")?;
    let start = db.feed().head();
    let tx = writer.transaction()?;
    tx.execute("INSERT INTO items VALUES (1, 'alice', 'one', NULL)", [])?;
    tx.execute("INSERT INTO items VALUES (2, 'bob', 'two', NULL)", [])?;
    tx.execute("UPDATE items SET done = 1 WHERE id = 1", [])?;
    tx.commit()?;
    writer.execute("DELETE FROM items WHERE id = 2", [])?;
    feed_reaches(db.feed(), start + 4).await?;
    let alight_sync::feed::Since::Changes { changes, head } = db.feed().since(start, 100) else {
        panic!("the feed holds everything since the start");
    };
    assert_eq!(head, start + 4);
    let ops: Vec<(i64, Op)> = changes.iter().map(|c| (c.id, c.op)).collect();
    assert_eq!(
        ops,
        vec![
            (start + 1, Op::Insert),
            (start + 2, Op::Insert),
            (start + 3, Op::Update),
            (start + 4, Op::Delete)
        ]
    );
    let update = &changes[2];
    assert_eq!(
        update.old.as_ref().map(|r| r[3].clone()),
        Some(SqlValue::Null)
    );
    assert_eq!(
        update.new.as_ref().map(|r| r[3].clone()),
        Some(SqlValue::Integer(1))
    );
    // A transaction never straddles two batches.
    if changes[0].batch_end != changes[2].batch_end {
        panic!("the first transaction was split: {changes:?}");
    }
    // Alice's shape sees her rows only.
    let shape = db.shape(&request(None), Some(&alice()))?;
    let (messages, next) = db.changes_since(&shape, start).expect("held");
    assert_eq!(next, start + 4);
    let operations: Vec<&str> = messages
        .iter()
        .filter_map(|m| m["headers"]["operation"].as_str())
        .collect();
    assert_eq!(operations, vec!["insert", "update"]);
    assert_eq!(
        messages[1]["value"],
        serde_json::json!({"id": "1", "done": "1"})
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_and_changes_join_without_gap_or_duplicate() -> TestResult {
    let (db, writer, _) = open("join")?;
    for i in 0..50 {
        writer.execute(
            "INSERT INTO items (owner, title) VALUES ('alice', ?1)",
            [format!("item {i}")],
        )?;
    }
    let (head, rows) = snapshot(&db, Some("title <> 'item 0'")).await?;
    assert_eq!(rows.len(), 49);
    assert!(rows.iter().all(|r| r["headers"]["operation"] == "insert"));
    writer.execute(
        "INSERT INTO items (owner, title) VALUES ('alice', 'later')",
        [],
    )?;
    feed_reaches(db.feed(), head + 1).await?;
    let shape = db.shape(&request(Some("title <> 'item 0'")), Some(&alice()))?;
    let (messages, _) = db.changes_since(&shape, head).expect("held");
    assert_eq!(messages.len(), 1, "only the later insert: {messages:?}");
    assert_eq!(messages[0]["value"]["title"], "later");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_and_bad_where_are_refused() -> TestResult {
    let (db, writer, _) = open("refused")?;
    let err = db.shape(&request(None), None).expect_err("no identity");
    assert!(err.to_string().contains("authentication"), "{err}");
    let err = db
        .shape(&request(Some("owner = 'bob' OR 1 = 1")), Some(&alice()))
        .expect_err("a literal on the left");
    assert!(err.to_string().contains("column on the left"), "{err}");
    // Whatever alice's where says, bob's rows stay out.
    writer.execute(
        "INSERT INTO items (owner, title) VALUES ('bob', 'secret')",
        [],
    )?;
    let (_, rows) = snapshot(&db, Some("owner = 'bob' OR owner = 'alice'")).await?;
    assert!(rows.is_empty(), "{rows:?}");
    Ok(())
}

/// A write from the `sqlite3` shell, a separate process, is captured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_from_another_process_is_captured() -> TestResult {
    let (db, _writer, path) = open("process")?;
    let start = db.feed().head();
    let status = match std::process::Command::new("sqlite3")
        .arg(&path)
        .arg("INSERT INTO items (owner, title) VALUES ('alice', 'from the shell');")
        .status()
    {
        Ok(status) => status,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("skipped: the sqlite3 shell is not installed (scripts/setup installs it)");
            return Ok(());
        }
        Err(err) => return Err(err.into()),
    };
    assert!(status.success());
    feed_reaches(db.feed(), start + 1).await?;
    let shape = db.shape(&request(None), Some(&alice()))?;
    let (messages, _) = db.changes_since(&shape, start).expect("held");
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["value"]["title"], "from the shell");
    Ok(())
}

/// A snapshot nobody reads gives up after the stall timeout: its reader sees it end without
/// `End`, never a short snapshot that looks complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_snapshot_ends_incomplete() -> TestResult {
    let path = temp_db("stall")?;
    let writer = Connection::open(&path)?;
    writer.execute_batch(SCHEMA)?;
    for i in 0..20 {
        writer.execute(
            "INSERT INTO items (owner, title) VALUES ('alice', ?1)",
            [format!("{i}")],
        )?;
    }
    let items = SyncTable::new("items").public();
    let mut config = Config::default();
    config.snapshot_chunk_rows = 1;
    config.snapshot_stall_timeout = Duration::from_millis(200);
    let db = SyncDb::open(&path, vec![items], config)?;
    let shape = db.shape(&request(None), None)?;
    let (_, mut chunks) = db.snapshot(shape).await?;
    // The producer fills the channel, then gives up on the next part; wait for it to hang up.
    tokio::time::timeout(Duration::from_secs(5), async {
        while !chunks.is_closed() {
            tokio::task::yield_now().await;
        }
    })
    .await?;
    let mut rows = 0;
    loop {
        match chunks.recv().await {
            Some(Ok(SnapshotPart::Rows(_))) => rows += 1,
            Some(Ok(SnapshotPart::End)) => {
                panic!("a stalled snapshot must not claim to be complete")
            }
            Some(Err(err)) => return Err(err.into()),
            None => break,
        }
    }
    assert!(rows < 20, "it stopped early ({rows} rows buffered)");
    Ok(())
}

/// An update that moves a row out of a shape is a delete for it, one that moves a row in is an
/// insert, and one that changes only unselected columns is nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_that_move_rows_across_a_shape() -> TestResult {
    let (db, writer, _) = open("moves")?;
    let before = db.feed().head();
    writer.execute(
        "INSERT INTO items (id, owner, title) VALUES (1, 'alice', 'a')",
        [],
    )?;
    writer.execute(
        "INSERT INTO items (id, owner, title) VALUES (2, 'alice', 'b')",
        [],
    )?;
    feed_reaches(db.feed(), before + 2).await?;
    let start = db.feed().head();
    let shape = db.shape(
        &ShapeRequest {
            columns: Some(vec!["id".into(), "title".into()]),
            ..request(Some("title <> 'hidden'"))
        },
        Some(&alice()),
    )?;
    writer.execute("UPDATE items SET title = 'hidden' WHERE id = 1", [])?; // out: delete
    writer.execute("UPDATE items SET owner = 'bob' WHERE id = 2", [])?; // out of alice's rows
    writer.execute("UPDATE items SET title = 'back' WHERE id = 1", [])?; // in: insert
    writer.execute("UPDATE items SET done = 1 WHERE id = 1", [])?; // unselected column only
    feed_reaches(db.feed(), start + 4).await?;
    let (messages, _) = db.changes_since(&shape, start).expect("held");
    let seen: Vec<(String, String)> = messages
        .iter()
        .map(|m| {
            (
                m["headers"]["operation"].as_str().unwrap_or("").to_owned(),
                m["value"]["id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expected = [("delete", "1"), ("delete", "2"), ("insert", "1")];
    assert_eq!(
        seen,
        expected
            .map(|(op, id)| (op.to_owned(), id.to_owned()))
            .to_vec(),
        "{messages:?}"
    );
    assert_eq!(
        messages[2]["value"],
        serde_json::json!({"id": "1", "title": "back"})
    );
    Ok(())
}

/// A watcher that is idle looks at its idle pace, and still sees what another connection
/// commits. Its busy pace here is an hour and it is idle at once, so only the idle pace can see
/// the second commit: the first may be seen by the watcher's opening look.
#[tokio::test]
async fn an_idle_watcher_still_sees_commits_from_other_connections() -> TestResult {
    use std::sync::Arc;

    use alight_sync::capture::{self, Capture, Polling};
    use alight_sync::schema::TableSchema;

    let path = temp_db("idle")?;
    let writer = Connection::open(&path)?;
    writer.execute_batch(SCHEMA)?;
    writer.busy_timeout(Duration::from_secs(5))?;
    let mut conn = capture::open(&path)?;
    capture::enable_wal(&conn)?;
    let table = TableSchema::load(&conn, "items")?.ok_or("no table items")?;
    let tables: Arc<[TableSchema]> = Arc::from(vec![table]);
    capture::install(&mut conn, &tables)?;
    let head = capture::high_water(&conn)?;
    let feed = Arc::new(Feed::new(head, 1_000, 1 << 20));
    let polling = Polling {
        busy: Duration::from_secs(3_600),
        idle: Duration::from_millis(20),
        idle_after: Duration::ZERO,
    };
    let _capture = Capture::start(conn, tables, feed.clone(), head, polling, Box::new(|_| {}))?;
    for (id, title) in [(1, "first"), (2, "second")] {
        writer.execute(
            "INSERT INTO items (id, owner, title) VALUES (?1, 'alice', ?2)",
            rusqlite::params![id, title],
        )?;
        feed_reaches(&feed, capture::high_water(&writer)?).await?;
    }
    Ok(())
}
