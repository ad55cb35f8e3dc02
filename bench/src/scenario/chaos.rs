//! `chaos`: M clients of one history topic whose connections are cut at random while a publisher
//! shouts N numbered broadcasts; every client must end with exactly 1..N, in order, and every
//! rejoin must be told `"recovered": true`.
//!
//! One run, one history topic ([`TOPIC`], a `room:*` topic of Alight's demo):
//!
//! 1. M clients connect (at most [`Env::connect_concurrency`] handshakes and joins in flight,
//!    reconnects included) and join with `{}`, each noting the `position` of its join reply.
//! 2. Once every client has joined, a publisher joins and shouts `1..=N` at a fixed rate (so that
//!    it never runs further ahead of a cut client than the topic replays: the demo's rooms keep
//!    the last 1,000), at most [`PUBLISH_WINDOW`] awaiting their reply.
//! 3. Meanwhile each client, at a random moment `cut_min..cut_max` after its last (re)join, drops
//!    its TCP connection without a close frame (as a lost network does), reconnects and rejoins
//!    with `{"since": <the position of the last broadcast it received>}`; it stops cutting once
//!    it has all N, and reads on until every client is done, so a broadcast twice is counted.
//!
//! Every shout is checked by number and by position (the one right after the previous one). The
//! run waits at most `N / rate + drain` after the publisher starts; whatever is not done by then
//! is reported as such.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::history::{Position, Published, Reader, publish, seq_of};
use super::{Better, Env, Failures, Metric, Outcome, collect, error_chain};
use crate::conn::{Client, ClientError, STEP_TIMEOUT, Target};
use crate::stats::Clock;
use crate::wire::phoenix;

/// The topic of the run.
pub const TOPIC: &str = "room:chaos";
/// Shouts the publisher keeps awaiting their reply at most.
pub const PUBLISH_WINDOW: u64 = 256;
/// How long the clients may take to close once every one is done.
const CLOSE_LIMIT: Duration = Duration::from_secs(20);
/// Connect-and-join attempts per cut before a client gives up.
const ATTEMPTS: u32 = 3;

/// Parameters of a chaos run.
#[derive(Debug, Clone, Copy)]
pub struct ChaosParams {
    /// Clients whose connections are cut.
    pub clients: usize,
    /// Broadcasts published.
    pub broadcasts: u64,
    /// Broadcasts per second.
    pub rate: u32,
    /// Shortest time from a (re)join to the next cut.
    pub cut_min: Duration,
    /// Longest time from a (re)join to the next cut.
    pub cut_max: Duration,
    /// Bytes of each JSON payload.
    pub payload_bytes: usize,
    /// How long clients may take, after the publishing time, to have every broadcast.
    pub drain: Duration,
}

impl ChaosParams {
    /// The case label, e.g. `M=1000 N=20000 R=500/s cut=200-2000ms`.
    pub fn label(&self) -> String {
        format!(
            "M={} N={} R={}/s cut={}-{}ms",
            self.clients,
            self.broadcasts,
            self.rate,
            self.cut_min.as_millis(),
            self.cut_max.as_millis()
        )
    }

    /// The time publishing should take at the rate.
    fn publishing(&self) -> Duration {
        Duration::from_secs_f64(self.broadcasts as f64 / f64::from(self.rate.max(1)))
    }
}

/// What one client saw over all its connections.
#[derive(Debug, Clone, Default)]
struct Tally {
    /// Broadcasts received in order (the next expected is `received + 1`).
    received: u64,
    /// Broadcasts received again, or numbered below the next expected.
    duplicates: u64,
    /// Broadcasts numbered above the next expected, or not at the position right after the last.
    out_of_order: u64,
    /// The first thing that went wrong, described.
    wrong: Option<String>,
    cuts: u64,
    rejoins: u64,
    recovered_true: u64,
    recovered_false: u64,
    /// Rejoin answers that carried no `recovered` at all.
    recovered_missing: u64,
    /// The last broadcast's position (first: the join reply's).
    last: Option<Position>,
    /// Clock reading (ns) when it had all N.
    complete_ns: Option<u64>,
    /// Why it stopped early, if it did.
    failed: Option<String>,
}

impl Tally {
    /// Exactly 1..=`n` in order, every rejoin recovered, never gave up.
    fn exact(&self, n: u64) -> bool {
        self.received == n
            && self.duplicates == 0
            && self.out_of_order == 0
            && self.wrong.is_none()
            && self.recovered_false == 0
            && self.recovered_missing == 0
            && self.failed.is_none()
    }

    fn note(&mut self, what: String) {
        self.wrong.get_or_insert(what);
    }

    /// Checks one message; counts it if it is a shout.
    fn take(&mut self, text: &str) {
        let Some(fields) = phoenix::fields(text) else {
            return;
        };
        if fields.event != "shout" {
            return;
        }
        let number = seq_of(fields.payload).unwrap_or(0);
        let position = fields.msg_ref.and_then(Position::parse);
        let expected = self.received + 1;
        if number < expected {
            self.duplicates += 1;
            self.note(format!(
                "broadcast #{number} again after #{}",
                self.received
            ));
            return;
        }
        let right_place = match (&self.last, &position) {
            (Some(last), Some(p)) => *p == last.plus(1),
            _ => false,
        };
        if number > expected || !right_place {
            self.out_of_order += 1;
            self.note(format!(
                "expected #{expected} after {}, got #{number} at {}",
                self.last
                    .as_ref()
                    .map_or_else(|| "?".to_owned(), Position::to_string),
                fields.msg_ref.unwrap_or("null")
            ));
        }
        self.received = number;
        self.last = position.or(self.last.take());
    }
}

/// A deterministic pseudo-random stream (splitmix64): the cut times only need spreading.
#[derive(Debug, Clone)]
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A duration in `min..=max`.
    fn between(&mut self, min: Duration, max: Duration) -> Duration {
        let span = max.saturating_sub(min).as_micros() as u64;
        min + Duration::from_micros(self.next() % (span + 1))
    }
}

/// What a client task needs.
#[derive(Debug, Clone)]
struct Member {
    target: Target,
    source: std::net::IpAddr,
    params: ChaosParams,
    clock: Clock,
    dice: Dice,
    permits: Arc<Semaphore>,
    /// Reports the first join (or why it failed).
    joined: mpsc::UnboundedSender<Result<(), ClientError>>,
    /// Reports once the client has all N or has given up.
    done: mpsc::UnboundedSender<()>,
    /// Set when the publisher starts: the run's deadline is known from then on.
    deadline: Arc<tokio::sync::OnceCell<Instant>>,
    stop: CancellationToken,
}

/// Runs one chaos case.
pub async fn run(env: &Env, params: ChaosParams) -> Outcome {
    let mut outcome = match Outcome::phoenix_only(env, params.label(), "chaos") {
        Ok(outcome) => outcome,
        Err(not_run) => return not_run,
    };
    let stop = CancellationToken::new();
    let permits = Arc::new(Semaphore::new(env.connect_concurrency.max(1)));
    let deadline = Arc::new(tokio::sync::OnceCell::new());
    let (joined_tx, mut joined_rx) = mpsc::unbounded_channel();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let handles: Vec<_> = (0..params.clients)
        .map(|index| {
            let member = Member {
                target: env.target,
                source: env.sources.next(),
                params,
                clock: env.clock,
                dice: Dice(0x5eed ^ (index as u64).wrapping_mul(0x2545_f491_4f6c_dd1d)),
                permits: permits.clone(),
                joined: joined_tx.clone(),
                done: done_tx.clone(),
                deadline: deadline.clone(),
                stop: stop.clone(),
            };
            tokio::spawn(run_member(member))
        })
        .collect();
    drop((joined_tx, done_tx));

    let join_limit = Instant::now() + super::GATHER_LIMIT;
    let mut failures = Failures::default();
    let mut joined = 0;
    for _ in 0..params.clients {
        match tokio::time::timeout_at(join_limit, joined_rx.recv()).await {
            Ok(Some(Ok(()))) => joined += 1,
            Ok(Some(Err(err))) => failures.add(&err),
            Ok(None) | Err(_) => break,
        }
    }
    outcome.metrics.push(Metric::new(
        "clients joined",
        joined as f64,
        "",
        Better::Higher,
    ));
    outcome.notes.extend(failures.note("first joins"));
    if joined < params.clients {
        outcome.notes.push(format!(
            "not published: {joined} of {} clients joined",
            params.clients
        ));
        stop.cancel();
        let _ = collect(handles, CLOSE_LIMIT).await;
        return outcome;
    }

    let end = Instant::now() + params.publishing() + params.drain;
    let _ = deadline.set(end);
    let publisher = tokio::spawn(publish_at_rate(
        env.target,
        env.sources.next(),
        params,
        env.clock,
        end,
    ));
    let start_ns = env.clock.now_ns();
    let mut done = 0;
    while done < joined {
        match tokio::time::timeout_at(end, done_rx.recv()).await {
            Ok(Some(())) => done += 1,
            Ok(None) | Err(_) => break,
        }
    }
    stop.cancel();
    let published = match tokio::time::timeout_at(end + STEP_TIMEOUT, publisher).await {
        Ok(Ok(published)) => published,
        _ => Published {
            error: Some("the publisher did not finish".to_owned()),
            ..Published::default()
        },
    };
    let tallies = collect(handles, CLOSE_LIMIT).await;
    report(params, start_ns, &published, &tallies, &mut outcome);
    outcome
}

/// The figures of the run.
fn report(
    params: ChaosParams,
    start_ns: u64,
    published: &Published,
    tallies: &[Tally],
    outcome: &mut Outcome,
) {
    let n = params.broadcasts;
    let sum = |f: fn(&Tally) -> u64| tallies.iter().map(f).sum::<u64>() as f64;
    let exact = tallies.iter().filter(|t| t.exact(n)).count();
    let m = &mut outcome.metrics;
    m.push(Metric::new(
        "broadcasts published",
        published.acked as f64,
        "",
        Better::Higher,
    ));
    m.push(Metric::new(
        "clients with exactly 1..N in order",
        exact as f64,
        "",
        Better::Higher,
    ));
    m.push(Metric::new("cuts", sum(|t| t.cuts), "", Better::Higher));
    m.push(Metric::new(
        "rejoins",
        sum(|t| t.rejoins),
        "",
        Better::Higher,
    ));
    m.push(Metric::new(
        "rejoins recovered true",
        sum(|t| t.recovered_true),
        "",
        Better::Higher,
    ));
    m.push(Metric::new(
        "rejoins not recovered",
        sum(|t| t.recovered_false + t.recovered_missing),
        "",
        Better::Lower,
    ));
    m.push(Metric::new(
        "duplicates",
        sum(|t| t.duplicates),
        "",
        Better::Lower,
    ));
    m.push(Metric::new(
        "out of order",
        sum(|t| t.out_of_order),
        "",
        Better::Lower,
    ));
    m.push(Metric::new(
        "clients short of N",
        tallies.iter().filter(|t| t.received < n).count() as f64,
        "",
        Better::Lower,
    ));
    let all_done =
        tallies.len() == params.clients && tallies.iter().all(|t| t.complete_ns.is_some());
    if all_done {
        let last = tallies
            .iter()
            .filter_map(|t| t.complete_ns)
            .max()
            .unwrap_or(0);
        m.push(Metric::new(
            "first publish → every client has all N",
            Duration::from_nanos(last.saturating_sub(start_ns)).as_secs_f64(),
            "s",
            Better::Lower,
        ));
    }
    if !published.complete(n) {
        outcome.notes.push(format!(
            "publisher: {} sent, {} acked, {} refused, {} came back; {}",
            published.sent,
            published.acked,
            published.refused,
            published.echoes,
            published.error.as_deref().unwrap_or("stopped early")
        ));
    }
    if let Some(wrong) = tallies.iter().find_map(|t| t.wrong.as_deref()) {
        outcome
            .notes
            .push(format!("first client out of order: {wrong}"));
    }
    let failed: Vec<&str> = tallies.iter().filter_map(|t| t.failed.as_deref()).collect();
    if let Some(first) = failed.first() {
        outcome
            .notes
            .push(format!("{} clients gave up; first: {first}", failed.len()));
    }
    if tallies.len() < params.clients {
        outcome.notes.push(format!(
            "{} of {} clients never joined or did not finish",
            params.clients - tallies.len(),
            params.clients
        ));
    }
}

/// Connects and joins [`TOPIC`] from `since`, holding a handshake permit throughout; retries a
/// failed attempt up to [`ATTEMPTS`] times in all.
async fn connect_join(
    m: &Member,
    since: Option<&Position>,
) -> Result<(Client, super::history::JoinAnswer, Option<String>), ClientError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = async {
            // The semaphore is never closed, so acquiring only waits.
            let _permit = m.permits.acquire().await;
            let mut client = Client::connect(m.target, m.source).await?;
            let mut reader = Reader::new();
            let limit = Instant::now() + STEP_TIMEOUT;
            let answer = reader.join(&mut client, TOPIC, since, limit).await?;
            Ok::<_, ClientError>((client, answer, reader.wrong))
        }
        .await;
        match result {
            Err(_) if attempt < ATTEMPTS => continue,
            other => return other,
        }
    }
}

/// One client: joins, then reads and is cut and resumes until it has all N (or time runs
/// out), then reads on until the run stops.
async fn run_member(mut m: Member) -> Option<Tally> {
    let mut tally = Tally::default();
    let (mut client, answer, _) = match connect_join(&m, None).await {
        Ok(joined) => joined,
        Err(err) => {
            let _ = m.joined.send(Err(err));
            return None;
        }
    };
    let _ = m.joined.send(Ok(()));
    tally.last = answer.position.as_deref().and_then(Position::parse);
    if tally.last.is_none() {
        tally.failed = Some(format!(
            "{TOPIC} keeps no history: the join reply carried no position"
        ));
        let _ = m.done.send(());
        return Some(tally);
    }
    let n = m.params.broadcasts;
    let mut cut_at = Instant::now() + m.dice.between(m.params.cut_min, m.params.cut_max);
    while tally.received < n {
        let deadline = m.deadline.get().copied();
        let until = deadline.map_or(cut_at, |d| d.min(cut_at));
        let message = tokio::select! {
            () = m.stop.cancelled() => break,
            message = tokio::time::timeout_at(until, client.recv()) => message,
        };
        match message {
            Ok(Ok(Some(text))) => {
                tally.take(&text);
                continue;
            }
            Ok(Ok(None)) => {
                tally.failed = Some("the server closed the connection".to_owned());
                break;
            }
            Ok(Err(err)) => {
                tally.failed = Some(error_chain(&err));
                break;
            }
            Err(_) if deadline.is_some_and(|d| Instant::now() >= d) => break,
            Err(_) if Instant::now() < cut_at => continue,
            Err(_) => {}
        }
        // The cut: the socket goes without a close frame, as when a network drops.
        drop(client);
        tally.cuts += 1;
        let since = tally.last.clone();
        match connect_join(&m, since.as_ref()).await {
            Ok((c, answer, wrong)) => {
                client = c;
                tally.rejoins += 1;
                match answer.recovered {
                    Some(true) => tally.recovered_true += 1,
                    Some(false) => tally.recovered_false += 1,
                    None => tally.recovered_missing += 1,
                }
                if let Some(wrong) = wrong {
                    tally.note(wrong);
                }
                if answer.recovered != Some(true) {
                    tally.failed = Some(format!(
                        "a rejoin from {} was answered {:?}",
                        since.map_or_else(|| "?".to_owned(), |p| p.to_string()),
                        answer
                    ));
                    break;
                }
            }
            Err(err) => {
                tally.failed = Some(format!("reconnecting: {}", error_chain(&err)));
                let _ = m.done.send(());
                return Some(tally);
            }
        }
        cut_at = Instant::now() + m.dice.between(m.params.cut_min, m.params.cut_max);
    }
    if tally.received >= n {
        tally.complete_ns = Some(m.clock.now_ns());
    }
    let _ = m.done.send(());
    // Until every client is done, anything more is counted: a broadcast twice, or one too many.
    loop {
        tokio::select! {
            () = m.stop.cancelled() => break,
            message = client.recv() => match message {
                Ok(Some(text)) => tally.take(&text),
                Ok(None) | Err(_) => return Some(tally),
            },
        }
    }
    let _ = client.close().await;
    Some(tally)
}

/// Joins [`TOPIC`] and shouts `1..=N` at `params.rate` per second (see [`publish`]).
async fn publish_at_rate(
    target: Target,
    source: std::net::IpAddr,
    params: ChaosParams,
    clock: Clock,
    deadline: Instant,
) -> Published {
    let failed = |err: &ClientError| Published {
        error: Some(error_chain(err)),
        ..Published::default()
    };
    let mut client = match Client::connect(target, source).await {
        Ok(client) => client,
        Err(err) => return failed(&err),
    };
    if let Err(err) = Reader::new().join(&mut client, TOPIC, None, deadline).await {
        return failed(&err);
    }
    let out = publish(
        &mut client,
        TOPIC,
        params.broadcasts,
        params.payload_bytes,
        Some(params.rate),
        clock,
        deadline,
    )
    .await;
    let _ = client.close().await;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shout(position: &str, n: u64) -> String {
        phoenix::encode(
            None,
            0,
            TOPIC,
            "shout",
            &crate::scenario::stamped_payload(1, n, 60),
        )
        .replacen("\"0\"", &format!("\"{position}\""), 1)
    }

    /// A run of 1..N at consecutive positions is exact; a repeat, a gap or a position jump is
    /// counted and named.
    #[test]
    fn tally_counts_repeats_and_gaps() {
        let mut t = Tally {
            last: Position::parse("ab-10"),
            ..Tally::default()
        };
        t.take(&shout("ab-11", 1));
        t.take(&shout("ab-12", 2));
        assert!(t.exact(2));
        t.take(&shout("ab-12", 2));
        assert_eq!((t.duplicates, t.out_of_order), (1, 0));
        assert!(!t.exact(2));

        let mut t = Tally {
            last: Position::parse("ab-10"),
            ..Tally::default()
        };
        t.take(&shout("ab-11", 1));
        t.take(&shout("ab-13", 3));
        assert_eq!((t.received, t.out_of_order), (3, 1));
        t.take(&shout("ab-15", 4));
        assert_eq!(t.out_of_order, 2, "{:?}", t.wrong);
        assert_eq!(
            t.wrong.as_deref(),
            Some("expected #2 after ab-11, got #3 at ab-13")
        );
    }

    #[test]
    fn cut_times_stay_within_bounds() {
        let mut dice = Dice(7);
        let (min, max) = (Duration::from_millis(200), Duration::from_millis(2_000));
        let draws: Vec<Duration> = (0..1_000).map(|_| dice.between(min, max)).collect();
        assert!(draws.iter().all(|d| (min..=max).contains(d)));
        assert!(draws.iter().any(|d| *d < Duration::from_millis(400)));
        assert!(draws.iter().any(|d| *d > Duration::from_millis(1_800)));
    }
}
