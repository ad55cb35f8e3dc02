//! Output that waits for a broadcast: a publisher's reply goes out once its broadcast has reached
//! every subscriber's socket task.
//!
//! A `shout` costs its publisher an `Arc` clone per subscriber, and each delivery costs a write.
//! Answering the publisher at once lets a client that keeps several pushes in flight run ahead of
//! the fan-out, and every subscriber's queue (and so the latency of every delivery) grows by what
//! it sends. Holding the step's output (its own copy of the broadcast, then the reply) until the
//! broadcast has been taken from every queue ties a client's pace to the fan-out it causes, the
//! way a reply queued behind the broadcast in one writer per socket would. Everything the
//! connection sends after a held step waits behind it, so the client sees frames in order.
//! A subscriber that stops reading would hold the reply for good, so a step is released once
//! [`HOLD_TIMEOUT`] passes without any queue taking its broadcast. Subscribers that are only
//! busy keep taking, and the step waits for them however long the fan-out takes (a round of
//! writes to tens of thousands of sockets takes longer than the timeout): a fixed timeout would
//! release replies before the fan-out and let the client deepen every queue.
//!
//! A step waits for the broadcast of a few steps before rather than its own (which one,
//! [`Pacing::hold_until`](crate::pacing::Pacing::hold_until) says): the client keeps a few more
//! broadcasts in the pipe, and subscribers write several per syscall.

use std::collections::VecDeque;
use std::sync::Weak;
use std::time::Duration;

use alight_protocol::SharedBroadcast;
use axum::extract::ws::Message;
use tokio::time::Instant;

use crate::pacing::{Stall, taken};

/// The longest a step's output waits without any queue taking its broadcast.
pub(crate) const HOLD_TIMEOUT: Duration = Duration::from_millis(100);

/// Steps' output waiting for their broadcasts, oldest first.
#[derive(Default)]
pub(crate) struct HeldOutput {
    steps: VecDeque<HeldStep>,
}

struct HeldStep {
    /// Released once no queue holds it.
    broadcast: Weak<SharedBroadcast>,
    /// Released at its deadline unless some queue took the broadcast meanwhile.
    stall: Stall,
    messages: Vec<Message>,
}

impl HeldOutput {
    /// Whether any output waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Takes a step's output: held until `until` is taken everywhere if given and still queued
    /// somewhere; behind what is already held otherwise; else left in `out` to be written now.
    pub(crate) fn hold(&mut self, out: &mut Vec<Message>, until: Option<&Weak<SharedBroadcast>>) {
        if out.is_empty() {
            return;
        }
        match until {
            Some(broadcast) if broadcast.strong_count() > 0 => {
                self.steps.push_back(HeldStep {
                    broadcast: broadcast.clone(),
                    stall: Stall::new(broadcast.strong_count(), HOLD_TIMEOUT),
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
    pub(crate) fn release(&mut self, out: &mut Vec<Message>) {
        let now = Instant::now();
        while let Some(step) = self.steps.front_mut() {
            let holders = step.broadcast.strong_count();
            if holders > 0
                && (step.stall.deadline > now || !step.stall.gave_up(holders, HOLD_TIMEOUT))
            {
                break;
            }
            if let Some(mut step) = self.steps.pop_front() {
                out.append(&mut step.messages);
            }
        }
        if self.steps.is_empty() && self.steps.capacity() > 0 {
            self.steps = VecDeque::new();
        }
    }

    /// Moves all held output, in order, to the end of `out`.
    pub(crate) fn release_all(&mut self, out: &mut Vec<Message>) {
        for mut step in self.steps.drain(..) {
            out.append(&mut step.messages);
        }
    }

    /// Resolves once the oldest held step may be released (call [`release`](Self::release)
    /// then). Cancel-safe; pending for ever while nothing is held.
    pub(crate) async fn released(&self) {
        let Some(step) = self.steps.front() else {
            return std::future::pending().await;
        };
        tokio::select! {
            () = taken(&step.broadcast) => {}
            () = tokio::time::sleep_until(step.stall.deadline) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use alight_protocol::Payload;
    use axum::extract::ws::Utf8Bytes;

    use super::*;

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

    fn broadcast() -> Arc<SharedBroadcast> {
        Arc::new(SharedBroadcast::new("room:a", "shout", Payload::empty()))
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_waits_for_its_broadcast_and_later_output_waits_behind_it() {
        let mut held = HeldOutput::default();
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
        held.released().await;
        assert_eq!(started.elapsed(), Duration::from_millis(5));
        held.release(&mut out);
        assert_eq!(texts(&out), ["own copy", "reply", "heartbeat reply"]);
        assert!(held.is_empty());
        taker.await.expect("the taker does not panic");
    }

    #[test]
    fn output_goes_out_at_once_when_nothing_holds_it() {
        let mut held = HeldOutput::default();
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
        let mut held = HeldOutput::default();
        let shout = broadcast();
        let mut queues = vec![shout.clone(); 3];
        let mut out = vec![text("reply")];
        held.hold(&mut out, Some(&Arc::downgrade(&shout)));
        drop(shout);
        let started = Instant::now();
        // One queue takes it before each timeout runs out: the output keeps waiting.
        for taken in 1..3 {
            tokio::time::sleep(HOLD_TIMEOUT - Duration::from_millis(1)).await;
            queues.pop();
            held.released().await;
            held.release(&mut out);
            assert!(out.is_empty(), "{taken} of 3 queues took it");
        }
        // The last queue stalls: released at the first deadline that saw no progress.
        held.released().await;
        held.release(&mut out);
        assert_eq!(texts(&out), ["reply"]);
        assert_eq!(started.elapsed(), HOLD_TIMEOUT * 3);
        assert_eq!(queues.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_broadcast_never_taken_holds_the_output_for_the_timeout_only() {
        let mut held = HeldOutput::default();
        let shout = broadcast();
        let _stuck_in_a_queue = shout.clone();
        let mut out = vec![text("reply")];
        held.hold(&mut out, Some(&Arc::downgrade(&shout)));
        let started = Instant::now();
        held.released().await;
        assert_eq!(started.elapsed(), HOLD_TIMEOUT);
        held.release(&mut out);
        assert_eq!(texts(&out), ["reply"]);
    }
}
