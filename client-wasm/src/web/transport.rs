//! One WebSocket connection: the socket, the four handlers it calls, and the frames waiting for
//! its send buffer to drain.
//!
//! Frames go to the socket while its `bufferedAmount` (bytes handed to `send` but not yet on the
//! network) is at most [`HIGH_WATER`]; above that they wait here, and a timer looks again every
//! [`RETRY`]. What waits here is bounded by [`MAX_QUEUED`]: a connection that cannot take that
//! much is treated as failed ([`Overflow`]), the way a server drops a slow consumer.
//!
//! The handlers are closures owned by [`Transport`]; dropping it detaches them from the socket
//! and closes the socket, so an abandoned connection never calls back.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use std::time::Duration;

use alight_protocol::Wire;
use bytes::Bytes;
use js_sys::{Array, ArrayBuffer, Function, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

use super::time::Timeout;
use super::{Handler, Shared};

/// Above this many bytes in the socket's own send buffer, frames wait in [`Transport`].
pub(crate) const HIGH_WATER: u32 = 1 << 20;
/// How often a waiting queue looks at `bufferedAmount` again.
pub(crate) const RETRY: Duration = Duration::from_millis(10);
/// The most bytes that may wait in [`Transport`] before the connection is given up.
pub(crate) const MAX_QUEUED: usize = 16 << 20;

/// `WebSocket.OPEN`.
const OPEN: u16 = 1;
/// `WebSocket.CLOSING`.
const CLOSING: u16 = 2;

/// What the socket reports.
#[derive(Debug)]
pub(crate) enum TransportEvent {
    /// `open`.
    Open,
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Bytes),
    /// `error`, with the event.
    Error(JsValue),
    /// `close`, with its code and the event.
    Close { code: u16, event: JsValue },
}

/// The queue of this connection grew past [`MAX_QUEUED`] bytes.
#[derive(Debug)]
pub(crate) struct Overflow;

/// An open or opening WebSocket with its handlers.
pub(crate) struct Transport {
    sender: Rc<Sender>,
    // Owned by the transport, detached from the socket on drop.
    _on_open: Handler,
    _on_message: Handler,
    _on_error: Handler,
    _on_close: Handler,
}

/// The socket and what waits to be sent on it. Shared with the retry timer, which holds it weakly
/// so that it goes away with the transport.
struct Sender {
    ws: WebSocket,
    queue: RefCell<VecDeque<Wire>>,
    /// Bytes in `queue`.
    queued: Cell<usize>,
    retry: RefCell<Option<Timeout>>,
    /// The handlers were taken off the socket.
    detached: Cell<bool>,
}

impl Transport {
    /// Opens `new ctor(...args)` (`args`: the URL, and the subprotocols if any; `ctor`: the
    /// global `WebSocket`, or a compatible class such as the `ws` package's) and reports what it
    /// does to `on_event`.
    pub(crate) fn open(
        ctor: &Function,
        args: &Array,
        on_event: Rc<dyn Fn(TransportEvent)>,
    ) -> Result<Transport, JsValue> {
        let ws: WebSocket = Reflect::construct(ctor, args)?.unchecked_into();
        ws.set_binary_type(BinaryType::Arraybuffer);

        // The four handlers are one closure, made four times with the event it is for: each
        // closure type handed to the browser has its own shims and drop glue (four types were
        // 0.1 KB gzipped more). Not one handler told apart by `event.type`: a transport written
        // for phoenix.js may call `onmessage` with an event that has no type.
        let handler = |kind: u8| {
            let on_event = on_event.clone();
            Handler::new(move |event: JsValue| on_socket_event(&*on_event, kind, event))
        };
        let on_open = handler(OPEN_EVENT);
        let on_message = handler(MESSAGE_EVENT);
        let on_error = handler(ERROR_EVENT);
        let on_close = handler(CLOSE_EVENT);
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(Transport {
            sender: Rc::new(Sender {
                ws,
                queue: RefCell::new(VecDeque::new()),
                queued: Cell::new(0),
                retry: RefCell::new(None),
                detached: Cell::new(false),
            }),
            _on_open: on_open,
            _on_message: on_message,
            _on_error: on_error,
            _on_close: on_close,
        })
    }

    /// Sends `wire` after what already waits, as soon as the socket's buffer allows.
    pub(crate) fn send(&self, wire: Wire) -> Result<(), Overflow> {
        let queued = self.sender.queued.get() + wire.len();
        if queued > MAX_QUEUED {
            return Err(Overflow);
        }
        self.sender.queued.set(queued);
        self.sender.queue.write().push_back(wire);
        self.sender.flush(false);
        Ok(())
    }

    /// Hands every waiting frame to the socket, whatever its buffer holds (the browser sends them
    /// before the close frame), then closes it with `code` and `reason` and detaches the handlers.
    pub(crate) fn close(self, code: Option<u16>, reason: &str) {
        self.sender.flush(true);
        self.detach();
        let ws = &self.sender.ws;
        let closed = match code {
            Some(code) => ws.close_with_code_and_reason(code, reason),
            None => ws.close(),
        };
        // Browsers accept only 1000 and 3000-4999 from a client, and reasons up to 123 bytes.
        if closed.is_err() {
            let _ = ws.close();
        }
    }

    fn detach(&self) {
        if self.sender.detached.replace(true) {
            return;
        }
        let ws = &self.sender.ws;
        ws.set_onopen(None);
        ws.set_onmessage(None);
        ws.set_onclose(None);
        // Not `None`: the `ws` package (Node) throws an `error` event nobody listens to, which
        // ends the process, and it emits one when a connection is closed before it opened
        // (phoenix.js installs a no-op for the same reason). The no-op belongs to the JS heap.
        let noop = Handler::new(|_: JsValue| {}).into_js_value();
        ws.set_onerror(Some(noop.unchecked_ref()));
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        self.detach();
        if self.sender.ws.ready_state() < CLOSING {
            // Errors are impossible for a plain close(); nothing to do about one anyway.
            let _ = self.sender.ws.close();
        }
    }
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("queued", &self.sender.queued.get())
            .finish_non_exhaustive()
    }
}

/// Which of the socket's handlers an event came to.
const OPEN_EVENT: u8 = 0;
const MESSAGE_EVENT: u8 = 1;
const ERROR_EVENT: u8 = 2;
const CLOSE_EVENT: u8 = 3;

/// What the socket reported to its handler `kind`, as a [`TransportEvent`] for `on_event`.
fn on_socket_event(on_event: &dyn Fn(TransportEvent), kind: u8, event: JsValue) {
    match kind {
        OPEN_EVENT => on_event(TransportEvent::Open),
        MESSAGE_EVENT => {
            let data = event.unchecked_into::<MessageEvent>().data();
            if let Some(text) = data.as_string() {
                on_event(TransportEvent::Text(text));
            } else if let Some(buffer) = data.dyn_ref::<ArrayBuffer>() {
                on_event(TransportEvent::Binary(
                    Uint8Array::new(buffer).to_vec().into(),
                ));
            }
            // Anything else (a Blob, if someone changed binaryType) is not a Phoenix frame.
        }
        ERROR_EVENT => on_event(TransportEvent::Error(event)),
        _ => on_event(TransportEvent::Close {
            code: event.unchecked_ref::<CloseEvent>().code(),
            event,
        }),
    }
}

impl Sender {
    /// Sends what waits while the socket's buffer has room (or all of it, with `force`); if
    /// frames remain, looks again after [`RETRY`].
    fn flush(self: &Rc<Self>, force: bool) {
        loop {
            if self.ws.ready_state() != OPEN {
                // Nothing is sent before `open`; after it, the close event is on its way.
                return;
            }
            if !force && self.ws.buffered_amount() > HIGH_WATER {
                self.arm_retry();
                return;
            }
            let Some(wire) = self.queue.write().pop_front() else {
                return;
            };
            self.queued
                .set(self.queued.get().saturating_sub(wire.len()));
            // A send fails only on a socket that is no longer open; its close event follows, and
            // the frame's push times out, which the application hears about.
            let _ = match &wire {
                Wire::Text(text) => self.ws.send_with_str(text.as_str()),
                // A copy the JS heap owns: `ws` (Node) may write a view lazily, after wasm memory
                // was reused or has grown, and masks client frames in place.
                Wire::Binary(bytes) => {
                    let copy = Uint8Array::from(&bytes[..]);
                    self.ws.send_with_array_buffer(&copy.buffer())
                }
            };
        }
    }

    fn arm_retry(self: &Rc<Self>) {
        let mut retry = self.retry.write();
        if retry.is_some() {
            return;
        }
        let sender: Weak<Sender> = Rc::downgrade(self);
        *retry = Some(Timeout::new(RETRY, move || {
            if let Some(sender) = sender.upgrade() {
                let fired = sender.retry.write().take();
                drop(fired);
                sender.flush(false);
            }
        }));
    }
}
