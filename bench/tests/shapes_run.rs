//! Tiny runs of the `shapes` scenario against an in-process server shaped like the demo: a
//! password-less `POST /api/login` whose token is the user id, a socket that takes `?token=`,
//! and `shape:notifications` over `alight_sync` on a SQLite file the scenario's writer commits
//! into. Each test serves on `127.0.0.1:0` and stops the server; the durations are the scenario's
//! own bounds.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use alight_bench::conn::Target;
use alight_bench::net::Sources;
use alight_bench::scenario::shapes::{self, Mode, ShapesParams};
use alight_bench::scenario::{Env, Outcome};
use alight_bench::wire::Protocol;
use alight_server::{Alight, Connected};
use alight_sync::channel::ShapeChannel;
use alight_sync::{Config, Denied, Filter, Identity, SqlValue, SyncDb, SyncTable};
use axum::Json;
use axum::routing::post;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The demo's table, as its migrations leave it.
const SCHEMA: &str = "CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, title TEXT NOT NULL,
    body TEXT NOT NULL, inserted_at INTEGER NOT NULL, read_at INTEGER,
    sender TEXT NOT NULL DEFAULT 'system')";

/// A fresh directory for one test's database.
fn temp_dir(name: &str) -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("alight-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Serves the demo's login, socket and `shape:notifications` over the database at `db`.
async fn serve(db: &Path) -> Result<(SocketAddr, CancellationToken), Box<dyn std::error::Error>> {
    rusqlite::Connection::open(db)?.execute_batch(SCHEMA)?;
    let notifications = SyncTable::new("notifications").authorize(|who: Option<&Identity>| {
        let who = who.ok_or(Denied::Unauthenticated)?;
        Ok(Filter::eq(
            "user_id",
            SqlValue::Text(who.subject().to_owned()),
        ))
    });
    let sync = SyncDb::open(db, vec![notifications], Config::default())?;
    let alight = Alight::builder()
        .on_connect(|info| {
            let user = info.params.get("token").cloned();
            std::future::ready(Ok(match user {
                Some(user) => Connected::new().assign(Identity::new(user)),
                None => Connected::new(),
            }))
        })
        .channel(
            "shape:*",
            ShapeChannel::new(sync, |socket| socket.assign::<Identity>().cloned()),
        )
        .build();
    // Password-less, as the demo's: the token is the user id.
    let login = post(|Json(body): Json<serde_json::Value>| async move {
        Json(serde_json::json!({"user_id": body["user_id"], "token": body["user_id"]}))
    });
    let app = alight.router().route("/api/login", login);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    let shutdown = stop.clone().cancelled_owned();
    tokio::spawn(async move { alight.serve(listener, app, shutdown).await });
    Ok((addr, stop))
}

fn figure(outcome: &Outcome, name: &str) -> f64 {
    outcome
        .metric(name)
        .unwrap_or_else(|| panic!("no `{name}` in {outcome:#?}"))
}

/// Every client gets exactly the rows it should, in commit order, each with a latency.
async fn check(mode: Mode) -> TestResult {
    let dir = temp_dir(mode.name())?;
    let db = dir.join("alight.db");
    let (addr, stop) = serve(&db).await?;
    let sources = Sources::new(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    let env = Env::new(
        Target {
            addr,
            protocol: Protocol::Phoenix,
        },
        Arc::new(sources),
        Some(std::process::id()),
    );
    let params = ShapesParams {
        mode,
        subscribers: 6,
        rate: 60,
        duration: Duration::from_millis(300),
        drain: Duration::from_secs(5),
        db: db.clone(),
    };
    let outcome = shapes::run(&env, params).await;
    assert_eq!(figure(&outcome, "clients joined"), 6.0, "{outcome:#?}");
    assert!(figure(&outcome, "rows delivered/s") > 0.0, "{outcome:#?}");
    assert!(figure(&outcome, "commit→receive max") > 0.0, "{outcome:#?}");
    for clean in [
        "missing rows",
        "duplicate rows",
        "rows out of order",
        "rows of another user",
        "clients dropped",
    ] {
        assert_eq!(figure(&outcome, clean), 0.0, "{clean}: {outcome:#?}");
    }
    stop.cancel();
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test]
async fn one_shape_for_every_client() -> TestResult {
    check(Mode::OneShape).await
}

#[tokio::test]
async fn a_shape_per_user() -> TestResult {
    check(Mode::PerUser).await
}

/// A database without the table is a run that says why, not a hang.
#[tokio::test]
async fn a_wrong_database_is_named() -> TestResult {
    let dir = temp_dir("wrong-db")?;
    let sources = Sources::new(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    let env = Env::new(
        Target {
            addr: SocketAddr::from(([127, 0, 0, 1], 9)),
            protocol: Protocol::Phoenix,
        },
        Arc::new(sources),
        None,
    );
    let params = ShapesParams {
        mode: Mode::OneShape,
        subscribers: 1,
        rate: 1,
        duration: Duration::from_millis(10),
        drain: Duration::ZERO,
        db: dir.join("missing.db"),
    };
    let outcome = shapes::run(&env, params).await;
    assert!(outcome.metrics.is_empty(), "{outcome:#?}");
    assert!(
        outcome.notes.iter().any(|n| n.contains("missing.db")),
        "{outcome:#?}"
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
