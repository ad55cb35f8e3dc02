//! `retain`: the server memory each broadcast kept in a topic's history costs.
//!
//! T publishers each join a history topic of their own (`room:retain-<i>`, `room:*` topics of
//! Alight's demo), which nobody else joins. The server's RSS is read (the lowest reading over
//! `settle`), every publisher shouts K numbered payloads into its topic, at most 16 awaiting their
//! reply, until each is answered and has come back to it, and the RSS is read again the same way.
//! The growth, over the broadcasts the server kept, is the figure.
//!
//! What it kept is checked, not assumed: after the second reading each publisher leaves its topic
//! and rejoins it with `since` set to its last position less the `min(K, keeps)` broadcasts the
//! topic should hold, and expects `"recovered": true` and exactly those broadcasts back, in
//! order. The broadcasts that came back so are the "retained" count the figure divides by.
//!
//! A Phoenix client must join a topic to push to it, so each publisher is its topic's one member.
//! The publishers connect and join before the first reading, so their connections weigh in both
//! readings; each reads every copy of its own shouts, so nothing waits in server queues at the
//! second.
//!
//! The demo's rooms keep the last 1,000 broadcasts per topic for at least 5 minutes, within the
//! history's byte budget (64 MiB per topic family by default, each broadcast counted at about
//! twice its payload, topic and event, plus 160 bytes). K above the per-topic cap (`keeps`), or
//! more than the budget holds, measures eviction instead: the probe shows what was left. What
//! an earlier run left in the same family counts against the budget, so run it against a freshly
//! started server.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::history::{Position, Published, Reader, publish};
use super::{Better, Env, Failures, Metric, Outcome, ServerCpu, cpu_note, cpu_per, error_chain};
use crate::conn::{Client, ClientError, STEP_TIMEOUT, Target};
use crate::stats::per_second;

/// The topics of a run are this followed by their index.
pub const TOPIC_PREFIX: &str = "room:retain-";
/// How often the RSS is read while settling.
const RSS_EVERY: Duration = Duration::from_millis(100);

/// Parameters of a retain run.
#[derive(Debug, Clone, Copy)]
pub struct RetainParams {
    /// Topics, each with its own publisher.
    pub topics: usize,
    /// Broadcasts published into each topic.
    pub per_topic: u64,
    /// How many broadcasts a topic keeps on the server (the demo's rooms: 1,000).
    pub keeps: u64,
    /// Bytes of each JSON payload.
    pub payload_bytes: usize,
    /// How long the RSS is watched for its lowest reading, before and after.
    pub settle: Duration,
    /// Longest the publishing, and then the probe, may take.
    pub limit: Duration,
}

impl RetainParams {
    /// The case label, e.g. `T=100 K=1000 200 B`.
    pub fn label(&self) -> String {
        format!(
            "T={} K={} {} B",
            self.topics, self.per_topic, self.payload_bytes
        )
    }

    /// Broadcasts each topic should still hold after the run.
    pub fn kept_per_topic(&self) -> u64 {
        self.per_topic.min(self.keeps)
    }
}

/// The topic of publisher `index`.
pub fn topic(index: usize) -> String {
    format!("{TOPIC_PREFIX}{index}")
}

/// What the probe of one topic found.
#[derive(Debug, Default, Clone)]
struct Probe {
    recovered: Option<bool>,
    /// Broadcasts that came back complete and in order.
    retained: u64,
    wrong: Option<String>,
    error: Option<String>,
}

/// Runs one retain case.
pub async fn run(env: &Env, params: RetainParams) -> Outcome {
    let mut outcome = match Outcome::phoenix_only(env, params.label(), "retain") {
        Ok(outcome) => outcome,
        Err(not_run) => return not_run,
    };
    if env.server_pid.is_none() {
        outcome
            .notes
            .push("no --server-pid: the server's RSS cannot be read, no memory figures".to_owned());
    }

    let deadline = Instant::now() + params.limit;
    let (publishers, failures) = join_all(env, params.topics, deadline).await;
    outcome.notes.extend(failures.note("publisher joins"));
    outcome.metrics.push(Metric::new(
        "topics",
        publishers.len() as f64,
        "",
        Better::Higher,
    ));
    if publishers.is_empty() {
        return outcome;
    }

    let rss_before = lowest_rss(env, params.settle).await;
    let cpu = ServerCpu::start(env);
    let deadline = Instant::now() + params.limit;
    let (clock, count, bytes) = (env.clock, params.per_topic, params.payload_bytes);
    let handles: Vec<_> = publishers
        .into_iter()
        .map(|(mut client, topic)| {
            tokio::spawn(async move {
                let published =
                    publish(&mut client, &topic, count, bytes, None, clock, deadline).await;
                (client, topic, published)
            })
        })
        .collect();
    let published = finish(handles, deadline).await;
    let cpu_spent = cpu.stop(env);
    let rss_after = lowest_rss(env, params.settle).await;

    let deadline = Instant::now() + params.limit;
    let mut summary = Published::default();
    let mut probe_handles = Vec::new();
    for (client, topic, p) in published {
        summary.acked += p.acked;
        summary.refused += p.refused;
        summary.first_ns = if summary.first_ns == 0 {
            p.first_ns
        } else {
            summary.first_ns.min(p.first_ns)
        };
        summary.last_ns = summary.last_ns.max(p.last_ns);
        if summary.error.is_none() {
            summary.error = p.error.clone();
        }
        let since = p.last.map(|last| last.minus(params.kept_per_topic()));
        probe_handles.push(tokio::spawn(probe(client, topic, since, params, deadline)));
    }
    let probes = finish(probe_handles, deadline).await;

    report(
        params,
        &summary,
        &probes,
        [rss_before, rss_after],
        cpu_spent,
        &mut outcome,
    );
    outcome
}

/// The figures of a run.
fn report(
    params: RetainParams,
    published: &Published,
    probes: &[Probe],
    rss: [Option<u64>; 2],
    cpu_spent: Option<f64>,
    outcome: &mut Outcome,
) {
    let retained: u64 = probes.iter().map(|p| p.retained).sum();
    let lost = probes.iter().filter(|p| p.recovered != Some(true)).count();
    let m = &mut outcome.metrics;
    m.push(Metric::new(
        "broadcasts published",
        published.acked as f64,
        "",
        Better::Higher,
    ));
    m.push(Metric::new(
        "published/s",
        per_second(
            published.acked.saturating_sub(1),
            Duration::from_nanos(published.last_ns.saturating_sub(published.first_ns)),
        ),
        "/s",
        Better::Higher,
    ));
    m.extend(cpu_per(
        "server CPU per broadcast",
        cpu_spent,
        published.acked,
    ));
    m.push(Metric::new(
        "retained broadcasts (probe)",
        retained as f64,
        "",
        Better::Higher,
    ));
    m.push(Metric::new(
        "topics not recovered (probe)",
        lost as f64,
        "",
        Better::Lower,
    ));
    if let [Some(before), Some(after)] = rss {
        let growth_kib = after as f64 - before as f64;
        m.push(Metric::new(
            "server RSS before",
            before as f64 / 1024.0,
            "MiB",
            Better::Lower,
        ));
        m.push(Metric::new(
            "server RSS after",
            after as f64 / 1024.0,
            "MiB",
            Better::Lower,
        ));
        m.push(Metric::new(
            "server RSS growth",
            growth_kib / 1024.0,
            "MiB",
            Better::Lower,
        ));
        if retained > 0 {
            m.push(Metric::new(
                "server RSS per retained broadcast",
                growth_kib * 1024.0 / retained as f64,
                "B",
                Better::Lower,
            ));
        }
    }

    let notes = &mut outcome.notes;
    notes.extend(cpu_note(cpu_spent, published.acked, "broadcasts"));
    let expected = params.per_topic * params.topics as u64;
    if published.acked < expected {
        notes.push(format!(
            "{} of {expected} shouts acked ({} refused); first problem: {}",
            published.acked,
            published.refused,
            published.error.as_deref().unwrap_or("none reported")
        ));
    }
    if params.per_topic > params.keeps {
        notes.push(format!(
            "{} per topic is above the {} a topic keeps: the server dropped the oldest {} of \
             each, so the growth includes eviction, not only what is kept",
            params.per_topic,
            params.keeps,
            params.per_topic - params.keeps
        ));
    }
    let should = params.kept_per_topic() * probes.len() as u64;
    if retained < should {
        notes.push(format!(
            "the probe found {retained} of the {should} broadcasts the topics should hold \
             ({lost} topics not recovered: evicted whole, past the byte budget, or never kept)"
        ));
    }
    if let Some(wrong) = probes.iter().find_map(|p| p.wrong.as_deref()) {
        notes.push(format!("probe, first topic out of order: {wrong}"));
    }
    if let Some(error) = probes.iter().find_map(|p| p.error.as_deref()) {
        notes.push(format!("probe, first failure: {error}"));
    }
}

/// Connects and joins a publisher to each of `topics` topics, with the run's handshakes in
/// flight at most.
async fn join_all(
    env: &Env,
    topics: usize,
    deadline: Instant,
) -> (Vec<(Client, String)>, Failures) {
    let permits = Arc::new(Semaphore::new(env.connect_concurrency.max(1)));
    let handles: Vec<JoinHandle<Result<(Client, String), ClientError>>> = (0..topics)
        .map(|index| {
            let (permits, target, source) = (permits.clone(), env.target, env.sources.next());
            tokio::spawn(join_one(permits, target, source, topic(index), deadline))
        })
        .collect();
    let mut failures = Failures::default();
    let mut publishers = Vec::with_capacity(topics);
    for result in finish(handles, deadline).await {
        match result {
            Ok(publisher) => publishers.push(publisher),
            Err(err) => failures.add(&err),
        }
    }
    let answered = publishers.len() + usize::try_from(failures.total()).unwrap_or(usize::MAX);
    if answered < topics {
        let missing = topics - answered;
        failures.add_many(
            "timeout",
            missing as u64,
            format!("{missing} publishers neither joined nor failed in time"),
        );
    }
    (publishers, failures)
}

async fn join_one(
    permits: Arc<Semaphore>,
    target: Target,
    source: IpAddr,
    topic: String,
    deadline: Instant,
) -> Result<(Client, String), ClientError> {
    // The semaphore is never closed, so acquiring only waits.
    let _permit = permits.acquire().await;
    let mut client = Client::connect(target, source).await?;
    Reader::new()
        .join(&mut client, &topic, None, deadline)
        .await?;
    Ok((client, topic))
}

/// Rejoins `topic` from `since` and counts the broadcasts replayed; then closes.
async fn probe(
    mut client: Client,
    topic: String,
    since: Option<Position>,
    params: RetainParams,
    deadline: Instant,
) -> Probe {
    let mut out = Probe::default();
    let Some(since) = since else {
        out.error = Some(format!("{topic}: no position came back with the shouts"));
        return out;
    };
    let kept = params.kept_per_topic();
    let mut reader = Reader::new();
    let read = async {
        client.leave(&topic).await?;
        let answer = reader
            .join(&mut client, &topic, Some(&since), deadline)
            .await?;
        out.recovered = answer.recovered;
        if answer.recovered == Some(true) {
            reader.expect(params.per_topic - kept + 1, Some(&since));
            reader.read_shouts(&mut client, kept, deadline).await?;
        }
        Ok::<_, ClientError>(())
    };
    if let Err(err) = read.await {
        out.error = Some(format!("{topic}: {}", error_chain(&err)));
    }
    if out.recovered == Some(true) && reader.wrong.is_none() && reader.shouts == kept {
        out.retained = kept;
    }
    out.wrong = reader.wrong.map(|w| format!("{topic}: {w}"));
    let _ = client.close().await;
    out
}

/// Awaits every task, each until `deadline` and a step more; a task still running then is
/// aborted and left out.
async fn finish<T>(handles: Vec<JoinHandle<T>>, deadline: Instant) -> Vec<T> {
    let until = deadline + STEP_TIMEOUT;
    let mut out = Vec::with_capacity(handles.len());
    for mut handle in handles {
        match tokio::time::timeout_at(until, &mut handle).await {
            Ok(Ok(value)) => out.push(value),
            Ok(Err(_)) => {}
            Err(_) => handle.abort(),
        }
    }
    out
}

/// The server's lowest RSS (KiB) over `settle`, read every [`RSS_EVERY`]; at least one reading.
async fn lowest_rss(env: &Env, settle: Duration) -> Option<u64> {
    env.server_pid?;
    let end = Instant::now() + settle;
    let mut lowest = env.server_rss_kib();
    while Instant::now() < end {
        tokio::time::sleep(RSS_EVERY).await;
        if let Some(now) = env.server_rss_kib() {
            lowest = Some(lowest.map_or(now, |low| low.min(now)));
        }
    }
    lowest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_what_a_topic_keeps() {
        let params = RetainParams {
            topics: 100,
            per_topic: 1_500,
            keeps: 1_000,
            payload_bytes: 200,
            settle: Duration::from_secs(2),
            limit: Duration::from_secs(120),
        };
        assert_eq!(params.label(), "T=100 K=1500 200 B");
        assert_eq!(params.kept_per_topic(), 1_000);
        assert_eq!(topic(7), "room:retain-7");
    }
}
