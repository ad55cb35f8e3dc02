//! `catchup`: M clients that each missed the same N broadcasts reconnect at once and resume; how
//! long until every one has caught up, against the same clients joining fresh.
//!
//! One run, one history topic ([`TOPIC`], a `room:*` topic of Alight's demo), four phases:
//!
//! | phase | what the clients do | what is measured |
//! |---|---|---|
//! | join | M clients connect and join with `{}`, each noting the `position` of its join reply; then all close their sockets (close 1000, each waiting for the server's close) | first connect → every join answered |
//! | publish | a publisher joins and shouts N numbered payloads, at most 16 awaiting their reply, until every one is answered and has come back to it; then it closes | shouts answered |
//! | resume | the M clients reconnect at once and join with `{"since": <their position>}` | first reconnect → every client has all N missed broadcasts; each checks its reply said `"recovered": true` and that it got exactly broadcasts 1..N, in order, at the positions right after its own (and reads on until every client is done, counting anything more); bytes and frames received per client |
//! | fresh | the same clients close, reconnect at once and join with `{}` | first reconnect → every join answered; bytes and frames per client |
//!
//! "At once" is as fast as the server answers, with [`Env::connect_concurrency`] handshakes and
//! joins in flight, as in every scenario (see [`super::CONNECT_CONCURRENCY`]), the same in both
//! waves. Every phase is bounded by `limit`. The scenario speaks Phoenix only; against a topic
//! that keeps no history (the demo with `ALIGHT_ROOM_HISTORY=off`) the join replies carry no
//! position, and the run says so and stops after the first phase. N must be within the topic's
//! replay limit (the demo's rooms: 1,000), or every resume is told `"recovered": false`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::history::{JoinAnswer, Position, Published, Reader, publish};
use super::{Better, Env, Failures, Metric, Outcome, ServerCpu, collect, error_chain};
use crate::conn::{Client, ClientError, STEP_TIMEOUT, Target};
use crate::stats::{Clock, per_second};

/// The topic of the run.
pub const TOPIC: &str = "room:catchup";
/// How long the clients of a wave may take to close their sockets once every one is done.
const CLOSE_LIMIT: Duration = Duration::from_secs(20);

/// Parameters of a catch-up run.
#[derive(Debug, Clone, Copy)]
pub struct CatchupParams {
    /// Clients that miss the broadcasts and resume.
    pub clients: usize,
    /// Broadcasts published while they are away.
    pub broadcasts: u64,
    /// Bytes of each JSON payload.
    pub payload_bytes: usize,
    /// Longest each phase may take.
    pub limit: Duration,
}

impl CatchupParams {
    /// The case label, e.g. `M=1000 N=500`.
    pub fn label(&self) -> String {
        format!("M={} N={}", self.clients, self.broadcasts)
    }
}

/// What one client of a wave saw.
#[derive(Debug, Clone, Default)]
struct MemberTally {
    answer: JoinAnswer,
    /// Clock reading (ns) of its join reply.
    joined_ns: u64,
    /// Clock reading (ns) when it had every broadcast it expected.
    complete_ns: Option<u64>,
    reader: Reader,
    /// The connection failed after the join.
    dropped: bool,
}

impl MemberTally {
    /// Resumed with `recovered: true` and got exactly broadcasts 1..=`n` in order, nothing more.
    fn caught_up(&self, n: u64) -> bool {
        self.answer.recovered == Some(true)
            && self.complete_ns.is_some()
            && self.reader.wrong.is_none()
            && self.reader.shouts == n
            && !self.dropped
    }
}

/// One wave of clients connecting and joining at once.
#[derive(Debug)]
struct Wave {
    /// Clients in the wave.
    size: usize,
    /// Clock reading (ns) just before the first connect.
    start_ns: u64,
    /// Those that joined.
    tallies: Vec<MemberTally>,
    failures: Failures,
    server_cpu: Option<f64>,
}

impl Wave {
    /// First connect → last join reply, if every client joined.
    fn all_joined(&self) -> Option<Duration> {
        (self.tallies.len() == self.size).then(|| {
            let last = self.tallies.iter().map(|t| t.joined_ns).max().unwrap_or(0);
            Duration::from_nanos(last.saturating_sub(self.start_ns))
        })
    }

    /// First connect → the last client caught up, if every client did.
    fn all_caught_up(&self, n: u64) -> Option<Duration> {
        let all = self.tallies.len() == self.size && self.tallies.iter().all(|t| t.caught_up(n));
        all.then(|| {
            let last = self.tallies.iter().filter_map(|t| t.complete_ns).max();
            Duration::from_nanos(last.unwrap_or(0).saturating_sub(self.start_ns))
        })
    }

    fn mean(&self, f: impl Fn(&MemberTally) -> u64) -> f64 {
        let n = self.tallies.len().max(1) as f64;
        self.tallies.iter().map(f).sum::<u64>() as f64 / n
    }

    fn dropped(&self) -> usize {
        self.tallies.iter().filter(|t| t.dropped).count()
    }
}

/// What a member task needs.
#[derive(Debug, Clone)]
struct Member {
    target: Target,
    since: Option<Position>,
    /// Broadcasts it should receive after its reply.
    expect: u64,
    clock: Clock,
    deadline: Instant,
    permits: Arc<Semaphore>,
    /// Reports once the member is done: caught up, not recovered, out of time, or failed.
    done: mpsc::UnboundedSender<Result<(), ClientError>>,
    stop: CancellationToken,
}

/// Runs one catch-up case.
pub async fn run(env: &Env, params: CatchupParams) -> Outcome {
    let mut outcome = match Outcome::phoenix_only(env, params.label(), "catch-up") {
        Ok(outcome) => outcome,
        Err(not_run) => return not_run,
    };

    let first = wave(env, vec![None; params.clients], 0, params.limit).await;
    outcome.notes.extend(first.failures.note("first joins"));
    let positions: Vec<Position> = first
        .tallies
        .iter()
        .filter_map(|t| t.answer.position.as_deref().and_then(Position::parse))
        .collect();
    outcome.metrics.push(Metric::new(
        "clients joined",
        first.tallies.len() as f64,
        "",
        Better::Higher,
    ));
    if let Some(d) = first.all_joined() {
        outcome
            .metrics
            .push(ms("first join: first connect → every join answered", d));
    }
    if positions.len() < first.tallies.len() {
        outcome.notes.push(format!(
            "{} of {} join replies carried no position: {TOPIC} keeps no history, nothing to resume",
            first.tallies.len() - positions.len(),
            first.tallies.len()
        ));
        return outcome;
    }

    let published = publish_all(env, params).await;
    outcome.metrics.push(Metric::new(
        "broadcasts published",
        published.acked as f64,
        "",
        Better::Higher,
    ));
    outcome.metrics.push(Metric::new(
        "published/s",
        per_second(
            published.acked.saturating_sub(1),
            Duration::from_nanos(published.last_ns.saturating_sub(published.first_ns)),
        ),
        "/s",
        Better::Higher,
    ));
    if !published.complete(params.broadcasts) {
        outcome.notes.push(format!(
            "publisher: {} sent, {} acked, {} refused, {} came back; {}",
            published.sent,
            published.acked,
            published.refused,
            published.echoes,
            published.error.as_deref().unwrap_or("stopped early")
        ));
        return outcome;
    }

    let sinces = positions.into_iter().map(Some).collect();
    let resume = wave(env, sinces, params.broadcasts, params.limit).await;
    let fresh = wave(env, vec![None; first.tallies.len()], 0, params.limit).await;
    report(params, &resume, &fresh, &mut outcome);
    outcome
}

/// The figures of the resume and fresh waves.
fn report(params: CatchupParams, resume: &Wave, fresh: &Wave, outcome: &mut Outcome) {
    let n = params.broadcasts;
    let recovered = resume
        .tallies
        .iter()
        .filter(|t| t.answer.recovered == Some(true))
        .count();
    let exact = resume.tallies.iter().filter(|t| t.caught_up(n)).count();
    let caught_up = resume.all_caught_up(n);
    let fresh_joined = fresh.all_joined();
    let m = &mut outcome.metrics;
    m.push(Metric::new(
        "resume: recovered true",
        recovered as f64,
        "",
        Better::Higher,
    ));
    m.push(Metric::new(
        "resume: clients with exactly 1..N in order",
        exact as f64,
        "",
        Better::Higher,
    ));
    m.extend(caught_up.map(|d| ms("resume: first reconnect → every client caught up", d)));
    m.extend(
        resume
            .all_joined()
            .map(|d| ms("resume: first reconnect → every join answered", d)),
    );
    m.extend(fresh_joined.map(|d| ms("fresh: first reconnect → every join answered", d)));
    if let (Some(resumed), Some(joined)) = (caught_up, fresh_joined) {
        m.push(Metric::new(
            "catch-up time / fresh join time",
            resumed.as_secs_f64() / joined.as_secs_f64().max(1e-9),
            "×",
            Better::Lower,
        ));
    }
    for (name, wave) in [("resume", resume), ("fresh", fresh)] {
        m.push(Metric::new(
            &format!("{name}: bytes received per client, mean"),
            wave.mean(|t| t.reader.bytes) / 1024.0,
            "KiB",
            Better::Lower,
        ));
        m.push(Metric::new(
            &format!("{name}: frames received per client, mean"),
            wave.mean(|t| t.reader.frames),
            "",
            Better::Lower,
        ));
        if let Some(cpu) = wave.server_cpu {
            m.push(Metric::new(
                &format!("{name}: server CPU time"),
                cpu,
                "s",
                Better::Lower,
            ));
        }
    }
    m.push(Metric::new(
        "resume: not recovered",
        (resume.tallies.len() - recovered) as f64,
        "",
        Better::Lower,
    ));
    m.push(Metric::new(
        "resume: recovered but missing, extra or out of order",
        (recovered - exact.min(recovered)) as f64,
        "",
        Better::Lower,
    ));
    m.push(Metric::new(
        "clients dropped",
        (resume.dropped() + fresh.dropped()) as f64,
        "",
        Better::Lower,
    ));

    let notes = &mut outcome.notes;
    notes.extend(resume.failures.note("resume joins"));
    notes.extend(fresh.failures.note("fresh joins"));
    if let Some(wrong) = resume
        .tallies
        .iter()
        .find_map(|t| t.reader.wrong.as_deref())
    {
        notes.push(format!("resume, first client out of order: {wrong}"));
    }
    let extra: u64 = resume
        .tallies
        .iter()
        .map(|t| t.reader.shouts.saturating_sub(n))
        .sum();
    let short = resume
        .tallies
        .iter()
        .filter(|t| t.answer.recovered == Some(true) && t.reader.shouts < n)
        .count();
    if extra > 0 || short > 0 {
        notes.push(format!(
            "resume: {short} recovered clients got fewer than {n} broadcasts within {:?}; \
             {extra} broadcasts arrived beyond the {n} expected",
            params.limit
        ));
    }
    let fresh_shouts: u64 = fresh.tallies.iter().map(|t| t.reader.shouts).sum();
    if fresh_shouts > 0 {
        notes.push(format!(
            "fresh: {fresh_shouts} broadcasts arrived after fresh joins (none expected)"
        ));
    }
}

fn ms(name: &str, d: Duration) -> Metric {
    Metric::new(name, d.as_secs_f64() * 1000.0, "ms", Better::Lower)
}

/// The publisher: joins [`TOPIC`], shouts the N broadcasts, closes.
async fn publish_all(env: &Env, params: CatchupParams) -> Published {
    let deadline = Instant::now() + params.limit;
    let mut client = match Client::connect(env.target, env.sources.next()).await {
        Ok(client) => client,
        Err(err) => {
            return Published {
                error: Some(error_chain(&err)),
                ..Published::default()
            };
        }
    };
    if let Err(err) = Reader::new().join(&mut client, TOPIC, None, deadline).await {
        return Published {
            error: Some(error_chain(&err)),
            ..Published::default()
        };
    }
    let published = publish(
        &mut client,
        TOPIC,
        params.broadcasts,
        params.payload_bytes,
        None,
        env.clock,
        deadline,
    )
    .await;
    let _ = client.close().await;
    published
}

/// Connects one client per entry of `sinces` at once, each joining [`TOPIC`] from its `since`
/// and reading `expect` broadcasts; once every one is done (or `limit` passed), all close.
async fn wave(env: &Env, sinces: Vec<Option<Position>>, expect: u64, limit: Duration) -> Wave {
    let size = sinces.len();
    let stop = CancellationToken::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let deadline = Instant::now() + limit;
    let permits = Arc::new(Semaphore::new(env.connect_concurrency.max(1)));
    let cpu = ServerCpu::start(env);
    let start_ns = env.clock.now_ns();
    let handles: Vec<_> = sinces
        .into_iter()
        .map(|since| {
            let member = Member {
                target: env.target,
                since,
                expect,
                clock: env.clock,
                deadline,
                permits: permits.clone(),
                done: done_tx.clone(),
                stop: stop.clone(),
            };
            tokio::spawn(run_member(member, env.sources.next()))
        })
        .collect();
    drop(done_tx);

    // A member reports by the deadline, or within a connect and an upgrade if it began just
    // before it.
    let wait_until = deadline + 2 * STEP_TIMEOUT;
    let mut failures = Failures::default();
    let mut answered = 0;
    while answered < size {
        match tokio::time::timeout_at(wait_until, done_rx.recv()).await {
            Ok(Some(result)) => {
                answered += 1;
                if let Err(err) = result {
                    failures.add(&err);
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
    let server_cpu = cpu.stop(env);
    if answered < size {
        let missing = size - answered;
        failures.add_many(
            "timeout",
            missing as u64,
            format!("{missing} clients were not done within {limit:?}"),
        );
    }
    stop.cancel();
    let tallies = collect(handles, CLOSE_LIMIT).await;
    Wave {
        size,
        start_ns,
        tallies,
        failures,
        server_cpu,
    }
}

/// One client of a wave: connects, joins, reads what it expects, reports, then reads on until
/// the wave stops and closes.
async fn run_member(m: Member, source: std::net::IpAddr) -> Option<MemberTally> {
    let mut tally = MemberTally::default();
    let joined = async {
        // The semaphore is never closed, so acquiring only waits; the permit is held until the
        // join is answered.
        let _permit = m.permits.acquire().await;
        let mut client = Client::connect(m.target, source).await?;
        let answer = tally
            .reader
            .join(&mut client, TOPIC, m.since.as_ref(), m.deadline)
            .await?;
        Ok::<_, ClientError>((client, answer))
    }
    .await;
    let (mut client, answer) = match joined {
        Ok(joined) => joined,
        Err(err) => {
            let _ = m.done.send(Err(err));
            return None;
        }
    };
    tally.joined_ns = m.clock.now_ns();
    tally.answer = answer;
    // A resume that was not recovered is replayed nothing: it is done at its reply.
    if m.since.is_none() || tally.answer.recovered == Some(true) {
        tally.reader.expect(1, m.since.as_ref());
        match tally
            .reader
            .read_shouts(&mut client, m.expect, m.deadline)
            .await
        {
            Ok(true) => tally.complete_ns = Some(m.clock.now_ns()),
            Ok(false) => {}
            Err(err) => {
                tally.dropped = true;
                let _ = m.done.send(Err(err));
                return Some(tally);
            }
        }
    }
    let _ = m.done.send(Ok(()));
    // Until every client is done, anything more is counted: a broadcast twice, or one too many.
    let stopped = m.stop.cancelled();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            () = &mut stopped => break,
            message = client.recv() => match message {
                Ok(Some(text)) => tally.reader.take(&text),
                Ok(None) | Err(_) => {
                    tally.dropped = true;
                    return Some(tally);
                }
            },
        }
    }
    let _ = client.close().await;
    Some(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caught_up_means_recovered_exact_and_connected() {
        let mut t = MemberTally {
            answer: JoinAnswer {
                position: Some("ab-0".to_owned()),
                recovered: Some(true),
            },
            complete_ns: Some(5),
            ..MemberTally::default()
        };
        t.reader.shouts = 3;
        assert!(t.caught_up(3));
        assert!(!t.caught_up(2), "one too many");
        t.reader.wrong = Some("x".to_owned());
        assert!(!t.caught_up(3));
        t.reader.wrong = None;
        t.answer.recovered = Some(false);
        assert!(!t.caught_up(3));
        let params = CatchupParams {
            clients: 1000,
            broadcasts: 500,
            payload_bytes: 200,
            limit: Duration::from_secs(60),
        };
        assert_eq!(params.label(), "M=1000 N=500");
    }
}
