//! [`ServerState`]: what every connection task shares, built once by the endpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

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
    /// Started once; every connection task watches it.
    pub(crate) shutdown: Shutdown,
    /// Returns freed memory to the system once connections have closed (if configured).
    pub(crate) memory: Arc<MemoryTrim>,
}

/// The server's shutdown: a flag, and a token whose [`started`](Self::started) future wakes
/// whoever waits for it.
///
/// Every connection task asks whether shutdown started on each of its wake-ups (see the
/// connection's `alarm` module), and `CancellationToken::is_cancelled` takes the token's mutex:
/// the flag answers the same with a load. It is set before the token is cancelled, so a task the
/// token wakes finds it set, and the token is not handed out: nothing cancels it but
/// [`start`](Self::start).
#[derive(Debug, Default)]
pub(crate) struct Shutdown {
    started: AtomicBool,
    token: CancellationToken,
}

impl Shutdown {
    /// Starts the shutdown (again is a no-op): sets the flag, then wakes every waiter.
    pub(crate) fn start(&self) {
        self.started.store(true, Ordering::Release);
        self.token.cancel();
    }

    /// Whether the shutdown started.
    pub(crate) fn is_started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// Resolves once the shutdown started.
    pub(crate) fn started(&self) -> WaitForCancellationFuture<'_> {
        self.token.cancelled()
    }

    /// A token cancelled when the shutdown starts, for a task that only waits for it; cancelling
    /// it does not start the shutdown.
    pub(crate) fn watcher(&self) -> CancellationToken {
        self.token.child_token()
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    #[test]
    fn starting_sets_the_flag_and_wakes_waiters() {
        let shutdown = Shutdown::default();
        let watcher = shutdown.watcher();
        assert!(!shutdown.is_started());
        assert!(shutdown.started().now_or_never().is_none());
        // A watcher cancelled on its own does not start the shutdown.
        shutdown.watcher().cancel();
        assert!(!shutdown.is_started());
        shutdown.start();
        assert!(shutdown.is_started());
        assert!(shutdown.started().now_or_never().is_some());
        assert!(watcher.is_cancelled());
    }
}
