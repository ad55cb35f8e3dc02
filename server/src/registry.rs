//! Who is subscribed to what on this node, and the fan-out that reaches them.
//!
//! The registry maps topics to the connections whose channels joined them, and socket ids to
//! connections. A broadcast is handed to every subscriber's bounded outbound queue with `try_send`:
//! delivery never waits on a slow socket. A subscriber whose queue is full is marked closing and
//! woken, and its connection task closes it with
//! [`close_code::SLOW_CONSUMER`](crate::close_code::SLOW_CONSUMER); the others carry on untouched.
//!
//! # Locking
//! Topics are spread over [`SHARDS`] `std::sync::RwLock`ed maps so that joins to different topics do
//! not contend. Connection tasks take a shard's write lock to subscribe or unsubscribe; broadcasts
//! take its read lock for the length of the fan-out loop, which only clones an `Arc` into each
//! queue and never awaits. A std lock is right here: no critical section awaits, and all are short.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use alight_protocol::{Payload, SharedBroadcast};
use tokio::sync::{Notify, mpsc};

use crate::metrics::Metrics;

/// Identifies one WebSocket connection on this node.
pub type ConnId = u64;

/// Number of topic shards.
pub const SHARDS: usize = 16;

/// What a connection's outbound queue carries.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A broadcast on a topic the connection joined.
    Broadcast(Arc<SharedBroadcast>),
    /// A push to this socket's channel on `topic`.
    Push {
        topic: String,
        event: String,
        payload: Payload,
    },
    /// Close the socket with this code (server-side disconnect).
    Close { code: u16, reason: &'static str },
}

/// The registry's handle on one connection: its queue, and the alarm that closes it.
#[derive(Debug)]
pub(crate) struct ConnHandle {
    pub(crate) id: ConnId,
    pub(crate) tx: mpsc::Sender<Outbound>,
    /// Set once when the queue overflowed; the connection task reads it after `overflow` wakes it.
    pub(crate) slow: AtomicBool,
    pub(crate) overflow: Notify,
}

impl ConnHandle {
    /// Queues `message`; on a full queue marks the connection slow and wakes it. Returns whether it
    /// was queued.
    fn offer(&self, message: Outbound, metrics: &Metrics) -> bool {
        match self.tx.try_send(message) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.slow.swap(true, Ordering::AcqRel) {
                    metrics.slow_consumers.inc();
                    self.overflow.notify_one();
                }
                false
            }
            // The connection is already gone; its unsubscribe is on the way.
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

type Subscribers = HashMap<ConnId, Arc<ConnHandle>>;

/// Local subscriptions: topic → connections, socket id → connections.
#[derive(Debug)]
pub struct Registry {
    shards: Box<[RwLock<HashMap<String, Subscribers>>]>,
    sockets: RwLock<HashMap<String, Subscribers>>,
    hasher: RandomState,
    metrics: Arc<Metrics>,
}

impl Registry {
    pub(crate) fn new(metrics: Arc<Metrics>) -> Self {
        Registry {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            sockets: RwLock::default(),
            hasher: RandomState::new(),
            metrics,
        }
    }

    fn shard(&self, topic: &str) -> &RwLock<HashMap<String, Subscribers>> {
        let index = (self.hasher.hash_one(topic) as usize) % self.shards.len();
        &self.shards[index]
    }

    pub(crate) fn subscribe(&self, topic: &str, conn: &Arc<ConnHandle>) {
        let mut shard = self
            .shard(topic)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        shard
            .entry(topic.to_owned())
            .or_default()
            .insert(conn.id, conn.clone());
    }

    pub(crate) fn unsubscribe(&self, topic: &str, conn: ConnId) {
        let mut shard = self
            .shard(topic)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(subs) = shard.get_mut(topic) {
            subs.remove(&conn);
            if subs.is_empty() {
                shard.remove(topic);
            }
        }
    }

    pub(crate) fn register_socket(&self, socket_id: &str, conn: &Arc<ConnHandle>) {
        let mut sockets = self.sockets.write().unwrap_or_else(PoisonError::into_inner);
        sockets
            .entry(socket_id.to_owned())
            .or_default()
            .insert(conn.id, conn.clone());
    }

    pub(crate) fn unregister_socket(&self, socket_id: &str, conn: ConnId) {
        let mut sockets = self.sockets.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(conns) = sockets.get_mut(socket_id) {
            conns.remove(&conn);
            if conns.is_empty() {
                sockets.remove(socket_id);
            }
        }
    }

    /// Delivers a broadcast to every local subscriber of its topic except `except`; returns how many
    /// queues took it.
    pub fn dispatch(&self, message: &Arc<SharedBroadcast>, except: Option<ConnId>) -> usize {
        let topic = &message.frame().topic;
        let shard = self
            .shard(topic)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(subs) = shard.get(topic) else {
            return 0;
        };
        let mut delivered = 0;
        for (id, conn) in subs {
            if Some(*id) != except
                && conn.offer(Outbound::Broadcast(message.clone()), &self.metrics)
            {
                delivered += 1;
            }
        }
        drop(shard);
        self.metrics.deliveries.inc_by(delivered as u64);
        delivered
    }

    /// Pushes to the channel on `topic` of every local connection with this socket id.
    pub fn push_local(
        &self,
        socket_id: &str,
        topic: &str,
        event: &str,
        payload: &Payload,
    ) -> usize {
        self.each_socket(socket_id, || Outbound::Push {
            topic: topic.to_owned(),
            event: event.to_owned(),
            payload: payload.clone(),
        })
    }

    /// Closes every local connection with this socket id (code 1001, as Phoenix does).
    pub fn disconnect_local(&self, socket_id: &str) -> usize {
        self.each_socket(socket_id, || Outbound::Close {
            code: crate::close_code::GOING_AWAY,
            reason: "disconnected by the server",
        })
    }

    fn each_socket(&self, socket_id: &str, message: impl Fn() -> Outbound) -> usize {
        let sockets = self.sockets.read().unwrap_or_else(PoisonError::into_inner);
        sockets.get(socket_id).map_or(0, |conns| {
            conns
                .values()
                .filter(|conn| conn.offer(message(), &self.metrics))
                .count()
        })
    }

    /// How many local connections subscribe to `topic`.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        let shard = self
            .shard(topic)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        shard.get(topic).map_or(0, HashMap::len)
    }
}
