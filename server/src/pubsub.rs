//! Publishing to topics, behind a trait so that a multi-node adapter (Redis) can replace the
//! in-process one without channels noticing.
//!
//! Channels and the HTTP API publish through [`PubSub`]; an adapter carries messages to every node
//! and each node delivers them to its own subscribers through its [`Registry`]. In one process the
//! PubSub is the registry itself ([`LocalPubSub`](crate::LocalPubSub)).

use std::sync::Arc;

use alight_protocol::Payload;

use crate::broadcast::Broadcast;
use crate::history::{HistoryError, StoreFuture};
use crate::presence::Presence;
use crate::registry::ConnId;
#[cfg(doc)]
use crate::registry::Registry;

/// Where broadcasts, direct pushes and disconnects go.
///
/// Implementations must not block: they are called from connection tasks and request handlers.
///
/// # Writing an adapter
/// An adapter for several nodes (Redis, Postgres `NOTIFY`, …) lives in its own crate. It is
/// installed with [`AlightBuilder::pubsub`](crate::AlightBuilder::pubsub), which hands it this
/// node's [`Registry`]. Each method delivers locally at once, through the registry, and sends the
/// same to the other nodes; on receipt from another node the adapter delivers through its own
/// registry, with no `except` ([`ConnId`]s mean nothing across nodes). A [`Broadcast`] crosses the
/// wire as its [`frame`](Broadcast::frame) (topic, event, payload) or its encoded bytes
/// ([`Broadcast::encoded`]), and is rebuilt on the other side with [`Broadcast::new`]. Do not keep
/// the `Arc<Broadcast>` itself after delivering it (copy what goes to the other nodes): its
/// publisher is paced on the moment every holder has let go of it.
/// Presence replicates separately: see [`Presence`]'s `take_deltas`, `merge` and `node_down`,
/// handed to the adapter by [`attach_presence`](PubSub::attach_presence).
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use alight_protocol::Payload;
/// use alight_server::{Alight, Broadcast, ConnId, PubSub, Registry};
///
/// /// Stands in for a Redis connection: what was sent to the other nodes.
/// #[derive(Debug, Default)]
/// struct Outbox(Mutex<Vec<String>>);
///
/// #[derive(Debug)]
/// struct Adapter {
///     local: Arc<Registry>,
///     outbox: Outbox,
/// }
///
/// impl PubSub for Adapter {
///     fn broadcast(&self, message: Arc<Broadcast>, except: Option<ConnId>) {
///         self.local.dispatch(&message, except);
///         let frame = message.frame();
///         self.outbox.0.lock().unwrap().push(format!("{} {}", frame.topic, frame.event()));
///     }
///     fn push_to_socket(&self, socket_id: &str, topic: &str, event: &str, payload: Payload) {
///         self.local.push_local(socket_id, topic, event, &payload);
///     }
///     fn disconnect(&self, socket_id: &str) {
///         self.local.disconnect_local(socket_id);
///     }
/// }
///
/// impl Adapter {
///     /// A broadcast another node published: delivered to this node's subscribers.
///     fn received(&self, topic: &str, event: &str, payload: Payload) {
///         self.local.dispatch(&Arc::new(Broadcast::new(topic, event, payload)), None);
///     }
/// }
///
/// let alight = Alight::builder()
///     .pubsub(|local| Arc::new(Adapter { local, outbox: Outbox::default() }))
///     .build();
/// alight.broadcast("room:lobby", "shout", Payload::empty());
/// ```
pub trait PubSub: Send + Sync + std::fmt::Debug + 'static {
    /// Delivers `message` to every subscriber of its topic on every node, except the local
    /// connection `except` (for `broadcast_from`).
    fn broadcast(&self, message: Arc<Broadcast>, except: Option<ConnId>);

    /// Pushes `event` to the channel on `topic` of every socket connected with `socket_id`.
    fn push_to_socket(&self, socket_id: &str, topic: &str, event: &str, payload: Payload);

    /// Closes every socket connected with `socket_id`, on every node.
    fn disconnect(&self, socket_id: &str);

    /// Called once by [`AlightBuilder::build`](crate::AlightBuilder::build) with this node's
    /// presence, for an adapter that replicates it (see [`Presence::take_deltas`]). Build
    /// inside a tokio runtime if the adapter starts tasks here.
    fn attach_presence(&self, presence: &Presence) {
        let _ = presence;
    }

    /// Why the other nodes may be out of reach (`GET /healthz` answers `degraded: <reason>`);
    /// `None` while all is well.
    fn degraded(&self) -> Option<String> {
        None
    }

    /// Appends the adapter's own metrics to `GET /metrics`, in the OpenMetrics text format
    /// without the closing `# EOF`.
    fn encode_metrics(&self, out: &mut String) {
        let _ = out;
    }

    /// Whether broadcasts on `topic` are positioned and kept ([history](crate::History)): then a
    /// socket receives its own broadcasts through its queue, in position order.
    fn keeps_history(&self, topic: &str) -> bool {
        let _ = topic;
        false
    }

    /// [`broadcast`](PubSub::broadcast), resolving once it is known whether the broadcast was
    /// accepted: on a history topic, once its store kept it or refused it (a store over the
    /// network answers after a round trip). Other broadcasts are accepted at once.
    fn try_broadcast(
        &self,
        message: Arc<Broadcast>,
        except: Option<ConnId>,
    ) -> StoreFuture<'static, Result<(), BroadcastError>> {
        self.broadcast(message, except);
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Why a broadcast was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BroadcastError {
    /// The topic keeps [history](crate::History) and its store could not keep the broadcast (a
    /// Redis store while Redis is unreachable): it was delivered nowhere, so that no client gets a
    /// position the other nodes never had. Try again later.
    #[error("the broadcast could not be kept in the topic's history, and was not delivered")]
    NotKept(#[source] HistoryError),
}
