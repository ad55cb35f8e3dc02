//! The driver: runs a [`Session`] on a WebSocket, one timer and the page's visibility, following
//! the session's driver contract, and hands what the application should hear to a sink, in order.
//!
//! # Who touches what
//!
//! Everything runs on the one JS thread. [`Driver::core`] (the session, the transport, the timer)
//! is borrowed only inside the driver and never while JS code of the user runs: the params and
//! token functions are called, and the sink is called, with no borrow held, so that a user
//! callback may call back into the socket. What the session reports is queued in
//! [`Driver::outbox`] and dispatched by the outermost call only ([`Driver::dispatching`]), so a
//! callback that causes more events sees them after the ones already queued, in the order the
//! session produced them.
//!
//! # Lifetime
//!
//! The transport's handlers and the timer hold the driver strongly: a socket that is connected,
//! reconnecting or waiting for a timeout stays alive without a JS reference to it, as a phoenix.js
//! socket does. `disconnect` (and the end of every timeout) lets go of them, and the driver is
//! freed with its last JS object. The visibility listener holds it weakly.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use alight_protocol::client::{Action, ClientConfig, Event, Session, Timestamp};
use alight_protocol::{DecodeError, Direction, Frame, Serializer, Wire};
use js_sys::{Array, Function};
use wasm_bindgen::prelude::*;

use super::time::{Timeout, now};
use super::transport::{Overflow, Transport, TransportEvent};
use super::visibility::Visibility;
use super::{Handler, Shared};

#[wasm_bindgen(module = "/src/web/connect.js")]
extern "C" {
    /// Evaluates the params and the token as phoenix.js does (a function is called, a promise
    /// awaited), then calls `opened` with the arguments of `new WebSocket(...)`: `[url]`, or
    /// `[url, protocols]` with a token (neither undefined nor null). The URL is the endpoint
    /// resolved against the page's `location`, `/websocket`, the params as a query string and
    /// `vsn=2.0.0`; the protocols carry the token as [`crate::connect::auth_protocols`] does. A
    /// function that throws, a promise that rejects or a token that is not Latin-1 calls `failed`
    /// with the error instead. Either is called before this returns, unless it returns `true`:
    /// then it waits for a promise.
    fn prepare(
        endpoint: &str,
        params: &JsValue,
        token: &JsValue,
        opened: &JsValue,
        failed: &JsValue,
    ) -> bool;

    /// `{code, reason, wasClean: true}`, for a close the session made.
    #[wasm_bindgen(js_name = closeEvent)]
    fn close_event(code: u16, reason: &str) -> JsValue;
}

/// Where and how to connect; the params and token are evaluated on every connect.
#[derive(Debug)]
pub(crate) struct ConnectOptions {
    /// The endpoint as given (`ws://host/socket`, `/socket`, `//host/socket`).
    pub(crate) endpoint: String,
    /// The params object, or a function returning one (or a promise of one).
    pub(crate) params: JsValue,
    /// `undefined`, a token string, or a function returning one (or a promise of one).
    pub(crate) auth_token: JsValue,
    /// A WebSocket-compatible constructor; `None` takes the global `WebSocket` at each connect.
    pub(crate) transport: Option<Function>,
}

/// What the application hears, in order.
#[derive(Debug)]
pub(crate) enum Notice {
    /// A session event, except `Close` and `Error`, which come as the two below.
    Event(Event),
    /// The connection closed: the transport's `CloseEvent`, or a `{code, reason, wasClean}`
    /// object when the session closed it.
    Closed(JsValue),
    /// The transport reported an error (its event), or a connection attempt failed (the error).
    Errored(JsValue),
    /// A frame arrived, before the session handles it (only while [`Driver::observe`] asked for
    /// them): for the logger, which phoenix.js calls first.
    Incoming(Frame),
    /// The same frame, after what the session made of it was dispatched: for `onMessage`
    /// callbacks, which phoenix.js calls last.
    Received(Frame),
    /// A frame was sent (only while [`Driver::observe`] asked for them).
    Sent(Frame),
    /// Something for the logger.
    Log {
        /// phoenix.js's log kind: `transport`, `push`, `receive`, `channel`.
        kind: &'static str,
        /// The message.
        msg: String,
        /// Extra data, or `undefined`.
        data: JsValue,
    },
}

/// Receives the notices; called with no borrow of the driver held.
pub(crate) type Sink = Box<dyn Fn(&Rc<Driver>, Notice)>;

/// Called right before an input that may send rejoins, with no borrow held: the connection
/// opened (`None`), or a timer fired (`Some(now)`, the time `handle_timeout` gets). The JS layer
/// evaluates channel params functions there and sets their results on the session, so each
/// rejoin carries what the function returns at that moment.
pub(crate) type BeforeRejoin = Box<dyn Fn(&Driver, Option<Timestamp>)>;

/// A session with its I/O.
pub(crate) struct Driver {
    core: RefCell<Core>,
    outbox: RefCell<VecDeque<Notice>>,
    dispatching: Cell<bool>,
    sink: Sink,
    before_rejoin: BeforeRejoin,
}

struct Core {
    session: Session,
    options: ConnectOptions,
    /// Counts connection attempts and closes: a params/token evaluation or a transport event that
    /// belongs to an earlier attempt is ignored.
    attempt: u64,
    /// The handlers of a params/token promise being awaited, for attempt `attempt`.
    pending: Option<Pending>,
    transport: Option<Transport>,
    /// The URL of the current transport (a JS string), for the log.
    url: JsValue,
    timer: Option<(Timestamp, Timeout)>,
    visibility: Option<Visibility>,
    observe_received: bool,
    observe_sent: bool,
    /// The transport's close and error events, for the `Event::Close`/`Event::Error` they cause.
    close_event: Option<JsValue>,
    error_event: Option<JsValue>,
    /// The code and reason of the latest close the session asked for.
    last_close: (Option<u16>, String),
    /// A reason for the next close, given to `disconnect`.
    disconnect_reason: Option<String>,
}

/// The two handlers of a connection attempt that waits for a params or token promise.
struct Pending {
    _opened: Handler,
    _failed: Handler,
}

impl Driver {
    /// A driver for a new session; nothing happens until `connect`.
    pub(crate) fn new(
        config: ClientConfig,
        options: ConnectOptions,
        sink: Sink,
        before_rejoin: BeforeRejoin,
    ) -> Rc<Driver> {
        let driver = Rc::new(Driver {
            core: RefCell::new(Core {
                session: Session::new(config),
                options,
                attempt: 0,
                pending: None,
                transport: None,
                url: JsValue::UNDEFINED,
                timer: None,
                visibility: None,
                observe_received: false,
                observe_sent: false,
                close_event: None,
                error_event: None,
                last_close: (None, String::new()),
                disconnect_reason: None,
            }),
            outbox: RefCell::new(VecDeque::new()),
            dispatching: Cell::new(false),
            sink,
            before_rejoin,
        });
        let weak = Rc::downgrade(&driver);
        let visibility = Visibility::install(move |visible| {
            if let Some(driver) = weak.upgrade() {
                driver.act(|session, now| session.handle_visibility(visible, now));
            }
        });
        driver.core.write().visibility = visibility;
        driver
    }

    /// Reads the session.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Session) -> R) -> R {
        f(&self.core.read().session)
    }

    /// Runs a user intent on the session, without acting on what it caused yet: the caller
    /// registers what it needs (a push's callbacks, say), then calls [`pump`](Self::pump).
    pub(crate) fn call<R>(&self, f: impl FnOnce(&mut Session, Timestamp) -> R) -> R {
        f(&mut self.core.write().session, now())
    }

    /// [`call`](Self::call), then [`pump`](Self::pump).
    pub(crate) fn act<R>(self: &Rc<Self>, f: impl FnOnce(&mut Session, Timestamp) -> R) -> R {
        let result = self.call(f);
        self.pump();
        result
    }

    /// Sends, acts on and dispatches everything the session has for the driver.
    pub(crate) fn pump(self: &Rc<Self>) {
        self.drive();
        self.dispatch();
    }

    /// Replaces the connect params (phoenix.js's deprecated `connect(params)`).
    pub(crate) fn set_params(&self, params: JsValue) {
        self.core.write().options.params = params;
    }

    /// Whether to report every frame received and sent ([`Notice::Received`], [`Notice::Sent`]),
    /// for `onMessage` callbacks and the logger: a received frame is cloned for them, a sent one
    /// decoded again from its message.
    pub(crate) fn observe(&self, received: bool, sent: bool) {
        let mut core = self.core.write();
        core.observe_received = received;
        core.observe_sent = sent;
    }

    /// Disconnects with `code` and `reason` (the session's [`Session::disconnect`]).
    pub(crate) fn disconnect(self: &Rc<Self>, code: Option<u16>, reason: Option<String>) {
        self.core.write().disconnect_reason = reason;
        self.act(|session, now| session.disconnect(now, code));
    }

    /// Whether a transport class is available: the `transport` option or a global `WebSocket`.
    pub(crate) fn transport_class(&self) -> Option<Function> {
        let core = self.core.read();
        core.options.transport.clone().or_else(global_websocket)
    }

    // --- the loop -----------------------------------------------------------------------------

    /// Drains the session until it has nothing more, starting the connections it asks for.
    fn drive(self: &Rc<Self>) {
        loop {
            let connect = self.drain(&mut self.core.write());
            match connect {
                Some(attempt) => self.start_connect(attempt),
                None => return,
            }
        }
    }

    /// Sends the session's frames, performs its closes, queues its events and re-arms the timer.
    /// Returns the attempt to start if it asked for a connection: that evaluates user functions,
    /// which must run without the borrow.
    fn drain(self: &Rc<Self>, core: &mut Core) -> Option<u64> {
        let mut connect = None;
        loop {
            let mut busy = false;
            while let Some(wire) = core.session.poll_transmit() {
                busy = true;
                self.transmit(core, wire);
            }
            while let Some(action) = core.session.poll_action() {
                busy = true;
                core.attempt += 1;
                core.pending = None;
                match action {
                    Action::Connect => connect = Some(core.attempt),
                    Action::Close { code, reason } => {
                        connect = None;
                        let reason = core.disconnect_reason.take().unwrap_or(reason);
                        if reason == "heartbeat timeout" {
                            self.log(
                                "transport",
                                "heartbeat timeout. Attempting to re-establish connection".into(),
                            );
                        }
                        if let Some(transport) = core.transport.take() {
                            transport.close(code, &reason);
                        }
                        core.last_close = (code, reason);
                    }
                }
            }
            while let Some(event) = core.session.poll_event() {
                busy = true;
                let notice = match event {
                    Event::Close { code } => Notice::Closed(match core.close_event.take() {
                        Some(event) => event,
                        None => close_info(code.or(core.last_close.0), &core.last_close.1),
                    }),
                    Event::Error => {
                        Notice::Errored(core.error_event.take().unwrap_or(JsValue::UNDEFINED))
                    }
                    event => Notice::Event(event),
                };
                self.outbox.write().push_back(notice);
            }
            if !busy {
                break;
            }
        }
        // Set for an input that did not end up closing anything; not for a later close.
        core.close_event = None;
        core.error_event = None;
        core.disconnect_reason = None;
        self.rearm(core);
        connect
    }

    fn transmit(self: &Rc<Self>, core: &mut Core, wire: Wire) {
        let Some(transport) = &core.transport else {
            return; // The session sends only while open, so this is not expected.
        };
        if core.observe_sent {
            let decoded = match &wire {
                Wire::Text(text) => V2.decode_text(Direction::ToServer, text.as_str()),
                Wire::Binary(bytes) => V2.decode_binary(Direction::ToServer, bytes.clone()),
            };
            if let Ok(frame) = decoded {
                self.outbox.write().push_back(Notice::Sent(frame));
            }
        }
        if let Err(Overflow) = transport.send(wire) {
            self.log(
                "transport",
                "the send queue is full (the connection cannot keep up); reconnecting".into(),
            );
            if let Some(transport) = core.transport.take() {
                transport.close(Some(1000), "send queue full");
            }
            core.close_event = Some(close_info(Some(1000), "send queue full"));
            core.session.handle_close(now(), Some(1000));
        }
    }

    /// Keeps one timeout armed for the session's next deadline.
    fn rearm(self: &Rc<Self>, core: &mut Core) {
        let next = core.session.poll_timeout();
        if core.timer.as_ref().map(|(at, _)| *at) == next {
            return;
        }
        core.timer = next.map(|at| {
            let driver = self.clone();
            let delay = at.saturating_duration_since(now());
            (at, Timeout::new(delay, move || driver.on_timer()))
        });
    }

    fn on_timer(self: &Rc<Self>) {
        let now = now();
        (self.before_rejoin)(self, Some(now));
        {
            let mut core = self.core.write();
            // Dropping the fired timeout frees this closure once it returns.
            core.timer = None;
            core.session.handle_timeout(now);
        }
        self.pump();
    }

    /// Dispatches queued notices, unless an outer call is already doing so.
    fn dispatch(self: &Rc<Self>) {
        if self.dispatching.replace(true) {
            return;
        }
        loop {
            let next = self.outbox.write().pop_front();
            match next {
                Some(notice) => (self.sink)(self, notice),
                None => break,
            }
        }
        self.dispatching.set(false);
    }

    /// A message arrived, decoded here once: shown to the logger (if observed), handed to the
    /// session, and returned for `onMessage` (if observed), or logged if it does not decode.
    fn receive(
        &self,
        core: &mut Core,
        now: Timestamp,
        decoded: Result<Frame, DecodeError>,
    ) -> Option<Frame> {
        match decoded {
            Ok(frame) => {
                let received = core.observe_received.then(|| {
                    self.outbox
                        .write()
                        .push_back(Notice::Incoming(frame.clone()));
                    frame.clone()
                });
                core.session.handle_frame(now, frame);
                received
            }
            Err(error) => {
                self.log_undecodable(&error);
                None
            }
        }
    }

    fn log(&self, kind: &'static str, msg: String) {
        self.outbox.write().push_back(Notice::Log {
            kind,
            msg,
            data: JsValue::UNDEFINED,
        });
    }

    /// A frame that arrived and does not decode is dropped, and logged with why, in a few
    /// words: not `DecodeError`'s `Display`, whose messages (with their numbers, through
    /// `core::fmt`) were 0.6 KB gzipped of the package.
    fn log_undecodable(&self, error: &DecodeError) {
        let why = match error {
            DecodeError::InvalidJson(_) => "not JSON",
            DecodeError::NotAnArray | DecodeError::WrongArity { .. } => {
                "not a [join_ref, ref, topic, event, payload] array"
            }
            DecodeError::MissingField(_) | DecodeError::WrongType { .. } => {
                "a field is missing or of the wrong type"
            }
            DecodeError::Truncated { .. }
            | DecodeError::UnknownKind(_)
            | DecodeError::InvalidUtf8(_) => "a malformed binary frame",
            _ => "not a V2 frame",
        };
        // `push_str` rather than `concat`: its generic join, here and for the "connected to"
        // line, was 0.3 KB gzipped.
        let mut msg = String::from("dropped a frame that does not decode: ");
        msg.push_str(why);
        self.log("receive", msg);
    }

    // --- connecting ---------------------------------------------------------------------------

    /// `Action::Connect`: evaluates the params and token (functions are called, promises
    /// awaited) in `connect.js`, then opens the transport, unless another connect or a close came
    /// first. User code runs there, so without the borrow.
    fn start_connect(self: &Rc<Self>, attempt: u64) {
        let (endpoint, params, token) = {
            let core = self.core.read();
            let options = &core.options;
            let endpoint = options.endpoint.clone();
            (endpoint, options.params.clone(), options.auth_token.clone())
        };
        let opened = {
            let driver = self.clone();
            Handler::new(move |args: JsValue| driver.open(attempt, args.unchecked_into()))
        };
        let failed = {
            let driver = self.clone();
            Handler::new(move |error| driver.connect_failed(attempt, error))
        };
        let waits = prepare(&endpoint, &params, &token, opened.as_ref(), failed.as_ref());
        let mut core = self.core.write();
        if waits && core.attempt == attempt {
            core.pending = Some(Pending {
                _opened: opened,
                _failed: failed,
            });
        }
    }

    /// Opens the transport with `args` (`[url]` or `[url, protocols]`) for `attempt`, if it is
    /// still the current one.
    fn open(self: &Rc<Self>, attempt: u64, args: Array) {
        if self.core.read().attempt != attempt {
            return;
        }
        let Some(class) = self.transport_class() else {
            let error = js_sys::TypeError::new(NO_WEBSOCKET);
            return self.connect_failed(attempt, error.into());
        };
        let on_event: Rc<dyn Fn(TransportEvent)> = {
            let driver = self.clone();
            Rc::new(move |event| driver.on_transport(attempt, event))
        };
        match Transport::open(&class, &args, on_event) {
            Ok(transport) => {
                let mut core = self.core.write();
                if core.attempt == attempt {
                    core.pending = None;
                    core.transport = Some(transport);
                    core.url = args.get(0);
                }
            }
            Err(error) => self.connect_failed(attempt, error),
        }
    }

    /// The attempt failed before a transport existed (a params or token function threw, the
    /// constructor refused the URL): reported as an error and a close, so the session reconnects
    /// after its backoff.
    fn connect_failed(self: &Rc<Self>, attempt: u64, error: JsValue) {
        {
            let mut core = self.core.write();
            if core.attempt != attempt {
                return;
            }
            core.pending = None;
            let now = now();
            core.error_event = Some(error);
            core.close_event = Some(close_info(Some(1006), ""));
            core.session.handle_error(now);
            core.session.handle_close(now, Some(1006));
        }
        self.pump();
    }

    fn on_transport(self: &Rc<Self>, attempt: u64, event: TransportEvent) {
        if matches!(event, TransportEvent::Open) {
            (self.before_rejoin)(self, None);
        }
        {
            let mut core = self.core.write();
            if core.attempt != attempt || core.transport.is_none() {
                return;
            }
            let now = now();
            let mut received = None;
            match event {
                TransportEvent::Open => {
                    let mut msg = String::from("connected to ");
                    msg.push_str(&core.url.as_string().unwrap_or_default());
                    self.log("transport", msg);
                    core.session.handle_open(now);
                }
                TransportEvent::Text(text) => {
                    let decoded = V2.decode_text(Direction::ToClient, &text);
                    received = self.receive(&mut core, now, decoded);
                }
                TransportEvent::Binary(bytes) => {
                    let decoded = V2.decode_binary(Direction::ToClient, bytes);
                    received = self.receive(&mut core, now, decoded);
                }
                TransportEvent::Error(event) => {
                    core.error_event = Some(event);
                    core.session.handle_error(now);
                }
                TransportEvent::Close { code, event } => {
                    // Detached and dropped; this handler is freed once it returns.
                    core.transport = None;
                    core.close_event = Some(event);
                    core.session.handle_close(now, Some(code));
                }
            }
            // phoenix.js hands a frame to the channels first, then to `onMessage`.
            let connect = self.drain(&mut core);
            debug_assert!(connect.is_none(), "frames never ask for a connection");
            if let Some(frame) = received {
                self.outbox.write().push_back(Notice::Received(frame));
            }
        }
        self.pump();
    }
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").finish_non_exhaustive()
    }
}

/// The serializer of every session here: the package speaks V2 only (`js::options` refuses any
/// other `vsn`), so the driver decodes the frames that arrive as V2 and hands them to the
/// session decoded.
const V2: Serializer = Serializer::V2;

/// The error when there is no WebSocket class to connect with.
pub(crate) const NO_WEBSOCKET: &str = "no WebSocket class: pass `transport` (a WebSocket-compatible class) \
     in the socket options, or on Node 20 and older set \
     `globalThis.WebSocket = (await import(\"ws\")).WebSocket` first";

/// The global `WebSocket` class, if there is one.
fn global_websocket() -> Option<Function> {
    super::global("WebSocket").dyn_into::<Function>().ok()
}

/// A `CloseEvent`-like object for a close the session made: `{code, reason, wasClean}`.
fn close_info(code: Option<u16>, reason: &str) -> JsValue {
    // 1005: "no status", what a browser reports for a close without a code.
    close_event(code.unwrap_or(1005), reason)
}
