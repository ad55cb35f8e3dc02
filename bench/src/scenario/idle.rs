//! `idle`: N connections, each joined to the topic, held open; what they cost the server.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Better, Env, Metric, Outcome, collect, gather};
use crate::conn::Client;
use crate::stats::per_second;

/// phoenix.js's heartbeat interval.
const HEARTBEAT: Duration = Duration::from_secs(30);
/// How long the server gets after it started listening, and after the last join, before its RSS
/// is read.
const SETTLE: Duration = Duration::from_millis(500);

/// Parameters of an idle run.
#[derive(Debug, Clone, Copy)]
pub struct IdleParams {
    /// Connections to open and join.
    pub connections: usize,
}

/// Opens and joins `connections` clients, reads the server's RSS before and after, then lets go.
pub async fn run(env: &Env, params: IdleParams) -> Outcome {
    // A server may still be finishing its start-up when it first accepts (alight-demo's RSS still
    // grows for a moment after): read at once, that growth would be counted per connection.
    tokio::time::sleep(SETTLE).await;
    let rss_before = env.server_rss_kib();
    let stop = CancellationToken::new();
    let dropped = Arc::new(AtomicU64::new(0));
    let crowd = {
        let stop = stop.clone();
        let dropped = dropped.clone();
        gather(env, params.connections, move |_, client| {
            hold(client, stop.clone(), dropped.clone())
        })
        .await
    };
    tokio::time::sleep(SETTLE).await;
    let rss_after = env.server_rss_kib();
    let generator_fds = crate::net::open_fds().ok();
    stop.cancel();
    let _ = collect(crowd.handles, Duration::from_secs(10)).await;

    let held = (crowd.joined as u64).saturating_sub(dropped.load(Ordering::Relaxed));
    let mut metrics = vec![
        Metric::new("connections held", held as f64, "", Better::Higher),
        Metric::new(
            "connect+join/s",
            per_second(crowd.joined as u64, crowd.elapsed),
            "/s",
            Better::Higher,
        ),
    ];
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        metrics.push(Metric::new(
            "server RSS before",
            before as f64 / 1024.0,
            "MiB",
            Better::Lower,
        ));
        metrics.push(Metric::new(
            "server RSS after",
            after as f64 / 1024.0,
            "MiB",
            Better::Lower,
        ));
        if held > 0 {
            metrics.push(Metric::new(
                "server RSS per connection",
                after.saturating_sub(before) as f64 / held as f64,
                "KiB",
                Better::Lower,
            ));
        }
    }
    let mut notes: Vec<String> = crowd.failures.note("connects").into_iter().collect();
    if held < crowd.joined as u64 {
        notes.push(format!(
            "{} joined connections were closed by the server before the end",
            crowd.joined as u64 - held
        ));
    }
    if let Some(fds) = generator_fds {
        notes.push(format!("generator held {fds} open files at the peak"));
    }
    Outcome {
        case: format!("N={}", params.connections),
        metrics,
        notes,
    }
}

/// Keeps the connection open until told to stop, as an idle phoenix.js or socket.io client would:
/// a Phoenix heartbeat every [`HEARTBEAT`], an answer to every engine.io ping.
async fn hold(mut client: Client, stop: CancellationToken, dropped: Arc<AtomicU64>) {
    let mut heartbeat = tokio::time::interval_at(Instant::now() + HEARTBEAT, HEARTBEAT);
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    loop {
        let alive = tokio::select! {
            () = &mut stopped => return,
            message = client.recv() => matches!(message, Ok(Some(_))),
            _ = heartbeat.tick() => match client.codec().heartbeat() {
                Some(text) => client.send(text).await.is_ok(),
                None => true,
            },
        };
        if !alive {
            dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
    }
}
