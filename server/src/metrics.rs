//! Counters and gauges, exported in the Prometheus text format at `GET /metrics`.
//!
//! Each field is an atomic shared by every task; incrementing never locks.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry as MetricRegistry;

/// The server's metrics.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: MetricRegistry,
    pub(crate) connections: Gauge,
    pub(crate) channels: Gauge,
    pub(crate) frames_in: Counter,
    pub(crate) frames_out: Counter,
    pub(crate) broadcasts: Counter,
    pub(crate) deliveries: Counter,
    pub(crate) slow_consumers: Counter,
    pub(crate) decode_errors: Counter,
    pub(crate) refused_connections: Counter,
    /// Joins with a `since` that history covered, and with one it did not.
    pub(crate) resumes_recovered: Counter,
    pub(crate) resumes_not_recovered: Counter,
    /// Broadcasts replayed to resuming joins.
    pub(crate) replayed: Counter,
    pub(crate) write_timeouts: Counter,
    pub(crate) not_encodable: Counter,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = MetricRegistry::with_prefix("alight");
        let connections = Gauge::default();
        let channels = Gauge::default();
        let frames_in = Counter::default();
        let frames_out = Counter::default();
        let broadcasts = Counter::default();
        let deliveries = Counter::default();
        let slow_consumers = Counter::default();
        let decode_errors = Counter::default();
        let refused_connections = Counter::default();
        let resumes_recovered = Counter::default();
        let resumes_not_recovered = Counter::default();
        let replayed = Counter::default();
        let write_timeouts = Counter::default();
        let not_encodable = Counter::default();
        registry.register(
            "connections",
            "Open WebSocket connections",
            connections.clone(),
        );
        registry.register("channels", "Joined channels", channels.clone());
        registry.register(
            "frames_in",
            "Frames received from clients",
            frames_in.clone(),
        );
        registry.register("frames_out", "Frames sent to clients", frames_out.clone());
        registry.register("broadcasts", "Broadcasts published", broadcasts.clone());
        registry.register(
            "deliveries",
            "Broadcast deliveries queued to subscribers",
            deliveries.clone(),
        );
        registry.register(
            "slow_consumer_disconnects",
            "Sockets closed because their outbound queue was full",
            slow_consumers.clone(),
        );
        registry.register(
            "decode_errors",
            "Frames that failed to decode",
            decode_errors.clone(),
        );
        registry.register(
            "refused_connections",
            "Upgrades refused (limits, bad vsn, connect callback)",
            refused_connections.clone(),
        );
        registry.register(
            "resumes_recovered",
            "Joins whose `since` the topic's history covered",
            resumes_recovered.clone(),
        );
        registry.register(
            "resumes_not_recovered",
            "Joins whose `since` the topic's history could not cover (told recovered: false)",
            resumes_not_recovered.clone(),
        );
        registry.register(
            "replayed",
            "Broadcasts replayed from history to resuming joins",
            replayed.clone(),
        );
        registry.register(
            "write_timeouts",
            "Sockets closed because a write did not complete within the write timeout",
            write_timeouts.clone(),
        );
        registry.register(
            "frames_not_encodable",
            "Frames not sent because the socket's serializer cannot encode them (binary for V1)",
            not_encodable.clone(),
        );
        Metrics {
            registry,
            connections,
            channels,
            frames_in,
            frames_out,
            broadcasts,
            deliveries,
            slow_consumers,
            decode_errors,
            refused_connections,
            resumes_recovered,
            resumes_not_recovered,
            replayed,
            write_timeouts,
            not_encodable,
        }
    }

    /// The metrics in the Prometheus/OpenMetrics text format.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
