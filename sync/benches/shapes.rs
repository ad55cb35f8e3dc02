//! The sync engine's benchmarks (results in bench/README.md, "Sync: shapes on SQLite").
//!
//! Run with: `cargo bench -p alight-sync --bench shapes -- [index|latency|snapshot] [--quick]`
//!
//! - `index`: the cost of matching one committed change against 10,000 live shapes with an
//!   equality filter (`owner = 'u<i>'`), through the equality index ([`LiveShapes::dispatch`]) and
//!   by evaluating every shape's filter, in interleaved rounds.
//! - `latency`: commit-to-subscriber latency at 100 and 1,000 committed rows/s (one row per
//!   transaction, written on a connection of its own) into 1,000 subscribers of one shape, and
//!   into 1,000 users each watching their own rows. A subscriber is what a live request does:
//!   wait for its shape's wakeup, read its messages from the feed, parse the row's commit time.
//!   No sockets: this is the engine's part of the way to a client.
//! - `snapshot`: a 100,000-row shape read through `GET /v1/shape` over loopback, to the last
//!   byte, and the peak resident memory the process grew by meanwhile.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alight_sync::feed::{Change, Op};
use alight_sync::live_shapes::Shape;
use alight_sync::{Config, Filter, Identity, ShapeRequest, SqlValue, SyncDb, SyncTable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn scratch(name: &str) -> Result<PathBuf, Error> {
    let dir = std::env::temp_dir().join(format!("alight-sync-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir.join("bench.db"))
}

fn create(path: &Path) -> Result<(), Error> {
    let conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, owner TEXT NOT NULL,
                             title TEXT NOT NULL, t_us INTEGER NOT NULL);",
    )?;
    Ok(())
}

fn items() -> SyncTable {
    SyncTable::new("items").public()
}

fn request(where_: &str) -> ShapeRequest {
    ShapeRequest {
        table: "items".into(),
        where_: Some(where_.into()),
        ..ShapeRequest::default()
    }
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// One change against 10,000 shapes: through the index, and by evaluating every filter.
fn index() -> Result<(), Error> {
    let path = scratch("index")?;
    create(&path)?;
    let db = SyncDb::open(&path, vec![items()], Config::default())?;
    let shapes: Vec<Arc<Shape>> = (0..10_000)
        .map(|i| db.shape(&request(&format!("owner = 'u{i}'")), None))
        .collect::<Result<_, _>>()?;
    let change = |owner: &str| {
        Arc::new(Change {
            id: 1,
            batch_end: 1,
            table: 0,
            op: Op::Insert,
            old: None,
            new: Some(vec![
                SqlValue::Integer(1),
                SqlValue::Text(owner.into()),
                SqlValue::Text("a title".into()),
                SqlValue::Integer(0),
            ]),
        })
    };
    let rounds = 20;
    let per_round = 2_000;
    let (mut indexed, mut scanned) = (Vec::new(), Vec::new());
    let mut evaluations = (0, 0);
    for round in 0..rounds {
        // Interleaved, so that load from other processes falls on both alike.
        let batch: Vec<Arc<Change>> = (0..per_round)
            .map(|i| change(&format!("u{}", (i * 7 + round) % 10_000)))
            .collect();
        let start = Instant::now();
        for c in &batch {
            evaluations.0 += db.live_shapes().dispatch(std::slice::from_ref(c));
        }
        indexed.push(start.elapsed().as_secs_f64() * 1e9 / per_round as f64);
        let start = Instant::now();
        for c in &batch {
            let row = c.new.as_deref().unwrap_or_default();
            let matched = shapes.iter().filter(|s| s.def.cond.matches(row)).count();
            evaluations.1 += shapes.len();
            std::hint::black_box(matched);
        }
        scanned.push(start.elapsed().as_secs_f64() * 1e9 / per_round as f64);
    }
    indexed.sort_by(f64::total_cmp);
    scanned.sort_by(f64::total_cmp);
    let changes = (rounds * per_round) as f64;
    println!(
        "index: one change against 10,000 live shapes (median of {rounds} rounds of {per_round})"
    );
    println!(
        "  indexed: {:.0} ns/change, {:.1} filter evaluations/change",
        percentile(&indexed, 0.5),
        evaluations.0 as f64 / changes
    );
    println!(
        "  every filter: {:.0} ns/change, {:.0} filter evaluations/change",
        percentile(&scanned, 0.5),
        evaluations.1 as f64 / changes
    );
    println!(
        "  ratio (every filter / indexed): {:.0}x",
        percentile(&scanned, 0.5) / percentile(&indexed, 0.5)
    );
    Ok(())
}

/// Commit-to-subscriber latency of `rate` rows/s for `seconds`, into 1,000 subscribers: of one
/// shape (`shared`) or of one shape each.
async fn latency(rate: u64, seconds: u64, shared: bool) -> Result<(f64, f64, usize), Error> {
    let path = scratch(&format!("latency-{rate}-{shared}"))?;
    create(&path)?;
    let db = SyncDb::open(&path, vec![items()], Config::default())?;
    let users = 1_000;
    let samples = Arc::new(Mutex::new(Vec::<f64>::new()));
    let mut tasks = Vec::new();
    // The change-log id every subscriber must reach before it stops (set once all is written).
    let (stop_tx, stop) = tokio::sync::watch::channel(i64::MAX);
    for i in 0..users {
        let where_ = if shared {
            "owner = 'all'".to_owned()
        } else {
            format!("owner = 'u{i}'")
        };
        let shape = db.shape(&request(&where_), None)?;
        let subscription = db.live_shapes().subscribe(&shape)?;
        let db = db.clone();
        let samples = samples.clone();
        let mut stop = stop.clone();
        let mut at = db.feed().head();
        tasks.push(tokio::spawn(async move {
            let _subscription = subscription;
            let mut wakeups = shape.wakeups();
            let mut mine = Vec::new();
            loop {
                wakeups.borrow_and_update();
                stop.borrow_and_update();
                if let Some((messages, next)) = db.changes_since(&shape, at) {
                    let now = now_us();
                    for m in &messages {
                        let sent = m["value"]["t_us"]
                            .as_str()
                            .and_then(|t| t.parse::<i64>().ok());
                        if let Some(sent) = sent {
                            mine.push((now - sent) as f64 / 1000.0);
                        }
                    }
                    at = next;
                }
                if at >= *stop.borrow() {
                    break;
                }
                if at < db.feed().head() {
                    continue;
                }
                tokio::select! {
                    _ = wakeups.changed() => {}
                    _ = stop.changed() => {}
                }
            }
            samples.lock().expect("not poisoned").extend(mine);
        }));
    }
    let written = write(&path, &db, rate, seconds, move |n| {
        if shared {
            "all".to_owned()
        } else {
            format!("u{}", n % users)
        }
    })
    .await?;
    // Every subscriber stops once it has read up to the last row written.
    let last = db.database_head().await?;
    stop_tx.send_replace(last);
    for task in tasks {
        task.await?;
    }
    let mut samples = std::mem::take(&mut *samples.lock().expect("not poisoned"));
    samples.sort_by(f64::total_cmp);
    let expected = if shared {
        written as usize * users as usize
    } else {
        written as usize
    };
    assert_eq!(
        samples.len(),
        expected,
        "every subscriber got every row of its shape"
    );
    Ok((
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples.len(),
    ))
}

/// Writes `rate` rows/s for `seconds` on a connection of its own, one per transaction, owned by
/// `owner(n)`, each with its commit time; returns how many.
async fn write(
    path: &Path,
    db: &SyncDb,
    rate: u64,
    seconds: u64,
    owner: impl Fn(u64) -> String + Send + 'static,
) -> Result<u64, Error> {
    let path = path.to_path_buf();
    let db = db.clone();
    let total = rate * seconds;
    Ok(
        tokio::task::spawn_blocking(move || -> Result<u64, rusqlite::Error> {
            let conn = rusqlite::Connection::open(&path)?;
            conn.busy_timeout(Duration::from_secs(5))?;
            let start = Instant::now();
            for n in 0..total {
                let due = start + Duration::from_secs_f64(n as f64 / rate as f64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                conn.execute(
                    "INSERT INTO items (owner, title, t_us) VALUES (?1, 'a title', ?2)",
                    rusqlite::params![owner(n), now_us()],
                )?;
                // In-process writers say so; another process's commits wait for the next poll.
                db.notify();
            }
            Ok(total)
        })
        .await??,
    )
}

/// Like [`latency`] into 1,000 subscribers of one shape, the way the channel serves them: one
/// task reads the shape's messages once per batch and hands the same messages to every
/// subscriber (the channel's per-shape sender and its broadcast).
async fn latency_fanout(rate: u64, seconds: u64) -> Result<(f64, f64, usize), Error> {
    let path = scratch(&format!("fanout-{rate}"))?;
    create(&path)?;
    let db = SyncDb::open(&path, vec![items()], Config::default())?;
    let shape = db.shape(&request("owner = 'all'"), None)?;
    let subscription = db.live_shapes().subscribe(&shape)?;
    let (tx, _) = tokio::sync::broadcast::channel::<Arc<Vec<serde_json::Value>>>(65_536);
    let samples = Arc::new(Mutex::new(Vec::<f64>::new()));
    let mut tasks = Vec::new();
    for _ in 0..1_000 {
        let mut rx = tx.subscribe();
        let samples = samples.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Ok(messages) = rx.recv().await {
                let now = now_us();
                for m in messages.iter() {
                    if let Some(sent) = m["value"]["t_us"]
                        .as_str()
                        .and_then(|t| t.parse::<i64>().ok())
                    {
                        mine.push((now - sent) as f64 / 1000.0);
                    }
                }
            }
            samples.lock().expect("not poisoned").extend(mine);
        }));
    }
    let (stop_tx, mut stop) = tokio::sync::watch::channel(i64::MAX);
    let sender = {
        let db = db.clone();
        tokio::spawn(async move {
            let _subscription = subscription;
            let mut wakeups = shape.wakeups();
            let mut at = db.feed().head();
            loop {
                wakeups.borrow_and_update();
                stop.borrow_and_update();
                if let Some((messages, next)) = db.changes_since(&shape, at) {
                    if !messages.is_empty() {
                        let _ = tx.send(Arc::new(messages));
                    }
                    at = next;
                }
                if at >= *stop.borrow() {
                    break;
                }
                if at < db.feed().head() {
                    continue;
                }
                tokio::select! {
                    _ = wakeups.changed() => {}
                    _ = stop.changed() => {}
                }
            }
        })
    };
    let written = write(&path, &db, rate, seconds, |_| "all".to_owned()).await?;
    stop_tx.send_replace(db.database_head().await?);
    sender.await?;
    for task in tasks {
        task.await?;
    }
    let mut samples = std::mem::take(&mut *samples.lock().expect("not poisoned"));
    samples.sort_by(f64::total_cmp);
    assert_eq!(
        samples.len(),
        written as usize * 1_000,
        "every subscriber got every row"
    );
    Ok((
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples.len(),
    ))
}

/// A 100,000-row snapshot over `GET /v1/shape`: time to the last byte, and peak memory growth.
async fn snapshot() -> Result<(), Error> {
    let path = scratch("snapshot")?;
    create(&path)?;
    {
        let conn = rusqlite::Connection::open(&path)?;
        conn.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
             INSERT INTO items (owner, title, t_us)
             SELECT 'all', 'row number ' || i || ' with a title of some sixty bytes or so....', i
             FROM n;",
        )?;
    }
    let file = std::fs::metadata(&path)?.len();
    let db = SyncDb::open(&path, vec![items()], Config::default())?;
    let app: axum::Router = alight_sync::http::router(db, |_| None::<Identity>);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    let _ = Filter::all();
    for run in 0..3 {
        // Reset the peak resident set (Linux), so VmHWM says what this run added.
        let before = rss_kib("VmRSS")?;
        std::fs::write("/proc/self/clear_refs", "5")?;
        let start = Instant::now();
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(
                b"GET /v1/shape?table=items&offset=-1 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
            )
            .await?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut bytes = 0usize;
        let mut first = None;
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            first.get_or_insert_with(|| start.elapsed());
            bytes += n;
        }
        let elapsed = start.elapsed();
        let peak = rss_kib("VmHWM")?;
        println!(
            "snapshot run {run}: 100,000 rows ({:.1} MB file, {:.1} MB of response) in {:.0} ms \
             (first byte {:.1} ms); peak RSS {:.1} MB, {:.1} MB above the RSS before",
            file as f64 / 1e6,
            bytes as f64 / 1e6,
            elapsed.as_secs_f64() * 1e3,
            first.unwrap_or_default().as_secs_f64() * 1e3,
            peak as f64 / 1024.0,
            (peak.saturating_sub(before)) as f64 / 1024.0,
        );
    }
    Ok(())
}

fn rss_kib(field: &str) -> Result<u64, Error> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .ok_or("no such field in /proc/self/status")?;
    Ok(line.split_whitespace().nth(1).ok_or("no value")?.parse()?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let quick = args.iter().any(|a| a == "--quick");
    let all = !args
        .iter()
        .any(|a| ["index", "latency", "snapshot"].contains(&a.as_str()));
    let wants = |name: &str| all || args.iter().any(|a| a == name);
    if wants("index") {
        index()?;
    }
    if wants("latency") {
        let seconds = if quick { 2 } else { 5 };
        println!(
            "latency: commit to subscriber, ms (one row per transaction, {seconds} s per run)"
        );
        for round in 0..2 {
            for rate in [100, 1_000] {
                for mode in ["fan-out", "shared", "own"] {
                    let (p50, p99, n) = match mode {
                        "fan-out" => latency_fanout(rate, seconds).await?,
                        shared => latency(rate, seconds, shared == "shared").await?,
                    };
                    let who = match mode {
                        "fan-out" => "1 shape, 1,000 subs, read once",
                        "shared" => "1 shape, 1,000 subs, read each",
                        _ => "1,000 users, own rows",
                    };
                    println!(
                        "  round {round}: {rate:>5} rows/s into {who:<32} p50 {p50:>7.2}  p99 {p99:>7.2}  ({n} deliveries)"
                    );
                }
            }
        }
    }
    if wants("snapshot") {
        snapshot().await?;
    }
    Ok(())
}
