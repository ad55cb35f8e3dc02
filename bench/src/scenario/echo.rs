//! `echo`: C clients, each pushing `ping` and waiting for its reply before the next (closed loop).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::{
    Better, Env, Failures, Metric, Outcome, ServerCpu, TOPIC, collect, cpu_note, cpu_per, gather,
    stamped_payload,
};
use crate::conn::{Client, ClientError};
use crate::stats::{Clock, Latency, per_second};

/// Parameters of an echo run.
#[derive(Debug, Clone, Copy)]
pub struct EchoParams {
    /// Clients pinging at once.
    pub clients: usize,
    /// How long they ping.
    pub duration: Duration,
    /// Bytes of each JSON payload.
    pub payload_bytes: usize,
}

/// What one client did.
#[derive(Debug, Default)]
struct Tally {
    replies: u64,
    failures: Failures,
}

/// Runs one echo case: connect all clients, then start them together and ping for `duration`.
pub async fn run(env: &Env, params: EchoParams) -> Outcome {
    let latency = Arc::new(Latency::new());
    // `None` until every client is connected; then the time to stop.
    let (go_tx, go_rx) = watch::channel::<Option<Instant>>(None);
    let crowd = {
        let (latency, clock) = (latency.clone(), env.clock);
        gather(env, params.clients, move |_, client| {
            ping_loop(client, go_rx.clone(), latency.clone(), clock, params)
        })
        .await
    };
    let cpu = ServerCpu::start(env);
    let start = Instant::now();
    let deadline = start + params.duration;
    let _ = go_tx.send(Some(deadline));
    // The server's CPU is read when the clients stop counting replies.
    tokio::time::sleep_until(deadline).await;
    let cpu_spent = cpu.stop(env);
    let tallies = collect(
        crowd.handles,
        params.duration + crate::conn::STEP_TIMEOUT + Duration::from_secs(1),
    )
    .await;
    let elapsed = start.elapsed().min(params.duration);

    let replies: u64 = tallies.iter().map(|t| t.replies).sum();
    let mut failures = Failures::default();
    for t in tallies {
        failures.merge(t.failures);
    }
    let summary = latency.summary();
    let mut metrics = vec![
        Metric::new(
            "replies/s",
            per_second(replies, elapsed),
            "/s",
            Better::Higher,
        ),
        Metric::latency("latency p50", summary.p50_us),
        Metric::latency("latency p99", summary.p99_us),
        Metric::latency("latency max", summary.max_us),
    ];
    metrics.extend(cpu_per("server CPU per reply", cpu_spent, replies));
    let mut notes: Vec<String> = crowd.failures.note("connects").into_iter().collect();
    notes.extend(failures.note("pings"));
    notes.push(format!("{replies} replies to {} clients", crowd.joined));
    notes.extend(cpu_note(cpu_spent, replies, "replies"));
    Outcome {
        case: format!("C={}", params.clients),
        metrics,
        notes,
    }
}

/// Waits for the start, then pings until the deadline, one request at a time.
async fn ping_loop(
    mut client: Client,
    mut go: watch::Receiver<Option<Instant>>,
    latency: Arc<Latency>,
    clock: Clock,
    params: EchoParams,
) -> Tally {
    let mut tally = Tally::default();
    let deadline = match go.wait_for(Option::is_some).await {
        Ok(deadline) => deadline.unwrap_or_else(Instant::now),
        Err(_) => return tally,
    };
    while Instant::now() < deadline {
        let sent = Instant::now();
        match ping(&mut client, clock, tally.replies, params.payload_bytes).await {
            Ok(()) => {
                latency.record(sent.elapsed());
                // A reply after the deadline is not counted in a rate over the run's duration.
                if Instant::now() <= deadline {
                    tally.replies += 1;
                }
            }
            Err(err) => {
                tally.failures.add(&err);
                if matches!(err, ClientError::Closed { .. } | ClientError::WebSocket(_)) {
                    break;
                }
            }
        }
    }
    tally
}

async fn ping(
    client: &mut Client,
    clock: Clock,
    seq: u64,
    payload_bytes: usize,
) -> Result<(), ClientError> {
    let payload = stamped_payload(clock.now_ns(), seq, payload_bytes);
    let (text, msg_ref) = client.codec().ping(TOPIC, &payload);
    client.send(text).await?;
    client.await_reply(msg_ref, "the ping reply").await
}
