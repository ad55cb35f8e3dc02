//! Publisher backpressure: a client that broadcasts is paced by the fan-out it causes.
//!
//! Publishing costs an `Arc` clone per subscriber; delivering costs a write per subscriber. A
//! client pushing broadcasts as fast as it gets replies would fill every subscriber's queue until
//! all are closed as slow consumers, although none is slow. So the publisher waits for its
//! broadcasts to be *taken*: no subscriber queue holds them any more ([`TakenSignal`] wakes the
//! waiter when the last one lets go). It waits at three places:
//! - **reading pauses** ([`ReadPause`]): once more than a window of a connection's broadcasts are
//!   still queued, it stops reading its client (TCP pushes back) until they are all taken;
//! - **output waits** ([`OutputWait`]): a step that broadcast sends its output (its own copy, then
//!   the reply) once the broadcast of a few steps before is taken, and later output queues behind
//!   it, so a client with pushes in flight is paced by its replies;
//! - **`POST /api/broadcast`** answers once its broadcast is taken ([`until_taken`]).
//!
//! Every wait has the one timeout, [`STALL_TIMEOUT`], and gives up only once that long passes
//! without any queue taking the broadcast ([`ProgressDeadline`]): busy subscribers keep taking, so
//! the publisher waits however long a round of writes to tens of thousands of sockets takes (a
//! fixed timeout would let it overfill their queues), and a subscriber that stopped reading holds
//! it for one timeout per window at most, until its own queue overflows and it is closed.
//!
//! bench/README.md has the measurements behind the window and the lag.

mod output_wait;
mod read_pause;

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use crate::broadcast::Broadcast;
pub(crate) use output_wait::OutputWait;
pub(crate) use read_pause::ReadPause;

/// How long any wait for a broadcast lasts without a queue taking it: longer than a busy
/// subscriber takes to get to its queue, short enough that a stalled one holds nobody for long.
pub(crate) const STALL_TIMEOUT: Duration = Duration::from_millis(100);

/// The waker of whoever waits for a broadcast to be taken, woken when the broadcast is dropped,
/// that is once the last subscriber queue it went into lets go of it.
#[derive(Debug, Default)]
pub(crate) struct TakenSignal {
    waiter: Mutex<Option<Waker>>,
}

impl TakenSignal {
    /// Wakes `waker` when the broadcast is dropped; replaces a waker set before.
    fn wake_when_taken(&self, waker: &Waker) {
        let mut slot = self.waiter.lock().unwrap_or_else(PoisonError::into_inner);
        match &*slot {
            Some(current) if current.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }
}

impl Drop for TakenSignal {
    fn drop(&mut self) {
        let waker = self
            .waiter
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// Ready once no queue holds `broadcast` any more (at once if none does); until then `cx`'s
/// task is woken when the last one lets go.
pub(crate) fn poll_taken(broadcast: &Weak<Broadcast>, cx: &mut Context<'_>) -> Poll<()> {
    match broadcast.upgrade() {
        None => Poll::Ready(()),
        Some(held) => {
            held.taken.wake_when_taken(cx.waker());
            drop(held);
            if broadcast.strong_count() == 0 {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }
    }
}

/// Resolves once no queue holds `broadcast` any more (at once if none does).
pub(crate) async fn taken(broadcast: &Weak<Broadcast>) {
    std::future::poll_fn(|cx| poll_taken(broadcast, cx)).await;
}

/// The timer of a wait, allocated when a wait first needs it and dropped when the wait is over
/// ([`clear`](Self::clear)): a connection keeps a pointer, not a `Sleep`, for the waits it is not
/// in, which is most of its life. Waits are polled from the connection's `select!` rather than
/// being futures of their own, so the timer must outlive a poll.
#[derive(Debug, Default)]
pub(crate) struct Timer(Option<Pin<Box<Sleep>>>);

impl Timer {
    /// Ready once `at` has passed; until then `cx`'s task is woken at `at`.
    pub(crate) fn poll_until(&mut self, at: Instant, cx: &mut Context<'_>) -> Poll<()> {
        let sleep = match &mut self.0 {
            Some(sleep) => {
                if sleep.deadline() != at {
                    sleep.as_mut().reset(at);
                }
                sleep
            }
            None => self.0.insert(Box::pin(tokio::time::sleep_until(at))),
        };
        sleep.as_mut().poll(cx)
    }

    /// Drops the timer, once its wait is over.
    pub(crate) fn clear(&mut self) {
        self.0 = None;
    }
}

/// Resolves once no queue holds `broadcast`, or once [`STALL_TIMEOUT`] passed without any queue
/// taking it: what `POST /api/broadcast` waits for before it answers.
pub(crate) async fn until_taken(broadcast: &Weak<Broadcast>) {
    let mut deadline = ProgressDeadline::new(broadcast.strong_count());
    loop {
        tokio::select! {
            () = taken(broadcast) => return,
            () = tokio::time::sleep_until(deadline.at) => {
                if deadline.expired(broadcast.strong_count()) {
                    return;
                }
            }
        }
    }
}

/// The deadline of a wait for a broadcast to be taken, moved on by [`STALL_TIMEOUT`] whenever
/// some queue took the broadcast since it was set.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProgressDeadline {
    /// When the wait gives up unless some queue took the broadcast since it was set.
    pub(crate) at: Instant,
    /// How many queues held the broadcast when the deadline was set.
    holders: usize,
}

impl ProgressDeadline {
    /// A deadline one timeout from now on a broadcast `holders` queues hold now.
    pub(crate) fn new(holders: usize) -> Self {
        ProgressDeadline {
            at: Instant::now() + STALL_TIMEOUT,
            holders,
        }
    }

    /// Called at the deadline, with `holders` queues holding the broadcast now: whether the wait
    /// is over (none took it since the deadline was set); otherwise the deadline moves on.
    pub(crate) fn expired(&mut self, holders: usize) -> bool {
        if holders < self.holders {
            self.holders = holders;
            self.at = Instant::now() + STALL_TIMEOUT;
            return false;
        }
        true
    }

    /// Records how many queues hold the broadcast now, without moving the deadline.
    pub(crate) fn set_holders(&mut self, holders: usize) {
        self.holders = holders;
    }
}

/// Drops the oldest of `recent` that no queue holds any more, and the room once none is left.
pub(crate) fn forget_taken(recent: &mut VecDeque<Weak<Broadcast>>) {
    while recent.front().is_some_and(|sent| sent.strong_count() == 0) {
        recent.pop_front();
    }
    if recent.is_empty() && recent.capacity() > 0 {
        *recent = VecDeque::new();
    }
}

/// One connection's backpressure: its reading pause and its output waiting for the fan-out.
///
/// The connection records the latest broadcast of each step ([`published`](Self::published)),
/// hands each step's encoded output to [`end_step`](Self::end_step), writes what that leaves, and
/// reads from its client only while [`reading_paused`](Self::reading_paused) says no.
#[derive(Debug)]
pub(crate) struct Backpressure<M> {
    reading: ReadPause,
    output: OutputWait<M>,
    /// The latest broadcast the current step published.
    published: Option<Weak<Broadcast>>,
}

impl<M> Default for Backpressure<M> {
    fn default() -> Self {
        Backpressure {
            reading: ReadPause::default(),
            output: OutputWait::default(),
            published: None,
        }
    }
}

impl<M> Backpressure<M> {
    /// The current step published `latest` (the last call of a step wins).
    pub(crate) fn published(&mut self, latest: Weak<Broadcast>) {
        self.published = Some(latest);
    }

    /// Whether reading from the client pauses now, for subscriber queues of `queue` messages.
    pub(crate) fn reading_paused(&mut self, queue: usize) -> bool {
        let window = self.reading.window(queue);
        self.reading.paused(window)
    }

    /// Whether anything waits for the fan-out: reading (`paused`), or output.
    pub(crate) fn waits(&self, paused: bool) -> bool {
        paused || !self.output.is_empty()
    }

    /// Ready when reading may resume, if `paused` (see [`ReadPause::poll_resume`]), or when
    /// waiting output may go (call [`end_step`](Self::end_step) then); pending while nothing
    /// waits (see [`waits`](Self::waits)).
    ///
    /// A poll function, not an `async fn`: the connection's `select!` builds its branches' futures
    /// on every wake-up and its task keeps room for them all its life, and a future of both waits
    /// (each with its `Sleep`) took 400 bytes of every connection, waiting or not.
    pub(crate) fn poll_progress(&mut self, cx: &mut Context<'_>, paused: bool) -> Poll<()> {
        if paused && self.reading.poll_resume(cx).is_ready() {
            return Poll::Ready(());
        }
        self.output.poll_released(cx)
    }

    /// Ends a step whose encoded output is `out` (its own copies of its broadcasts already
    /// encoded, so only subscriber queues hold them): the output waits if the step published,
    /// and what is released, in order, is left in `out` to be written. A step that ends the
    /// connection (`closing`) releases everything, to be written before the close frame.
    pub(crate) fn end_step(&mut self, out: &mut Vec<M>, closing: bool) {
        // Most steps (every delivery of a broadcast) neither published nor follow output that
        // waits: they go out as they are, without the release's clock read.
        if self.published.is_none() && self.output.is_empty() {
            return;
        }
        let until = self.published.take().and_then(|latest| {
            self.reading.published(latest);
            self.reading.hold_until()
        });
        self.output.hold(out, until.as_ref());
        if closing {
            self.output.release_all(out);
        } else {
            self.output.release(out);
        }
    }

    /// Forgets the broadcasts already taken everywhere, and their room.
    pub(crate) fn forget_taken(&mut self) {
        self.reading.forget_sent();
    }
}
