//! The four scenarios, each one bounded run against one server, and what they share.
//!
//! - [`idle`]: N connections joined to a topic; connect+join rate; server RSS per connection.
//! - [`fanout`]: S subscribers of one topic, one publisher at a fixed rate or flat out;
//!   deliveries/s, publish→receive latency, missing deliveries.
//! - [`echo`]: C clients pushing `ping` and waiting for each reply; replies/s and latency.
//! - [`churn`]: connect, join, leave, disconnect in a loop; cycles/s; whether server RSS returns.
//! - [`presence`]: M members joining one room under their names; time until every client's
//!   presence list is complete, bytes and messages per client (Alight only, `bench/run --presence`).
//! - [`catchup`]: M clients that missed the same N broadcasts resume at once; time until every one
//!   has caught up, against the same clients joining fresh (Alight's history topics).
//! - [`chaos`]: M clients cut at random every `cut_min..cut_max` while N broadcasts are published;
//!   each resumes with `since` and must end with exactly 1..N (Alight's history topics).
//! - [`retain`]: server RSS per broadcast kept in topic history (Alight's history topics).
//! - [`history`]: what `catchup`, `chaos` and `retain` share: positions, resuming joins, a publisher.
//! - [`shapes`]: S clients following a shape of the demo's notifications over `shape:*` while a
//!   writer commits R rows/s into its SQLite file; commit→receive latency, missing rows (Alight's
//!   demo only, run by hand).
//!
//! Every scenario connects its clients with a bounded number of handshakes in flight (through
//! [`gather`], or on its own where joins carry parameters) and returns an [`Outcome`]: named
//! figures with units, and notes on anything that failed.

pub mod catchup;
pub mod chaos;
pub mod churn;
pub mod echo;
pub mod fanout;
pub mod history;
pub mod idle;
pub mod presence;
pub mod retain;
pub mod shapes;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::conn::{Client, ClientError, Target};
use crate::net::{self, Sources};
use crate::stats::Clock;

/// The topic (socket.io room) every scenario uses.
pub const TOPIC: &str = "room:bench";

/// Handshakes in flight at once while a crowd connects: below the 128 pending connections a
/// listener's default backlog holds (tokio's and std's, and what `ss -ltn` shows for every server
/// here but Node's 511). Above it a busy server's accept queue overflows, the kernel drops the
/// connection attempt, and the client's SYN is retried after a full second, which then shows in
/// connect rates and join times.
pub const CONNECT_CONCURRENCY: usize = 100;

/// What every scenario needs to know about its run.
#[derive(Debug, Clone)]
pub struct Env {
    /// The server under test.
    pub target: Target,
    /// Client source addresses.
    pub sources: Arc<Sources>,
    /// The server's process id, for RSS readings; `None` when it runs in this process.
    pub server_pid: Option<u32>,
    /// WebSocket handshakes in flight at once while connecting a crowd ([`CONNECT_CONCURRENCY`]).
    pub connect_concurrency: usize,
    /// The time base of latency stamps.
    pub clock: Clock,
    /// Where the fan-out's publisher connects, when not to `target`: another node of a cluster,
    /// so that every delivery crosses from one node to the other.
    pub publish_to: Option<Target>,
}

impl Env {
    /// An environment for `target`, with the defaults the suite uses.
    pub fn new(target: Target, sources: Arc<Sources>, server_pid: Option<u32>) -> Self {
        Env {
            target,
            sources,
            server_pid,
            connect_concurrency: CONNECT_CONCURRENCY,
            clock: Clock::start(),
            publish_to: None,
        }
    }

    /// The server's RSS in KiB, when it can be read.
    pub fn server_rss_kib(&self) -> Option<u64> {
        self.server_pid.and_then(|pid| net::rss_kib(pid).ok())
    }

    /// The server's CPU time so far (user and system, all threads), when it can be read. A server
    /// in this process (the tiny runs) is read with the generator's time included.
    pub fn server_cpu_seconds(&self) -> Option<f64> {
        self.server_pid.and_then(|pid| net::cpu_seconds(pid).ok())
    }
}

/// The server's CPU time over a measured phase, per unit of work done in it.
#[derive(Debug, Clone, Copy)]
pub struct ServerCpu {
    before: Option<f64>,
}

impl ServerCpu {
    /// Reads the server's CPU time at the start of the phase.
    pub fn start(env: &Env) -> Self {
        ServerCpu {
            before: env.server_cpu_seconds(),
        }
    }

    /// Reads it at the end: the CPU seconds the phase took, if both readings could be made.
    pub fn stop(self, env: &Env) -> Option<f64> {
        cpu_spent(self.before, env.server_cpu_seconds())
    }
}

/// Seconds between two CPU time readings; `None` if either is missing or time went backwards.
pub fn cpu_spent(before: Option<f64>, after: Option<f64>) -> Option<f64> {
    let spent = after? - before?;
    (spent >= 0.0).then_some(spent)
}

/// The figure `name` (e.g. `server CPU per reply`): `spent` CPU seconds over `count` units of
/// work, in microseconds; `None` if the time is unknown or no work was done.
pub fn cpu_per(name: &str, spent: Option<f64>, count: u64) -> Option<Metric> {
    let spent = spent?;
    (count > 0).then(|| Metric::new(name, spent * 1e6 / count as f64, "µs", Better::Lower))
}

/// The note that gives a CPU figure's reading: what the phase cost in all.
pub fn cpu_note(spent: Option<f64>, count: u64, what: &str) -> Option<String> {
    spent.map(|s| {
        format!(
            "server CPU {s:.2} s (user+system, in 10 ms ticks) for {count} {what} in the measured phase"
        )
    })
}

/// Whether a larger or a smaller value of a figure is the better one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// Throughputs and counts of work done.
    Higher,
    /// Latencies, memory, failures.
    Lower,
}

/// One figure of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// What was measured, e.g. `deliveries/s`.
    pub name: String,
    /// Its value, in `unit`.
    pub value: f64,
    /// `msg/s`, `ms`, `MiB`, `KiB`, a count (empty), or `yes/no` (1 or 0).
    pub unit: String,
    /// Which way is better.
    pub better: Better,
}

impl Metric {
    /// A figure.
    pub fn new(name: &str, value: f64, unit: &str, better: Better) -> Self {
        Metric {
            name: name.to_owned(),
            value,
            unit: unit.to_owned(),
            better,
        }
    }

    /// A latency measured in microseconds, shown in milliseconds.
    pub fn latency(name: &str, micros: u64) -> Self {
        Metric::new(name, micros as f64 / 1000.0, "ms", Better::Lower)
    }
}

/// What a scenario run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The scenario's parameters, e.g. `S=1000 R=100/s`.
    pub case: String,
    /// The figures, in the order the report shows them.
    pub metrics: Vec<Metric>,
    /// Failures and anomalies worth reading next to the figures.
    pub notes: Vec<String>,
}

impl Outcome {
    /// An outcome of `case` with nothing measured yet, for a scenario that speaks Phoenix
    /// Channels only: against another protocol, `Err` with a note saying `scenario` did not run.
    pub fn phoenix_only(env: &Env, case: String, scenario: &str) -> Result<Outcome, Outcome> {
        let mut outcome = Outcome {
            case,
            metrics: Vec::new(),
            notes: Vec::new(),
        };
        if env.target.protocol == crate::wire::Protocol::Phoenix {
            return Ok(outcome);
        }
        outcome.notes.push(format!(
            "not run: {scenario} is a Phoenix Channels scenario"
        ));
        Err(outcome)
    }

    /// The figure called `name`, if measured.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.value)
    }
}

/// Client failures counted by kind, with the first one spelled out.
#[derive(Debug, Default, Clone)]
pub struct Failures {
    by_kind: BTreeMap<&'static str, u64>,
    first: Option<String>,
}

impl Failures {
    /// Counts `err`.
    pub fn add(&mut self, err: &ClientError) {
        *self.by_kind.entry(err.kind()).or_default() += 1;
        if self.first.is_none() {
            self.first = Some(error_chain(err));
        }
    }

    /// Counts `n` failures of `kind`, described by `first` if none came before.
    pub fn add_many(&mut self, kind: &'static str, n: u64, first: String) {
        *self.by_kind.entry(kind).or_default() += n;
        self.first.get_or_insert(first);
    }

    /// Adds another tally to this one.
    pub fn merge(&mut self, other: Failures) {
        for (kind, n) in other.by_kind {
            *self.by_kind.entry(kind).or_default() += n;
        }
        if self.first.is_none() {
            self.first = other.first;
        }
    }

    /// How many failures in all.
    pub fn total(&self) -> u64 {
        self.by_kind.values().sum()
    }

    /// A one-line note for the report, or `None` if nothing failed.
    pub fn note(&self, what: &str) -> Option<String> {
        if self.total() == 0 {
            return None;
        }
        let kinds: Vec<String> = self
            .by_kind
            .iter()
            .map(|(kind, n)| format!("{kind}: {n}"))
            .collect();
        Some(format!(
            "{} {what} failed ({}); first: {}",
            self.total(),
            kinds.join(", "),
            self.first.as_deref().unwrap_or("?")
        ))
    }
}

/// An error and its causes on one line.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A crowd of clients, connected and joined, each running its role on its own task.
#[derive(Debug)]
pub struct Crowd<T> {
    /// One handle per client; each yields the role's result, or `None` if the client never joined.
    pub handles: Vec<JoinHandle<Option<T>>>,
    /// How many joined.
    pub joined: usize,
    /// Why the others did not.
    pub failures: Failures,
    /// From the first connect to the last join answered.
    pub elapsed: Duration,
}

/// Longest a crowd may take to connect, whatever its size: a run never hangs on a stuck server.
pub const GATHER_LIMIT: Duration = Duration::from_secs(90);

/// Connects `n` clients to `env.target`, each joining [`TOPIC`], with at most
/// `env.connect_concurrency` handshakes in flight; then runs `role(index, client)` on each client's
/// task. Returns once every client has joined or failed (or [`GATHER_LIMIT`] passed).
pub async fn gather<F, Fut, T>(env: &Env, n: usize, role: F) -> Crowd<T>
where
    F: Fn(usize, Client) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let permits = Arc::new(Semaphore::new(env.connect_concurrency.max(1)));
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Result<(), ClientError>>();
    let start = Instant::now();
    let mut handles = Vec::with_capacity(n);
    for index in 0..n {
        let permits = permits.clone();
        let ready = ready_tx.clone();
        let role = role.clone();
        let target = env.target;
        let source = env.sources.next();
        handles.push(tokio::spawn(async move {
            let joined = {
                // The semaphore is never closed, so acquiring only waits.
                let _permit = permits.acquire().await;
                match Client::connect(target, source).await {
                    Ok(mut client) => client.join(TOPIC).await.map(|()| client),
                    Err(err) => Err(err),
                }
            };
            match joined {
                Ok(client) => {
                    let _ = ready.send(Ok(()));
                    Some(role(index, client).await)
                }
                Err(err) => {
                    let _ = ready.send(Err(err));
                    None
                }
            }
        }));
    }
    drop(ready_tx);

    let mut joined: usize = 0;
    let mut failures = Failures::default();
    let deadline = tokio::time::Instant::now() + GATHER_LIMIT;
    for _ in 0..n {
        match tokio::time::timeout_at(deadline, ready_rx.recv()).await {
            Ok(Some(Ok(()))) => joined += 1,
            Ok(Some(Err(err))) => failures.add(&err),
            Ok(None) | Err(_) => break,
        }
    }
    let elapsed = start.elapsed();
    let answered = joined.saturating_add(usize::try_from(failures.total()).unwrap_or(usize::MAX));
    let unanswered = n.saturating_sub(answered);
    if unanswered > 0 {
        failures.add_many(
            "timeout",
            unanswered as u64,
            format!("{unanswered} clients neither joined nor failed within {GATHER_LIMIT:?}"),
        );
    }

    Crowd {
        handles,
        joined,
        failures,
        elapsed,
    }
}

/// Awaits the crowd's results, giving up on stragglers after `limit`; clients that never joined
/// have no result.
pub async fn collect<T>(handles: Vec<JoinHandle<Option<T>>>, limit: Duration) -> Vec<T> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut out = Vec::with_capacity(handles.len());
    for mut h in handles {
        match tokio::time::timeout_at(deadline, &mut h).await {
            Ok(Ok(Some(v))) => out.push(v),
            Ok(Ok(None) | Err(_)) => {}
            Err(_) => h.abort(),
        }
    }
    out
}

/// A JSON object of exactly `len` bytes (at least 40) carrying the send time `t` (ns) and a
/// sequence number: `{"t":…,"s":…,"p":"xxxx…"}`.
pub fn stamped_payload(t_ns: u64, seq: u64, len: usize) -> String {
    let head = format!("{{\"t\":{t_ns},\"s\":{seq},\"p\":\"");
    let pad = len.saturating_sub(head.len() + 2);
    let mut text = String::with_capacity(head.len() + pad + 2);
    text.push_str(&head);
    text.extend(std::iter::repeat_n('x', pad));
    text.push_str("\"}");
    text
}

/// The send time `t` of a stamped payload. Searches rather than assumes the key order, since a
/// server that re-serializes the payload (socketioxide does, through `serde_json::Value`) may sort
/// the keys.
pub fn stamp_of(payload: &str) -> Option<u64> {
    let at = payload.find("\"t\":")? + 4;
    crate::wire::scan::number(payload[at..].trim_start()).map(|(n, _)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_per_unit_of_work_is_the_time_spent_over_the_count() {
        let spent = cpu_spent(Some(10.25), Some(12.75));
        assert_eq!(spent, Some(2.5));
        let m = cpu_per("server CPU per reply", spent, 250_000).expect("a figure");
        assert_eq!(m.name, "server CPU per reply");
        assert!((m.value - 10.0).abs() < 1e-9, "{}", m.value);
        assert_eq!((m.unit.as_str(), m.better), ("µs", Better::Lower));
        // Nothing measured, nothing done, or readings out of order: no figure.
        assert_eq!(cpu_spent(None, Some(1.0)), None);
        assert_eq!(cpu_spent(Some(2.0), Some(1.0)), None);
        assert!(cpu_per("x", Some(1.0), 0).is_none());
        assert!(cpu_per("x", None, 10).is_none());
        assert_eq!(
            cpu_note(Some(2.5), 250_000, "replies").as_deref(),
            Some(
                "server CPU 2.50 s (user+system, in 10 ms ticks) for 250000 replies in the measured phase"
            )
        );
    }

    #[test]
    fn payload_is_exact_and_stamped() -> Result<(), serde_json::Error> {
        let p = stamped_payload(123_456_789_012, 42, 200);
        assert_eq!(p.len(), 200);
        let v: serde_json::Value = serde_json::from_str(&p)?;
        assert_eq!(v["s"], 42);
        assert_eq!(stamp_of(&p), Some(123_456_789_012));
        assert_eq!(stamp_of(r#"{"p":"x","s":1,"t":77}"#), Some(77));
        assert_eq!(stamp_of(r#"{"p":"x"}"#), None);
        Ok(())
    }
}
