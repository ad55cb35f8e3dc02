//! Wake-up futures polled only once they have fired: the connection's shutdown and overflow
//! signals, and its idle timer ([`Deadline`]).
//!
//! The driver's `select!` polls every branch on every wake-up, and a wake-up comes with every
//! message. tokio's `Notified` (under `CancellationToken::cancelled` too) takes its `Notify`'s
//! waiter lock each time it is polled while waiting, to check whether it was notified and to
//! update its waker. Both signals set a flag before they notify, and the connection's task
//! keeps one waker for its whole life, so once the future is registered a load of the flag
//! says everything a poll would: [`fired`] polls the future the first time (registering the
//! task's waker) and afterwards only when the flag is set.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::{Instant, Sleep};

/// Resolves when `signal` does. `armed` says whether `signal` was polled before (and so holds
/// this task's waker); `flag` whether it has fired since. Polls `signal` the first time, and
/// then only once `flag` says so.
pub(super) fn fired<'a, F: Future<Output = ()>>(
    mut signal: Pin<&'a mut F>,
    armed: &'a mut bool,
    flag: impl Fn() -> bool + 'a,
) -> impl Future<Output = ()> + 'a {
    std::future::poll_fn(move |cx| {
        if *armed && !flag() {
            return Poll::Pending;
        }
        *armed = true;
        signal.as_mut().poll(cx)
    })
}

/// A timer polled only once it has elapsed: polling a `Sleep` that has not (to learn that it has
/// not) registers the task's waker with the timer again on every wake-up, although the timer
/// already holds it. The first poll after a [`reset`](Self::reset) goes through, since a timer
/// that fired has let go of its waker; after that `Sleep::is_elapsed`, a load of the timer's
/// state, says everything a poll would, the connection's task keeping one waker for its whole
/// life.
pub(super) struct Deadline<'a> {
    sleep: Pin<&'a mut Sleep>,
    /// Whether `sleep` was polled since it was set, and so holds this task's waker.
    armed: bool,
}

impl<'a> Deadline<'a> {
    pub(super) fn new(sleep: Pin<&'a mut Sleep>) -> Self {
        Deadline {
            sleep,
            armed: false,
        }
    }

    /// Moves the deadline to `at`.
    pub(super) fn reset(&mut self, at: Instant) {
        self.sleep.as_mut().reset(at);
        self.armed = false;
    }
}

impl Future for Deadline<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if this.armed && !this.sleep.is_elapsed() {
            return Poll::Pending;
        }
        this.armed = true;
        // Outside the task's budget: a `Sleep` polled over budget answers `Pending` without
        // registering with the timer, and would then never be polled again.
        std::pin::pin!(tokio::task::unconstrained(this.sleep.as_mut())).poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use futures_util::FutureExt;
    use tokio::sync::Notify;

    use super::*;

    #[test]
    fn polls_the_signal_once_then_only_when_the_flag_is_set() {
        let flag = AtomicBool::new(false);
        let polls = AtomicUsize::new(0);
        let signal = std::future::poll_fn(|_| {
            polls.fetch_add(1, Ordering::Relaxed);
            if flag.load(Ordering::Relaxed) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        });
        let mut signal = std::pin::pin!(signal);
        let mut armed = false;
        let is_set = || flag.load(Ordering::Relaxed);
        for _ in 0..3 {
            let once = fired(signal.as_mut(), &mut armed, is_set).now_or_never();
            assert_eq!(once, None);
        }
        assert_eq!(
            polls.load(Ordering::Relaxed),
            1,
            "polled to register, then not"
        );
        flag.store(true, Ordering::Relaxed);
        let once = fired(signal.as_mut(), &mut armed, is_set).now_or_never();
        assert_eq!(once, Some(()));
        assert_eq!(
            polls.load(Ordering::Relaxed),
            2,
            "polled again once the flag is set"
        );
    }

    /// Polls `future` once with the current task's waker.
    async fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
        std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *future).poll(cx))).await
    }

    /// A deadline fires when it elapses, and again after it was moved on: the poll after a reset
    /// registers the task with the timer again.
    #[tokio::test(start_paused = true)]
    async fn a_deadline_fires_at_its_time_and_again_after_a_reset() {
        let started = Instant::now();
        let sleep = tokio::time::sleep(std::time::Duration::from_secs(1));
        tokio::pin!(sleep);
        let mut deadline = Deadline::new(sleep);
        let limit = std::time::Duration::from_secs(60);
        // Polled before it elapsed (with this task's waker), as the select does on other
        // wake-ups.
        assert_eq!(poll_once(&mut deadline).await, Poll::Pending);
        assert_eq!(poll_once(&mut deadline).await, Poll::Pending);
        tokio::time::timeout(limit, &mut deadline)
            .await
            .expect("fires at its deadline");
        assert_eq!(started.elapsed(), std::time::Duration::from_secs(1));
        deadline.reset(Instant::now() + std::time::Duration::from_secs(2));
        assert_eq!(poll_once(&mut deadline).await, Poll::Pending);
        tokio::time::timeout(limit, &mut deadline)
            .await
            .expect("fires again at the new deadline");
        assert_eq!(started.elapsed(), std::time::Duration::from_secs(3));
    }

    #[tokio::test]
    async fn wakes_and_resolves_when_notified_after_registering() {
        let notify = Arc::new(Notify::new());
        let flag = Arc::new(AtomicBool::new(false));
        let signal = notify.notified();
        tokio::pin!(signal);
        let mut armed = false;
        let waiting = fired(signal, &mut armed, || flag.load(Ordering::Acquire));
        let (notifier, set) = (notify.clone(), flag.clone());
        let firing = async move {
            tokio::task::yield_now().await;
            set.store(true, Ordering::Release);
            notifier.notify_one();
        };
        tokio::join!(waiting, firing);
    }
}
