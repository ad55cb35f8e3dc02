//! [`Driver`]: the handle a transport driver (tokio, the browser) runs a [`ClientSocket`] with.
//!
//! [`ClientSocket`]: super::ClientSocket

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use alight_protocol::client::{Action, Timestamp};
use alight_protocol::{DecodeError, Wire};
use bytes::Bytes;

use super::error::{Cause, SocketError};
use super::shared::Shared;

/// The driver's side of a [`ClientSocket`](super::ClientSocket): feed it what the transport reports, take
/// what it must send and do.
///
/// # Contract
/// The driver owns the transport (at most one at a time) and runs this loop:
/// 1. [`take_work`](Self::take_work): send each of [`Work::transmits`] on the open transport (text
///    or binary opcode, as the [`Wire`] says), in order; then perform [`Work::actions`] in order:
///    [`Action::Connect`] evaluates the connect params and token afresh (they may change between
///    attempts) and opens a new transport, reporting it with [`handle_open`](Self::handle_open)
///    or [`handle_error`](Self::handle_error) + [`handle_close`](Self::handle_close);
///    [`Action::Close`] sends what is still queued for the transport, closes it with the code and
///    reason given, and reports nothing more about it. If [`Work::shutdown`] is set, stop after
///    that: every user handle is gone.
/// 2. Wait for the first of: a transport event (report it with `handle_*`), the deadline
///    [`Work::timeout`] (call [`handle_timeout`](Self::handle_timeout)), or a user intent
///    ([`woken`](Self::woken) / [`poll_woken`](Self::poll_woken), which may have queued frames,
///    actions or moved the deadline). Then go to 1.
///
/// Every `handle_*` reads the socket's clock itself and routes the resulting replies and events
/// to the application's futures and streams before it returns, so a driver never sees them.
/// Dropping the driver fails every waiting future with `Closed` and ends every stream.
#[derive(Debug)]
pub struct Driver {
    shared: Arc<Shared>,
}

/// What the driver must do now; see the [`Driver`] contract.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Work {
    /// Frames to send on the open transport, in order.
    pub transmits: Vec<Wire>,
    /// Transport actions to perform, in order, after the transmits.
    pub actions: Vec<Action>,
    /// When to call [`Driver::handle_timeout`], if anything is scheduled.
    pub timeout: Option<Timestamp>,
    /// Every `ClientSocket` and `ClientChannel` handle was dropped: perform the actions (a close), then stop.
    pub shutdown: bool,
}

impl Driver {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Driver { shared }
    }

    /// The socket's clock (to turn [`Work::timeout`] into a delay).
    pub fn now(&self) -> Timestamp {
        self.shared.now()
    }

    /// Takes the frames, actions and next deadline the session has for the driver.
    pub fn take_work(&self) -> Work {
        self.shared.call(|state, _| {
            let mut work = Work {
                shutdown: state.shutdown,
                ..Work::default()
            };
            while let Some(wire) = state.session.poll_transmit() {
                work.transmits.push(wire);
            }
            while let Some(action) = state.session.poll_action() {
                work.actions.push(action);
            }
            work.timeout = state.session.poll_timeout();
            work
        })
    }

    /// The transport asked for by [`Action::Connect`] opened.
    pub fn handle_open(&self) {
        self.shared
            .call(|state, now| state.session.handle_open(now));
    }

    /// The transport closed, with `code` if the close frame gave one.
    pub fn handle_close(&self, code: Option<u16>) {
        self.shared
            .call(|state, now| state.session.handle_close(now, code));
    }

    /// The transport failed (or could not be opened); a [`handle_close`](Self::handle_close)
    /// should follow. `cause` is reported to the application as [`SocketError::Transport`].
    pub fn handle_error(&self, cause: Option<Cause>) {
        self.shared.call(|state, now| {
            // Attached to the session's `Event::Error` by the dispatch that follows.
            state.set_error_cause(cause);
            state.session.handle_error(now);
        });
    }

    /// A text message arrived. One that does not decode is dropped, reported to the application
    /// as [`SocketError::BadFrame`], and returned for the driver's logs.
    pub fn handle_text(&self, text: &str) -> Result<(), Arc<DecodeError>> {
        self.shared.call(|state, now| {
            let result = state.session.handle_text(now, text).map_err(Arc::new);
            if let Err(error) = &result {
                state.report(SocketError::BadFrame(Arc::clone(error)));
            }
            result
        })
    }

    /// A binary message arrived (V2). Errors as [`handle_text`](Self::handle_text).
    pub fn handle_binary(&self, data: Bytes) -> Result<(), Arc<DecodeError>> {
        self.shared.call(|state, now| {
            let result = state.session.handle_binary(now, data).map_err(Arc::new);
            if let Err(error) = &result {
                state.report(SocketError::BadFrame(Arc::clone(error)));
            }
            result
        })
    }

    /// The deadline of [`Work::timeout`] passed (calling it early or twice is harmless).
    pub fn handle_timeout(&self) {
        self.shared
            .call(|state, now| state.session.handle_timeout(now));
    }

    /// The page became visible or hidden (browsers): see
    /// [`Session::handle_visibility`](alight_protocol::client::Session::handle_visibility).
    pub fn handle_visibility(&self, visible: bool) {
        self.shared
            .call(|state, now| state.session.handle_visibility(visible, now));
    }

    /// The network went down or came back (browsers' `offline`/`online`): see
    /// [`Session::handle_online`](alight_protocol::client::Session::handle_online).
    pub fn handle_online(&self, online: bool) {
        self.shared
            .call(|state, now| state.session.handle_online(online, now));
    }

    /// Ready when a user intent happened since the last time this was ready: call
    /// [`take_work`](Self::take_work) then. Registers `cx`'s waker otherwise.
    pub fn poll_woken(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.shared.poll_woken(cx)
    }

    /// [`poll_woken`](Self::poll_woken) as a future.
    pub fn woken(&self) -> impl Future<Output = ()> + Send + '_ {
        std::future::poll_fn(move |cx| self.poll_woken(cx))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.shared.call(|state, _| state.driver_dropped());
    }
}
