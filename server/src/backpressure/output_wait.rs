//! A step's output waits until the broadcast of a few steps before has left every queue.

use std::collections::VecDeque;
use std::sync::Weak;
use std::task::{Context, Poll};

use tokio::time::Instant;

use crate::backpressure::{ProgressDeadline, Timer, poll_taken};
use crate::broadcast::Broadcast;

/// Steps' output waiting for the fan-out of their broadcasts, oldest first.
///
/// Answering a publisher at once lets a client that keeps several pushes in flight run ahead of
/// the fan-out, and every subscriber's queue (and so the latency of every delivery) grows by what
/// it sends. A step that broadcast keeps its output (its own copy of the broadcast, then the
/// reply) until the broadcast of a few steps before ([`ReadPause::hold_until`] says which) has
/// been taken from every queue: the client keeps a few broadcasts in the pipe, subscribers write
/// several per syscall, and the client's pace is tied to the fan-out it causes. Everything sent
/// after a waiting step queues behind it, so the client sees frames in order.
///
/// `M` is the transport's message type.
///
/// [`ReadPause::hold_until`]: super::ReadPause::hold_until
#[derive(Debug)]
pub(crate) struct OutputWait<M> {
    steps: VecDeque<WaitingStep<M>>,
    /// The oldest step's deadline, while a step waits.
    timer: Timer,
}

#[derive(Debug)]
struct WaitingStep<M> {
    /// Released once no queue holds it.
    broadcast: Weak<Broadcast>,
    /// Released at its deadline unless some queue took the broadcast meanwhile.
    deadline: ProgressDeadline,
    messages: Vec<M>,
}

impl<M> Default for OutputWait<M> {
    fn default() -> Self {
        OutputWait {
            steps: VecDeque::new(),
            timer: Timer::default(),
        }
    }
}

impl<M> OutputWait<M> {
    /// Whether any output waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Takes a step's output: it waits until `until` is taken everywhere if given and still
    /// queued somewhere; behind what already waits otherwise; else it is left in `out` to be
    /// written now.
    pub(crate) fn hold(&mut self, out: &mut Vec<M>, until: Option<&Weak<Broadcast>>) {
        if out.is_empty() {
            return;
        }
        match until {
            Some(broadcast) if broadcast.strong_count() > 0 => {
                self.steps.push_back(WaitingStep {
                    broadcast: broadcast.clone(),
                    deadline: ProgressDeadline::new(broadcast.strong_count()),
                    messages: std::mem::take(out),
                });
            }
            _ => {
                if let Some(last) = self.steps.back_mut() {
                    last.messages.append(out);
                }
            }
        }
    }

    /// Moves the output of the steps now released, in order, to the end of `out`.
    pub(crate) fn release(&mut self, out: &mut Vec<M>) {
        let now = Instant::now();
        while let Some(step) = self.steps.front_mut() {
            let holders = step.broadcast.strong_count();
            if holders > 0 && (step.deadline.at > now || !step.deadline.expired(holders)) {
                break;
            }
            if let Some(mut step) = self.steps.pop_front() {
                out.append(&mut step.messages);
            }
        }
        if self.steps.is_empty() {
            self.timer.clear();
            if self.steps.capacity() > 0 {
                self.steps = VecDeque::new();
            }
        }
    }

    /// Moves all waiting output, in order, to the end of `out`.
    pub(crate) fn release_all(&mut self, out: &mut Vec<M>) {
        for mut step in self.steps.drain(..) {
            out.append(&mut step.messages);
        }
        self.timer.clear();
    }

    /// Ready once the oldest waiting step may be released (call [`release`](Self::release)
    /// then); pending while nothing waits.
    pub(crate) fn poll_released(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(step) = self.steps.front() else {
            return Poll::Pending;
        };
        if poll_taken(&step.broadcast, cx).is_ready() {
            return Poll::Ready(());
        }
        self.timer.poll_until(step.deadline.at, cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use std::time::Duration;

    use alight_protocol::Payload;
    use axum::extract::ws::{Message, Utf8Bytes};

    use super::*;
    use crate::backpressure::STALL_TIMEOUT;

    fn text(s: &'static str) -> Message {
        Message::Text(Utf8Bytes::from_static(s))
    }

    fn texts(out: &[Message]) -> Vec<&str> {
        out.iter()
            .map(|m| match m {
                Message::Text(t) => t.as_str(),
                _ => "?",
            })
            .collect()
    }

    /// Resolves once the oldest waiting step may be released.
    async fn released(held: &mut OutputWait<Message>) {
        std::future::poll_fn(|cx| held.poll_released(cx)).await;
    }

    fn broadcast() -> Arc<Broadcast> {
        Arc::new(Broadcast::new("room:a", "shout", Payload::empty()))
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_waits_for_its_broadcast_and_later_output_waits_behind_it() {
        let mut held = OutputWait::default();
        let shout = broadcast();
        let queued = shout.clone();
        let mut out = vec![text("own copy"), text("reply")];
        held.hold(&mut out, Some(&Arc::downgrade(&shout)));
        drop(shout);
        assert!(out.is_empty() && !held.is_empty());
        // A later step that broadcast nothing (a heartbeat reply) queues behind it.
        out.push(text("heartbeat reply"));
        held.hold(&mut out, None);
        held.release(&mut out);
        assert!(out.is_empty());

        let started = Instant::now();
        let taker = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            drop(queued);
        });
        released(&mut held).await;
        assert_eq!(started.elapsed(), Duration::from_millis(5));
        held.release(&mut out);
        assert_eq!(texts(&out), ["own copy", "reply", "heartbeat reply"]);
        assert!(held.is_empty());
        taker.await.expect("the taker does not panic");
    }

    #[test]
    fn output_goes_out_at_once_when_nothing_holds_it() {
        let mut held = OutputWait::default();
        // No broadcast, or one no queue holds any more (no other subscriber).
        let mut out = vec![text("reply")];
        held.hold(&mut out, None);
        assert_eq!(texts(&out), ["reply"]);
        let gone = Arc::downgrade(&broadcast());
        held.hold(&mut out, Some(&gone));
        assert_eq!(texts(&out), ["reply"]);
        assert!(held.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_broadcast_being_taken_holds_the_output_past_the_timeout() {
        let mut held = OutputWait::default();
        let shout = broadcast();
        let mut queues = vec![shout.clone(); 3];
        let mut out = vec![text("reply")];
        held.hold(&mut out, Some(&Arc::downgrade(&shout)));
        drop(shout);
        let started = Instant::now();
        // One queue takes it before each timeout runs out: the output keeps waiting.
        for taken in 1..3 {
            tokio::time::sleep(STALL_TIMEOUT - Duration::from_millis(1)).await;
            queues.pop();
            released(&mut held).await;
            held.release(&mut out);
            assert!(out.is_empty(), "{taken} of 3 queues took it");
        }
        // The last queue stalls: released at the first deadline that saw no progress.
        released(&mut held).await;
        held.release(&mut out);
        assert_eq!(texts(&out), ["reply"]);
        assert_eq!(started.elapsed(), STALL_TIMEOUT * 3);
        assert_eq!(queues.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_broadcast_never_taken_holds_the_output_for_the_timeout_only() {
        let mut held = OutputWait::default();
        let shout = broadcast();
        let _stuck_in_a_queue = shout.clone();
        let mut out = vec![text("reply")];
        held.hold(&mut out, Some(&Arc::downgrade(&shout)));
        let started = Instant::now();
        released(&mut held).await;
        assert_eq!(started.elapsed(), STALL_TIMEOUT);
        held.release(&mut out);
        assert_eq!(texts(&out), ["reply"]);
    }
}
