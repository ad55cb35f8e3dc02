//! A wake-up future polled only once it has fired: the connection's shutdown and overflow
//! signals.
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
use std::task::Poll;

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
