//! A stream polled only once it has woken its task: a connection's socket, read this way and
//! written through [`PollWhenWoken::get_mut`].
//!
//! A connection's task wakes for many reasons (a broadcast queued for it, waiting output
//! released, a timer) and its `select!` polls every branch each time. Polling the WebSocket when
//! nothing arrived is not free: tungstenite's read path (which zeroes its read buffer before
//! every read attempt) and the socket's readiness check. Under a large fan-out nearly every
//! wake-up is a broadcast, so that was paid on every delivery. [`PollWhenWoken`] remembers
//! whether the stream itself asked to be polled again and, if it did not, answers `Pending` at
//! once.
//!
//! Writing through [`get_mut`](PollWhenWoken::get_mut) leaves that alone: tokio-tungstenite
//! keeps the wakers of reads and writes apart, so a write registers the task's own waker and a
//! read the flag's, and whatever the socket wakes reaches both.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::Stream;
use futures_util::task::AtomicWaker;

/// What the inner stream wakes: it marks the stream ready, then wakes the task polling it.
#[derive(Default)]
struct ReadyFlag {
    ready: AtomicBool,
    task: AtomicWaker,
}

impl Wake for ReadyFlag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.ready.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// A stream that is polled only after it woke its task (or yielded an item: more may be
/// buffered), and answers `Pending` without polling the inner stream otherwise.
pub(crate) struct PollWhenWoken<S> {
    inner: S,
    flag: Arc<ReadyFlag>,
    /// The waker the inner stream is polled with, built once.
    waker: Waker,
}

impl<S> PollWhenWoken<S> {
    pub(crate) fn new(inner: S) -> Self {
        let flag = Arc::new(ReadyFlag::default());
        // The first poll goes through: nothing has registered interest yet.
        flag.ready.store(true, Ordering::Relaxed);
        let waker = Waker::from(flag.clone());
        PollWhenWoken { inner, flag, waker }
    }

    /// The inner stream, to write to (a read through it would bypass the flag).
    pub(crate) fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

impl<S: Stream + Unpin> Stream for PollWhenWoken<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = &mut *self;
        this.flag.task.register(cx.waker());
        if !this.flag.ready.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let mut inner_cx = Context::from_waker(&this.waker);
        let polled = Pin::new(&mut this.inner).poll_next(&mut inner_cx);
        if polled.is_ready() {
            // The inner stream may hold more (several frames in one read): poll it again.
            this.flag.ready.store(true, Ordering::Release);
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use futures_util::StreamExt;
    use futures_util::task::noop_waker_ref;

    use super::*;

    /// Counts its polls; yields `items` when told to, and wakes whoever polled last then.
    #[derive(Default)]
    struct Probe {
        polls: Arc<AtomicUsize>,
        items: Vec<u32>,
        waker: Option<Waker>,
    }

    impl Stream for Probe {
        type Item = u32;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u32>> {
            self.polls.fetch_add(1, Ordering::Relaxed);
            match self.items.pop() {
                Some(item) => Poll::Ready(Some(item)),
                None => {
                    self.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        }
    }

    #[test]
    fn the_inner_stream_is_polled_again_only_after_it_woke() {
        let polls = Arc::new(AtomicUsize::new(0));
        let mut stream = PollWhenWoken::new(Probe {
            polls: polls.clone(),
            items: vec![2, 1],
            waker: None,
        });
        let mut cx = Context::from_waker(noop_waker_ref());
        // Items already there come out one per poll, the inner stream polled each time.
        assert_eq!(stream.poll_next_unpin(&mut cx), Poll::Ready(Some(1)));
        assert_eq!(stream.poll_next_unpin(&mut cx), Poll::Ready(Some(2)));
        assert_eq!(stream.poll_next_unpin(&mut cx), Poll::Pending);
        assert_eq!(polls.load(Ordering::Relaxed), 3);
        // Woken for something else: the inner stream is left alone.
        for _ in 0..5 {
            assert_eq!(stream.poll_next_unpin(&mut cx), Poll::Pending);
        }
        assert_eq!(polls.load(Ordering::Relaxed), 3);
        // It wakes its task (through its flag) when data arrives: polled again.
        stream.inner.items.push(3);
        stream.inner.waker.take().expect("registered").wake();
        assert_eq!(stream.poll_next_unpin(&mut cx), Poll::Ready(Some(3)));
        assert_eq!(polls.load(Ordering::Relaxed), 4);
    }

    #[tokio::test]
    async fn a_task_waiting_on_it_is_woken_by_the_inner_stream() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
        let mut stream = PollWhenWoken::new(tokio_stream_of(rx));
        let reader = tokio::spawn(async move { stream.next().await });
        tokio::task::yield_now().await;
        tx.send(7).expect("the reader is alive");
        assert_eq!(reader.await.expect("the reader does not panic"), Some(7));
    }

    /// An unbounded receiver as a stream.
    fn tokio_stream_of(
        mut rx: tokio::sync::mpsc::UnboundedReceiver<u32>,
    ) -> impl Stream<Item = u32> + Unpin {
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}
