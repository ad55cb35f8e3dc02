//! Bounded event queues: one per subscriber, filled under the session lock, drained by a
//! [`Subscription`] stream.
//!
//! A subscriber that falls behind never blocks the session or the other subscribers: when its
//! queue is full, the **oldest** queued item is dropped and counted, and the next poll of its
//! stream yields [`Lagged`] with the number dropped, before the items that were kept (the shape of
//! tokio's `broadcast` receiver). Nothing is dropped without being counted and reported.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures_util::Stream;
use thiserror::Error;

use super::shared::lock;

/// A subscriber fell behind: this many items were dropped, oldest first, since the last ones it
/// received.
///
/// Raise the capacity ([`SocketOptions::event_capacity`](super::SocketOptions::event_capacity),
/// or `events_with_capacity`), or consume faster; the stream goes on after reporting this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error(
    "the consumer fell behind and {missed} event(s) were dropped; raise the capacity or consume faster"
)]
pub struct Lagged {
    /// How many items were dropped.
    pub missed: u64,
}

/// One subscriber's queue. Touched by the publisher ([`Hub::publish`], under the session lock)
/// and by its [`Subscription`] (only this mutex); never held while taking the session lock.
#[derive(Debug)]
struct Queue<T> {
    items: VecDeque<T>,
    capacity: usize,
    /// Dropped since the last [`Lagged`] was reported.
    missed: u64,
    /// Dropped over the subscription's life.
    missed_total: u64,
    waker: Option<Waker>,
    /// The publisher is gone (channel dropped, socket shut down): the stream ends once drained.
    closed: bool,
    /// The subscription was dropped: the publisher forgets the queue.
    abandoned: bool,
}

impl<T> Queue<T> {
    fn push(&mut self, item: T) -> Option<Waker> {
        if self.items.len() >= self.capacity {
            self.items.pop_front();
            self.missed += 1;
            self.missed_total += 1;
        }
        self.items.push_back(item);
        self.waker.take()
    }
}

/// The publishing side: every subscriber of one kind of event (a channel's messages, its state
/// changes, the socket's events).
#[derive(Debug)]
pub(crate) struct Hub<T> {
    subscribers: Vec<Arc<Mutex<Queue<T>>>>,
    /// Closed for good: later subscribers get an ended stream.
    closed: bool,
}

impl<T> Default for Hub<T> {
    fn default() -> Self {
        Hub {
            subscribers: Vec::new(),
            closed: false,
        }
    }
}

impl<T> Hub<T> {
    /// A new subscriber, which receives what is published from now on.
    pub(crate) fn subscribe(&mut self, capacity: usize) -> Subscription<T> {
        let queue = Arc::new(Mutex::new(Queue {
            items: VecDeque::new(),
            capacity: capacity.max(1),
            missed: 0,
            missed_total: 0,
            waker: None,
            closed: self.closed,
            abandoned: false,
        }));
        if !self.closed {
            self.subscribers.push(Arc::clone(&queue));
        }
        Subscription { queue }
    }

    /// Ends every subscriber's stream (after what is queued).
    pub(crate) fn close(&mut self) {
        self.closed = true;
        for queue in self.subscribers.drain(..) {
            let waker = {
                let mut queue = lock(&queue);
                queue.closed = true;
                queue.waker.take()
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }
}

impl<T: Clone> Hub<T> {
    /// Queues `item` for every subscriber, dropping (and counting) the oldest of a full queue.
    pub(crate) fn publish(&mut self, item: T) {
        // Nothing to do on a closed hub: `subscribers` is empty.
        self.subscribers.retain(|q| !lock(q).abandoned);
        let mut wakers = Vec::new();
        for queue in &self.subscribers {
            wakers.extend(lock(queue).push(item.clone()));
        }
        wakers.into_iter().for_each(Waker::wake);
    }
}

impl<T> Drop for Hub<T> {
    fn drop(&mut self) {
        self.close();
    }
}

/// A bounded stream of events: `Ok(item)`, or `Err(Lagged)` where items were dropped because
/// this subscriber fell behind.
///
/// Each subscriber has its own queue. When it is full, the **oldest** queued item is dropped and
/// counted, and the next poll yields [`Lagged`] with the number dropped, before the items that
/// were kept (as tokio's `broadcast` receiver does). The publisher never waits for a subscriber,
/// and nothing is dropped without being counted and reported.
///
/// It ends when what it subscribes to is gone: the channel's last handle was dropped, or the
/// socket shut down. Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription<T> {
    queue: Arc<Mutex<Queue<T>>>,
}

impl<T> Subscription<T> {
    /// A stream that has already ended.
    pub(crate) fn ended() -> Self {
        let mut hub = Hub::default();
        hub.close();
        hub.subscribe(1)
    }

    /// How many items this subscriber has missed in all, reported or not.
    pub fn missed_total(&self) -> u64 {
        lock(&self.queue).missed_total
    }

    /// How many items are queued and not yet taken.
    pub fn len(&self) -> usize {
        lock(&self.queue).items.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Stream for Subscription<T> {
    type Item = Result<T, Lagged>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut queue = lock(&self.queue);
        if queue.missed > 0 {
            let missed = std::mem::take(&mut queue.missed);
            return Poll::Ready(Some(Err(Lagged { missed })));
        }
        if let Some(item) = queue.items.pop_front() {
            return Poll::Ready(Some(Ok(item)));
        }
        if queue.closed {
            return Poll::Ready(None);
        }
        queue.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl<T> Drop for Subscription<T> {
    fn drop(&mut self) {
        let mut queue = lock(&self.queue);
        queue.abandoned = true;
        queue.items.clear();
    }
}

#[cfg(test)]
mod tests {
    use futures_util::{FutureExt, StreamExt};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn a_full_queue_drops_the_oldest_and_reports_the_count_first() {
        let mut hub = Hub::default();
        let mut slow = hub.subscribe(2);
        let mut fast = hub.subscribe(10);
        for i in 0..5 {
            hub.publish(i);
        }
        assert_eq!(
            slow.next().now_or_never(),
            Some(Some(Err(Lagged { missed: 3 })))
        );
        assert_eq!(slow.next().now_or_never(), Some(Some(Ok(3))));
        assert_eq!(slow.next().now_or_never(), Some(Some(Ok(4))));
        assert_eq!(slow.next().now_or_never(), None, "nothing queued: pending");
        assert_eq!(slow.missed_total(), 3);
        for i in 0..5 {
            assert_eq!(fast.next().now_or_never(), Some(Some(Ok(i))));
        }
        assert_eq!(fast.missed_total(), 0);
    }

    #[test]
    fn closing_ends_the_stream_after_what_is_queued() {
        let mut hub = Hub::default();
        let mut sub = hub.subscribe(4);
        hub.publish("a");
        hub.close();
        assert_eq!(sub.next().now_or_never(), Some(Some(Ok("a"))));
        assert_eq!(sub.next().now_or_never(), Some(None));
    }

    #[test]
    fn dropped_subscribers_are_forgotten() {
        let mut hub = Hub::default();
        let sub = hub.subscribe(4);
        drop(sub);
        hub.publish(1);
        assert!(hub.subscribers.is_empty());
    }
}
