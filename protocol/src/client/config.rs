//! What a [`Session`](super::Session) is built with.

use std::time::Duration;

use super::Backoff;
use super::time::micros;
use crate::Serializer;

/// The settings of a client session; [`Default`] gives phoenix.js's.
///
/// | setting | default | phoenix.js option |
/// |---|---|---|
/// | [`serializer`](Self::serializer) | V2 (`vsn=2.0.0`) | `vsn` |
/// | [`heartbeat_interval`](Self::heartbeat_interval) | 30 s | `heartbeatIntervalMs` |
/// | [`heartbeat_timeout`](Self::heartbeat_timeout) | the interval | none (`heartbeatTimeoutMs` in `@alight/client`) |
/// | [`timeout`](Self::timeout) | 10 s | `timeout` |
/// | [`reconnect_after`](Self::reconnect_after) | [`Backoff::reconnect`] | `reconnectAfterMs` |
/// | [`rejoin_after`](Self::rejoin_after) | [`Backoff::rejoin`] | `rejoinAfterMs` |
/// | [`jitter`](Self::jitter) | 0.2 (±20 %) | none |
/// | [`seed`](Self::seed) | 0 | none |
///
/// ```
/// use std::time::Duration;
/// use alight_protocol::client::{Backoff, ClientConfig};
///
/// let config = ClientConfig::default()
///     .heartbeat_interval(None)
///     .timeout(Duration::from_secs(5))
///     .rejoin_after(Backoff::steps([Duration::from_millis(500)], Duration::from_secs(2)))
///     .seed(0x5eed);
/// assert_eq!(config.heartbeat_interval, None);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The wire format; the driver puts [`Serializer::vsn`] in the connect URL.
    pub serializer: Serializer,
    /// Time between heartbeats. `None` sends no heartbeats (the server then closes an idle
    /// socket after 60 s unless it hears something else).
    pub heartbeat_interval: Option<Duration>,
    /// How long a heartbeat may wait for its reply before the connection is presumed dead,
    /// closed (1000, `heartbeat timeout`) and reconnected; `None`: the interval, as phoenix.js.
    pub heartbeat_timeout: Option<Duration>,
    /// The default timeout of joins and pushes (a join's timeout becomes its channel's default).
    pub timeout: Duration,
    /// Delay before reconnecting after the connection was lost, by attempt.
    pub reconnect_after: Backoff,
    /// Delay before rejoining a channel after a failed join or a channel crash, by attempt.
    pub rejoin_after: Backoff,
    /// Jitter applied to both schedules: each delay is scaled by a factor drawn uniformly from
    /// `[1 - jitter, 1 + jitter)`. Clamped to `[0, 1]`; 0 gives phoenix.js's exact schedule.
    pub jitter: f64,
    /// Seed of the jitter generator. Sessions with equal seeds draw equal jitter, so give each
    /// client its own (a browser driver takes it from `crypto.getRandomValues`), and a fixed one in
    /// tests and load runs that must replay.
    pub seed: u64,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            serializer: Serializer::V2,
            heartbeat_interval: Some(Duration::from_secs(30)),
            heartbeat_timeout: None,
            timeout: Duration::from_secs(10),
            reconnect_after: Backoff::reconnect(),
            rejoin_after: Backoff::rejoin(),
            jitter: 0.2,
            seed: 0,
        }
    }
}

impl ClientConfig {
    /// Sets [`serializer`](Self::serializer).
    pub fn serializer(mut self, serializer: Serializer) -> Self {
        self.serializer = serializer;
        self
    }

    /// Sets [`heartbeat_interval`](Self::heartbeat_interval).
    pub fn heartbeat_interval(mut self, interval: Option<Duration>) -> Self {
        self.heartbeat_interval = interval;
        self
    }

    /// Sets [`heartbeat_timeout`](Self::heartbeat_timeout).
    pub fn heartbeat_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.heartbeat_timeout = timeout;
        self
    }

    /// Sets [`timeout`](Self::timeout).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`reconnect_after`](Self::reconnect_after).
    pub fn reconnect_after(mut self, backoff: Backoff) -> Self {
        self.reconnect_after = backoff;
        self
    }

    /// Sets [`rejoin_after`](Self::rejoin_after).
    pub fn rejoin_after(mut self, backoff: Backoff) -> Self {
        self.rejoin_after = backoff;
        self
    }

    /// Sets [`jitter`](Self::jitter).
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets [`seed`](Self::seed).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// What a [`Core`](super::Core) is built with: [`ClientConfig`]'s timings in whole microseconds,
/// which the core adds to [`Timestamp`](super::Timestamp)s as one integer each. A
/// [`Session`](super::Session) makes it from its `ClientConfig`; the browser package makes it
/// from the page's options, without `Duration`'s conversions.
///
/// ```
/// use std::time::Duration;
/// use alight_protocol::client::{ClientConfig, CoreConfig, Delays};
///
/// let config = CoreConfig::from(&ClientConfig::default().timeout(Duration::from_secs(5)));
/// assert_eq!(config.timeout, 5_000_000);
/// assert_eq!(config.heartbeat_interval, Some(30_000_000));
/// assert_eq!(config.rejoin_after.delay(4), 10_000_000);
/// assert_eq!(Delays::Steps(vec![10, 20]).delay(7), 20);
/// ```
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// [`ClientConfig::heartbeat_interval`], µs.
    pub heartbeat_interval: Option<u64>,
    /// [`ClientConfig::heartbeat_timeout`], µs.
    pub heartbeat_timeout: Option<u64>,
    /// [`ClientConfig::timeout`], µs.
    pub timeout: u64,
    /// [`ClientConfig::reconnect_after`].
    pub reconnect_after: Delays,
    /// [`ClientConfig::rejoin_after`].
    pub rejoin_after: Delays,
    /// [`ClientConfig::jitter`].
    pub jitter: f64,
    /// [`ClientConfig::seed`].
    pub seed: u64,
}

/// A [`Backoff`] in microseconds.
#[derive(Debug, Clone)]
pub enum Delays {
    /// The delay of tries 1, 2, ... in order; the last for every later try (none: 0).
    Steps(Vec<u64>),
    /// [`Backoff::Custom`].
    Custom(fn(tries: u32) -> Duration),
}

impl Delays {
    /// The delay before retry number `tries`, counting from 1 (0 is treated as 1), µs.
    pub fn delay(&self, tries: u32) -> u64 {
        let tries = tries.max(1);
        match self {
            Delays::Steps(steps) => {
                let last = steps.len().saturating_sub(1);
                steps
                    .get((tries as usize - 1).min(last))
                    .copied()
                    .unwrap_or(0)
            }
            Delays::Custom(delay) => micros(delay(tries)),
        }
    }
}

impl From<&Backoff> for Delays {
    fn from(backoff: &Backoff) -> Self {
        match backoff {
            Backoff::Steps { steps, then } => Delays::Steps(
                steps
                    .iter()
                    .chain([then])
                    .map(|&step| micros(step))
                    .collect(),
            ),
            Backoff::Custom(delay) => Delays::Custom(*delay),
        }
    }
}

impl From<&ClientConfig> for CoreConfig {
    fn from(config: &ClientConfig) -> Self {
        CoreConfig {
            heartbeat_interval: config.heartbeat_interval.map(micros),
            heartbeat_timeout: config.heartbeat_timeout.map(micros),
            timeout: micros(config.timeout),
            reconnect_after: Delays::from(&config.reconnect_after),
            rejoin_after: Delays::from(&config.rejoin_after),
            jitter: config.jitter,
            seed: config.seed,
        }
    }
}
