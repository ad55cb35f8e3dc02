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
//! The lock also orders the channel's events: callers publish a change *inside* the closure, after
//! its commit and before the next operation starts, so a user's `notification` events leave in id
//! order and a `read` event can never overtake a `notification` it does not cover. A panic inside
//! a closure rolls its transaction back as it unwinds, so a poisoned lock still guards a sound
//! connection and is taken over rather than propagated.
//!
//! # What clients read
//! Nothing here reads rows for clients: they follow the `notifications` table as a shape
//! (`alight_sync`, see [`crate::shapes`]), which captures every committed change to the file,
//! this store's and anyone else's, and resumes a client that was away.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use alight_demo_schema::Notification;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// The schema, one step per entry; `PRAGMA user_version` is how many have been applied.
///
/// `AUTOINCREMENT` keeps ids from ever being reused (even after deletes): a notification's id
/// names it for good, in toasts and in the shape's row keys.
const MIGRATIONS: &[&str] = &[
    "
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
",
    "
    ALTER TABLE notifications ADD COLUMN sender TEXT NOT NULL DEFAULT 'system';
",
];

/// How long a statement waits for a lock held by another process (the `sqlite3` shell, say).
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

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

/// What [`Db::mark_read`] and [`Db::delete`] found.
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

/// What [`Db::delete`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delete {
    /// The user has no notification with that id.
    NotFound,
    /// It is deleted; `unread` is the count after.
    Deleted {
        /// Unread notifications left.
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
            // Several nodes of one service may open the file at the same moment.
            alight_sync::capture::enable_wal(&conn)?;
            Ok(conn)
        };
        let conn = open().map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Db::with_connection(conn)
    }

    /// A private in-memory database, migrated (for tests, and for reading the schema:
    /// `alight-demo --emit-ts`).
    pub fn open_in_memory() -> Result<Db, StoreError> {
        Db::with_connection(Connection::open_in_memory()?)
    }

    /// The connection, to read the schema.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn with_connection(conn: Connection) -> Result<Db, StoreError> {
        let mut db = Db { conn };
        db.migrate()?;
        Ok(db)
    }

    /// Applies the migrations this database lacks, each in its own transaction.
    ///
    /// Each step reads `user_version` inside an `IMMEDIATE` transaction, which holds SQLite's
    /// write lock from its start: processes that open the same file at once (several nodes of
    /// one service) take turns, and a step another process applied meanwhile is not run twice.
    fn migrate(&mut self) -> Result<(), StoreError> {
        let known = MIGRATIONS.len();
        loop {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let applied: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
            let version = match usize::try_from(applied) {
                Ok(version) if version <= known => version,
                _ => {
                    return Err(StoreError::TooNew {
                        found: applied,
                        known,
                    });
                }
            };
            let Some(sql) = MIGRATIONS.get(version) else {
                return Ok(());
            };
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", version as i64 + 1)?;
            tx.commit()?;
        }
    }

    /// The SQLite journal mode in force (`wal` once opened from a file).
    #[cfg(test)]
    fn journal_mode(&self) -> Result<String, StoreError> {
        Ok(self
            .conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))?)
    }

    /// Stores a new, unread notification for `user_id` from `sender` and returns it.
    pub fn insert(
        &mut self,
        user_id: &str,
        sender: &str,
        title: &str,
        body: &str,
        now_ms: i64,
    ) -> Result<Notification, StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO notifications (user_id, sender, title, body, inserted_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![user_id, sender, title, body, now_ms],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(Notification {
            id,
            title: title.to_owned(),
            body: body.to_owned(),
            inserted_at: now_ms,
            read: false,
            sender: sender.to_owned(),
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

    /// Deletes notification `id` of `user_id`.
    pub fn delete(&mut self, user_id: &str, id: i64) -> Result<Delete, StoreError> {
        let tx = self.conn.transaction()?;
        let deleted = tx.execute(
            "DELETE FROM notifications WHERE id = ?1 AND user_id = ?2",
            params![id, user_id],
        )?;
        let outcome = if deleted == 0 {
            Delete::NotFound
        } else {
            Delete::Deleted {
                unread: unread_count(&tx, user_id)?,
            }
        };
        tx.commit()?;
        Ok(outcome)
    }

    /// How many notifications of `user_id` are unread.
    pub fn unread(&self, user_id: &str) -> Result<u32, StoreError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
            db.insert("alice", "bob", "one", "", 1)?
        };
        let mut db = Db::open(&path)?;
        assert_eq!(db.unread("alice")?, 1);
        // Ids are never reused: the next row gets a greater id, even after a delete.
        assert_eq!(db.delete("alice", first.id)?, Delete::Deleted { unread: 0 });
        assert!(db.insert("alice", "bob", "two", "", 2)?.id > first.id);
        drop(db);
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn processes_opening_one_file_at_once_all_start() -> TestResult {
        // Nodes of one service share the data folder and may start together: each must migrate
        // or find the schema migrated, never fail on the other's `CREATE TABLE`.
        let dir = temp_dir("together")?;
        let path = dir.join("alight.db");
        let start = Arc::new(std::sync::Barrier::new(4));
        let openers: Vec<_> = (0..4)
            .map(|_| {
                let (path, start) = (path.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    Db::open(&path).map(|_| ())
                })
            })
            .collect();
        for opener in openers {
            let opened = opener.join().map_err(|_| "an opener panicked")?;
            assert!(opened.is_ok(), "{opened:?}");
        }
        let mut db = Db::open(&path)?;
        db.insert("alice", "bob", "one", "", 1)?;
        assert_eq!(db.unread("alice")?, 1);
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
                    known: 2
                }
            ),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn a_database_of_the_first_schema_gets_senders() -> TestResult {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(MIGRATIONS[0])?;
        conn.pragma_update(None, "user_version", 1)?;
        conn.execute(
            "INSERT INTO notifications (user_id, title, body, inserted_at) VALUES ('a', 't', '', 1)",
            [],
        )?;
        let db = Db::with_connection(conn)?;
        let sender: String = db
            .conn
            .query_row("SELECT sender FROM notifications", [], |row| row.get(0))?;
        assert_eq!(sender, "system");
        Ok(())
    }

    #[test]
    fn mark_read_mark_all_read_and_delete() -> TestResult {
        let mut db = Db::open_in_memory()?;
        let a = db.insert("alice", "system", "a", "", 1)?;
        let b = db.insert("alice", "carol", "b", "", 2)?;
        let bobs = db.insert("bob", "system", "b", "", 3)?;
        db.insert("alice", "system", "c", "", 4)?;
        assert_eq!(b.sender, "carol");

        assert_eq!(
            db.mark_read("alice", a.id, 10)?,
            MarkRead::Marked { unread: 2 }
        );
        assert_eq!(
            db.mark_read("alice", a.id, 11)?,
            MarkRead::AlreadyRead { unread: 2 }
        );
        // Bob's notification is not alice's to mark or delete, nor is an id that does not exist.
        assert_eq!(db.mark_read("alice", bobs.id, 12)?, MarkRead::NotFound);
        assert_eq!(db.mark_read("alice", 9999, 12)?, MarkRead::NotFound);
        assert_eq!(db.delete("alice", bobs.id)?, Delete::NotFound);
        assert_eq!(db.unread("bob")?, 1);

        assert_eq!(db.delete("alice", b.id)?, Delete::Deleted { unread: 1 });
        assert_eq!(db.delete("alice", b.id)?, Delete::NotFound);
        assert_eq!(db.mark_all_read("alice", 20)?, 1);
        assert_eq!(db.unread("alice")?, 0);
        assert_eq!(db.mark_all_read("alice", 21)?, 0);
        assert_eq!(db.unread("bob")?, 1);
        Ok(())
    }

    #[tokio::test]
    async fn store_calls_run_off_the_runtime_and_survive_a_panic() -> TestResult {
        let store = Store::new(Db::open_in_memory()?);
        store
            .call(|db| db.insert("alice", "system", "hi", "", now_ms()))
            .await?;
        let err = store
            .call(|_db| -> Result<(), StoreError> { panic!("boom") })
            .await
            .expect_err("the panic is reported");
        assert!(matches!(err, StoreError::Task(_)));
        // The lock was poisoned by the panic, and the store still works.
        assert_eq!(store.call(|db| db.unread("alice")).await?, 1);
        Ok(())
    }
}
