//! The history store: the trait a backend implements, and what its answers mean.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::{History, Position};
use crate::broadcast::Broadcast;
use crate::pubsub::PubSub;
use crate::registry::ConnId;

/// A boxed future, as the store's methods return: a store over the network (Redis Streams)
/// awaits I/O, the in-memory store answers at once.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where topic histories are kept: positions are handed out, broadcasts kept and read back.
///
/// The in-memory [`InMemoryHistory`](super::InMemoryHistory) keeps them on this node; an adapter
/// for several nodes keeps them where every node sees the same positions.
pub trait HistoryStore: Send + Sync + std::fmt::Debug + 'static {
    /// Gives `message` the next position of its topic ([`SharedBroadcast::set_position`](alight_protocol::SharedBroadcast::set_position) of its [`encoded`](Broadcast::encoded) form), keeps
    /// it under `history` (the settings of the topic family `family`), and hands it to
    /// `delivery`.
    ///
    /// The broadcasts of one topic must reach their delivery in the order of their positions:
    /// a subscriber drops what it already had by comparing positions. Resolves to the position,
    /// or to an error when the message could not be kept; it is then delivered without one.
    fn append(
        &self,
        family: &str,
        history: &History,
        message: Arc<Broadcast>,
        delivery: Delivery,
    ) -> StoreFuture<'static, Result<Position, HistoryError>>;

    /// The topic's current position and, for a client that had everything up to `since`, what it
    /// missed.
    ///
    /// Everything appended before this is called is at or before the position it returns.
    fn recover(
        &self,
        family: &str,
        history: &History,
        topic: &str,
        since: Option<Position>,
    ) -> StoreFuture<'static, Result<Recovery, HistoryError>>;
}

/// Where [`HistoryStore::append`] hands a positioned broadcast: the PubSub that carries it to the
/// subscribers of its topic.
#[derive(Debug)]
pub struct Delivery {
    pubsub: Arc<dyn PubSub>,
    except: Option<ConnId>,
}

impl Delivery {
    pub(crate) fn new(pubsub: Arc<dyn PubSub>, except: Option<ConnId>) -> Self {
        Delivery { pubsub, except }
    }

    /// Delivers `message` to every subscriber of its topic.
    pub fn deliver(self, message: Arc<Broadcast>) {
        self.pubsub.broadcast(message, self.except);
    }

    /// The local connection the broadcast skips (`broadcast_from`), for a store that delivers
    /// by itself: one over the network delivers a broadcast on every node once it comes back
    /// positioned.
    pub fn except(&self) -> Option<ConnId> {
        self.except
    }
}

/// What [`HistoryStore::recover`] found.
#[derive(Debug)]
pub struct Recovery {
    /// The topic's current position: that of its latest broadcast.
    pub position: Position,
    /// What happened to the client's `since`.
    pub outcome: Outcome,
}

/// Whether a resuming client can be given what it missed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Outcome {
    /// No `since` was asked about.
    Fresh,
    /// Every broadcast after `since`, in order (empty when it missed nothing).
    Recovered(Vec<Arc<Broadcast>>),
    /// The history cannot cover it; the client must reload its state.
    Lost(Lost),
}

/// Why a `since` cannot be recovered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Lost {
    /// It is from another epoch: the history it was counted in is gone.
    #[error("the position is from another epoch")]
    OtherEpoch,
    /// It is ahead of the topic's latest broadcast.
    #[error("the position is ahead of the topic")]
    Future,
    /// Broadcasts after it were already dropped.
    #[error("broadcasts after the position were dropped")]
    Dropped,
    /// More broadcasts followed it than the replay limit.
    #[error("more broadcasts followed the position than the replay limit")]
    TooFarBehind,
}

/// A store that could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// The store's backend failed (a network store's connection, say).
    #[error("history store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The broadcast was positioned or encoded before it reached the store, so it cannot carry a
    /// position of this topic: it was delivered as it was, and not kept.
    #[error("the broadcast was already positioned or encoded")]
    AlreadyEncoded,
}
