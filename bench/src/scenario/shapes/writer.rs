//! The writer: commits stamped rows into the server's SQLite file at a fixed rate, from this
//! process, so they reach the server the way a write from any other process does (its capture
//! sees the commit in the file, not a call).
//!
//! Each row is one transaction (an autocommit `INSERT`) into the demo's `notifications` table,
//! its title [`title`]`(t, seq)`: `t` is the generator's [`Clock`] reading taken just before the
//! statement, `seq` the row's number in the run. The subscribers read the same clock, so
//! commit→receive needs no clock agreement between processes. The time of the statement itself
//! (stamp to commit returned) is measured apart ([`WriterTally::commit`]) so it can be told from
//! the server's part.
//!
//! The connection commits with `synchronous = NORMAL` (in WAL mode a commit appends to the log
//! and skips `fsync`): the scenario measures capture and delivery, and a disk's flush time would
//! sit inside every stamp. The schedule is open loop, as the fan-out's publisher: row `n` is due
//! at `n / R` seconds, a late writer catches up, and how late it ran is reported.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::stats::{Clock, Latency};

/// What every row's title starts with, and what subscribers search the messages for.
pub const STAMP: &str = "alight-bench t=";

/// The `sender` column of the writer's rows.
pub const SENDER: &str = "alight-bench";

/// How long a commit waits for the server's own writes (its change-log pruning, say).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const INSERT: &str = "INSERT INTO notifications (user_id, sender, title, body, inserted_at) \
                      VALUES (?1, ?2, ?3, '', ?4)";

/// The title of row `seq`, stamped `t_ns` on the generator's clock.
pub fn title(t_ns: u64, seq: u64) -> String {
    format!("{STAMP}{t_ns} s={seq}")
}

/// Every `(t_ns, seq)` stamp in `text` (a `changes` payload holds one per row); `None` for a
/// stamp that does not read.
pub fn stamps(text: &str) -> impl Iterator<Item = Option<(u64, u64)>> + '_ {
    text.match_indices(STAMP).map(|(at, _)| {
        let rest = &text[at + STAMP.len()..];
        let (t, rest) = leading_number(rest)?;
        let (seq, _) = leading_number(rest.strip_prefix(" s=")?)?;
        Some((t, seq))
    })
}

fn leading_number(text: &str) -> Option<(u64, &str)> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    Some((text[..end].parse().ok()?, &text[end..]))
}

/// Whose row each one is.
#[derive(Debug, Clone)]
pub enum Owners {
    /// Every row is this user's.
    One(String),
    /// Row `n` is user `n mod len`'s.
    RoundRobin(Vec<String>),
}

impl Owners {
    fn of(&self, seq: u64) -> &str {
        match self {
            Owners::One(user) => user,
            Owners::RoundRobin(users) => {
                let at = usize::try_from(seq % users.len().max(1) as u64).unwrap_or(0);
                users.get(at).map_or("", String::as_str)
            }
        }
    }
}

/// What the writer did.
#[derive(Debug, Default)]
pub struct WriterTally {
    /// Rows committed.
    pub sent: u64,
    /// Clock readings of the first and the last row's stamp.
    pub first_ns: u64,
    /// See `first_ns`.
    pub last_ns: u64,
    /// How far behind its schedule the writer stamped a row, at most.
    pub behind_ns: u64,
    /// Stamp to commit returned, per row.
    pub commit: Latency,
    /// Why the writer stopped early.
    pub error: Option<rusqlite::Error>,
}

/// A connection to the server's database, ready to write.
#[derive(Debug)]
pub struct Writer {
    conn: Connection,
}

impl Writer {
    /// Opens `path` (which must exist and hold the `notifications` table) and checks that the
    /// insert prepares, so that a wrong path fails before any client connects.
    pub fn open(path: &Path) -> Result<Writer, rusqlite::Error> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.prepare_cached(INSERT)?;
        Ok(Writer { conn })
    }

    /// Commits `rate` rows a second for `duration`, blocking the thread.
    pub fn run(self, owners: &Owners, rate: u32, duration: Duration, clock: Clock) -> WriterTally {
        let mut tally = WriterTally::default();
        let rate = f64::from(rate.max(1));
        let start = Instant::now();
        let start_ns = clock.now_ns();
        let end = start + duration;
        let result = (|| -> Result<(), rusqlite::Error> {
            let mut insert = self.conn.prepare_cached(INSERT)?;
            loop {
                let now = Instant::now();
                if now >= end {
                    return Ok(());
                }
                let due = (now.duration_since(start).as_secs_f64() * rate) as u64 + 1;
                while tally.sent < due && Instant::now() < end {
                    let seq = tally.sent;
                    let scheduled = start_ns + (seq as f64 * 1e9 / rate) as u64;
                    let t = clock.now_ns();
                    insert.execute(rusqlite::params![
                        owners.of(seq),
                        SENDER,
                        title(t, seq),
                        unix_ms(),
                    ])?;
                    tally.commit.record_ns(clock.now_ns().saturating_sub(t));
                    tally.behind_ns = tally.behind_ns.max(t.saturating_sub(scheduled));
                    if seq == 0 {
                        tally.first_ns = t;
                    }
                    tally.last_ns = t;
                    tally.sent += 1;
                }
                let next = start + Duration::from_secs_f64(tally.sent as f64 / rate);
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        })();
        tally.error = result.err();
        tally
    }
}

/// Milliseconds since the Unix epoch, for the row's `inserted_at`.
fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_found_wherever_the_titles_sit() {
        let payload = format!(
            r#"{{"messages":[{{"value":{{"title":"{}"}}}},{{"value":{{"sender":"{SENDER}","title":"{}"}}}}]}}"#,
            title(123_456, 0),
            title(7, 41)
        );
        let found: Vec<_> = stamps(&payload).collect();
        assert_eq!(found, vec![Some((123_456, 0)), Some((7, 41))]);
        assert_eq!(
            stamps(&format!("{STAMP}x s=1")).collect::<Vec<_>>(),
            vec![None]
        );
        assert_eq!(stamps("no rows").count(), 0);
    }

    #[test]
    fn owners_round_robin() {
        let users = Owners::RoundRobin(vec!["u0".into(), "u1".into(), "u2".into()]);
        assert_eq!(
            (0..5).map(|n| users.of(n)).collect::<Vec<_>>(),
            ["u0", "u1", "u2", "u0", "u1"]
        );
        assert_eq!(Owners::One("u0".into()).of(9), "u0");
    }

    #[test]
    fn commits_on_schedule_into_a_file() -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("alight-bench-writer-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("w.db");
        let _ = std::fs::remove_file(&path);
        Connection::open(&path)?.execute_batch(
            "CREATE TABLE notifications (id INTEGER PRIMARY KEY, user_id TEXT, sender TEXT, \
             title TEXT, body TEXT, inserted_at INTEGER)",
        )?;
        let writer = Writer::open(&path)?;
        let owners = Owners::RoundRobin(vec!["a".into(), "b".into()]);
        let tally = writer.run(&owners, 200, Duration::from_millis(100), Clock::start());
        assert!(tally.error.is_none(), "{:?}", tally.error);
        // 20 are due in 100 ms; the first is due at once.
        assert!((1..=21).contains(&tally.sent), "{}", tally.sent);
        let conn = Connection::open(&path)?;
        let rows: Vec<(String, String)> = conn
            .prepare("SELECT user_id, title FROM notifications ORDER BY id")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        assert_eq!(rows.len() as u64, tally.sent);
        for (n, (user, title)) in rows.iter().enumerate() {
            assert_eq!(user, if n % 2 == 0 { "a" } else { "b" });
            let (_, seq) = stamps(title).next().flatten().ok_or("a stamp")?;
            assert_eq!(seq, n as u64);
        }
        assert!(Writer::open(&dir.join("missing.db")).is_err());
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
