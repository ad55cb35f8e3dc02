//! [`ServerState`]: what every connection task shares, built once by the endpoint.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::history::Histories;
use crate::memory::MemoryTrim;
use crate::metrics::Metrics;
use crate::presence::Presence;
use crate::pubsub::PubSub;
use crate::registry::Registry;
use crate::router::ChannelRouter;

/// The state the endpoint hands each connection: nothing in it knows about HTTP or upgrades.
///
/// Read-only after [`AlightBuilder::build`](crate::AlightBuilder::build); every field is shared
/// by all connection tasks and request handlers and synchronises itself (the registry and
/// presence with their own locks, the metrics with atomics).
pub(crate) struct ServerState {
    pub(crate) config: Config,
    /// Local subscriptions; the fan-out into connection queues.
    pub(crate) registry: Arc<Registry>,
    /// Where channels publish (the registry itself, or an adapter that reaches every node).
    pub(crate) pubsub: Arc<dyn PubSub>,
    /// Tracked presence; its diffs go to the local registry (each node diffs for its own sockets).
    pub(crate) presence: Presence,
    pub(crate) metrics: Arc<Metrics>,
    /// Topic patterns to channel implementations.
    pub(crate) channels: ChannelRouter,
    /// The topic families that keep history, and their store.
    pub(crate) histories: Arc<Histories>,
    /// Cancelled once when shutdown starts; every connection task watches it.
    pub(crate) shutdown: CancellationToken,
    /// Returns freed memory to the system once connections have closed (if configured).
    pub(crate) memory: Arc<MemoryTrim>,
}
