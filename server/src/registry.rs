//! Who is subscribed to what on this node, the fan-out that reaches them, and [`LocalPubSub`], the
//! [`PubSub`] of a single node, which is this fan-out and nothing more.
//!
//! The registry maps topics to the connections whose channels joined them, and socket ids to
//! connections. A broadcast is handed to every subscriber's bounded outbound queue with `try_send`:
//! delivery never waits on a slow socket. A subscriber whose queue is full is marked closing and
//! woken, and its connection task closes it with
//! [`close_code::SLOW_CONSUMER`](crate::close_code::SLOW_CONSUMER); the others carry on untouched.
//!
//! # Locking
//! Topics are spread over [`TOPIC_SHARDS`] `std::sync::RwLock`ed maps so that joins to different topics do
//! not contend. Connection tasks take a shard's write lock to subscribe or unsubscribe; broadcasts
//! take its read lock for the length of the fan-out loop, which only clones an `Arc` into each
//! queue and never awaits. A std lock is right here: no critical section awaits, and all are short.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::task::{Context, Poll, Waker};

use alight_protocol::Payload;
use tokio::sync::Notify;

use crate::broadcast::Broadcast;
use crate::metrics::Metrics;
use crate::pubsub::PubSub;

/// Identifies one connection on this node: unique within the process, never reused, and
/// meaningless on other nodes (an adapter passes it back to this node's
/// [`Registry::dispatch`] only).
pub type ConnId = u64;

/// Number of locks the topics are spread over (local to this node; presence has its own shards).
const TOPIC_SHARDS: usize = 16;

/// How many subscribers ahead a fan-out asks the CPU to fetch the next queue's handle.
const PREFETCH_AHEAD: usize = 8;

/// Asks the CPU to start loading `conn`'s handle (its queue lock and header) into the cache.
///
/// Into a large topic each handle is a cache miss, and without this the fan-out loop
/// ([`Registry::dispatch`] and the queues' `offer`) is dominated by them (bench/README.md,
/// item 16).
#[inline(always)]
#[cfg_attr(
    target_arch = "x86_64",
    expect(unsafe_code, reason = "the prefetch intrinsic is an unsafe fn")
)]
fn prefetch(conn: &Arc<ConnHandle>) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let at = Arc::as_ptr(conn).cast::<i8>();
        // SAFETY: a prefetch is a hint that never faults and reads nothing into the program, so
        // any address is sound; `sse` is part of every x86_64 target.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(at);
            _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(64));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = conn;
}

/// What a connection's outbound queue carries.
///
/// Kept to two words, the rare variants boxed: a queue grows by slots of this size, up to
/// [`outbound_queue`](crate::Limits::outbound_queue) of them under a burst.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A broadcast on a topic the connection joined.
    Broadcast(Arc<Broadcast>),
    /// A push to this socket's channel on its topic.
    Push(Box<Push>),
    /// Close the socket with this code (server-side disconnect).
    Close(Box<Close>),
}

/// A push to this socket's channel on `topic`.
#[derive(Debug)]
pub(crate) struct Push {
    pub(crate) topic: String,
    pub(crate) event: String,
    pub(crate) payload: Payload,
}

/// A server-side close: the code and reason of the close frame.
#[derive(Debug)]
pub(crate) struct Close {
    pub(crate) code: u16,
    pub(crate) reason: &'static str,
}

/// The registry's handle on one connection: its queue, and the alarm that closes it.
///
/// The queue is a `VecDeque` under a mutex rather than a `tokio::sync::mpsc` channel: tokio's
/// allocates its shared state (cache-padded) and a first block of 32 slots up front, about 1 KiB
/// that every idle connection would hold; this one holds nothing until a message arrives, and
/// gives its room back once drained (see [`Inbox::release_if_empty`]). Senders never wait: a full
/// queue refuses the message.
#[derive(Debug)]
pub(crate) struct ConnHandle {
    pub(crate) id: ConnId,
    queue: Mutex<Queue>,
    /// Messages the queue holds at most.
    capacity: usize,
    /// Set when the queue first overflows, so that the overflow is counted and signalled once.
    slow: AtomicBool,
    /// Wakes the connection task once its queue overflowed: it closes the socket.
    pub(crate) overflow: Notify,
}

#[derive(Debug, Default)]
struct Queue {
    messages: VecDeque<Outbound>,
    /// The receiving task's waker, while it waits on an empty queue.
    waker: Option<Waker>,
    /// The [`Inbox`] is gone: nothing more is accepted.
    closed: bool,
}

/// Why a message was not queued.
enum Refused {
    Full,
    Closed,
}

impl ConnHandle {
    /// A connection's handle and the receiving end of its queue, which holds up to `capacity`
    /// messages (at least 1).
    pub(crate) fn new(id: ConnId, capacity: usize) -> (Arc<ConnHandle>, Inbox) {
        let handle = Arc::new(ConnHandle {
            id,
            queue: Mutex::default(),
            capacity: capacity.max(1),
            slow: AtomicBool::new(false),
            overflow: Notify::new(),
        });
        let inbox = Inbox {
            handle: handle.clone(),
            taken: Vec::new(),
        };
        (handle, inbox)
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn try_send(&self, message: Outbound) -> Result<(), Refused> {
        let mut queue = self.queue();
        if queue.closed {
            return Err(Refused::Closed);
        }
        if queue.messages.len() >= self.capacity {
            return Err(Refused::Full);
        }
        queue.messages.push_back(message);
        let waker = queue.waker.take();
        drop(queue);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Whether the queue overflowed: set before [`overflow`](Self::overflow) is notified.
    pub(crate) fn overflowed(&self) -> bool {
        self.slow.load(Ordering::Acquire)
    }

    /// Queues `message`; on a full queue marks the connection slow and wakes it. Returns whether it
    /// was queued.
    fn offer(&self, message: Outbound, metrics: &Metrics) -> bool {
        match self.try_send(message) {
            Ok(()) => true,
            Err(Refused::Full) => {
                if !self.slow.swap(true, Ordering::AcqRel) {
                    metrics.slow_consumers.inc();
                    self.overflow.notify_one();
                }
                false
            }
            // The connection is already gone; its unsubscribe is on the way.
            Err(Refused::Closed) => false,
        }
    }
}

/// The receiving end of a connection's queue, owned by its task. Dropping it closes the queue.
///
/// The task handles its messages in batches, and [`poll_recv`](Self::poll_recv) takes a whole
/// batch under one lock of the queue rather than one message per lock: the registry's fan-out
/// takes the same lock for every message it queues.
#[derive(Debug)]
pub(crate) struct Inbox {
    handle: Arc<ConnHandle>,
    /// The rest of the batch the last [`poll_recv`](Self::poll_recv) took, in reverse order (the
    /// next one last, so that it pops off the end).
    taken: Vec<Outbound>,
}

impl Inbox {
    /// The next message, once there is one; until then `cx`'s task is woken when one arrives.
    /// The messages waiting behind it, up to `batch` in all, are taken with it under the same
    /// lock: [`next_taken`](Self::next_taken) hands them out. Messages are only taken when one is
    /// returned.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>, batch: usize) -> Poll<Outbound> {
        if let Some(message) = self.taken.pop() {
            return Poll::Ready(message);
        }
        let mut queue = self.handle.queue();
        match queue.messages.pop_front() {
            Some(message) => {
                let rest = queue.messages.len().min(batch.saturating_sub(1));
                self.taken.extend(queue.messages.drain(..rest).rev());
                Poll::Ready(message)
            }
            None => {
                match &mut queue.waker {
                    Some(waker) if waker.will_wake(cx.waker()) => {}
                    slot => *slot = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }

    /// The next message of the batch the last [`poll_recv`](Self::poll_recv) took, if any is
    /// left; never looks at the queue.
    pub(crate) fn next_taken(&mut self) -> Option<Outbound> {
        self.taken.pop()
    }

    /// Whether the queue is empty (and no batch is left); if so, gives back the room a burst may
    /// have grown it to.
    pub(crate) fn release_if_empty(&mut self) -> bool {
        if !self.taken.is_empty() {
            return false;
        }
        let mut queue = self.handle.queue();
        if !queue.messages.is_empty() {
            return false;
        }
        if queue.messages.capacity() > 0 {
            queue.messages = VecDeque::new();
        }
        drop(queue);
        if self.taken.capacity() > 0 {
            self.taken = Vec::new();
        }
        true
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let mut queue = self.handle.queue();
        queue.closed = true;
        queue.waker = None;
        let messages = std::mem::take(&mut queue.messages);
        drop(queue);
        drop(messages);
    }
}

type Subscribers = HashMap<ConnId, Arc<ConnHandle>>;

/// This node's subscriptions (topic → connections, socket id → connections) and the fan-out into
/// their queues.
///
/// Connections subscribe and unsubscribe themselves; what an application or a
/// [`PubSub`](crate::PubSub) adapter does with it is deliver: [`dispatch`](Self::dispatch) a
/// broadcast, [`push_local`](Self::push_local) to a socket id,
/// [`disconnect_local`](Self::disconnect_local) a socket id. An adapter does so with what it
/// receives from the other nodes, and with what this node publishes (see the `PubSub` example).
/// Get it from [`AlightBuilder::pubsub`](crate::AlightBuilder::pubsub) or
/// [`Alight::registry`](crate::Alight::registry).
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
            shards: (0..TOPIC_SHARDS).map(|_| RwLock::default()).collect(),
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

    /// Delivers a broadcast to every local subscriber of its [route](Broadcast::route) (its topic,
    /// unless it was made [routed](Broadcast::routed)) except `except`; returns how many queues
    /// took it. Each subscriber's handle is prefetched a few subscribers ahead.
    pub fn dispatch(&self, message: &Arc<Broadcast>, except: Option<ConnId>) -> usize {
        let topic = message.route();
        let shard = self
            .shard(topic)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(subs) = shard.get(topic) else {
            return 0;
        };
        let mut delivered = 0;
        let mut ahead = subs.values().skip(PREFETCH_AHEAD);
        for (id, conn) in subs {
            if let Some(next) = ahead.next() {
                prefetch(next);
            }
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
        self.each_socket(socket_id, || {
            Outbound::Push(Box::new(Push {
                topic: topic.to_owned(),
                event: event.to_owned(),
                payload: payload.clone(),
            }))
        })
    }

    /// Closes every local connection with this socket id (code 1001, as Phoenix does).
    pub fn disconnect_local(&self, socket_id: &str) -> usize {
        self.each_socket(socket_id, || {
            Outbound::Close(Box::new(Close {
                code: crate::close_code::GOING_AWAY,
                reason: "disconnected by the server",
            }))
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

    /// How many local connections subscribe to `topic` (or to a route, see
    /// [`Context::subscribe`](crate::Context::subscribe)).
    pub fn subscriber_count(&self, topic: &str) -> usize {
        let shard = self
            .shard(topic)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        shard.get(topic).map_or(0, HashMap::len)
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
    fn broadcast(&self, message: Arc<Broadcast>, except: Option<ConnId>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message waiting in `inbox`, taken as the connection task does.
    fn drain(inbox: &mut Inbox, batch: usize) -> Vec<Outbound> {
        let mut got = Vec::new();
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        while let Poll::Ready(first) = inbox.poll_recv(&mut cx, batch) {
            got.push(first);
            got.extend(std::iter::from_fn(|| inbox.next_taken()));
        }
        got
    }

    fn event(message: &Outbound) -> &str {
        match message {
            Outbound::Broadcast(broadcast) => broadcast.frame().event(),
            other => panic!("not a broadcast: {other:?}"),
        }
    }

    /// A batch holds at most `batch` messages, what waits behind it stays queued for the next,
    /// and the order is kept throughout.
    #[test]
    fn an_inbox_hands_out_batches_in_order() {
        let metrics = Metrics::new();
        let (handle, mut inbox) = ConnHandle::new(1, 16);
        let events = ["a", "b", "c", "d", "e"];
        for event in events {
            let broadcast = Broadcast::new("room:a", event, Payload::empty());
            assert!(handle.offer(Outbound::Broadcast(Arc::new(broadcast)), &metrics));
        }
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        let Poll::Ready(first) = inbox.poll_recv(&mut cx, 3) else {
            panic!("messages wait");
        };
        assert_eq!(event(&first), "a");
        let rest: Vec<_> = std::iter::from_fn(|| inbox.next_taken()).collect();
        assert_eq!(rest.iter().map(event).collect::<Vec<_>>(), ["b", "c"]);
        // A message queued meanwhile waits behind those left.
        let late = Broadcast::new("room:a", "f", Payload::empty());
        assert!(handle.offer(Outbound::Broadcast(Arc::new(late)), &metrics));
        assert!(!inbox.release_if_empty());
        let got = drain(&mut inbox, 3);
        assert_eq!(got.iter().map(event).collect::<Vec<_>>(), ["d", "e", "f"]);
        assert!(inbox.release_if_empty());
    }

    /// A fan-out larger than the prefetch distance reaches every subscriber once, and only them.
    #[test]
    fn a_broadcast_reaches_every_subscriber_but_the_excluded_one_once() {
        let registry = Registry::new(Arc::new(Metrics::new()));
        let mut inboxes: Vec<(ConnId, Inbox)> = (0..3 * PREFETCH_AHEAD as u64)
            .map(|id| {
                let (handle, inbox) = ConnHandle::new(id, 4);
                registry.subscribe("room:a", &handle);
                (id, inbox)
            })
            .collect();
        let (elsewhere, mut other) = ConnHandle::new(1_000, 4);
        registry.subscribe("room:b", &elsewhere);

        let broadcast = Arc::new(Broadcast::new("room:a", "shout", Payload::empty()));
        assert_eq!(registry.dispatch(&broadcast, Some(3)), inboxes.len() - 1);
        for (id, inbox) in &mut inboxes {
            let got = drain(inbox, 4).len();
            assert_eq!(got, usize::from(*id != 3), "subscriber {id}");
        }
        assert!(drain(&mut other, 4).is_empty());
    }
}
