//! Publishing to topics, behind a trait so that a multi-node adapter (Redis) can replace the
//! in-process one without channels noticing.
//!
//! Channels and the HTTP API publish through [`PubSub`]; an adapter carries messages to every node
//! and each node delivers them to its own subscribers through its [`Registry`].

use std::sync::Arc;

use alight_protocol::{Payload, SharedBroadcast};

use crate::metrics::Metrics;
use crate::registry::{ConnId, Registry};

/// Where broadcasts, direct pushes and disconnects go.
///
/// Implementations must not block: they are called from connection tasks and request handlers.
pub trait PubSub: Send + Sync + std::fmt::Debug + 'static {
    /// Delivers `message` to every subscriber of its topic on every node, except the local
    /// connection `except` (for `broadcast_from`).
    fn broadcast(&self, message: Arc<SharedBroadcast>, except: Option<ConnId>);

    /// Pushes `event` to the channel on `topic` of every socket connected with `socket_id`.
    fn push_to_socket(&self, socket_id: &str, topic: &str, event: &str, payload: Payload);

    /// Closes every socket connected with `socket_id`, on every node.
    fn disconnect(&self, socket_id: &str);

    /// Whether broadcasts on `topic` are positioned and kept ([history](crate::history)): then a
    /// socket receives its own broadcasts through its queue, in position order.
    fn keeps_history(&self, topic: &str) -> bool {
        let _ = topic;
        false
    }
}

/// The single-process PubSub: delivers straight into the local registry.
#[derive(Debug)]
pub struct LocalPubSub {
    registry: Arc<Registry>,
    metrics: Arc<Metrics>,
}

impl LocalPubSub {
    /// A PubSub over `registry`.
    pub(crate) fn new(registry: Arc<Registry>, metrics: Arc<Metrics>) -> Self {
        LocalPubSub { registry, metrics }
    }
}

impl PubSub for LocalPubSub {
    fn broadcast(&self, message: Arc<SharedBroadcast>, except: Option<ConnId>) {
        self.metrics.broadcasts.inc();
        self.registry.dispatch(&message, except);
    }

    fn push_to_socket(&self, socket_id: &str, topic: &str, event: &str, payload: Payload) {
        self.registry.push_local(socket_id, topic, event, &payload);
    }

    fn disconnect(&self, socket_id: &str) {
        self.registry.disconnect_local(socket_id);
    }
}
