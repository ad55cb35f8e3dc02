//! [`RedisConfig`]: where Redis is, what this node is called, and the cluster's timing.

use std::time::Duration;

/// How a node reaches Redis and watches the other nodes.
///
/// ```
/// use std::time::Duration;
/// use alight_redis::RedisConfig;
///
/// let config = RedisConfig::new("redis://127.0.0.1:6379/")
///     .prefix("myapp")
///     .node_name("web-1")
///     .down_period(Duration::from_secs(5));
/// assert_eq!(config.channel(), "alight:myapp");
/// ```
#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub(crate) url: String,
    pub(crate) prefix: String,
    pub(crate) node_name: String,
    pub(crate) presence_period: Duration,
    pub(crate) heartbeat: Duration,
    pub(crate) down_period: Duration,
    pub(crate) permdown_period: Duration,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) timeout: Duration,
    pub(crate) publish_queue: usize,
}

impl RedisConfig {
    /// Redis at `url` (`redis://[user:password@]host:port/[db]`), prefix `default`, and the
    /// default timing: presence changes sent every 100 ms, a heartbeat every second, a node
    /// silent for 5 s is down (its members leave), forgotten after 20 min.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            prefix: "default".into(),
            node_name: String::new(),
            presence_period: Duration::from_millis(100),
            heartbeat: Duration::from_secs(1),
            down_period: Duration::from_secs(5),
            permdown_period: Duration::from_secs(20 * 60),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            publish_queue: 16 * 1024,
        }
    }

    /// Separates clusters sharing one Redis: nodes talk on channel `alight:<prefix>`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// This node's name in logs and metrics (default: its random id). Names need not be unique:
    /// nodes are told apart by an id drawn at every start.
    pub fn node_name(mut self, name: impl Into<String>) -> Self {
        self.node_name = name.into();
        self
    }

    /// How often presence changes are sent to the other nodes.
    pub fn presence_period(mut self, period: Duration) -> Self {
        self.presence_period = period;
        self
    }

    /// How often a node says it is alive when it has nothing else to send.
    pub fn heartbeat(mut self, period: Duration) -> Self {
        self.heartbeat = period;
        self
    }

    /// After how long without a word a node is declared down and its presences leave (keep it a
    /// few heartbeats long).
    pub fn down_period(mut self, period: Duration) -> Self {
        self.down_period = period;
        self
    }

    /// After how long a down node is forgotten for good.
    pub fn permdown_period(mut self, period: Duration) -> Self {
        self.permdown_period = period;
        self
    }

    /// The first and the longest wait between reconnection attempts (doubling in between).
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min;
        self.backoff_max = max.max(min);
        self
    }

    /// How long connecting or a command may take before Redis counts as unreachable.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many messages may wait for Redis; beyond that they are counted as failed publishes.
    pub fn publish_queue(mut self, messages: usize) -> Self {
        self.publish_queue = messages.max(1);
        self
    }

    /// The channel every node publishes to and subscribes to.
    pub fn channel(&self) -> String {
        format!("alight:{}", self.prefix)
    }

    /// The channel of one node, for answers meant for it only.
    pub(crate) fn node_channel(&self, node: u64) -> String {
        format!("alight:{}:node:{node:016x}", self.prefix)
    }
}
