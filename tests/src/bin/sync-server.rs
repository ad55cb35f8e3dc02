//! A shape server over a scratch SQLite file, for the `@electric-sql/client` suite
//! (tests/node/sync.test.mjs).
//!
//! Run with: `cargo run -p alight-tests --bin sync-server -- --db /tmp/items.db [--port N] [--feed N] [--long-poll-ms N] [--max-subscribers N]`,
//! or `-- --emit-ts` to print the TypeScript row types of its tables
//! (`alight_sync::typescript_rows`) and stop.
//!
//! The database gets the table `items (id, owner, title, done, secret)`, syncable with the
//! readable columns `id, owner, title, done` and the rule "you see the rows you own", and the
//! table `kinds`, a column of each kind of declared type (for the test that rows hold the values
//! their generated types say), all readable, with the same rule. The bearer
//! token is the user id (a test stand-in for a real token check). Test-only routes:
//! `POST /test/exec` runs its body as SQL on a separate connection (a write the server did not
//! make), and `POST /test/rotate` forces every client of `items` to refetch. The same shapes are
//! served over channels: phoenix.js connects to `/socket` with `params: {token: <user id>}` and
//! joins `shape:items` (see `alight_sync::channel`).
//!
//! Prints `LISTENING <port>` once it accepts connections and exits when stdin closes (held
//! long-polls are not waited for).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use alight_server::{Alight, Connected};
use alight_sync::channel::ShapeChannel;
use alight_sync::{Config, Denied, Filter, Identity, SqlValue, SyncDb, SyncTable};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use tokio::io::AsyncReadExt;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS items (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    owner  TEXT    NOT NULL,
    title  TEXT    NOT NULL,
    done   BOOLEAN NOT NULL DEFAULT 0,
    secret TEXT
);
CREATE TABLE IF NOT EXISTS kinds (
    id     INTEGER PRIMARY KEY,
    owner  TEXT    NOT NULL,
    count  INTEGER NOT NULL,
    big    BIGINT,
    ratio  REAL,
    flag   BOOLEAN,
    doc    JSON,
    label  VARCHAR(20),
    data   BLOB,
    amount NUMERIC
);";

#[derive(Clone)]
struct TestState {
    db: SyncDb,
    path: PathBuf,
}

fn arg(args: &[String], name: &str) -> Option<String> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).cloned()
}

async fn exec(State(state): State<TestState>, sql: String) -> (StatusCode, String) {
    let path = state.path.clone();
    let result = tokio::task::spawn_blocking(move || -> rusqlite::Result<()> {
        let conn = rusqlite::Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch(&sql)
    })
    .await;
    match result {
        Ok(Ok(())) => {
            state.db.notify();
            (StatusCode::OK, "ok".into())
        }
        Ok(Err(err)) => (StatusCode::BAD_REQUEST, err.to_string()),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    }
}

async fn rotate(State(state): State<TestState>) -> String {
    state.db.rotate("items").unwrap_or(0).to_string()
}

/// The rows of the identity's own: `owner` is the user.
fn own_rows(who: Option<&Identity>) -> Result<Filter, Denied> {
    let who = who.ok_or(Denied::Unauthenticated)?;
    Ok(Filter::eq(
        "owner",
        SqlValue::Text(who.subject().to_owned()),
    ))
}

fn tables() -> Vec<SyncTable> {
    vec![
        SyncTable::new("items")
            .columns(["id", "owner", "title", "done"])
            .authorize(own_rows),
        SyncTable::new("kinds").authorize(own_rows),
    ]
}

/// Prints the TypeScript row types of the tables.
fn emit_ts() -> ExitCode {
    let conn = match rusqlite::Connection::open_in_memory()
        .and_then(|conn| conn.execute_batch(SCHEMA).map(|()| conn))
    {
        Ok(conn) => conn,
        Err(err) => {
            eprintln!("sync-server: cannot create the schema in memory: {err}");
            return ExitCode::FAILURE;
        }
    };
    match alight_sync::typescript_rows(&conn, &tables()) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("sync-server: {err}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--emit-ts") {
        return emit_ts();
    }
    let Some(path) = arg(&args, "--db").map(PathBuf::from) else {
        eprintln!("sync-server: --db PATH is required");
        return ExitCode::from(2);
    };
    let number = |name: &str, default: u64| -> Option<u64> {
        match arg(&args, name) {
            None => Some(default),
            Some(value) => value.parse().ok(),
        }
    };
    let (Some(port), Some(feed), Some(long_poll_ms), Some(max_subscribers)) = (
        number("--port", 0),
        number("--feed", 100_000),
        number("--long-poll-ms", 20_000),
        number("--max-subscribers", 10_000),
    ) else {
        eprintln!("sync-server: --port, --feed, --long-poll-ms and --max-subscribers take numbers");
        return ExitCode::from(2);
    };
    if let Err(err) = rusqlite::Connection::open(&path).and_then(|c| c.execute_batch(SCHEMA)) {
        eprintln!("sync-server: cannot create {}: {err}", path.display());
        return ExitCode::FAILURE;
    }
    let mut config = Config::default();
    config.feed_capacity = feed as usize;
    config.long_poll_timeout = Duration::from_millis(long_poll_ms);
    config.max_subscribers_per_shape = max_subscribers as usize;
    let db = match SyncDb::open(&path, tables(), config) {
        Ok(db) => db,
        Err(err) => {
            eprintln!("sync-server: {err}");
            return ExitCode::FAILURE;
        }
    };
    let alight = Alight::builder()
        .on_connect(|info| {
            let connected = match info.params.get("token") {
                Some(user) => Connected::new().assign(Identity::new(user.clone())),
                None => Connected::new(),
            };
            std::future::ready(Ok(connected))
        })
        .channel(
            "shape:*",
            ShapeChannel::new(db.clone(), |socket| socket.assign::<Identity>().cloned()),
        )
        .build();
    let app = Router::new()
        .merge(alight.router())
        .merge(alight_sync::http::router(db.clone(), |headers| {
            alight_sync::http::bearer(headers).map(Identity::new)
        }))
        .route("/test/exec", post(exec))
        .route("/test/rotate", post(rotate))
        .with_state(TestState { db, path });
    let listener = match tokio::net::TcpListener::bind(SocketAddr::from((
        [127, 0, 0, 1],
        port as u16,
    )))
    .await
    {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("sync-server: cannot listen: {err}");
            return ExitCode::FAILURE;
        }
    };
    let port = match listener.local_addr() {
        Ok(addr) => addr.port(),
        Err(err) => {
            eprintln!("sync-server: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!("LISTENING {port}");
    let stdin_closed = async {
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
    };
    tokio::select! {
        served = axum::serve(listener, app) => {
            if let Err(err) = served {
                eprintln!("sync-server: {err}");
                return ExitCode::FAILURE;
            }
        }
        () = stdin_closed => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    ExitCode::SUCCESS
}
