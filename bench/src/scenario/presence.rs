//! `presence`: M members join one `room:<name>` under distinct names, each keeping the room's
//! presence list as phoenix.js's `Presence` does; how long until every list holds all M members,
//! and what that costs each client in bytes and messages.
//!
//! Each member connects (from the source addresses of the run, as the idle scenario does), joins
//! [`ROOM`] with `{"name": "m<index>"}`, and from then on reads everything the server sends: the
//! join reply, one `presence_state`, and the `presence_diff`s the server batches per topic. Joins
//! go as fast as the server answers them, with [`Env::connect_concurrency`] (100) handshakes and
//! joins in flight at once, or on a schedule of R joins per second (`join_rate`). The clock starts when the first join is sent and stops when the last list
//! becomes complete.
//!
//! Every member keeps a [`Roster`], a count-only list (a bit per member), rather than
//! `alight_protocol`'s `PresenceSync`: ten thousand full lists of ten thousand metas would hold
//! some hundred million JSON values in the one-core generator. The roster follows the same
//! rules for this scenario, where each key has one meta (its unit tests check it against
//! `PresenceSync`).
//!
//! The demo's `room:*` channel is the server side: a join with a name tracks it and pushes the
//! state. This scenario speaks Phoenix only.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Better, Env, Failures, Metric, Outcome, collect};
use crate::conn::{Client, ClientError, STEP_TIMEOUT, Target};
use crate::stats::{Clock, per_second};
use crate::wire::{Incoming, Protocol, json_string, presence};

/// The room every member joins.
pub const ROOM: &str = "room:presence";
/// phoenix.js's heartbeat interval: a long run must not look idle to the server.
const HEARTBEAT: Duration = Duration::from_secs(30);
/// How long after the members left the server's RSS is watched for its lowest: closing 10,000
/// members' sockets (each leave a presence diff to those still there) and returning the memory
/// take the server a few seconds.
const SETTLE: Duration = Duration::from_secs(5);
/// How often the RSS is read meanwhile.
const RSS_EVERY: Duration = Duration::from_millis(100);

/// Parameters of a presence run.
#[derive(Debug, Clone, Copy)]
pub struct PresenceParams {
    /// Members joining the room.
    pub members: usize,
    /// Joins per second, or `None` for as fast as the server answers.
    pub join_rate: Option<u32>,
    /// Longest the run may take, from the first connect to the last complete list.
    pub limit: Duration,
}

impl PresenceParams {
    /// The case label, e.g. `M=10000 joins flat-out` or `M=1000 joins 200/s`.
    pub fn label(&self) -> String {
        match self.join_rate {
            Some(r) => format!("M={} joins {r}/s", self.members),
            None => format!("M={} joins flat-out", self.members),
        }
    }
}

/// The name member `index` joins as.
pub fn member_name(index: usize) -> String {
    format!("m{index}")
}

fn member_index(key: &str) -> Option<usize> {
    key.strip_prefix('m')?.parse().ok()
}

/// A count-only presence list: which of the M members it holds, a bit per member.
///
/// phoenix.js's `Presence`, cut to what this scenario needs: a state replaces the list, a diff
/// adds its joins and then removes its leaves, and diffs that arrive before the first state wait
/// for it. A key is taken to have one meta, as every member here joins once under its own name,
/// so a leave of a key removes it. Keys that name no member are counted apart.
#[derive(Debug, Clone)]
pub struct Roster {
    bits: Vec<u64>,
    members: usize,
    count: usize,
    synced: bool,
    /// Diffs received before the first state, in order.
    early: Vec<String>,
    /// Keys that are not `m<index>` with `index < members`.
    foreign: u64,
}

impl Roster {
    /// An empty list of `members` possible members, waiting for its state.
    pub fn new(members: usize) -> Self {
        Roster {
            bits: vec![0; members.div_ceil(64)],
            members,
            count: 0,
            synced: false,
            early: Vec::new(),
            foreign: 0,
        }
    }

    /// Members listed.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no member is listed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether member `index` is listed.
    pub fn contains(&self, index: usize) -> bool {
        index < self.members && self.bits[index / 64] & (1 << (index % 64)) != 0
    }

    /// Keys seen that name no member.
    pub fn foreign(&self) -> u64 {
        self.foreign
    }

    fn set(&mut self, key: &str, present: bool) {
        let Some(index) = member_index(key).filter(|&i| i < self.members) else {
            self.foreign += 1;
            return;
        };
        let (word, bit) = (index / 64, 1u64 << (index % 64));
        let was = self.bits[word] & bit != 0;
        if present && !was {
            self.bits[word] |= bit;
            self.count += 1;
        } else if !present && was {
            self.bits[word] &= !bit;
            self.count -= 1;
        }
    }

    /// A `presence_state` payload; `false` if it could not be read.
    pub fn handle_state(&mut self, payload: &str) -> bool {
        self.bits.fill(0);
        self.count = 0;
        let mut keys = Vec::new();
        let read = presence::state_keys(payload, |key| keys.push(key)).is_some();
        for key in keys {
            self.set(key, true);
        }
        self.synced = true;
        let mut ok = read;
        for diff in std::mem::take(&mut self.early) {
            ok &= self.apply_diff(&diff);
        }
        ok
    }

    /// A `presence_diff` payload; `false` if it could not be read.
    pub fn handle_diff(&mut self, payload: &str) -> bool {
        if !self.synced {
            self.early.push(payload.to_owned());
            return true;
        }
        self.apply_diff(payload)
    }

    fn apply_diff(&mut self, payload: &str) -> bool {
        let Some((joins, leaves)) = presence::diff_sides(payload) else {
            return false;
        };
        let mut ok = true;
        for (side, present) in [(joins, true), (leaves, false)] {
            let Some(side) = side else { continue };
            let mut keys = Vec::new();
            ok &= presence::state_keys(side, |key| keys.push(key)).is_some();
            for key in keys {
                self.set(key, present);
            }
        }
        ok
    }
}

/// What the members share while the run goes on.
#[derive(Debug)]
struct Progress {
    /// Clock reading (ns) of the first join sent.
    first_join_ns: AtomicU64,
    /// Clock reading (ns) of the last join reply received.
    last_joined_ns: AtomicU64,
    /// Members whose list holds every member.
    complete: AtomicUsize,
    /// Clock reading (ns) of the last list that became complete.
    last_complete_ns: AtomicU64,
}

/// What one member saw.
#[derive(Debug, Default, Clone, Copy)]
struct MemberTally {
    /// Text bytes of every WebSocket message received, from the join reply on.
    bytes: u64,
    /// Messages received.
    frames: u64,
    /// Bytes of its `presence_state` messages.
    state_bytes: u64,
    /// Payloads the roster could not read.
    unreadable: u64,
    /// Keys that named no member.
    foreign: u64,
    /// Its list became complete.
    complete: bool,
    /// The server closed the connection (or it failed) before the end.
    dropped: bool,
}

/// Readings of both processes around the run; `None` where `/proc` could not be read.
#[derive(Debug, Default)]
struct Readings {
    /// Server RSS (KiB) before the first connect, with every list complete, after the members left.
    server_rss: [Option<u64>; 3],
    /// Server CPU seconds from the first connect until every list was complete.
    server_cpu: Option<f64>,
    /// The generator's CPU seconds over the same span.
    generator_cpu: Option<f64>,
    /// The generator's RSS (KiB) with every list complete.
    generator_rss: Option<u64>,
    /// The generator's open files then.
    generator_fds: Option<usize>,
}

/// What a member task needs besides its index.
#[derive(Debug, Clone)]
struct Member {
    target: Target,
    members: usize,
    clock: Clock,
    shared: Arc<Progress>,
    permits: Arc<Semaphore>,
    ready: mpsc::UnboundedSender<Result<(), ClientError>>,
    stop: CancellationToken,
}

/// Runs one presence case.
pub async fn run(env: &Env, params: PresenceParams) -> Outcome {
    if env.target.protocol != Protocol::Phoenix {
        return Outcome {
            case: params.label(),
            metrics: Vec::new(),
            notes: vec!["not run: presence is a Phoenix Channels scenario".to_owned()],
        };
    }
    let own_pid = Some(std::process::id());
    let mut readings = Readings::default();
    readings.server_rss[0] = env.server_rss_kib();
    let cpu_before = (cpu_seconds(env.server_pid), cpu_seconds(own_pid));
    let shared = Arc::new(Progress {
        first_join_ns: AtomicU64::new(u64::MAX),
        last_joined_ns: AtomicU64::new(0),
        complete: AtomicUsize::new(0),
        last_complete_ns: AtomicU64::new(0),
    });
    let stop = CancellationToken::new();
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let member = Member {
        target: env.target,
        members: params.members,
        clock: env.clock,
        shared: shared.clone(),
        permits: Arc::new(Semaphore::new(env.connect_concurrency.max(1))),
        ready: ready_tx,
        stop: stop.clone(),
    };
    let begun = Instant::now();
    let deadline = begun + params.limit;
    let handles: Vec<_> = (0..params.members)
        .map(|index| {
            let start = params
                .join_rate
                .map(|rate| begun + Duration::from_secs_f64(index as f64 / f64::from(rate.max(1))));
            let source = env.sources.next();
            tokio::spawn(run_member(index, member.clone(), source, start))
        })
        .collect();
    drop(member);

    // Every join answered (or failed), then every list complete, within the limit.
    let mut joined = 0usize;
    let mut failures = Failures::default();
    for _ in 0..params.members {
        match tokio::time::timeout_at(deadline, ready_rx.recv()).await {
            Ok(Some(Ok(()))) => joined += 1,
            Ok(Some(Err(err))) => failures.add(&err),
            Ok(None) | Err(_) => break,
        }
    }
    let answered = joined + usize::try_from(failures.total()).unwrap_or(usize::MAX);
    if answered < params.members {
        let missing = params.members - answered;
        failures.add_many(
            "timeout",
            missing as u64,
            format!(
                "{missing} members neither joined nor failed within {:?}",
                params.limit
            ),
        );
    }
    while shared.complete.load(Ordering::Relaxed) < joined && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    readings.server_rss[1] = env.server_rss_kib();
    let spent = |before: Option<f64>, pid| Some(cpu_seconds(pid)? - before?);
    readings.server_cpu = spent(cpu_before.0, env.server_pid);
    readings.generator_cpu = spent(cpu_before.1, own_pid);
    readings.generator_rss = own_pid.and_then(|pid| crate::net::rss_kib(pid).ok());
    readings.generator_fds = crate::net::open_fds().ok();
    stop.cancel();
    let tallies = collect(handles, Duration::from_secs(20)).await;
    let settled = Instant::now() + SETTLE;
    while Instant::now() < settled {
        tokio::time::sleep(RSS_EVERY).await;
        if let Some(now) = env.server_rss_kib() {
            readings.server_rss[2] = Some(readings.server_rss[2].map_or(now, |low| low.min(now)));
        }
    }

    let mut outcome = report(params, &shared, &tallies, joined, &readings);
    outcome.notes.splice(0..0, failures.note("member joins"));
    outcome
}

/// CPU seconds process `pid` has used, if it can be read.
fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    pid.and_then(|pid| crate::net::cpu_seconds(pid).ok())
}

/// The figures and notes of a run.
fn report(
    params: PresenceParams,
    shared: &Progress,
    tallies: &[MemberTally],
    joined: usize,
    readings: &Readings,
) -> Outcome {
    let first = shared.first_join_ns.load(Ordering::Relaxed);
    let since_first = |ns: u64| Duration::from_nanos(ns.saturating_sub(first));
    let complete = tallies.iter().filter(|t| t.complete).count();
    let dropped = tallies.iter().filter(|t| t.dropped).count();
    let all_joined = since_first(shared.last_joined_ns.load(Ordering::Relaxed));
    let n = tallies.len().max(1) as f64;
    let mean = |f: fn(&MemberTally) -> u64| tallies.iter().map(f).sum::<u64>() as f64 / n;
    let max = |f: fn(&MemberTally) -> u64| tallies.iter().map(f).max().unwrap_or(0) as f64;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;

    let mut metrics = vec![
        Metric::new("members joined", joined as f64, "", Better::Higher),
        Metric::new("lists complete", complete as f64, "", Better::Higher),
    ];
    if complete == params.members {
        let done = since_first(shared.last_complete_ns.load(Ordering::Relaxed));
        metrics.push(Metric::new(
            "first join → every list complete",
            ms(done),
            "ms",
            Better::Lower,
        ));
    }
    metrics.extend([
        Metric::new(
            "first join → last join answered",
            ms(all_joined),
            "ms",
            Better::Lower,
        ),
        Metric::new(
            "joins/s",
            per_second(joined.saturating_sub(1) as u64, all_joined),
            "/s",
            Better::Higher,
        ),
        Metric::new(
            "bytes received per client, mean",
            mean(|t| t.bytes) / 1024.0,
            "KiB",
            Better::Lower,
        ),
        Metric::new(
            "bytes received per client, max",
            max(|t| t.bytes) / 1024.0,
            "KiB",
            Better::Lower,
        ),
        Metric::new(
            "of which presence_state, mean",
            mean(|t| t.state_bytes) / 1024.0,
            "KiB",
            Better::Lower,
        ),
        Metric::new(
            "frames received per client, mean",
            mean(|t| t.frames),
            "",
            Better::Lower,
        ),
        Metric::new(
            "frames received per client, max",
            max(|t| t.frames),
            "",
            Better::Lower,
        ),
    ]);
    if let Some(cpu) = readings.server_cpu {
        metrics.push(Metric::new(
            "server CPU time, first connect → every list complete",
            cpu,
            "s",
            Better::Lower,
        ));
    }
    let names = [
        "server RSS before",
        "server RSS with every list complete",
        "server RSS after the members left (lowest within 5 s)",
    ];
    for (name, rss) in names.into_iter().zip(readings.server_rss) {
        if let Some(kib) = rss {
            metrics.push(Metric::new(name, kib as f64 / 1024.0, "MiB", Better::Lower));
        }
    }
    metrics.push(Metric::new(
        "clients dropped",
        dropped as f64,
        "",
        Better::Lower,
    ));

    let mut notes = Vec::new();
    if complete < joined {
        notes.push(format!(
            "{} of {joined} lists were incomplete after {:?}",
            joined - complete,
            params.limit
        ));
    }
    let unreadable: u64 = tallies.iter().map(|t| t.unreadable).sum();
    if unreadable > 0 {
        notes.push(format!("{unreadable} presence payloads could not be read"));
    }
    let foreign: u64 = tallies.iter().map(|t| t.foreign).sum();
    if foreign > 0 {
        notes.push(format!(
            "{foreign} presence keys named no member of the run"
        ));
    }
    let total: u64 = tallies.iter().map(|t| t.bytes).sum();
    notes.push(format!(
        "{:.1} MiB received by {} clients in all",
        total as f64 / (1024.0 * 1024.0),
        tallies.len()
    ));
    if let (Some(rss), Some(fds), Some(cpu)) = (
        readings.generator_rss,
        readings.generator_fds,
        readings.generator_cpu,
    ) {
        notes.push(format!(
            "generator: {cpu:.1} s of CPU until the lists were complete, then {} MiB RSS and \
             {fds} open files",
            rss / 1024
        ));
    }
    Outcome {
        case: params.label(),
        metrics,
        notes,
    }
}

/// One member: connects, joins under its name and keeps its roster until told to stop.
async fn run_member(
    index: usize,
    m: Member,
    source: std::net::IpAddr,
    start: Option<Instant>,
) -> Option<MemberTally> {
    if let Some(start) = start {
        tokio::time::sleep_until(start).await;
    }
    // The semaphore is never closed, so acquiring only waits; the permit is held until the join
    // is answered.
    let mut permit = m.permits.acquire().await.ok();
    let mut client = match Client::connect(m.target, source).await {
        Ok(client) => client,
        Err(err) => {
            let _ = m.ready.send(Err(err));
            return None;
        }
    };
    let params = format!("{{\"name\":{}}}", json_string(&member_name(index)));
    let (join, join_ref) = client.codec().join_with(ROOM, &params);
    let sent = m.clock.now_ns();
    m.shared.first_join_ns.fetch_min(sent, Ordering::Relaxed);
    if let Err(err) = client.send(join).await {
        let _ = m.ready.send(Err(err));
        return None;
    }
    let mut roster = Roster::new(m.members);
    let mut tally = MemberTally::default();
    let mut joined = false;
    let join_deadline = Instant::now() + STEP_TIMEOUT;
    let mut heartbeat = tokio::time::interval_at(Instant::now() + HEARTBEAT, HEARTBEAT);
    let stopped = m.stop.cancelled();
    tokio::pin!(stopped);
    loop {
        let joining = !joined;
        let message = tokio::select! {
            () = &mut stopped => break,
            () = tokio::time::sleep_until(join_deadline), if joining => {
                let _ = m.ready.send(Err(ClientError::Timeout { waiting_for: "the join reply" }));
                return None;
            }
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
            Ok(None) | Err(_) if joining => {
                let _ = m.ready.send(Err(ClientError::Closed {
                    waiting_for: "the join reply",
                }));
                return None;
            }
            Ok(None) | Err(_) => {
                tally.dropped = true;
                break;
            }
        };
        tally.bytes += text.len() as u64;
        tally.frames += 1;
        match client.codec().decode(&text) {
            Incoming::Reply {
                msg_ref,
                ok,
                response,
            } if msg_ref == join_ref => {
                if !ok {
                    let _ = m.ready.send(Err(ClientError::Refused {
                        what: "the join",
                        response: response.to_owned(),
                    }));
                    return None;
                }
                joined = true;
                drop(permit.take());
                m.shared
                    .last_joined_ns
                    .fetch_max(m.clock.now_ns(), Ordering::Relaxed);
                let _ = m.ready.send(Ok(()));
            }
            Incoming::Event {
                event: "presence_state",
                payload,
            } => {
                tally.state_bytes += text.len() as u64;
                tally.unreadable += u64::from(!roster.handle_state(payload));
            }
            Incoming::Event {
                event: "presence_diff",
                payload,
            } => tally.unreadable += u64::from(!roster.handle_diff(payload)),
            _ => {}
        }
        if !tally.complete && roster.len() == m.members {
            tally.complete = true;
            m.shared.complete.fetch_add(1, Ordering::Relaxed);
            m.shared
                .last_complete_ns
                .fetch_max(m.clock.now_ns(), Ordering::Relaxed);
        }
    }
    tally.foreign = roster.foreign();
    Some(tally)
}

#[cfg(test)]
mod tests {
    use alight_protocol::presence::{PresenceDiff, PresenceState, PresenceSync};

    use super::*;

    /// A state of members `names`, each with one meta whose ref is derived from its name.
    fn state(names: &[usize]) -> String {
        let members: Vec<String> = names
            .iter()
            .map(|i| format!(r#""m{i}":{{"metas":[{{"online_at":1,"phx_ref":"r{i}"}}]}}"#))
            .collect();
        format!("{{{}}}", members.join(","))
    }

    fn diff(joins: &[usize], leaves: &[usize]) -> String {
        format!(r#"{{"joins":{},"leaves":{}}}"#, state(joins), state(leaves))
    }

    /// The roster and `PresenceSync` agree on who is listed, whatever the order of the state and
    /// the diffs, repeated diffs included.
    #[test]
    fn agrees_with_presence_sync() -> Result<(), serde_json::Error> {
        let events: Vec<(bool, String)> = vec![
            (false, diff(&[3], &[])),
            (true, state(&[0, 1])),
            (false, diff(&[2, 3], &[0])),
            (false, diff(&[2, 3], &[0])),
            (false, diff(&[], &[7])),
            (false, diff(&[0], &[2])),
            (true, state(&[4, 5])),
            (false, diff(&[6], &[4])),
        ];
        let mut roster = Roster::new(8);
        let mut sync = PresenceSync::new();
        for (is_state, payload) in &events {
            if *is_state {
                assert!(roster.handle_state(payload));
                sync.handle_state("1", serde_json::from_str::<PresenceState>(payload)?);
            } else {
                assert!(roster.handle_diff(payload));
                sync.handle_diff("1", serde_json::from_str::<PresenceDiff>(payload)?);
            }
            let listed: Vec<usize> = (0..8).filter(|&i| roster.contains(i)).collect();
            let mut synced: Vec<usize> = sync
                .state()
                .keys()
                .filter_map(|k| member_index(k))
                .collect();
            synced.sort_unstable();
            assert_eq!(listed, synced, "after {payload}");
            assert_eq!(roster.len(), listed.len());
        }
        assert_eq!(roster.foreign(), 0);
        Ok(())
    }

    #[test]
    fn names_and_labels() {
        assert_eq!(member_index(&member_name(42)), Some(42));
        assert_eq!(member_index("alice"), None);
        let mut roster = Roster::new(2);
        assert!(roster.handle_state(r#"{"alice":{"metas":[]},"m9":{"metas":[]}}"#));
        assert_eq!((roster.len(), roster.foreign()), (0, 2));
        let params = PresenceParams {
            members: 10,
            join_rate: None,
            limit: Duration::from_secs(1),
        };
        assert_eq!(params.label(), "M=10 joins flat-out");
    }
}
