//! [`ReplyFuture`]: the answer to a join or push, delivered when the session dispatches it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_channel::oneshot;

use super::error::Closed;

/// The answer to a join, push or leave: resolves when the server replies, the call times out, or
/// its channel or socket goes away.
///
/// The call itself happened when the method returned (the frame is already queued, in call order),
/// so the future can be awaited later, moved to another task, or dropped: dropping it does not
/// cancel anything, the answer is just discarded. `Send + 'static`, for `tokio::spawn` and
/// `wasm_bindgen_futures::spawn_local` alike.
#[derive(Debug)]
#[must_use = "the answer arrives through this future; drop it explicitly to ignore it"]
pub struct ReplyFuture<T, E> {
    state: State<T, E>,
}

#[derive(Debug)]
enum State<T, E> {
    /// Answered (or refused) at the call; taken on the first poll.
    Ready(Option<Result<T, E>>),
    /// Waiting for the dispatcher to send the answer.
    Waiting(oneshot::Receiver<Result<T, E>>),
}

impl<T, E> ReplyFuture<T, E> {
    pub(crate) fn ready(result: Result<T, E>) -> Self {
        ReplyFuture {
            state: State::Ready(Some(result)),
        }
    }

    pub(crate) fn waiting(receiver: oneshot::Receiver<Result<T, E>>) -> Self {
        ReplyFuture {
            state: State::Waiting(receiver),
        }
    }
}

// Neither state is self-referential; the receiver is `Unpin`.
impl<T, E> Unpin for ReplyFuture<T, E> {}

impl<T, E: Closed> Future for ReplyFuture<T, E> {
    type Output = Result<T, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            State::Ready(result) => Poll::Ready(result.take().unwrap_or_else(|| Err(E::closed()))),
            State::Waiting(receiver) => match Pin::new(receiver).poll(cx) {
                Poll::Ready(Ok(result)) => Poll::Ready(result),
                // The sender was dropped: the session let go of the call (channel removed,
                // driver gone, socket shut down).
                Poll::Ready(Err(oneshot::Canceled)) => Poll::Ready(Err(E::closed())),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}
