//! One socket's outbound queue, and the waker its connection task sleeps on.
//!
//! A `VecDeque` under a `std` mutex rather than a `tokio::sync::mpsc` channel, as Alight's own
//! queue: tokio's channel allocates about 1 KiB per socket up front, this one nothing until a
//! message arrives. Senders never wait: a full queue refuses the message and the socket is
//! kicked (closed as a slow consumer by its task). The lock is held for a push or a pop of a few
//! messages, never across an `.await`.
//!
//! The mailbox is also the waker of the socket's read side ([`Wake`]): a read that would block
//! registers it, and its wake-up marks the socket readable before waking the task. The task
//! polls its WebSocket for frames only when so marked, so a wake-up for a queued broadcast does
//! not go through tungstenite's read path, which zeroes its read buffer on every attempt.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Wake};

use axum::extract::ws::Utf8Bytes;
use futures_util::task::AtomicWaker;

/// What [`Mailbox::offer`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    /// Queued; the queue now holds this many.
    Queued(usize),
    /// The queue was full: the socket is now kicked (and this was the first refusal).
    Kicked,
    /// The socket was already kicked.
    Refused,
}

/// A socket's outbound queue.
#[derive(Debug)]
pub struct Mailbox {
    /// Messages waiting for the socket's task; pushed by any task, popped by the socket's.
    queue: Mutex<VecDeque<Utf8Bytes>>,
    /// Messages the queue holds at most.
    capacity: usize,
    /// The socket's task, woken by a push, a kick or its socket becoming readable.
    task: AtomicWaker,
    /// Set by the read side's wake-up, cleared by the task before it reads.
    readable: AtomicBool,
    /// Set once, when the queue overflowed.
    kicked: AtomicBool,
}

impl Mailbox {
    /// An empty mailbox of `capacity` messages (at least 1), its socket marked readable (nothing
    /// has been read yet).
    pub fn new(capacity: usize) -> Arc<Mailbox> {
        Arc::new(Mailbox {
            queue: Mutex::default(),
            capacity: capacity.max(1),
            task: AtomicWaker::new(),
            readable: AtomicBool::new(true),
            kicked: AtomicBool::new(false),
        })
    }

    fn queue(&self) -> MutexGuard<'_, VecDeque<Utf8Bytes>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `message` and wakes the task; a full queue kicks the socket instead.
    pub fn offer(&self, message: Utf8Bytes) -> Offered {
        if self.is_kicked() {
            return Offered::Refused;
        }
        let mut queue = self.queue();
        if queue.len() >= self.capacity {
            drop(queue);
            return if self.kick() {
                Offered::Kicked
            } else {
                Offered::Refused
            };
        }
        queue.push_back(message);
        let len = queue.len();
        drop(queue);
        self.task.wake();
        Offered::Queued(len)
    }

    /// Marks the socket kicked, drops what it had queued (a stalled reader holds nothing) and
    /// wakes its task; `true` the first time.
    pub fn kick(&self) -> bool {
        if self.kicked.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.queue().clear();
        self.task.wake();
        true
    }

    /// Messages queued now.
    pub fn len(&self) -> usize {
        self.queue().len()
    }

    /// Whether the queue overflowed.
    pub fn is_kicked(&self) -> bool {
        self.kicked.load(Ordering::Acquire)
    }

    /// Moves up to `max` queued messages to the back of `out`; returns how many are left.
    pub fn take(&self, out: &mut VecDeque<Utf8Bytes>, max: usize) -> usize {
        let mut queue = self.queue();
        let n = queue.len().min(max);
        out.extend(queue.drain(..n));
        queue.len()
    }

    /// Registers the task polling with `cx` to be woken by a push, a kick or a readable socket.
    pub fn register(&self, cx: &Context<'_>) {
        self.task.register(cx.waker());
    }

    /// Whether the socket may have a frame, clearing the mark: the caller then reads until the
    /// read would block (which marks it again once data comes) or marks it itself.
    pub fn take_readable(&self) -> bool {
        self.readable.swap(false, Ordering::AcqRel)
    }

    /// Marks the socket as worth reading again (a read returned a frame: more may be buffered).
    pub fn set_readable(&self) {
        self.readable.store(true, Ordering::Release);
    }
}

impl Wake for Mailbox {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.set_readable();
        self.task.wake();
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use futures_util::task::noop_waker_ref;

    use super::*;

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Count(std::sync::atomic::AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_full_queue_kicks_its_socket_once_and_drops_what_it_held() {
        let mailbox = Mailbox::new(2);
        let woken = Arc::new(Count::default());
        let waker = Waker::from(woken.clone());
        mailbox.register(&Context::from_waker(&waker));
        let text = Utf8Bytes::from_static("x");
        assert_eq!(mailbox.offer(text.clone()), Offered::Queued(1));
        assert_eq!(woken.0.load(Ordering::Relaxed), 1);
        assert_eq!(mailbox.offer(text.clone()), Offered::Queued(2));
        assert_eq!(mailbox.offer(text.clone()), Offered::Kicked);
        assert!(mailbox.is_kicked());
        assert_eq!(mailbox.offer(text.clone()), Offered::Refused);
        let mut out = VecDeque::new();
        assert_eq!(mailbox.take(&mut out, 10), 0);
        assert!(out.is_empty(), "a kicked socket's queue is dropped");
    }

    #[test]
    fn take_moves_at_most_max_in_order() {
        let mailbox = Mailbox::new(8);
        for text in ["a", "b", "c"] {
            mailbox.offer(Utf8Bytes::from_static(text));
        }
        let mut out = VecDeque::new();
        assert_eq!(mailbox.take(&mut out, 2), 1);
        assert_eq!(mailbox.take(&mut out, 2), 0);
        let got: Vec<&str> = out.iter().map(|t| t.as_str()).collect();
        assert_eq!(got, ["a", "b", "c"]);
    }

    #[test]
    fn the_read_side_waking_marks_the_socket_readable_and_wakes_the_task() {
        let mailbox = Mailbox::new(1);
        assert!(mailbox.take_readable(), "a new socket is read once");
        assert!(!mailbox.take_readable());
        let woken = Arc::new(Count::default());
        let waker = Waker::from(woken.clone());
        mailbox.register(&Context::from_waker(&waker));
        Waker::from(mailbox.clone()).wake_by_ref();
        assert!(mailbox.take_readable());
        assert_eq!(woken.0.load(Ordering::Relaxed), 1);
        mailbox.register(&Context::from_waker(noop_waker_ref()));
    }
}
