//! The adapter's counters, shown by the server's `GET /metrics`, and the outage log.
//!
//! Every field is an atomic touched by the publishing callers and the adapter's tasks; nothing
//! here locks.

use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::watch;
use tracing::{info, warn};

/// A snapshot of the adapter's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RedisStats {
    /// Messages published to Redis (broadcasts, pushes, disconnects, presence).
    pub published: u64,
    /// Messages that could not reach Redis (it was down, or the queue to it was full): the other
    /// nodes never saw them. This node's own subscribers did.
    pub publish_failures: u64,
    /// Messages received from other nodes.
    pub received: u64,
    /// Messages on the channel that did not decode (garbage), dropped.
    pub undecodable: u64,
    /// Messages from a node speaking another protocol version, dropped.
    pub version_mismatches: u64,
    /// Times the connection to Redis was lost.
    pub outages: u64,
    /// Times another node was declared down.
    pub nodes_down: u64,
    /// Whole presence states received from other nodes (a node (re)joined, or answered ours).
    pub syncs: u64,
    /// Broadcasts on history topics refused because Redis could not keep them (they were
    /// delivered nowhere), and history reads that failed.
    pub history_refused: u64,
}

#[derive(Debug)]
pub(crate) struct Stats {
    pub(crate) published: AtomicU64,
    pub(crate) publish_failures: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) undecodable: AtomicU64,
    pub(crate) version_mismatches: AtomicU64,
    pub(crate) outages: AtomicU64,
    pub(crate) nodes_down: AtomicU64,
    pub(crate) syncs: AtomicU64,
    pub(crate) history_refused: AtomicU64,
    /// Bumped on every rare change (connections, nodes, syncs, refused and failed messages), for
    /// [`RedisPubSub::wait_until`](crate::RedisPubSub::wait_until).
    pub(crate) changes: watch::Sender<u64>,
    /// The publishing connection works (set by the publisher task).
    pub(crate) publisher_up: AtomicBool,
    /// The subscription works (set by the subscriber task).
    pub(crate) subscriber_up: AtomicBool,
    /// The history connection works, or there is none (set by the history writer task).
    pub(crate) history_up: AtomicBool,
    /// The current outage was logged: a failed publish logs once per outage, not per message.
    outage_logged: AtomicBool,
    /// Failures when the current outage started, for the "back" log line.
    failures_at_outage: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            published: AtomicU64::default(),
            publish_failures: AtomicU64::default(),
            received: AtomicU64::default(),
            undecodable: AtomicU64::default(),
            version_mismatches: AtomicU64::default(),
            outages: AtomicU64::default(),
            nodes_down: AtomicU64::default(),
            syncs: AtomicU64::default(),
            history_refused: AtomicU64::default(),
            changes: watch::Sender::new(0),
            publisher_up: AtomicBool::default(),
            subscriber_up: AtomicBool::default(),
            history_up: AtomicBool::new(true),
            outage_logged: AtomicBool::default(),
            failures_at_outage: AtomicU64::default(),
        }
    }
}

impl Stats {
    /// Wakes whoever waits on a change.
    pub(crate) fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Counts a rare event and wakes whoever waits on a change.
    pub(crate) fn bump_rare(&self, counter: &AtomicU64) {
        bump(counter);
        self.changed();
    }

    /// Records whether the publishing (`publisher`) or subscribing connection works.
    pub(crate) fn set_up(&self, publisher: bool, up: bool) {
        let flag = if publisher {
            &self.publisher_up
        } else {
            &self.subscriber_up
        };
        if flag.swap(up, Ordering::AcqRel) != up {
            self.changed();
        }
    }

    /// Records whether the history connection works.
    pub(crate) fn set_history_up(&self, up: bool) {
        if self.history_up.swap(up, Ordering::AcqRel) != up {
            self.changed();
        }
        if up {
            self.recovered();
        }
    }

    /// A history broadcast or read was refused.
    pub(crate) fn history_refused(&self) {
        bump(&self.history_refused);
    }

    pub(crate) fn snapshot(&self) -> RedisStats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        RedisStats {
            published: get(&self.published),
            publish_failures: get(&self.publish_failures),
            received: get(&self.received),
            undecodable: get(&self.undecodable),
            version_mismatches: get(&self.version_mismatches),
            outages: get(&self.outages),
            nodes_down: get(&self.nodes_down),
            syncs: get(&self.syncs),
            history_refused: get(&self.history_refused),
        }
    }

    pub(crate) fn connected(&self) -> bool {
        self.publisher_up.load(Ordering::Acquire)
            && self.subscriber_up.load(Ordering::Acquire)
            && self.history_up.load(Ordering::Acquire)
    }

    /// `count` messages could not reach Redis; the first failure of an outage is logged.
    pub(crate) fn publish_failed(&self, count: u64, error: &dyn std::fmt::Display) {
        self.publish_failures.fetch_add(count, Ordering::Relaxed);
        self.outage(error);
        self.changed();
    }

    /// Redis is out of reach (a connection broke or could not be made): logged once per outage.
    pub(crate) fn outage(&self, error: &dyn std::fmt::Display) {
        if !self.outage_logged.swap(true, Ordering::AcqRel) {
            bump(&self.outages);
            self.failures_at_outage.store(
                self.publish_failures.load(Ordering::Relaxed),
                Ordering::Relaxed,
            );
            warn!(
                error = %error,
                "Redis unreachable: broadcasts reach this node's subscribers only, and what \
                 cannot be published is counted (alight_redis_publish_failures) until it is back"
            );
        }
    }

    /// Both connections work again: ends the outage, if there was one.
    pub(crate) fn recovered(&self) {
        if self.connected() && self.outage_logged.swap(false, Ordering::AcqRel) {
            let lost = self.publish_failures.load(Ordering::Relaxed)
                - self.failures_at_outage.load(Ordering::Relaxed);
            info!(
                lost,
                "Redis reachable again; messages the other nodes did not get during the outage: {lost}"
            );
        }
    }

    /// The counters in the OpenMetrics text format, without `# EOF`.
    pub(crate) fn encode(&self, node: &str, peers_up: usize, out: &mut String) {
        let stats = self.snapshot();
        let counters = [
            ("published", "Messages published to Redis", stats.published),
            (
                "publish_failures",
                "Messages that could not reach Redis (the other nodes never saw them)",
                stats.publish_failures,
            ),
            (
                "received",
                "Messages received from other nodes",
                stats.received,
            ),
            (
                "undecodable",
                "Messages on the channel that did not decode, dropped",
                stats.undecodable,
            ),
            (
                "version_mismatches",
                "Messages from nodes of another protocol version, dropped",
                stats.version_mismatches,
            ),
            ("outages", "Times Redis became unreachable", stats.outages),
            (
                "nodes_down",
                "Times another node was declared down",
                stats.nodes_down,
            ),
            (
                "syncs",
                "Whole presence states received from other nodes",
                stats.syncs,
            ),
            (
                "history_refused",
                "History broadcasts refused and history reads failed while Redis could not keep them",
                stats.history_refused,
            ),
        ];
        // Writing into a String cannot fail.
        for (name, help, value) in counters {
            let _ = write!(
                out,
                "# HELP alight_redis_{name} {help}.\n# TYPE alight_redis_{name} counter\n\
                 alight_redis_{name}_total{{node=\"{node}\"}} {value}\n"
            );
        }
        let _ = write!(
            out,
            "# HELP alight_redis_connected Whether this node reaches Redis (1) or not (0).\n\
             # TYPE alight_redis_connected gauge\n\
             alight_redis_connected{{node=\"{node}\"}} {}\n\
             # HELP alight_redis_nodes_up Other nodes heard from within the down period.\n\
             # TYPE alight_redis_nodes_up gauge\n\
             alight_redis_nodes_up{{node=\"{node}\"}} {peers_up}\n",
            u8::from(self.connected()),
        );
    }
}
