//! `churn`: workers that connect, join, leave and disconnect in a loop; and whether the server
//! gives the memory back afterwards.
//!
//! The loop runs twice on the same server. The first round measures the rates and whether RSS
//! comes back to where the fresh process started; a fresh process has not yet grown its
//! allocator's arenas or its runtime's tables, so part of what the first round adds stays for the
//! next connections. The second round tells that apart from a leak: a server that leaks grows
//! again by as much, one that reuses its memory does not.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Better, Env, Failures, Metric, Outcome, TOPIC};
use crate::conn::{Client, ClientError};
use crate::stats::{Latency, per_second};

/// How often the server's RSS is read during the run, for its peak.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// "Returns" means back within this fraction of the RSS before the run.
const RETURN_TOLERANCE: f64 = 0.10;

/// Parameters of a churn run.
#[derive(Debug, Clone, Copy)]
pub struct ChurnParams {
    /// Loops running at once.
    pub workers: usize,
    /// How long they loop.
    pub duration: Duration,
    /// Longest wait afterwards for the server's RSS to come back.
    pub settle: Duration,
}

/// What one worker did.
#[derive(Debug, Default)]
struct Tally {
    cycles: u64,
    failures: Failures,
}

/// Runs one churn case.
pub async fn run(env: &Env, params: ChurnParams) -> Outcome {
    let rss_start = env.server_rss_kib();
    let latency = Arc::new(Latency::new());
    let first = round(env, params, &latency).await;
    let rss_end = settle(env, rss_start, params.settle).await;
    let (cycles, failures, elapsed, peak) =
        (first.cycles, first.failures, first.elapsed, first.peak);
    // The second round: the rates above are the first round's alone.
    let second = round(env, params, &Arc::new(Latency::new())).await;
    let rss_second = settle(env, rss_end, params.settle).await;

    let summary = latency.summary();
    let mut metrics = vec![
        Metric::new(
            "cycles/s",
            per_second(cycles, elapsed),
            "/s",
            Better::Higher,
        ),
        Metric::latency("cycle p50", summary.p50_us),
        Metric::latency("cycle p99", summary.p99_us),
    ];
    if let (Some(start_kib), Some(end_kib)) = (rss_start, rss_end) {
        let rss =
            |name: &str, kib: u64| Metric::new(name, kib as f64 / 1024.0, "MiB", Better::Lower);
        metrics.push(rss("server RSS start", start_kib));
        metrics.push(rss("server RSS peak", peak.max(end_kib)));
        metrics.push(rss("server RSS end", end_kib));
        let returned = end_kib as f64 <= start_kib as f64 * (1.0 + RETURN_TOLERANCE);
        metrics.push(Metric::new(
            "RSS back within 10%",
            if returned { 1.0 } else { 0.0 },
            "yes/no",
            Better::Higher,
        ));
        if let Some(second_kib) = rss_second {
            metrics.push(rss("server RSS end, second round", second_kib));
            metrics.push(Metric::new(
                "second round's RSS growth",
                (second_kib as f64 - end_kib as f64) / end_kib.max(1) as f64 * 100.0,
                "%",
                Better::Lower,
            ));
        }
    }
    let mut notes: Vec<String> = failures.note("cycles").into_iter().collect();
    notes.push(format!(
        "{cycles} cycles by {} workers, then {} in the second round",
        params.workers, second.cycles
    ));
    Outcome {
        case: format!("W={} {}s", params.workers, params.duration.as_secs_f64()),
        metrics,
        notes,
    }
}

/// What one round of the workers did.
struct Round {
    cycles: u64,
    failures: Failures,
    elapsed: Duration,
    /// The server's highest RSS seen during the round, in KiB.
    peak: u64,
}

/// Runs the workers for `params.duration`, sampling the server's RSS for its peak.
async fn round(env: &Env, params: ChurnParams, latency: &Arc<Latency>) -> Round {
    let deadline = Instant::now() + params.duration;
    let start = Instant::now();
    let workers: Vec<_> = (0..params.workers)
        .map(|_| {
            let (env, latency) = (env.clone(), latency.clone());
            tokio::spawn(async move { churn_loop(&env, deadline, &latency).await })
        })
        .collect();

    let sampling = CancellationToken::new();
    let sampler = {
        let (env, sampling) = (env.clone(), sampling.clone());
        tokio::spawn(async move {
            let mut peak = env.server_rss_kib().unwrap_or(0);
            while !sampling.is_cancelled() {
                tokio::time::sleep(SAMPLE_EVERY).await;
                peak = peak.max(env.server_rss_kib().unwrap_or(0));
            }
            peak
        })
    };

    let mut cycles = 0;
    let mut failures = Failures::default();
    let limit = params.duration + crate::conn::STEP_TIMEOUT * 4;
    for worker in workers {
        if let Ok(Ok(t)) = tokio::time::timeout(limit, worker).await {
            cycles += t.cycles;
            failures.merge(t.failures);
        }
    }
    let elapsed = start.elapsed();
    sampling.cancel();
    let peak = sampler.await.unwrap_or(0);
    Round {
        cycles,
        failures,
        elapsed,
        peak,
    }
}

/// Gives the server up to `settle` to hand memory back toward `start` (within the tolerance),
/// reading its RSS as it goes; the last reading.
async fn settle(env: &Env, start: Option<u64>, settle: Duration) -> Option<u64> {
    let settle_end = Instant::now() + settle;
    let mut rss = env.server_rss_kib();
    if let Some(start_kib) = start {
        let goal = start_kib as f64 * (1.0 + RETURN_TOLERANCE);
        while rss.is_some_and(|kib| kib as f64 > goal) && Instant::now() < settle_end {
            tokio::time::sleep(Duration::from_millis(250)).await;
            rss = env.server_rss_kib();
        }
    }
    rss
}

/// Connect, join, leave, close, until the deadline.
async fn churn_loop(env: &Env, deadline: Instant, latency: &Latency) -> Tally {
    let mut tally = Tally::default();
    while Instant::now() < deadline {
        let begun = Instant::now();
        match cycle(env).await {
            Ok(()) => {
                latency.record(begun.elapsed());
                tally.cycles += 1;
            }
            Err(err) => {
                tally.failures.add(&err);
                // Do not spin on a server that refuses everything.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    tally
}

async fn cycle(env: &Env) -> Result<(), ClientError> {
    let mut client = Client::connect(env.target, env.sources.next()).await?;
    client.join(TOPIC).await?;
    client.leave(TOPIC).await?;
    client.close().await
}
