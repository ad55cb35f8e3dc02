//! A shape server in the test process: the `items` table of `src/bin/sync-server.rs` on a
//! scratch SQLite file, served as `shape:items` over channels on `127.0.0.1:0`, for clients'
//! live collections (client-wasm/tests/live.rs).
//!
//! The socket's `token` param is the user id; a user sees the rows they own. [`ShapeServer::exec`]
//! writes through a connection of its own, as another process would.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use alight_server::{Alight, Connected};
use alight_sync::channel::ShapeChannel;
use alight_sync::{Config, Denied, Filter, Identity, SqlValue, SyncDb, SyncTable};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS items (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    owner  TEXT    NOT NULL,
    title  TEXT    NOT NULL,
    done   BOOLEAN NOT NULL DEFAULT 0,
    secret TEXT
);";

/// Why the shape server could not start or a write failed.
#[derive(Debug, thiserror::Error)]
pub enum ShapeServerError {
    /// The scratch database could not be created or written.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The shape engine refused the database.
    #[error("sync: {0}")]
    Open(#[from] alight_sync::OpenError),
    /// Binding the listener failed.
    #[error("listen: {0}")]
    Io(#[from] std::io::Error),
}

/// The shape server; it stops and deletes its database when dropped.
#[derive(Debug)]
pub struct ShapeServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The endpoint, for its registry and metrics.
    pub alight: Alight,
    db: SyncDb,
    path: PathBuf,
    stop: watch::Sender<bool>,
}

impl ShapeServer {
    /// Starts one on `127.0.0.1:0`.
    pub async fn start() -> Result<ShapeServer, ShapeServerError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "alight-shapes-{}-{}.db",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        rusqlite::Connection::open(&path)?.execute_batch(SCHEMA)?;
        let db = SyncDb::open(&path, vec![items()], Config::default())?;
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
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(false);
        let app: Router = alight.router();
        let served = alight.clone();
        tokio::spawn(async move {
            let signal = async move {
                let _ = stopped.wait_for(|stopped| *stopped).await;
            };
            served.serve(listener, app, signal).await
        });
        Ok(ShapeServer {
            addr,
            alight,
            db,
            path,
            stop,
        })
    }

    /// `ws://…/socket`, the endpoint a client connects to.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/socket", self.addr)
    }

    /// Runs `sql` on a connection of its own (a write the shape engine did not make).
    pub async fn exec(&self, sql: &str) -> Result<(), ShapeServerError> {
        let path = self.path.clone();
        let sql = sql.to_owned();
        let written = tokio::task::spawn_blocking(move || -> rusqlite::Result<()> {
            let conn = rusqlite::Connection::open(path)?;
            conn.busy_timeout(Duration::from_secs(5))?;
            conn.execute_batch(&sql)
        })
        .await
        .map_err(std::io::Error::other)?;
        written?;
        self.db.notify();
        Ok(())
    }

    /// Rotates `items`: every subscriber must refetch, and old handles no longer resume.
    pub fn rotate(&self) {
        self.db.rotate("items");
    }
}

impl Drop for ShapeServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for suffix in ["", "-wal", "-shm"] {
            let mut file = self.path.clone().into_os_string();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
    }
}

/// `items`: the columns `id, owner, title, done` readable, rows by owner.
fn items() -> SyncTable {
    SyncTable::new("items")
        .columns(["id", "owner", "title", "done"])
        .authorize(|who: Option<&Identity>| {
            let who = who.ok_or(Denied::Unauthenticated)?;
            Ok(Filter::eq(
                "owner",
                SqlValue::Text(who.subject().to_owned()),
            ))
        })
}
