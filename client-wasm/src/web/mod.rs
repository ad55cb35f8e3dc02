//! The browser driver: the I/O around [`alight_protocol::client::Session`].
//!
//! # Layout
//! - [`driver`]: the driving loop of the session's contract (send what `poll_transmit` gives,
//!   perform `poll_action`, dispatch `poll_event`, keep one timer at `poll_timeout`), connecting
//!   with params and token functions that may be async, and dispatching to the JS layer in order.
//! - [`transport`]: one WebSocket, its handlers, and the frames waiting for its buffer to drain.
//! - [`time`]: `performance.now()` and owned `setTimeout` timers.
//! - [`visibility`]: the `visibilitychange` listener, which `visibility.js` installs on
//!   `document`.
//! - `connect.js`: the params and token evaluated (functions called, promises awaited), and
//!   the arguments of `new WebSocket(...)`: the URL (the endpoint resolved against
//!   the page's `location`, the connect params as a query string, `vsn`) and the subprotocols
//!   that carry the auth token, in plain JavaScript (property reads and string building on JS
//!   values); `scripts/build-client` puts it into the glue.
//!
//! # Why `web_sys::WebSocket`, and not gloo-net's
//!
//! gloo-net wraps the same browser object in a `Stream`/`Sink`, which does not fit here:
//! - its incoming stream is an unbounded channel, and its `Sink` flush resolves without looking at
//!   `bufferedAmount`, so neither direction has backpressure; this transport keeps frames in Rust
//!   while the browser's send buffer is over [`transport::HIGH_WATER`] bytes;
//! - it looks up the global `CloseEvent` class, which Node 20 does not have, and it cannot take
//!   another WebSocket class (the `ws` package), so it would not run under Node at all;
//! - the session is already the state machine; it needs plain callbacks (open, message, error,
//!   close) and an async runtime would only add size to the package.

pub(crate) mod driver;
pub(crate) mod time;
pub(crate) mod transport;
pub(crate) mod visibility;

use std::cell::{Ref, RefCell, RefMut};

use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/src/web/connect.js")]
extern "C" {
    /// The property `name` of `globalThis` (`undefined` if it has none). Not `js_sys::global()`,
    /// which looks for `globalThis`, `self`, `window` and `global` in turn (four imports and their
    /// glue) for engines older than every one this package runs on, nor a `globalThis` static
    /// and `Reflect.get`, whose lazy initialisation and two imports were more code than this.
    pub(crate) fn global(name: &str) -> JsValue;
}

/// `RefCell::borrow` and `borrow_mut` under other names, without `#[track_caller]`: each call of
/// those carries its own panic location (16 bytes of data, and the code that passes it), about
/// forty of them in the module; through these, one per type. The package's panics print nowhere,
/// so the locations are never read.
pub(crate) trait Shared<T> {
    /// [`RefCell::borrow`].
    fn read(&self) -> Ref<'_, T>;
    /// [`RefCell::borrow_mut`].
    fn write(&self) -> RefMut<'_, T>;
}

impl<T> Shared<T> for RefCell<T> {
    fn read(&self) -> Ref<'_, T> {
        self.borrow()
    }

    fn write(&self) -> RefMut<'_, T> {
        self.borrow_mut()
    }
}

/// The one closure type handed to the browser (timers, WebSocket and `visibilitychange` handlers,
/// promise callbacks): each closure signature costs its own invoke shim and destructor in the
/// module and its own wrapper in the glue, so the handlers that take no argument or an event
/// take a `JsValue` and cast it.
pub(crate) type Handler = Closure<dyn Fn(JsValue)>;
