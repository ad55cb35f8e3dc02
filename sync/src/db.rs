//! [`SyncDb`]: a SQLite file whose declared tables are served as shapes. It owns the capture
//! (triggers and watcher), the feed of changes, the live shapes, and a few reader connections for
//! snapshots.
//!
//! # Snapshot and changes join without a gap or a duplicate
//! A snapshot runs in one read transaction that first reads the change log's high-water id `H`
//! (`sqlite_sequence`), then the rows. WAL gives the transaction one consistent view, so the rows
//! hold exactly the changes with ids up to `H`; the client continues from offset `H` and the feed
//! gives it every change after `H`, each once.
//!
//! # Why the snapshot streams from a blocking thread
//! SQLite calls block, so they run on tokio's blocking pool. Rows go to the response through a
//! small bounded channel, a chunk of rows at a time: a snapshot of any size holds only a few
//! chunks in memory, and a slow client slows the read instead of growing a buffer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::capture::{self, Capture, Polling};
use crate::config::Config;
use crate::feed::{Feed, Since};
use crate::live_shapes::{LiveShapes, Shape};
use crate::message;
use crate::schema::TableSchema;
use crate::shape::{ShapeDef, ShapeError, ShapeRequest, TableEntry};
use crate::table::{Identity, SyncTable};
use crate::value::SqlValue;

/// Reader connections kept for snapshots.
const POOLED_READERS: usize = 4;

/// Why the database could not be opened for sync.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// SQLite failed.
    #[error("cannot open {} for sync", path.display())]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A declared table does not exist.
    #[error("the syncable table `{0}` does not exist")]
    NoSuchTable(String),
    /// A declared column does not exist.
    #[error("the syncable table `{table}` has no column `{column}`")]
    NoSuchColumn {
        /// The table.
        table: String,
        /// The column.
        column: String,
    },
    /// The table has no primary key and none was declared.
    #[error(
        "the syncable table `{0}` needs a primary key (declare one with SyncTable::primary_key)"
    )]
    NoPrimaryKey(String),
    /// A key column is not readable.
    #[error("the primary key column `{column}` of `{table}` must be readable")]
    KeyNotReadable {
        /// The table.
        table: String,
        /// The column.
        column: String,
    },
    /// The capture thread could not start.
    #[error("cannot start the change capture thread")]
    Thread(#[source] std::io::Error),
}

/// A failure while serving a shape, after the request was accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// SQLite failed.
    #[error("database query failed")]
    Sqlite(#[from] rusqlite::Error),
    /// The blocking task did not finish.
    #[error("the database task did not finish")]
    Task,
    /// The snapshot stopped before its end (its reader gave up, or nobody took a chunk within
    /// [`Config::snapshot_stall_timeout`]).
    #[error("the snapshot stopped before its end")]
    Incomplete,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    tables: Vec<TableEntry>,
    feed: Arc<Feed>,
    live_shapes: Arc<LiveShapes>,
    capture: Capture,
    readers: Mutex<Vec<Connection>>,
    config: Config,
}

/// A SQLite database whose declared tables are served as shapes. Cheap to clone.
///
/// ```no_run
/// use alight_sync::{Config, SyncDb, SyncTable};
/// # fn main() -> Result<(), alight_sync::OpenError> {
/// let db = SyncDb::open(
///     std::path::Path::new("app.db"),
///     vec![SyncTable::new("items").public()],
///     Config::default(),
/// )?;
/// let app: axum::Router = alight_sync::http::router(db, |_| None);
/// # let _ = app;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SyncDb {
    inner: Arc<Inner>,
}

/// A piece of a streamed snapshot.
#[derive(Debug)]
pub enum SnapshotPart {
    /// Messages, each followed by `,`.
    Rows(Bytes),
    /// The snapshot is complete (a receiver that closes without it got an incomplete one).
    End,
}

/// One piece of a snapshot, or why it failed.
pub type Chunk = Result<SnapshotPart, ServeError>;

impl SyncDb {
    /// Opens the database at `path` (WAL mode), installs the change log and the triggers of
    /// `tables`, and starts the capture.
    pub fn open(path: &Path, tables: Vec<SyncTable>, config: Config) -> Result<SyncDb, OpenError> {
        let sqlite = |source| OpenError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = capture::open(path).map_err(sqlite)?;
        capture::enable_wal(&conn).map_err(sqlite)?;
        let mut entries = Vec::new();
        for decl in tables {
            let schema = TableSchema::load(&conn, &decl.name)
                .map_err(sqlite)?
                .ok_or_else(|| OpenError::NoSuchTable(decl.name.clone()))?;
            entries.push(entry(schema, decl)?);
        }
        let schemas: Vec<TableSchema> = entries.iter().map(|e| e.schema.clone()).collect();
        capture::install(&mut conn, &schemas).map_err(sqlite)?;
        let head = capture::high_water(&conn).map_err(sqlite)?;
        let feed = Arc::new(Feed::new(head, config.feed_capacity, config.feed_max_bytes));
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let live_shapes = Arc::new(LiveShapes::new(
            epoch,
            config.max_shapes,
            config.max_subscribers_per_shape,
        ));
        let dispatch = live_shapes.clone();
        let capture = Capture::start(
            conn,
            Arc::from(schemas),
            feed.clone(),
            head,
            Polling {
                busy: config.poll_interval,
                // An idle watcher never looks more often than a busy one.
                idle: config.idle_poll_interval.max(config.poll_interval),
                idle_after: capture::IDLE_AFTER,
            },
            Box::new(move |batch| {
                dispatch.dispatch(batch);
            }),
        )
        .map_err(OpenError::Thread)?;
        Ok(SyncDb {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                tables: entries,
                feed,
                live_shapes,
                capture,
                readers: Mutex::new(Vec::new()),
                config,
            }),
        })
    }

    /// The limits.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The syncable tables.
    pub fn tables(&self) -> &[TableEntry] {
        &self.inner.tables
    }

    /// The TypeScript declarations of the syncable tables' rows: what
    /// [`crate::typescript_rows`] gives for the tables this database serves.
    pub fn typescript_rows(&self) -> String {
        crate::typescript::render(&self.inner.tables)
    }

    /// The feed of committed changes.
    pub fn feed(&self) -> &Feed {
        &self.inner.feed
    }

    /// The live shapes.
    pub fn live_shapes(&self) -> &LiveShapes {
        &self.inner.live_shapes
    }

    /// Asks the capture to look for changes now; call it after committing in this process to
    /// skip the poll interval.
    pub fn notify(&self) {
        self.inner.capture.notify();
    }

    /// Forces every client of `table`'s shapes to refetch (their handles are dropped, their next
    /// request gets a 409). Returns how many shapes were dropped; `None` for an unknown table.
    pub fn rotate(&self, table: &str) -> Option<usize> {
        let index = self
            .inner
            .tables
            .iter()
            .position(|t| t.schema.name == table)?;
        Some(self.inner.live_shapes.rotate(index))
    }

    /// Resolves `request` for `identity` and returns its live shape.
    pub fn shape(
        &self,
        request: &ShapeRequest,
        identity: Option<&Identity>,
    ) -> Result<Arc<Shape>, ShapeOrLimit> {
        let def = ShapeDef::resolve(&self.inner.tables, request, identity)?;
        Ok(self.inner.live_shapes.get_or_create(def)?)
    }

    /// The messages for `shape` after offset `after`, and the next offset; `None` if the feed no
    /// longer holds them (the client must refetch).
    pub fn changes_since(
        &self,
        shape: &Shape,
        after: i64,
    ) -> Option<(Vec<serde_json::Value>, i64)> {
        let entry = &self.inner.tables[shape.def.table];
        match self
            .inner
            .feed
            .since(after, self.inner.config.max_chunk_changes)
        {
            Since::Gone => None,
            Since::Changes { changes, head } => {
                let messages = changes
                    .iter()
                    .filter(|c| c.table == shape.def.table)
                    .flat_map(|c| message::for_change(&shape.def, &entry.schema, &entry.key, c))
                    .collect();
                Some((messages, head))
            }
        }
    }

    /// The change log's high-water id as the database has it now (the feed may lag it by a poll).
    pub async fn database_head(&self) -> Result<i64, ServeError> {
        let db = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = db.reader()?;
            let head = capture::high_water(&conn);
            db.give_back(conn);
            Ok(head?)
        })
        .await
        .map_err(|_| ServeError::Task)?
    }

    /// Starts a snapshot of `shape`: resolves with the high-water id it is consistent with, and a
    /// receiver of its parts, ending with [`SnapshotPart::End`]. A part nobody takes within
    /// [`Config::snapshot_stall_timeout`] ends the snapshot (and its read transaction) early.
    pub async fn snapshot(
        &self,
        shape: Arc<Shape>,
    ) -> Result<(i64, mpsc::Receiver<Chunk>), ServeError> {
        let (head_tx, head_rx) = oneshot::channel();
        let (tx, rx) = mpsc::channel(4);
        let db = self.clone();
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let mut conn = match db.reader() {
                Ok(conn) => conn,
                Err(err) => {
                    let _ = head_tx.send(Err(ServeError::Sqlite(err)));
                    return;
                }
            };
            let stall = db.inner.config.snapshot_stall_timeout;
            let send = |part: Chunk| -> bool {
                runtime
                    .block_on(tokio::time::timeout(stall, tx.send(part)))
                    .is_ok_and(|sent| sent.is_ok())
            };
            let result = db.stream_snapshot(&mut conn, &shape, head_tx, &send);
            if let Err(err) = result {
                send(Err(ServeError::Sqlite(err)));
            }
            db.give_back(conn);
        });
        let head = head_rx.await.map_err(|_| ServeError::Task)??;
        Ok((head, rx))
    }

    fn stream_snapshot(
        &self,
        conn: &mut Connection,
        shape: &Shape,
        head_tx: oneshot::Sender<Result<i64, ServeError>>,
        send: &dyn Fn(Chunk) -> bool,
    ) -> rusqlite::Result<()> {
        let entry = &self.inner.tables[shape.def.table];
        let schema = &entry.schema;
        let txn = conn.transaction()?;
        let head = capture::high_water(&txn)?;
        let columns: Vec<String> = (0..schema.columns.len())
            .map(|i| schema.quoted(i))
            .collect();
        let mut sql = format!(
            "SELECT {} FROM {} WHERE ",
            columns.join(", "),
            crate::schema::quote_ident(&schema.name)
        );
        let mut binds: Vec<SqlValue> = Vec::new();
        shape.def.cond.to_sql(schema, &mut sql, &mut binds);
        let mut stmt = txn.prepare(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(binds.iter()))?;
        if head_tx.send(Ok(head)).is_err() {
            return Ok(());
        }
        let mut chunk = Vec::new();
        let mut in_chunk = 0;
        while let Some(row) = rows.next()? {
            let values: Vec<SqlValue> = (0..schema.columns.len())
                .map(|i| row.get_ref(i).map(SqlValue::from_ref))
                .collect::<Result<_, _>>()?;
            let message = message::snapshot_insert(&shape.def, schema, &entry.key, &values);
            serde_json::to_writer(&mut chunk, &message)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            chunk.push(b',');
            in_chunk += 1;
            if in_chunk >= self.inner.config.snapshot_chunk_rows
                || chunk.len() >= self.inner.config.snapshot_chunk_bytes
            {
                if !send(Ok(SnapshotPart::Rows(Bytes::from(std::mem::take(
                    &mut chunk,
                ))))) {
                    return Ok(());
                }
                in_chunk = 0;
            }
        }
        if !chunk.is_empty() && !send(Ok(SnapshotPart::Rows(Bytes::from(chunk)))) {
            return Ok(());
        }
        send(Ok(SnapshotPart::End));
        Ok(())
    }

    fn reader(&self) -> rusqlite::Result<Connection> {
        let pooled = self
            .inner
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => capture::open(&self.inner.path),
        }
    }

    fn give_back(&self, conn: Connection) {
        let mut readers = self
            .inner
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if readers.len() < POOLED_READERS {
            readers.push(conn);
        }
    }
}

/// A shape request refused: the request is wrong, or a limit is reached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShapeOrLimit {
    /// The request cannot be served.
    #[error(transparent)]
    Shape(#[from] ShapeError),
    /// [`Config::max_shapes`] is reached.
    #[error(transparent)]
    Limit(#[from] crate::live_shapes::TooManyShapes),
}

pub(crate) fn entry(schema: TableSchema, decl: SyncTable) -> Result<TableEntry, OpenError> {
    let no_column = |column: &str| OpenError::NoSuchColumn {
        table: schema.name.clone(),
        column: column.to_owned(),
    };
    let readable = match &decl.columns {
        None => vec![true; schema.columns.len()],
        Some(names) => {
            let mut readable = vec![false; schema.columns.len()];
            for name in names {
                readable[schema.column_index(name).ok_or_else(|| no_column(name))?] = true;
            }
            readable
        }
    };
    let key = match &decl.primary_key {
        Some(names) => names
            .iter()
            .map(|n| schema.column_index(n).ok_or_else(|| no_column(n)))
            .collect::<Result<Vec<_>, _>>()?,
        None => schema.primary_key.clone(),
    };
    if key.is_empty() {
        return Err(OpenError::NoPrimaryKey(schema.name.clone()));
    }
    if let Some(k) = key.iter().find(|k| !readable[**k]) {
        return Err(OpenError::KeyNotReadable {
            table: schema.name.clone(),
            column: schema.columns[*k].name.clone(),
        });
    }
    Ok(TableEntry {
        schema,
        readable,
        key,
        decl,
    })
}
