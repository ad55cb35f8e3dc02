//! `fanout`: S subscribers in one topic and one publisher shouting stamped payloads into it.
//!
//! The publisher joins the topic too (a Phoenix client must join to push), so it receives its own
//! shouts; those are read and dropped, and only the S subscribers' deliveries count. At a fixed
//! rate the publisher sends on schedule whatever the replies do (open loop); flat out, it keeps
//! [`FanoutParams::window`] shouts awaiting their replies. Each payload carries its send time, read
//! from the same clock by the subscriber that receives it.
//!
//! After `duration` the publisher stops and the run waits for the deliveries still in flight, until
//! every subscriber has every message, no delivery arrived for [`QUIET`], or `drain` is over. What
//! has not arrived by then is counted missing: dropped by the server (a slow-consumer policy), sent
//! to a subscriber the server disconnected, or still queued when the run ended.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

use super::{
    Better, Env, Metric, Outcome, ServerCpu, TOPIC, collect, cpu_note, cpu_per, error_chain,
    gather, stamp_of,
};
use crate::conn::{Client, ClientError};
use crate::stats::{Latency, per_second};
use crate::wire::Incoming;

/// The drain ends early when no delivery arrived for this long.
pub const QUIET: Duration = Duration::from_secs(1);

/// Parameters of a fan-out run.
#[derive(Debug, Clone, Copy)]
pub struct FanoutParams {
    /// Subscribers in the topic, besides the publisher.
    pub subscribers: usize,
    /// Shouts per second, or `None` for flat out.
    pub rate: Option<u32>,
    /// How long the publisher sends.
    pub duration: Duration,
    /// Longest wait for deliveries after the publisher stops.
    pub drain: Duration,
    /// Bytes of each JSON payload.
    pub payload_bytes: usize,
    /// Flat out: shouts awaiting their reply at most.
    pub window: usize,
}

impl FanoutParams {
    /// The case label, e.g. `S=1000 R=100/s` or `S=1000 flat-out`.
    pub fn label(&self) -> String {
        match self.rate {
            Some(r) => format!("S={} R={r}/s", self.subscribers),
            None => format!("S={} flat-out", self.subscribers),
        }
    }
}

/// What the subscribers share: counters and the latency histogram.
#[derive(Debug, Default)]
struct Deliveries {
    latency: Latency,
    /// Deliveries to subscribers so far.
    received: AtomicU64,
    /// Clock reading (ns) of the latest delivery.
    last_ns: AtomicU64,
    /// Shout payloads without a readable stamp.
    unstamped: AtomicU64,
}

/// What one subscriber saw.
#[derive(Debug, Default, Clone, Copy)]
struct SubscriberTally {
    received: u64,
    /// The server closed the connection (or it failed) before the end.
    dropped: bool,
}

/// What the publisher did.
#[derive(Debug, Default)]
struct PublisherTally {
    sent: u64,
    acked: u64,
    refused: u64,
    first_send_ns: u64,
    last_send_ns: u64,
    /// At a fixed rate: how far behind its schedule the publisher finished a send, at most.
    behind_ns: u64,
    error: Option<String>,
}

/// Runs one fan-out case.
pub async fn run(env: &Env, params: FanoutParams) -> Outcome {
    let shared = Arc::new(Deliveries::default());
    let stop = CancellationToken::new();
    let crowd = {
        let (shared, stop, clock) = (shared.clone(), stop.clone(), env.clock);
        gather(env, params.subscribers, move |_, client| {
            subscribe(client, shared.clone(), stop.clone(), clock)
        })
        .await
    };
    let mut notes: Vec<String> = crowd
        .failures
        .note("subscriber joins")
        .into_iter()
        .collect();

    let publish_to = env.publish_to.unwrap_or(env.target);
    let publisher = match Client::connect(publish_to, env.sources.next()).await {
        Ok(mut client) => client.join(TOPIC).await.map(|()| client),
        Err(err) => Err(err),
    };
    let mut publisher = match publisher {
        Ok(client) => client,
        Err(err) => {
            stop.cancel();
            let _ = collect(crowd.handles, Duration::from_secs(5)).await;
            notes.push(format!("publisher could not join: {}", error_chain(&err)));
            return Outcome {
                case: params.label(),
                metrics: Vec::new(),
                notes,
            };
        }
    };

    // The measured phase: the first shout to the end of the drain.
    let cpu = ServerCpu::start(env);
    let (done_tx, done_rx) = oneshot::channel();
    let publisher_task = {
        let (stop, clock) = (stop.clone(), env.clock);
        tokio::spawn(async move {
            let mut tally = PublisherTally::default();
            let result = publish(&mut publisher, params, clock, &stop, &mut tally, done_tx).await;
            if let Err(err) = result {
                tally.error = Some(error_chain(&err));
            }
            tally
        })
    };

    // Wait for the publisher to finish sending, then for the deliveries in flight.
    let sent = done_rx.await.unwrap_or(0);
    let expected = sent * crowd.joined as u64;
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
    let tally = match tokio::time::timeout(Duration::from_secs(5), publisher_task).await {
        Ok(Ok(t)) => t,
        _ => PublisherTally {
            sent,
            error: Some("the publisher task did not finish".to_owned()),
            ..PublisherTally::default()
        },
    };
    let subscribers = collect(crowd.handles, Duration::from_secs(10)).await;

    let received: u64 = subscribers.iter().map(|s| s.received).sum();
    let dropped = subscribers.iter().filter(|s| s.dropped).count();
    let window_ns = shared
        .last_ns
        .load(Ordering::Relaxed)
        .saturating_sub(tally.first_send_ns);
    let send_ns = tally.last_send_ns.saturating_sub(tally.first_send_ns);
    let latency = shared.latency.summary();
    let missing = expected.saturating_sub(received);

    let mut metrics = vec![
        Metric::new(
            "published/s",
            per_second(tally.sent.saturating_sub(1), Duration::from_nanos(send_ns)),
            "/s",
            Better::Higher,
        ),
        Metric::new(
            "deliveries/s",
            per_second(received, Duration::from_nanos(window_ns)),
            "/s",
            Better::Higher,
        ),
        Metric::latency("latency p50", latency.p50_us),
        Metric::latency("latency p99", latency.p99_us),
        Metric::latency("latency max", latency.max_us),
        Metric::new("missing deliveries", missing as f64, "", Better::Lower),
        Metric::new("subscribers dropped", dropped as f64, "", Better::Lower),
    ];
    metrics.extend(cpu_per("server CPU per delivery", cpu_spent, delivered));
    notes.extend(cpu_note(cpu_spent, delivered, "deliveries"));
    notes.push(format!(
        "{} shouts sent ({} acked, {} refused) to {} subscribers: {received} of {expected} deliveries",
        tally.sent, tally.acked, tally.refused, crowd.joined
    ));
    if params.rate.is_some() {
        notes.push(format!(
            "the publisher finished a send up to {} ms behind its schedule",
            tally.behind_ns / 1_000_000
        ));
    }
    if let Some(err) = tally.error {
        notes.push(format!("publisher: {err}"));
    }
    let unstamped = shared.unstamped.load(Ordering::Relaxed);
    if unstamped > 0 {
        notes.push(format!(
            "{unstamped} shouts arrived without a readable stamp"
        ));
    }
    Outcome {
        case: params.label(),
        metrics,
        notes,
    }
}

/// Reads shouts until told to stop, recording each one's latency.
async fn subscribe(
    mut client: Client,
    shared: Arc<Deliveries>,
    stop: CancellationToken,
    clock: crate::stats::Clock,
) -> SubscriberTally {
    let mut tally = SubscriberTally::default();
    // One waiter registration for the whole loop, not one per message.
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    loop {
        let text = tokio::select! {
            () = &mut stopped => return tally,
            message = client.recv() => match message {
                Ok(Some(text)) => text,
                Ok(None) | Err(_) => {
                    tally.dropped = true;
                    return tally;
                }
            },
        };
        if let Incoming::Event {
            event: "shout",
            payload,
        } = client.codec().decode(&text)
        {
            let now = clock.now_ns();
            match stamp_of(payload) {
                Some(t) => shared.latency.record_ns(now.saturating_sub(t)),
                None => {
                    shared.unstamped.fetch_add(1, Ordering::Relaxed);
                }
            }
            tally.received += 1;
            shared.received.fetch_add(1, Ordering::Relaxed);
            shared.last_ns.fetch_max(now, Ordering::Relaxed);
        }
    }
}

/// Sends shouts for `params.duration`, reporting the count on `done`, then keeps reading (its own
/// shouts and the last replies) until `stop`.
async fn publish(
    client: &mut Client,
    params: FanoutParams,
    clock: crate::stats::Clock,
    stop: &CancellationToken,
    tally: &mut PublisherTally,
    done: oneshot::Sender<u64>,
) -> Result<(), ClientError> {
    let start = Instant::now();
    let start_ns = clock.now_ns();
    let send_end = start + params.duration;
    let period = match params.rate {
        Some(r) => Duration::from_secs_f64(1.0 / f64::from(r.max(1))).max(Duration::from_millis(1)),
        None => Duration::from_millis(1),
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut done = Some(done);
    let mut sending = true;

    /// What woke the publisher.
    enum Step {
        Stop,
        SendEnd,
        Received(Result<Option<Utf8Bytes>, ClientError>),
        Tick,
    }

    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    let result = loop {
        let awaiting = tally.sent.saturating_sub(tally.acked + tally.refused);
        if sending && params.rate.is_none() && awaiting < params.window as u64 {
            // Flat out with room in the window: send before reading anything.
            if Instant::now() >= send_end {
                sending = false;
                finish(tally, &mut done);
            } else if let Err(err) = shout(client, params, clock, tally).await {
                break Err(err);
            }
            continue;
        }
        let step = tokio::select! {
            biased;
            () = &mut stopped => Step::Stop,
            () = tokio::time::sleep_until(send_end), if sending => Step::SendEnd,
            message = client.recv() => Step::Received(message),
            _ = tick.tick(), if sending && params.rate.is_some() => Step::Tick,
        };
        match step {
            Step::Stop => break Ok(()),
            Step::SendEnd => {
                sending = false;
                finish(tally, &mut done);
            }
            Step::Received(Ok(Some(text))) => match client.codec().decode(&text) {
                Incoming::Reply { ok: true, .. } => tally.acked += 1,
                Incoming::Reply { ok: false, .. } => tally.refused += 1,
                _ => {}
            },
            Step::Received(Ok(None)) => {
                break Err(ClientError::Closed {
                    waiting_for: "shout replies",
                });
            }
            Step::Received(Err(err)) => break Err(err),
            Step::Tick => {
                // Open loop: catch up with the schedule, whatever the replies are doing.
                let rate = f64::from(params.rate.unwrap_or(1));
                let due = (start.elapsed().as_secs_f64() * rate) as u64 + 1;
                let mut failed = None;
                while tally.sent < due && Instant::now() < send_end {
                    let scheduled = start_ns + (tally.sent as f64 * 1e9 / rate) as u64;
                    if let Err(err) = shout(client, params, clock, tally).await {
                        failed = Some(err);
                        break;
                    }
                    tally.behind_ns = tally
                        .behind_ns
                        .max(clock.now_ns().saturating_sub(scheduled));
                }
                if let Some(err) = failed {
                    break Err(err);
                }
            }
        }
    };
    finish(tally, &mut done);
    result
}

/// Hands the number of shouts sent to the waiting run, once.
fn finish(tally: &PublisherTally, done: &mut Option<oneshot::Sender<u64>>) {
    if let Some(done) = done.take() {
        let _ = done.send(tally.sent);
    }
}

/// Sends one stamped shout.
async fn shout(
    client: &mut Client,
    params: FanoutParams,
    clock: crate::stats::Clock,
    tally: &mut PublisherTally,
) -> Result<(), ClientError> {
    let now = clock.now_ns();
    let payload = super::stamped_payload(now, tally.sent, params.payload_bytes);
    let (text, _) = client.codec().shout(TOPIC, &payload);
    client.send(text).await?;
    if tally.sent == 0 {
        tally.first_send_ns = now;
    }
    tally.last_send_ns = now;
    tally.sent += 1;
    Ok(())
}
