//! `shapes`: S Phoenix clients follow a shape of the demo's `notifications` over the socket's
//! `shape:notifications` channel while a writer in this process commits R rows a second into the
//! demo's SQLite file; commit→receive latency and rows missing, duplicated or out of order.
//!
//! The server side is `alight-demo`: its login is password-less, so each client logs in with
//! `POST /api/login {user_id}` and connects with `?token=<token>`; the channel adds
//! `user_id = <the token's user>` to every shape. Two modes:
//!
//! | mode | clients log in as | the writer's rows | each client expects |
//! |---|---|---|---|
//! | `one-shape` | `u0`, all S of them (one shape, S subscribers) | all `u0`'s | every row |
//! | `per-user` | `u0` … `u<S-1>` (S shapes of one subscriber) | row `n` is `u<n mod S>`'s | its own rows, none of another user's |
//!
//! Each client joins `shape:notifications` with `{}`, pulls the snapshot with `more` while the
//! reply says `more: true` (a fresh database has none), and from then on reads `changes`
//! broadcasts. Once every client has joined, the [`writer`] commits rows for `duration`
//! (see its docs for how a row is stamped and why the writer is in this process and not in the
//! server), then the run waits for the rows in flight as the fan-out does: until every client has
//! every row it expects, no row arrived for [`QUIET`], or `drain` is over.
//!
//! The writer appends to the file the demo serves: give each run a fresh `--data` directory, or
//! the next run's clients page through the last run's rows at join.

mod login;
pub mod writer;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Better, Env, Failures, GATHER_LIMIT, Metric, Outcome, collect, cpu_note, cpu_per};
use crate::conn::{Client, ClientError, STEP_TIMEOUT, Target};
use crate::stats::{Clock, Latency, per_second};
use crate::wire::{Incoming, Protocol};
use writer::{Owners, Writer, WriterTally};

pub use login::login;

/// The channel every client joins.
pub const TOPIC: &str = "shape:notifications";
/// The drain ends early when no row arrived for this long.
pub const QUIET: Duration = Duration::from_secs(1);
/// phoenix.js's heartbeat interval: a long run must not look idle to the server.
const HEARTBEAT: Duration = Duration::from_secs(30);

/// Who the clients are and whose rows the writer commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every client is user `u0`: one shape with S subscribers.
    OneShape,
    /// Client `i` is user `u<i>`: S shapes, rows spread over them.
    PerUser,
}

impl Mode {
    /// The name on the command line and in case labels.
    pub fn name(self) -> &'static str {
        match self {
            Mode::OneShape => "one-shape",
            Mode::PerUser => "per-user",
        }
    }
}

/// A mode name that is neither `one-shape` nor `per-user`.
#[derive(Debug, thiserror::Error)]
#[error("unknown mode `{0}`; expected `one-shape` or `per-user`")]
pub struct UnknownMode(String);

impl FromStr for Mode {
    type Err = UnknownMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "one-shape" => Ok(Mode::OneShape),
            "per-user" => Ok(Mode::PerUser),
            other => Err(UnknownMode(other.to_owned())),
        }
    }
}

/// Parameters of a shapes run.
#[derive(Debug, Clone)]
pub struct ShapesParams {
    /// One shape for all, or one per user.
    pub mode: Mode,
    /// Clients following a shape.
    pub subscribers: usize,
    /// Rows committed per second.
    pub rate: u32,
    /// How long the writer commits.
    pub duration: Duration,
    /// Longest wait for rows after the writer stops.
    pub drain: Duration,
    /// The demo's database file, `<data>/alight.db`.
    pub db: PathBuf,
}

impl ShapesParams {
    /// The case label, e.g. `one-shape S=1000 R=100/s`.
    pub fn label(&self) -> String {
        format!(
            "{} S={} R={}/s",
            self.mode.name(),
            self.subscribers,
            self.rate
        )
    }

    /// The user client `index` logs in as.
    pub fn user_of(&self, index: usize) -> String {
        match self.mode {
            Mode::OneShape => user_name(0),
            Mode::PerUser => user_name(index),
        }
    }
}

/// The name of user `index`.
pub fn user_name(index: usize) -> String {
    format!("u{index}")
}

/// What the clients share: counters and the latency histogram.
#[derive(Debug, Default)]
struct Deliveries {
    latency: Latency,
    /// Rows received by clients so far.
    received: AtomicU64,
    /// Clock reading (ns) of the latest row received.
    last_ns: AtomicU64,
}

/// What one client saw.
#[derive(Debug, Default, Clone, Copy)]
struct ClientTally {
    /// Rows received (duplicates included).
    received: u64,
    /// Rows received a second time.
    duplicates: u64,
    /// Rows with a lower number than one received before (commit order is number order).
    out_of_order: u64,
    /// Rows of another user (per-user mode), or numbered past what the writer can have sent.
    foreign: u64,
    /// Stamps that did not read.
    unreadable: u64,
    /// `refetch` broadcasts: the server dropped the shape's log.
    refetches: u64,
    /// The server closed the connection (or it failed) before the end.
    dropped: bool,
}

/// What every client task needs.
#[derive(Debug, Clone)]
struct Setup {
    target: Target,
    mode: Mode,
    subscribers: usize,
    /// Row numbers at or past this are foreign (a garbled stamp must not size a bitmap).
    max_seq: u64,
    clock: Clock,
    /// The one-shape mode's token, shared by every client.
    token: Option<Arc<str>>,
    shared: Arc<Deliveries>,
    permits: Arc<Semaphore>,
    ready: mpsc::UnboundedSender<(usize, Result<(), ClientError>)>,
    stop: CancellationToken,
}

/// Runs one shapes case.
pub async fn run(env: &Env, params: ShapesParams) -> Outcome {
    let not_run = |why: String| Outcome {
        case: params.label(),
        metrics: Vec::new(),
        notes: vec![why],
    };
    if env.target.protocol != Protocol::Phoenix {
        return not_run("not run: shapes is a Phoenix Channels scenario".to_owned());
    }
    let writer = match Writer::open(&params.db) {
        Ok(writer) => writer,
        Err(err) => {
            return not_run(format!(
                "not run: cannot write into {}: {err}",
                params.db.display()
            ));
        }
    };
    let token = match params.mode {
        Mode::PerUser => None,
        Mode::OneShape => match login(env.target.addr, env.sources.next(), &user_name(0)).await {
            Ok(token) => Some(Arc::from(token)),
            Err(err) => {
                return not_run(format!(
                    "not run: login failed: {}",
                    super::error_chain(&err)
                ));
            }
        },
    };

    let shared = Arc::new(Deliveries::default());
    let stop = CancellationToken::new();
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let setup = Setup {
        target: env.target,
        mode: params.mode,
        subscribers: params.subscribers,
        max_seq: u64::from(params.rate)
            .saturating_mul(params.duration.as_secs() + 2)
            .saturating_add(1_000),
        clock: env.clock,
        token,
        shared: shared.clone(),
        permits: Arc::new(Semaphore::new(env.connect_concurrency.max(1))),
        ready: ready_tx,
        stop: stop.clone(),
    };
    let begun = Instant::now();
    let handles: Vec<_> = (0..params.subscribers)
        .map(|index| {
            let user = params.user_of(index);
            let source = env.sources.next();
            tokio::spawn(follow(index, user, source, setup.clone()))
        })
        .collect();
    drop(setup);

    // Every client joined or failed.
    let mut joined = vec![false; params.subscribers];
    let mut failures = Failures::default();
    let deadline = begun + GATHER_LIMIT;
    for _ in 0..params.subscribers {
        match tokio::time::timeout_at(deadline, ready_rx.recv()).await {
            Ok(Some((index, Ok(())))) => joined[index] = true,
            Ok(Some((_, Err(err)))) => failures.add(&err),
            Ok(None) | Err(_) => break,
        }
    }
    let joined_count = joined.iter().filter(|j| **j).count();
    let join_time = begun.elapsed();
    let answered = joined_count + usize::try_from(failures.total()).unwrap_or(usize::MAX);
    if answered < params.subscribers {
        let missing = params.subscribers - answered;
        failures.add_many(
            "timeout",
            missing as u64,
            format!("{missing} clients neither joined nor failed within {GATHER_LIMIT:?}"),
        );
    }
    let mut notes: Vec<String> = failures.note("logins and joins").into_iter().collect();

    // The measured phase: the first commit to the end of the drain.
    let cpu = super::ServerCpu::start(env);
    let owners = match params.mode {
        Mode::OneShape => Owners::One(user_name(0)),
        Mode::PerUser => Owners::RoundRobin((0..params.subscribers).map(user_name).collect()),
    };
    let writing = {
        let (rate, duration, clock) = (params.rate, params.duration, env.clock);
        tokio::task::spawn_blocking(move || writer.run(&owners, rate, duration, clock))
    };
    let tally = match writing.await {
        Ok(tally) => tally,
        Err(err) => {
            notes.push(format!("the writer failed: {err}"));
            WriterTally::default()
        }
    };
    let expected = expected_rows(params.mode, &joined, tally.sent);
    let drain_end = Instant::now() + params.drain;
    let mut last_seen = (shared.received.load(Ordering::Relaxed), Instant::now());
    loop {
        let received = shared.received.load(Ordering::Relaxed);
        let now = Instant::now();
        if received >= expected || now >= drain_end {
            break;
        }
        if received != last_seen.0 {
            last_seen = (received, now);
        } else if now - last_seen.1 >= QUIET {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cpu_spent = cpu.stop(env);
    let delivered = shared.received.load(Ordering::Relaxed);
    stop.cancel();
    let clients = collect(handles, Duration::from_secs(10)).await;

    let sum = |f: fn(&ClientTally) -> u64| clients.iter().map(f).sum::<u64>();
    let received = sum(|c| c.received) - sum(|c| c.duplicates);
    let dropped = clients.iter().filter(|c| c.dropped).count();
    let window_ns = shared
        .last_ns
        .load(Ordering::Relaxed)
        .saturating_sub(tally.first_ns);
    let commit_ns = tally.last_ns.saturating_sub(tally.first_ns);
    let latency = shared.latency.summary();
    let commit = tally.commit.summary();

    let mut metrics = vec![
        Metric::new("clients joined", joined_count as f64, "", Better::Higher),
        Metric::new(
            "join time, all clients",
            join_time.as_secs_f64() * 1000.0,
            "ms",
            Better::Lower,
        ),
        Metric::new(
            "rows committed/s",
            per_second(
                tally.sent.saturating_sub(1),
                Duration::from_nanos(commit_ns),
            ),
            "/s",
            Better::Higher,
        ),
        Metric::new(
            "rows delivered/s",
            per_second(received, Duration::from_nanos(window_ns)),
            "/s",
            Better::Higher,
        ),
        Metric::latency("commit→receive p50", latency.p50_us),
        Metric::latency("commit→receive p99", latency.p99_us),
        Metric::latency("commit→receive max", latency.max_us),
        Metric::latency("writer's commit p99", commit.p99_us),
        Metric::new(
            "missing rows",
            expected.saturating_sub(received) as f64,
            "",
            Better::Lower,
        ),
        Metric::new(
            "duplicate rows",
            sum(|c| c.duplicates) as f64,
            "",
            Better::Lower,
        ),
        Metric::new(
            "rows out of order",
            sum(|c| c.out_of_order) as f64,
            "",
            Better::Lower,
        ),
        Metric::new(
            "rows of another user",
            sum(|c| c.foreign) as f64,
            "",
            Better::Lower,
        ),
        Metric::new("clients dropped", dropped as f64, "", Better::Lower),
    ];
    metrics.extend(cpu_per(
        "server CPU per row delivered",
        cpu_spent,
        delivered,
    ));
    notes.extend(cpu_note(cpu_spent, delivered, "rows delivered"));
    notes.push(format!(
        "{} rows committed for {joined_count} clients: {received} of {expected} rows delivered",
        tally.sent
    ));
    notes.push(format!(
        "the writer stamped a row up to {} ms behind its schedule",
        tally.behind_ns / 1_000_000
    ));
    if let Some(err) = &tally.error {
        notes.push(format!("the writer stopped: {err}"));
    }
    let refetches = sum(|c| c.refetches);
    if refetches > 0 {
        notes.push(format!(
            "{refetches} refetch broadcasts: the server dropped a shape's log"
        ));
    }
    let unreadable = sum(|c| c.unreadable);
    if unreadable > 0 {
        notes.push(format!("{unreadable} row stamps did not read"));
    }
    Outcome {
        case: params.label(),
        metrics,
        notes,
    }
}

/// How many rows the joined clients should receive in all when `sent` rows were committed.
fn expected_rows(mode: Mode, joined: &[bool], sent: u64) -> u64 {
    match mode {
        Mode::OneShape => sent * joined.iter().filter(|j| **j).count() as u64,
        Mode::PerUser => {
            let users = joined.len().max(1) as u64;
            (0..sent)
                .filter(|seq| joined[usize::try_from(seq % users).unwrap_or(0)])
                .count() as u64
        }
    }
}

/// One client: logs in (per user), connects, joins and pages the snapshot, then reads rows until
/// told to stop.
async fn follow(
    index: usize,
    user: String,
    source: std::net::IpAddr,
    s: Setup,
) -> Option<ClientTally> {
    let joined = {
        // The semaphore is never closed, so acquiring only waits.
        let _permit = s.permits.acquire().await;
        join(&user, source, &s).await
    };
    let mut client = match joined {
        Ok(client) => {
            let _ = s.ready.send((index, Ok(())));
            client
        }
        Err(err) => {
            let _ = s.ready.send((index, Err(err)));
            return None;
        }
    };
    let mut tally = ClientTally::default();
    let mut seen = Seen::default();
    let mut heartbeat = tokio::time::interval_at(Instant::now() + HEARTBEAT, HEARTBEAT);
    let stopped = s.stop.cancelled();
    tokio::pin!(stopped);
    loop {
        let message = tokio::select! {
            () = &mut stopped => break,
            _ = heartbeat.tick() => {
                let sent = match client.codec().heartbeat() {
                    Some(text) => client.send(text).await.is_ok(),
                    None => true,
                };
                if !sent {
                    tally.dropped = true;
                    break;
                }
                continue;
            }
            message = client.recv() => message,
        };
        let text = match message {
            Ok(Some(text)) => text,
            Ok(None) | Err(_) => {
                tally.dropped = true;
                break;
            }
        };
        match client.codec().decode(&text) {
            Incoming::Event {
                event: "changes",
                payload,
            } => {
                let now = s.clock.now_ns();
                let mut rows = 0;
                for stamp in writer::stamps(payload) {
                    let Some((t, seq)) = stamp else {
                        tally.unreadable += 1;
                        continue;
                    };
                    let own = match s.mode {
                        Mode::OneShape => true,
                        Mode::PerUser => seq % s.subscribers.max(1) as u64 == index as u64,
                    };
                    if !own || seq >= s.max_seq {
                        tally.foreign += 1;
                        continue;
                    }
                    match seen.insert(seq) {
                        Arrival::New { in_order } => {
                            tally.out_of_order += u64::from(!in_order);
                            s.shared.latency.record_ns(now.saturating_sub(t));
                        }
                        Arrival::Again => tally.duplicates += 1,
                    }
                    tally.received += 1;
                    rows += 1;
                }
                s.shared.received.fetch_add(rows, Ordering::Relaxed);
                s.shared.last_ns.fetch_max(now, Ordering::Relaxed);
            }
            Incoming::Event {
                event: "refetch", ..
            } => tally.refetches += 1,
            Incoming::Event {
                event: "phx_error" | "phx_close",
                ..
            } => {
                tally.dropped = true;
                break;
            }
            _ => {}
        }
    }
    Some(tally)
}

/// Logs `user` in (unless the run shares one token), connects with the token, joins [`TOPIC`]
/// and pulls the snapshot to its end.
async fn join(user: &str, source: std::net::IpAddr, s: &Setup) -> Result<Client, ClientError> {
    let token = match &s.token {
        Some(token) => token.to_string(),
        None => login(s.target.addr, source, user).await?,
    };
    let mut client =
        Client::connect_with_query(s.target, source, &format!("token={token}")).await?;
    let (text, mut awaiting) = client.codec().join_with(TOPIC, "{}");
    client.send(text).await?;
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let text = match tokio::time::timeout_at(deadline, client.recv()).await {
            Ok(Ok(Some(text))) => text,
            Ok(Ok(None)) => {
                return Err(ClientError::Closed {
                    waiting_for: "the snapshot",
                });
            }
            Ok(Err(err)) => return Err(err),
            Err(_) => {
                return Err(ClientError::Timeout {
                    waiting_for: "the snapshot",
                });
            }
        };
        let more = match client.codec().decode(&text) {
            Incoming::Reply {
                msg_ref,
                ok,
                response,
            } if msg_ref == awaiting => {
                if !ok {
                    return Err(ClientError::Refused {
                        what: "the shape join",
                        response: response.to_owned(),
                    });
                }
                response.contains("\"more\":true")
            }
            _ => continue,
        };
        if !more {
            return Ok(client);
        }
        let (text, msg_ref) = client.codec().push(TOPIC, "more", "{}");
        client.send(text).await?;
        awaiting = msg_ref;
    }
}

/// Which row numbers a client has received: a bit per row.
#[derive(Debug, Default)]
struct Seen {
    bits: Vec<u64>,
    /// The highest number received, plus one (0: none yet).
    next: u64,
}

/// A row's arrival at a client.
#[derive(Debug, PartialEq, Eq)]
enum Arrival {
    /// Its first time; `in_order` unless a higher number came before.
    New { in_order: bool },
    /// Received before.
    Again,
}

impl Seen {
    fn insert(&mut self, seq: u64) -> Arrival {
        let word = usize::try_from(seq / 64).expect("row numbers are bounded by max_seq");
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        let bit = 1u64 << (seq % 64);
        if self.bits[word] & bit != 0 {
            return Arrival::Again;
        }
        self.bits[word] |= bit;
        let in_order = seq >= self.next;
        self.next = self.next.max(seq + 1);
        Arrival::New { in_order }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_are_new_again_or_late() {
        let mut seen = Seen::default();
        assert_eq!(seen.insert(0), Arrival::New { in_order: true });
        assert_eq!(seen.insert(200), Arrival::New { in_order: true });
        assert_eq!(seen.insert(5), Arrival::New { in_order: false });
        assert_eq!(seen.insert(200), Arrival::Again);
        assert_eq!(seen.insert(0), Arrival::Again);
    }

    #[test]
    fn expected_rows_follow_the_mode() {
        let joined = [true, false, true, true];
        assert_eq!(expected_rows(Mode::OneShape, &joined, 10), 30);
        // Rows 0..10 over 4 users: u1 (rows 1, 5, 9) never joined.
        assert_eq!(expected_rows(Mode::PerUser, &joined, 10), 7);
        assert_eq!(expected_rows(Mode::PerUser, &[], 0), 0);
    }

    #[test]
    fn modes_and_labels() {
        assert_eq!("per-user".parse::<Mode>().ok(), Some(Mode::PerUser));
        assert!("both".parse::<Mode>().is_err());
        let params = ShapesParams {
            mode: Mode::OneShape,
            subscribers: 1000,
            rate: 100,
            duration: Duration::from_secs(10),
            drain: Duration::from_secs(5),
            db: PathBuf::from("alight.db"),
        };
        assert_eq!(params.label(), "one-shape S=1000 R=100/s");
        assert_eq!(params.user_of(7), "u0");
        let params = ShapesParams {
            mode: Mode::PerUser,
            ..params
        };
        assert_eq!(params.user_of(7), "u7");
    }
}
