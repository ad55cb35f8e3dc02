//! Change capture from SQLite: triggers write every row change into a change-log table; a watcher
//! thread reads the committed log and publishes it to the [`Feed`].
//!
//! # Why triggers and a change-log table
//! The capture must see every committed change to the file, including writes from another
//! process (the `sqlite3` shell, another service), and deliver a transaction's rows together,
//! after the commit, in commit order.
//! - `update_hook`/`preupdate_hook` and `commit_hook` fire only for writes made on the connection
//!   that installed them, so they miss every other connection and process. The session extension
//!   has the same limit (a session records one connection).
//! - `AFTER INSERT/UPDATE/DELETE` triggers are stored in the database file and run inside the
//!   writer's transaction, whoever the writer is. Their rows in `_alight_changes` commit or roll
//!   back with the change itself, so the log never holds an uncommitted change, and its
//!   `AUTOINCREMENT` id orders changes by commit (SQLite has one writer at a time, so a
//!   transaction's changes also get consecutive ids).
//! - The watcher polls `PRAGMA data_version` on its own connection, a read of a counter in
//!   shared memory that changes when another connection commits; only then does it read the new
//!   log rows. One read sees whole transactions only, so a batch is one or more complete
//!   transactions in commit order. [`Capture::notify`] wakes it at once after an in-process write.
//!   It looks every 10 ms while changes come and every 100 ms once none came for a second
//!   ([`Polling`]): each look wakes its thread and takes the file's locks, which at a hundred a
//!   second cost an idle server about 1% of a core.
//! - Then it deletes what it has published (the feed holds it in memory now) except the last
//!   [`LOG_KEEP`] rows, so the log table stays small while another process capturing the same
//!   file (a second server on the same data) can still read what it has not yet. The cost is one
//!   extra row write per changed row, in the writer's transaction.
//!
//! Limits: rows removed by `REPLACE` conflict resolution fire no delete trigger
//! unless `PRAGMA recursive_triggers` is on (the replacing insert is captured); blobs are carried
//! as lower-case hexadecimal text, as snapshots read them. A second process capturing the same
//! file must not lag its peer by more than [`LOG_KEEP`] changes.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use crate::feed::{Change, Feed, Op};
use crate::schema::{TableSchema, quote_ident};
use crate::value::SqlValue;

/// The change-log table.
pub const LOG_TABLE: &str = "_alight_changes";

/// How often the watcher deletes what it has published.
const PRUNE_INTERVAL: Duration = Duration::from_secs(1);

/// How long without a change before the watcher of a [`SyncDb`](crate::SyncDb) looks at its
/// idle pace.
pub const IDLE_AFTER: Duration = Duration::from_secs(1);

/// How often the watcher looks for commits: every `busy` while changes come, every `idle` once
/// none came for `idle_after`. Each look wakes the thread and takes the file's
/// locks, so a server nobody writes to should not look a hundred times a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Polling {
    /// The interval while changes come.
    pub busy: Duration,
    /// The interval once none came for `idle_after`.
    pub idle: Duration,
    /// How long without a change makes the watcher idle.
    pub idle_after: Duration,
}

impl Polling {
    /// How long to wait before the next look, `quiet` after the last change seen.
    ///
    /// ```
    /// use std::time::Duration;
    /// use alight_sync::capture::{IDLE_AFTER, Polling};
    ///
    /// let polling = Polling {
    ///     busy: Duration::from_millis(10),
    ///     idle: Duration::from_millis(100),
    ///     idle_after: IDLE_AFTER,
    /// };
    /// assert_eq!(polling.wait(Duration::from_millis(500)), Duration::from_millis(10));
    /// assert_eq!(polling.wait(Duration::from_secs(2)), Duration::from_millis(100));
    /// ```
    pub fn wait(&self, quiet: Duration) -> Duration {
        if quiet < self.idle_after {
            self.busy
        } else {
            self.idle
        }
    }
}

/// How many of the latest change-log rows pruning keeps, for other processes reading the log.
pub const LOG_KEEP: i64 = 10_000;

/// How long a statement waits for a lock held by another connection.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a connection to the database at `path` with the busy timeout set.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// Puts the database file in WAL mode (readers never block the writer; the mode is kept in the
/// file).
///
/// Switching needs the file to itself and SQLite does not wait for that with the busy timeout:
/// when another process opens the file at the same moment (nodes of one service starting
/// together), this tries again until [`BUSY_TIMEOUT`].
///
/// ```
/// let conn = rusqlite::Connection::open_in_memory()?;
/// alight_sync::capture::enable_wal(&conn)?; // in memory: stays "memory", no error
/// # Ok::<(), rusqlite::Error>(())
/// ```
pub fn enable_wal(conn: &Connection) -> rusqlite::Result<()> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
        {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            set => return set.map(|_| ()),
        }
    }
}

/// Creates the change log and (re)creates the triggers of `tables`, in one transaction.
///
/// `IMMEDIATE`: the write lock is taken (waiting up to the busy timeout) before anything is read,
/// so processes that open the same file at once take turns instead of one failing.
pub fn install(conn: &mut Connection, tables: &[TableSchema]) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {LOG_TABLE} (
             id  INTEGER PRIMARY KEY AUTOINCREMENT,
             tbl TEXT NOT NULL,
             op  TEXT NOT NULL,
             old TEXT,
             new TEXT
         );"
    ))?;
    for table in tables {
        tx.execute_batch(&triggers(table))?;
    }
    tx.commit()
}

/// The `DROP`/`CREATE TRIGGER` statements for `table`.
fn triggers(table: &TableSchema) -> String {
    let name = &table.name;
    let literal = format!("'{}'", name.replace('\'', "''"));
    let row = |which: &str| {
        let fields: Vec<String> = table
            .columns
            .iter()
            .map(|c| {
                let col = format!("{which}.{}", quote_ident(&c.name));
                format!(
                    "'{}', CASE typeof({col}) WHEN 'blob' THEN lower(hex({col})) ELSE {col} END",
                    c.name.replace('\'', "''")
                )
            })
            .collect();
        format!("json_object({})", fields.join(", "))
    };
    let mut sql = String::new();
    for (op, event, old, new) in [
        ("insert", "INSERT", "NULL".to_owned(), row("NEW")),
        ("update", "UPDATE", row("OLD"), row("NEW")),
        ("delete", "DELETE", row("OLD"), "NULL".to_owned()),
    ] {
        let trigger = quote_ident(&format!("_alight_sync_{name}_{op}"));
        sql.push_str(&format!(
            "DROP TRIGGER IF EXISTS {trigger};
             CREATE TRIGGER {trigger} AFTER {event} ON {table_ident} BEGIN
                 INSERT INTO {LOG_TABLE} (tbl, op, old, new) VALUES ({literal}, '{op}', {old}, {new});
             END;\n",
            table_ident = quote_ident(name),
        ));
    }
    sql
}

/// The highest id the change log has ever given (0 for none), as seen by `conn`'s transaction.
pub fn high_water(conn: &Connection) -> rusqlite::Result<i64> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = ?1",
            [LOG_TABLE],
            |row| row.get::<_, i64>(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// Wakes the watcher; dropped, it stops.
#[derive(Debug, Clone)]
pub struct Capture {
    wake: std::sync::mpsc::SyncSender<()>,
}

impl Capture {
    /// Starts the watcher on `conn`, publishing into `feed` everything after id `after`.
    pub fn start(
        conn: Connection,
        tables: Arc<[TableSchema]>,
        feed: Arc<Feed>,
        after: i64,
        poll: Polling,
        on_publish: OnPublish,
    ) -> std::io::Result<Capture> {
        let (wake, woken) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("alight-sync-capture".into())
            .spawn(move || {
                let mut watcher = Watcher {
                    on_publish,
                    conn,
                    tables,
                    feed,
                    last: after,
                    pruned: after,
                    last_prune: Instant::now(),
                };
                watcher.run(&woken, poll);
            })?;
        Ok(Capture { wake })
    }

    /// Asks the watcher to look now rather than at its next poll (after an in-process commit).
    pub fn notify(&self) {
        let _ = self.wake.try_send(());
    }
}

/// What runs after each published batch (waking the shapes it concerns).
pub type OnPublish = Box<dyn Fn(&[Arc<Change>]) + Send>;

struct Watcher {
    on_publish: OnPublish,
    conn: Connection,
    tables: Arc<[TableSchema]>,
    feed: Arc<Feed>,
    /// The last id published.
    last: i64,
    /// The last id deleted from the log.
    pruned: i64,
    last_prune: Instant,
}

impl Watcher {
    fn run(&mut self, woken: &Receiver<()>, poll: Polling) {
        let mut version = None;
        let mut changed = Instant::now();
        loop {
            match self.data_version() {
                Ok(now) if Some(now) != version => {
                    version = Some(now);
                    changed = Instant::now();
                    if let Err(err) = self.read() {
                        tracing::error!(
                            error = &err as &dyn std::error::Error,
                            "cannot read the change log"
                        );
                        version = None;
                    }
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::error!(
                        error = &err as &dyn std::error::Error,
                        "cannot poll the database"
                    );
                }
            }
            if self.last > self.pruned && self.last_prune.elapsed() >= PRUNE_INTERVAL {
                self.prune();
            }
            match woken.recv_timeout(poll.wait(changed.elapsed())) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn data_version(&self) -> rusqlite::Result<i64> {
        self.conn
            .query_row("PRAGMA data_version", [], |row| row.get(0))
    }

    /// Reads and publishes every committed change after `last`.
    fn read(&mut self) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        let head = high_water(&tx)?;
        if head <= self.last {
            return Ok(());
        }
        let mut batch = Vec::new();
        {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT id, tbl, op, old, new FROM {LOG_TABLE} WHERE id > ?1 AND id <= ?2 ORDER BY id"
            ))?;
            let mut rows = stmt.query([self.last, head])?;
            while let Some(row) = rows.next()? {
                let id: i64 = row.get(0)?;
                let table: String = row.get(1)?;
                let op: String = row.get(2)?;
                let old: Option<String> = row.get(3)?;
                let new: Option<String> = row.get(4)?;
                let Some(index) = self.tables.iter().position(|t| t.name == table) else {
                    continue;
                };
                let op = match op.as_str() {
                    "insert" => Op::Insert,
                    "update" => Op::Update,
                    "delete" => Op::Delete,
                    _ => continue,
                };
                let schema = &self.tables[index];
                batch.push(Change {
                    id,
                    batch_end: head,
                    table: index,
                    op,
                    old: old.as_deref().map(|json| decode(schema, json)),
                    new: new.as_deref().map(|json| decode(schema, json)),
                });
            }
        }
        tx.commit()?;
        if let Some(last) = batch.last_mut() {
            // The batch ends at its last change relevant to the feed.
            let end = last.id;
            for change in &mut batch {
                change.batch_end = end;
            }
        }
        self.last = head;
        let published = self.feed.publish(batch, head);
        (self.on_publish)(&published);
        Ok(())
    }

    fn prune(&mut self) {
        let upto = self.last - LOG_KEEP;
        if upto <= self.pruned {
            self.last_prune = Instant::now();
            return;
        }
        match self
            .conn
            .execute(&format!("DELETE FROM {LOG_TABLE} WHERE id <= ?1"), [upto])
        {
            Ok(_) => {
                self.pruned = upto;
                self.last_prune = Instant::now();
            }
            Err(err) => {
                tracing::warn!(
                    error = &err as &dyn std::error::Error,
                    "cannot prune the change log; will retry"
                );
                self.last_prune = Instant::now();
            }
        }
    }
}

/// A change log row (a JSON object by column name) as values in `schema`'s column order. The
/// triggers write valid JSON; a row someone else wrote badly is logged and read as all `NULL`.
fn decode(schema: &TableSchema, json: &str) -> Vec<SqlValue> {
    let object: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(json) {
        Ok(object) => object,
        Err(err) => {
            tracing::warn!(table = %schema.name, error = %err, "a change log row is not a JSON object");
            serde_json::Map::new()
        }
    };
    schema
        .columns
        .iter()
        .map(|c| {
            object
                .get(&c.name)
                .map_or(SqlValue::Null, SqlValue::from_json)
        })
        .collect()
}
