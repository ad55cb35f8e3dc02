//! The notification store: SQLite in `<data>/alight.db`, the source of truth for notifications.
//!
//! [`Db`] is the synchronous store over one connection: it opens the file in WAL mode, brings the
//! schema up to date (`PRAGMA user_version` counts the [`MIGRATIONS`] applied) and runs every
//! operation in a transaction. [`Store`] is its async handle: [`Store::call`] runs a closure on
//! tokio's blocking pool with the connection locked.
//!
//! # Why a mutex on the blocking pool
//! SQLite calls block on the disk (a commit waits for `fsync`), and they must not run on the
//! runtime's worker threads: on a 2-core machine there are two, and a blocked one stalls every
//! socket it drives. `spawn_blocking` moves them off. One connection behind a `std::sync::Mutex`
//! is enough: SQLite admits one writer at a time anyway, reads are short indexed queries, and the
//! lock is held only inside the blocking closure, never across an `.await`.
//!
//! The lock also orders broadcasts: callers publish a change *inside* the closure, after its commit
//! and before the next operation starts, so a user's `notification` events leave in id order and a
//! `read` event can never overtake a `notification` it does not cover. A panic inside a closure
//! rolls its transaction back as it unwinds, so a poisoned lock still guards a sound connection and
//! is taken over rather than propagated.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use alight_demo_schema::{
    LATEST_LIMIT, MISSED_BYTES_LIMIT, MISSED_LIMIT, Notification, NotificationsJoined,
};
use rusqlite::{Connection, OptionalExtension, Row, params};

/// The schema, one step per entry; `PRAGMA user_version` is how many have been applied.
///
/// `AUTOINCREMENT` keeps ids from ever being reused (even after deletes), which is what makes a
/// client's `last_seen_id` a safe bookmark.
const MIGRATIONS: &[&str] = &["
    CREATE TABLE notifications (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id     TEXT    NOT NULL,
        title       TEXT    NOT NULL,
        body        TEXT    NOT NULL,
        inserted_at INTEGER NOT NULL, -- ms since the Unix epoch
        read_at     INTEGER           -- ms since the Unix epoch; NULL while unread
    );
    CREATE INDEX notifications_by_user ON notifications (user_id, id);
    CREATE INDEX notifications_unread ON notifications (user_id) WHERE read_at IS NULL;
"];

/// How long a statement waits for a lock held by another process (the `sqlite3` shell, say).
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The columns [`notification`] reads, in order.
const COLUMNS: &str = "id, title, body, inserted_at, read_at IS NOT NULL";

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file could not be opened or set up.
    #[error("cannot open the database {}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer build, whose schema this one does not know.
    #[error(
        "the database has schema version {found} but this build knows only {known}: \
         run a newer alight-demo or use another --data directory"
    )]
    TooNew {
        /// The database's `user_version`.
        found: i64,
        /// How many migrations this build has.
        known: usize,
    },
    /// A query failed.
    #[error("database query failed")]
    Sqlite(#[from] rusqlite::Error),
    /// The blocking task running the operation panicked or was cancelled.
    #[error("the database task did not finish")]
    Task(#[source] tokio::task::JoinError),
}

/// What [`Db::mark_read`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkRead {
    /// The user has no notification with that id.
    NotFound,
    /// It was unread and now is read; `unread` is the count after.
    Marked {
        /// Unread notifications left.
        unread: u32,
    },
    /// It was read already; nothing changed.
    AlreadyRead {
        /// Unread notifications.
        unread: u32,
    },
}

/// The synchronous store over one SQLite connection.
#[derive(Debug)]
pub struct Db {
    conn: Connection,
}

impl Db {
    /// Opens (creating if needed) the database at `path` in WAL mode and migrates it.
    pub fn open(path: &Path) -> Result<Db, StoreError> {
        let open = || -> Result<Connection, rusqlite::Error> {
            let conn = Connection::open(path)?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            // WAL: readers never block the writer; the mode is stored in the file. The default
            // `synchronous = FULL` stays: a broadcast notification must survive a power cut.
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| {
                row.get::<_, String>(0)
            })?;
            Ok(conn)
        };
        let conn = open().map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Db::with_connection(conn)
    }

    /// A private in-memory database, migrated (for tests).
    #[cfg(test)]
    pub fn open_in_memory() -> Result<Db, StoreError> {
        Db::with_connection(Connection::open_in_memory()?)
    }

    fn with_connection(conn: Connection) -> Result<Db, StoreError> {
        let mut db = Db { conn };
        db.migrate()?;
        Ok(db)
    }

    /// Applies the migrations this database lacks, each in its own transaction.
    fn migrate(&mut self) -> Result<(), StoreError> {
        let applied: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))?;
        let known = MIGRATIONS.len();
        let Ok(start) = usize::try_from(applied) else {
            return Err(StoreError::TooNew {
                found: applied,
                known,
            });
        };
        if start > known {
            return Err(StoreError::TooNew {
                found: applied,
                known,
            });
        }
        for (version, sql) in MIGRATIONS.iter().enumerate().skip(start) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", version as i64 + 1)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// The SQLite journal mode in force (`wal` once opened from a file).
    #[cfg(test)]
    fn journal_mode(&self) -> Result<String, StoreError> {
        Ok(self
            .conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))?)
    }

    /// Stores a new, unread notification for `user_id` and returns it.
    pub fn insert(
        &mut self,
        user_id: &str,
        title: &str,
        body: &str,
        now_ms: i64,
    ) -> Result<Notification, StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO notifications (user_id, title, body, inserted_at) VALUES (?1, ?2, ?3, ?4)",
            params![user_id, title, body, now_ms],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(Notification {
            id,
            title: title.to_owned(),
            body: body.to_owned(),
            inserted_at: now_ms,
            read: false,
        })
    }

    /// What a join of `notifications:<user_id>` answers, read in one transaction: the unread
    /// count, the latest [`LATEST_LIMIT`] and, given `last_seen_id`, every newer notification
    /// (or [`gap`](NotificationsJoined::gap) past [`MISSED_LIMIT`] or [`MISSED_BYTES_LIMIT`]).
    pub fn snapshot(
        &mut self,
        user_id: &str,
        last_seen_id: Option<i64>,
    ) -> Result<NotificationsJoined, StoreError> {
        let tx = self.conn.transaction()?;
        let unread = unread_count(&tx, user_id)?;
        let latest = query(
            &tx,
            &format!(
                "SELECT {COLUMNS} FROM notifications WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2"
            ),
            params![user_id, LATEST_LIMIT as i64],
        )?;
        let (missed, gap) = match last_seen_id {
            None => (Vec::new(), false),
            Some(last) => {
                let missed = query(
                    &tx,
                    &format!(
                        "SELECT {COLUMNS} FROM notifications WHERE user_id = ?1 AND id > ?2 \
                         ORDER BY id LIMIT ?3"
                    ),
                    params![user_id, last, MISSED_LIMIT as i64 + 1],
                )?;
                if missed.len() > MISSED_LIMIT || json_bytes(&missed) > MISSED_BYTES_LIMIT {
                    (Vec::new(), true)
                } else {
                    (missed, false)
                }
            }
        };
        tx.commit()?;
        Ok(NotificationsJoined {
            unread,
            latest,
            missed,
            gap,
        })
    }

    /// Marks notification `id` of `user_id` read.
    pub fn mark_read(
        &mut self,
        user_id: &str,
        id: i64,
        now_ms: i64,
    ) -> Result<MarkRead, StoreError> {
        let tx = self.conn.transaction()?;
        let was_read: Option<bool> = tx
            .query_row(
                "SELECT read_at IS NOT NULL FROM notifications WHERE id = ?1 AND user_id = ?2",
                params![id, user_id],
                |row| row.get(0),
            )
            .optional()?;
        let outcome = match was_read {
            None => MarkRead::NotFound,
            Some(true) => MarkRead::AlreadyRead {
                unread: unread_count(&tx, user_id)?,
            },
            Some(false) => {
                tx.execute(
                    "UPDATE notifications SET read_at = ?1 WHERE id = ?2",
                    params![now_ms, id],
                )?;
                MarkRead::Marked {
                    unread: unread_count(&tx, user_id)?,
                }
            }
        };
        tx.commit()?;
        Ok(outcome)
    }

    /// Marks every notification of `user_id` read; returns how many were unread.
    pub fn mark_all_read(&mut self, user_id: &str, now_ms: i64) -> Result<usize, StoreError> {
        let tx = self.conn.transaction()?;
        let changed = tx.execute(
            "UPDATE notifications SET read_at = ?1 WHERE user_id = ?2 AND read_at IS NULL",
            params![now_ms, user_id],
        )?;
        tx.commit()?;
        Ok(changed)
    }

    /// How many notifications of `user_id` are unread.
    #[cfg(test)]
    fn unread(&self, user_id: &str) -> Result<u32, StoreError> {
        unread_count(&self.conn, user_id)
    }
}

fn unread_count(conn: &Connection, user_id: &str) -> Result<u32, StoreError> {
    let count: i64 = conn.query_row(
        "SELECT COUNT(*) FROM notifications WHERE user_id = ?1 AND read_at IS NULL",
        params![user_id],
        |row| row.get(0),
    )?;
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

fn query(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Notification>, StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    let rows = statement.query_map(params, notification)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A [`Notification`] from a row of [`COLUMNS`].
fn notification(row: &Row<'_>) -> rusqlite::Result<Notification> {
    Ok(Notification {
        id: row.get(0)?,
        title: row.get(1)?,
        body: row.get(2)?,
        inserted_at: row.get(3)?,
        read: row.get(4)?,
    })
}

/// The async handle to a [`Db`]; cheap to clone. See the [module docs](self) for why a mutex on
/// the blocking pool.
#[derive(Debug, Clone)]
pub struct Store {
    /// Locked only by [`Store::call`], inside a blocking-pool thread.
    db: Arc<Mutex<Db>>,
}

impl Store {
    /// A handle over `db`.
    pub fn new(db: Db) -> Self {
        Store {
            db: Arc::new(Mutex::new(db)),
        }
    }

    /// Runs `operation` with the database locked, on tokio's blocking pool.
    ///
    /// Whatever `operation` does after its commit (publishing the change) happens before any other
    /// operation starts.
    pub async fn call<T, F>(&self, operation: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Db) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let mut db = db.lock().unwrap_or_else(PoisonError::into_inner);
            operation(&mut db)
        })
        .await
        .map_err(StoreError::Task)?
    }
}

/// Milliseconds since the Unix epoch, for `inserted_at` and `read_at`.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// How many bytes `notifications` take as JSON; one that cannot be written counts as too many.
fn json_bytes(notifications: &[Notification]) -> usize {
    notifications
        .iter()
        .map(|n| serde_json::to_vec(n).map_or(usize::MAX, |json| json.len()))
        .fold(0, usize::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alight_demo_schema::MAX_BODY_CHARS;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn temp_dir(name: &str) -> std::io::Result<PathBuf> {
        let dir = std::env::temp_dir().join(format!("alight-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    #[test]
    fn opens_a_file_in_wal_mode_and_keeps_rows_across_reopens() -> TestResult {
        let dir = temp_dir("reopen")?;
        let path = dir.join("alight.db");
        let first = {
            let mut db = Db::open(&path)?;
            assert_eq!(db.journal_mode()?, "wal");
            db.insert("alice", "one", "", 1)?
        };
        let mut db = Db::open(&path)?;
        let snapshot = db.snapshot("alice", None)?;
        assert_eq!(snapshot.latest, vec![first]);
        assert_eq!(snapshot.unread, 1);
        // Ids are never reused: the next row gets a greater id.
        assert!(db.insert("alice", "two", "", 2)?.id > snapshot.latest[0].id);
        drop(db);
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn refuses_a_database_from_a_newer_build() -> TestResult {
        let conn = Connection::open_in_memory()?;
        conn.pragma_update(None, "user_version", 99)?;
        let err = Db::with_connection(conn).expect_err("must refuse");
        assert!(
            matches!(
                err,
                StoreError::TooNew {
                    found: 99,
                    known: 1
                }
            ),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn snapshot_has_unread_latest_and_missed() -> TestResult {
        let mut db = Db::open_in_memory()?;
        let mut ids = Vec::new();
        for n in 0..25 {
            ids.push(db.insert("alice", &format!("n{n}"), "body", n)?.id);
            db.insert("bob", "not alice's", "", n)?;
        }
        let snapshot = db.snapshot("alice", None)?;
        assert_eq!(snapshot.unread, 25);
        assert_eq!(snapshot.latest.len(), LATEST_LIMIT);
        // Newest first.
        assert_eq!(snapshot.latest[0].id, ids[24]);
        assert_eq!(snapshot.latest[0].title, "n24");
        assert!(snapshot.missed.is_empty());
        assert!(!snapshot.gap);

        // A rejoin after id #21 gets #22..#24, oldest first.
        let snapshot = db.snapshot("alice", Some(ids[21]))?;
        let missed: Vec<i64> = snapshot.missed.iter().map(|n| n.id).collect();
        assert_eq!(missed, ids[22..].to_vec());
        assert!(!snapshot.gap);

        // Nothing newer than the last one.
        assert!(db.snapshot("alice", Some(ids[24]))?.missed.is_empty());
        // Another user's view is theirs alone.
        assert_eq!(
            db.snapshot("carol", Some(0))?,
            NotificationsJoined::default()
        );
        Ok(())
    }

    #[test]
    fn too_many_missed_is_a_gap() -> TestResult {
        let mut db = Db::open_in_memory()?;
        for n in 0..=MISSED_LIMIT as i64 {
            db.insert("alice", "n", "", n)?;
        }
        let snapshot = db.snapshot("alice", Some(0))?;
        assert!(snapshot.gap);
        assert!(snapshot.missed.is_empty());
        assert_eq!(snapshot.latest.len(), LATEST_LIMIT);
        // Exactly MISSED_LIMIT is not a gap.
        let first = snapshot.latest.last().map_or(0, |n| n.id);
        let all = db.snapshot(
            "alice",
            Some(first - (MISSED_LIMIT as i64 - LATEST_LIMIT as i64) - 1),
        )?;
        assert!(!all.gap);
        assert_eq!(all.missed.len(), MISSED_LIMIT);
        Ok(())
    }

    #[test]
    fn missed_rows_past_the_byte_budget_are_a_gap() -> TestResult {
        // Control characters escape to six bytes each: 100 bodies of 4,000 would make a reply of
        // 2.4 MB, far past the server's join reply limit, though under MISSED_LIMIT rows.
        let mut db = Db::open_in_memory()?;
        let body = "\u{1}".repeat(MAX_BODY_CHARS);
        for n in 0..100 {
            db.insert("alice", "n", &body, n)?;
        }
        let snapshot = db.snapshot("alice", Some(0))?;
        assert!(snapshot.gap);
        assert!(snapshot.missed.is_empty());
        // A few such rows still fit, and are caught up on.
        let last = snapshot.latest.first().map_or(0, |n| n.id);
        let few = db.snapshot("alice", Some(last - 5))?;
        assert!(!few.gap);
        assert_eq!(few.missed.len(), 5);
        let reply = serde_json::to_vec(&few)?;
        assert!(reply.len() < 1024 * 1024, "{} bytes", reply.len());
        Ok(())
    }

    #[test]
    fn mark_read_and_mark_all_read() -> TestResult {
        let mut db = Db::open_in_memory()?;
        let a = db.insert("alice", "a", "", 1)?;
        let b = db.insert("alice", "b", "", 2)?;
        let bobs = db.insert("bob", "b", "", 3)?;
        db.insert("alice", "c", "", 4)?;

        assert_eq!(
            db.mark_read("alice", a.id, 10)?,
            MarkRead::Marked { unread: 2 }
        );
        assert_eq!(
            db.mark_read("alice", a.id, 11)?,
            MarkRead::AlreadyRead { unread: 2 }
        );
        // Bob's notification is not alice's to mark, nor is an id that does not exist.
        assert_eq!(db.mark_read("alice", bobs.id, 12)?, MarkRead::NotFound);
        assert_eq!(db.mark_read("alice", 9999, 12)?, MarkRead::NotFound);
        assert_eq!(db.unread("bob")?, 1);

        let snapshot = db.snapshot("alice", None)?;
        let read: Vec<(i64, bool)> = snapshot.latest.iter().map(|n| (n.id, n.read)).collect();
        assert!(read.contains(&(a.id, true)) && read.contains(&(b.id, false)));

        assert_eq!(db.mark_all_read("alice", 20)?, 2);
        assert_eq!(db.unread("alice")?, 0);
        assert_eq!(db.mark_all_read("alice", 21)?, 0);
        assert_eq!(db.unread("bob")?, 1);
        Ok(())
    }

    #[tokio::test]
    async fn store_calls_run_off_the_runtime_and_survive_a_panic() -> TestResult {
        let store = Store::new(Db::open_in_memory()?);
        let n = store
            .call(|db| db.insert("alice", "hi", "", now_ms()))
            .await?;
        let err = store
            .call(|_db| -> Result<(), StoreError> { panic!("boom") })
            .await
            .expect_err("the panic is reported");
        assert!(matches!(err, StoreError::Task(_)));
        // The lock was poisoned by the panic, and the store still works.
        let snapshot = store.call(|db| db.snapshot("alice", None)).await?;
        assert_eq!(snapshot.latest, vec![n]);
        Ok(())
    }
}
