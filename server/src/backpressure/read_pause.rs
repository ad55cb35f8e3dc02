//! Reading pauses while more than a window of a connection's broadcasts are still queued.

use std::collections::VecDeque;
use std::sync::Weak;
use std::task::{Context, Poll, ready};

use crate::backpressure::{ProgressDeadline, Timer, forget_taken, poll_taken};
use crate::broadcast::Broadcast;

/// The broadcasts a connection keeps ahead of the subscribers it publishes to, into a topic of
/// up to `WIDER_PER * MIN_WINDOW` subscribers.
const MIN_WINDOW: usize = 64;
/// The most broadcasts a connection keeps ahead of its subscribers, into the largest topics.
const MAX_WINDOW: usize = 128;
/// Past `WIDER_PER * MIN_WINDOW` subscribers, the window grows by one broadcast per this many
/// subscribers.
const WIDER_PER: usize = 80;
/// The hold lag is this fraction of the topic's window (see [`ReadPause::hold_until`]): 16 steps
/// into topics of up to 5,120 subscribers, up to 32 into the largest.
const LAG_PER_WINDOW: usize = 4;
/// How many steps back, at most, the broadcast is that releases a step's waiting output.
const MAX_HOLD_LAG: usize = MAX_WINDOW / LAG_PER_WINDOW;

/// Pauses reading from a client while more than a window of its broadcasts wait in subscriber
/// queues, and picks the broadcast a step's output waits for.
///
/// The connection watches its latest broadcasts weakly (only the subscriber queues that still
/// hold one keep it alive). Once more than a window of them are queued somewhere, it stops reading
/// from its client until every subscriber has taken them all; it keeps serving its own queue
/// meanwhile, so publishers in one topic never wait on each other. Publishing in bursts of a
/// window and letting them drain makes subscribers take several messages per wake-up and write
/// them with one syscall; resuming as soon as the oldest is taken would hand them one at a time.
///
/// The window ([`ReadPause::window`]) is 64 broadcasts, wider into topics of more than 5,120
/// subscribers (up to 128 from 10,240), and at most a quarter of the outbound queue: wider windows
/// batch more writes (a round over a large topic costs a syscall per subscriber however few
/// messages each takes, so there deeper batches pay), narrower ones keep the queues, and so the
/// latency, shorter.
///
/// A subscriber that stops reading holds its broadcasts for good: once
/// [`STALL_TIMEOUT`](super::STALL_TIMEOUT) passes without any subscriber taking the newest one,
/// the publisher forgets them and reads on.
#[derive(Debug, Default)]
pub(crate) struct ReadPause {
    /// This connection's broadcasts that some queue may still hold, oldest first.
    recent: VecDeque<Weak<Broadcast>>,
    /// While paused: when reading resumes regardless, unless subscribers keep taking.
    deadline: Option<ProgressDeadline>,
    /// The deadline's timer, while paused.
    timer: Timer,
    /// How many queues the latest broadcast went into.
    fanout: usize,
    /// How many of this connection's broadcasts every queue has taken, counted up to
    /// [`MAX_HOLD_LAG`]: a held step waits for the broadcast one more than this many steps back
    /// (or than the topic's hold lag, if fewer).
    taken: usize,
}

impl ReadPause {
    /// Records the latest broadcast of a step.
    ///
    /// Called once the step's own copy is encoded: the broadcast's other holders are the
    /// subscriber queues it went into (less any another worker thread already emptied).
    pub(crate) fn published(&mut self, latest: Weak<Broadcast>) {
        // Progress is counted on the newest broadcast (a step may publish while paused, from an
        // intercepted event's `handle_out`).
        self.fanout = latest.strong_count();
        if let Some(deadline) = &mut self.deadline {
            deadline.set_holders(self.fanout);
        }
        self.recent.push_back(latest);
    }

    /// The window for a connection whose subscribers' queues hold at most `queue` messages, sized
    /// by the topic it published to last.
    pub(crate) fn window(&self, queue: usize) -> usize {
        self.topic_window().min(queue / 4).max(1)
    }

    /// The window by the size of the topic published to last alone.
    fn topic_window(&self) -> usize {
        (self.fanout / WIDER_PER).clamp(MIN_WINDOW, MAX_WINDOW)
    }

    /// How many steps back the broadcast is that releases a step's waiting output, once the
    /// connection's slow start is over: a quarter of the topic's window.
    fn hold_lag(&self) -> usize {
        self.topic_window() / LAG_PER_WINDOW
    }

    /// Whether reading is paused, with more than `window` broadcasts still queued; starts the
    /// timeout when it pauses.
    pub(crate) fn paused(&mut self, window: usize) -> bool {
        self.forget_sent();
        if self.recent.len() <= window {
            self.deadline = None;
            self.timer.clear();
            return false;
        }
        if self.deadline.is_none() {
            let holders = self.recent.back().map_or(0, Weak::strong_count);
            self.deadline = Some(ProgressDeadline::new(holders));
        }
        true
    }

    /// The broadcast whose taking releases the output of the step that just published (see
    /// [`OutputWait`](super::OutputWait)): the one of a few steps before, so that a client that keeps pushes in
    /// flight keeps that many more broadcasts in the pipe, and subscribers write several per
    /// syscall. `None` when that broadcast is already taken (fewer are queued).
    ///
    /// How many steps back grows with the connection's first broadcasts, like TCP's slow start:
    /// one step back at first, one more for each broadcast taken everywhere, up to the hold lag.
    /// A client that opens with many pushes in flight then fills the pipe as fast as the fan-out
    /// empties it, rather than all at once into cold connections.
    ///
    /// The hold lag is a quarter of the window: 16 steps into topics of up to 5,120 subscribers,
    /// which gave the most deliveries at the lowest tail latency there, and up to 32 into larger
    /// ones, where a round of writes costs a syscall per subscriber however few messages each
    /// takes, so more broadcasts in the pipe make each write carry more (bench/README.md, "what
    /// changed", items 4, 8, 10 and 11, and "The hold lag into the largest topics").
    ///
    /// The broadcasts still queued are a suffix of this connection's (queues are first in, first
    /// out), so the one `lag` steps back is the `lag`-th from the end if it is still queued.
    pub(crate) fn hold_until(&mut self) -> Option<Weak<Broadcast>> {
        self.forget_sent();
        let lag = (self.taken + 1).min(self.hold_lag());
        let at = self.recent.len().checked_sub(lag + 1)?;
        self.recent.get(at).cloned()
    }

    /// Ready once every subscriber has taken all of them, or at the deadline: then forgets them
    /// if no subscriber took the newest since the deadline was set, and otherwise moves the
    /// deadline on by a timeout (the caller's next `paused` and `poll_resume` wait again).
    pub(crate) fn poll_resume(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // Queues are first in, first out: once the newest is taken everywhere, so are the older.
        let Some(newest) = self.recent.back() else {
            return Poll::Ready(());
        };
        if poll_taken(newest, cx).is_ready() {
            return Poll::Ready(());
        }
        let holders = newest.strong_count();
        let deadline = self
            .deadline
            .get_or_insert_with(|| ProgressDeadline::new(holders));
        ready!(self.timer.poll_until(deadline.at, cx));
        if deadline.expired(newest.strong_count()) {
            self.recent.clear();
            self.deadline = None;
            self.timer.clear();
        }
        Poll::Ready(())
    }

    /// Forgets the oldest broadcasts that every subscriber has taken, and the room once none is
    /// left.
    pub(crate) fn forget_sent(&mut self) {
        let queued = self.recent.len();
        forget_taken(&mut self.recent);
        self.taken = (self.taken + (queued - self.recent.len())).min(MAX_HOLD_LAG);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use std::time::Duration;

    use alight_protocol::Payload;
    use tokio::time::Instant;

    use super::*;
    use crate::backpressure::STALL_TIMEOUT;

    /// Resolves once reading may resume.
    async fn resume(pacing: &mut ReadPause) {
        std::future::poll_fn(|cx| pacing.poll_resume(cx)).await;
    }

    /// A broadcast held by `queues` subscriber queues, as the registry leaves it.
    fn fanned_out(queues: usize) -> (Weak<Broadcast>, Vec<Arc<Broadcast>>) {
        let broadcast = Arc::new(Broadcast::new("room:a", "shout", Payload::empty()));
        let held = vec![broadcast.clone(); queues];
        (Arc::downgrade(&broadcast), held)
    }

    /// Publishes `count` broadcasts on `pacing`, each held by `queues` queues: their weak
    /// references and what holds them.
    fn published_into(
        pacing: &mut ReadPause,
        count: usize,
        queues: usize,
    ) -> (Vec<Weak<Broadcast>>, Vec<Vec<Arc<Broadcast>>>) {
        let mut gates = Vec::new();
        let mut holders = Vec::new();
        for _ in 0..count {
            let (latest, held) = fanned_out(queues);
            pacing.published(latest.clone());
            gates.push(latest);
            holders.push(held);
        }
        (gates, holders)
    }

    /// A connection that published `count` broadcasts, each held by `queues` queues.
    fn published(count: usize, queues: usize) -> (ReadPause, Vec<Vec<Arc<Broadcast>>>) {
        let mut pacing = ReadPause::default();
        let mut holders = Vec::new();
        for _ in 0..count {
            let (latest, held) = fanned_out(queues);
            pacing.published(latest);
            holders.push(held);
        }
        (pacing, holders)
    }

    #[test]
    fn reading_pauses_past_a_window_that_widens_with_the_topic() {
        // (subscribers, outbound queue, window)
        for (queues, queue, window) in [
            (1, 1024, 64),
            (1_000, 1024, 64),
            (5_120, 1024, 64),
            (8_000, 1024, 100),
            (10_240, 1024, 128),
            (20_000, 1024, 128),
            (10_000, 16, 4),
            (1, 2, 1),
        ] {
            let mut pacing = ReadPause::default();
            let mut holders = Vec::new();
            for sent in 1..=window + 1 {
                let (latest, held) = fanned_out(queues);
                pacing.published(latest);
                holders.push(held);
                assert_eq!(pacing.window(queue), window, "{queues} subscribers");
                assert_eq!(
                    pacing.paused(pacing.window(queue)),
                    sent > window,
                    "{queues} subscribers, {sent} broadcasts queued"
                );
            }
        }
    }

    #[test]
    fn reading_resumes_as_queues_are_emptied() {
        let (mut pacing, mut holders) = published(3, 2);
        assert!(pacing.paused(2));
        // The oldest taken by every subscriber: two left, within the window.
        holders.remove(0);
        assert!(!pacing.paused(2));
        // All taken: nothing is remembered, and no room kept.
        holders.clear();
        assert!(!pacing.paused(2));
        assert_eq!(pacing.recent.capacity(), 0);
    }

    #[test]
    fn a_step_is_held_until_the_broadcast_of_a_few_steps_before_is_taken() {
        // (subscribers, steps back): a quarter of the topic's window.
        for (queues, lag) in [(2, 16), (5_120, 16), (10_000, 31), (20_000, 32)] {
            let mut pacing = ReadPause::default();
            // The connection's first broadcasts, taken everywhere: the lag is grown.
            let (_, taken) = published_into(&mut pacing, MAX_HOLD_LAG, queues);
            drop(taken);
            pacing.forget_sent();
            let mut held = Vec::new();
            let mut gates = Vec::new();
            for _ in 0..lag + 4 {
                let (latest, queued) = fanned_out(queues);
                pacing.published(latest.clone());
                held.push(queued);
                gates.push(latest);
                let gate = pacing.hold_until();
                // `lag` steps back; nothing while fewer are queued.
                let expected = gates.len().checked_sub(lag + 1).map(|at| &gates[at]);
                assert_eq!(gate.is_some(), expected.is_some(), "{queues} subscribers");
                if let (Some(gate), Some(expected)) = (gate, expected) {
                    assert!(gate.ptr_eq(expected), "{queues} subscribers");
                }
            }
            // The older broadcasts taken everywhere: fewer than `lag` + 1 are left queued.
            held.drain(..5);
            assert!(pacing.hold_until().is_none());
            // Once everything is taken nothing holds a step.
            held.clear();
            assert!(pacing.hold_until().is_none());
        }
    }

    #[test]
    fn the_lag_grows_by_one_step_per_broadcast_taken_everywhere() {
        let mut pacing = ReadPause::default();
        // A fresh connection: one step back.
        let (gates, mut held) = published_into(&mut pacing, 3, 2);
        assert!(pacing.hold_until().expect("queued").ptr_eq(&gates[1]));
        // Its first broadcast taken everywhere: two steps back.
        held.remove(0);
        let (_, more) = published_into(&mut pacing, 2, 2);
        // Queued now, oldest first: gates[1], gates[2] and two more.
        assert!(pacing.hold_until().expect("queued").ptr_eq(&gates[2]));
        // Never past the topic's hold lag (16 steps into 2 subscribers), however many are taken.
        drop((held, more));
        let (_, many) = published_into(&mut pacing, 40, 2);
        drop(many);
        pacing.forget_sent();
        assert_eq!(pacing.taken, MAX_HOLD_LAG);
        let (gates, _held) = published_into(&mut pacing, 17, 2);
        assert!(pacing.hold_until().expect("queued").ptr_eq(&gates[0]));
    }

    #[tokio::test(start_paused = true)]
    async fn resume_waits_for_the_newest_to_be_taken() {
        let mut pacing = ReadPause::default();
        let (first, first_held) = fanned_out(1);
        let (newest, mut newest_held) = fanned_out(2);
        pacing.published(first);
        pacing.published(newest);
        assert!(pacing.paused(1));
        let started = Instant::now();
        let taker = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            drop(first_held);
            newest_held.pop();
            tokio::time::sleep(Duration::from_millis(10)).await;
            drop(newest_held);
        });
        resume(&mut pacing).await;
        assert_eq!(started.elapsed(), Duration::from_millis(20));
        assert!(!pacing.paused(1));
        taker.await.expect("the taker does not panic");
    }

    #[tokio::test(start_paused = true)]
    async fn a_subscriber_that_never_takes_holds_reading_for_the_timeout_only() {
        let (mut pacing, stuck) = published(3, 1);
        assert!(pacing.paused(2));
        let started = Instant::now();
        resume(&mut pacing).await;
        assert_eq!(started.elapsed(), STALL_TIMEOUT);
        // What was held is forgotten: the window is free again.
        assert!(!pacing.paused(2));
        assert_eq!(stuck.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn subscribers_that_keep_taking_hold_reading_past_the_timeout() {
        /// Three subscriber queues holding two broadcasts each, past a window of one.
        fn two_queued(pacing: &mut ReadPause) -> Vec<Vec<Arc<Broadcast>>> {
            let (older, older_held) = fanned_out(3);
            let (newest, newest_held) = fanned_out(3);
            pacing.published(older);
            pacing.published(newest);
            assert!(pacing.paused(1));
            older_held
                .into_iter()
                .zip(newest_held)
                .map(|(a, b)| vec![a, b])
                .collect()
        }

        // Busy subscribers take their queue 90 ms apart, the last one 270 ms in: more than the
        // timeout in all, but never a timeout without one taking.
        let mut pacing = ReadPause::default();
        let mut queues = two_queued(&mut pacing);
        let started = Instant::now();
        let takers = tokio::spawn(async move {
            while !queues.is_empty() {
                tokio::time::sleep(Duration::from_millis(90)).await;
                queues.pop();
            }
        });
        while pacing.paused(1) {
            resume(&mut pacing).await;
        }
        assert_eq!(started.elapsed(), Duration::from_millis(270));
        takers.await.expect("the takers do not panic");

        // One takes, then the others stall: reading resumes at the first deadline without a
        // taking, the second.
        let mut queues = two_queued(&mut pacing);
        let started = Instant::now();
        let taker = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(90)).await;
            queues.pop();
            queues
        });
        while pacing.paused(1) {
            resume(&mut pacing).await;
        }
        assert_eq!(started.elapsed(), STALL_TIMEOUT * 2);
        let stalled = taker.await.expect("the taker does not panic");
        assert_eq!(stalled.len(), 2);
    }
}
