//! `Client`: the one class the module exports, a socket's session and driver behind a handful of
//! coarse methods that take and return plain values. phoenix.js's `Socket` and `Channel` are
//! JavaScript classes over it (`api.js`); a channel is a number here, its index in
//! [`Client::ids`].
//!
//! As wasm-bindgen classes, `Socket` and `Channel` cost the module an export shim per method
//! (each one inlining the session call it made) and the glue a wrapper per method (the sizes are
//! in docs/ARCHITECTURE.md, "Figures behind comments"); what only moved JS values
//! around (argument juggling, callback lists, the logger, error messages) is now JavaScript.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use alight_protocol::Payload;
use alight_protocol::client::{
    ChannelId, ChannelState, ConnectionState, JoinError, PushError, PushId, Timestamp,
};
use js_sys::{Array, Function};
use wasm_bindgen::prelude::*;

use super::callbacks::{Callbacks, Push};
use super::options;
use super::payload::to_wire;
use super::registry::{Registry, sink};
use crate::web::Shared;
use crate::web::driver::{BeforeRejoin, Driver, NO_WEBSOCKET};

/// A socket's session and driver, with its callbacks; `api.js` makes phoenix.js's `Socket` and
/// `Channel` of it.
#[wasm_bindgen(skip_typescript)]
#[derive(Debug)]
pub struct Client {
    driver: Rc<Driver>,
    registry: Rc<RefCell<Registry>>,
    /// The session's ids of the channels made, by the number JS knows each by. Never shrinks:
    /// a removed channel keeps its number, and the session answers for the id as it did before.
    ids: RefCell<Vec<ChannelId>>,
}

#[wasm_bindgen]
impl Client {
    /// A client at `end_point`, with the options `readOptions` (`options.js`) read, and the
    /// socket's `onOpen`/`onClose`/`onError`/`onMessage` callbacks.
    #[wasm_bindgen(skip_jsdoc, constructor)]
    pub fn new(end_point: String, options: Array, socket: Callbacks) -> Client {
        let options = options::parse(end_point, &options);
        let registry = Rc::new(RefCell::new(Registry::new(socket, options.logger)));
        let driver = Driver::new(
            options.config,
            options.connect,
            sink(registry.clone()),
            before_rejoin(registry.clone()),
        );
        let client = Client {
            driver,
            registry,
            ids: RefCell::new(Vec::new()),
        };
        client.observe();
        client
    }

    /// Connects, unless connected or connecting already; truthy `params` replace the connect
    /// params.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn connect(&self, params: JsValue) -> Result<(), JsValue> {
        if self.driver.transport_class().is_none() {
            return Err(js_sys::TypeError::new(NO_WEBSOCKET).into());
        }
        if params.is_truthy() {
            self.driver.set_params(params);
        }
        self.driver.act(|session, now| session.connect(now));
        Ok(())
    }

    /// Disconnects with `code` and `reason`, and stops reconnecting.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn disconnect(&self, code: Option<u16>, reason: Option<String>) {
        self.driver.disconnect(code, reason);
    }

    /// Tells the driver which frames to report, after the socket's callbacks changed.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn observe(&self) {
        let (received, sent) = self.registry.read().observes();
        self.driver.observe(received, sent);
    }

    /// A channel for `topic` with `params` (a value, or a function called before every join) and
    /// its `on` callbacks; returns its number.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn channel(
        &self,
        topic: String,
        params: JsValue,
        callbacks: Callbacks,
    ) -> Result<usize, JsValue> {
        let function = params.dyn_ref::<Function>().cloned();
        let params = match function {
            Some(_) => Payload::empty(),
            None => to_wire(&params)?,
        };
        let id = self
            .driver
            .call(|session, _| session.channel(topic, params));
        self.registry.write().add_channel(id, callbacks, function);
        let mut ids = self.ids.write();
        ids.push(id);
        Ok(ids.len() - 1)
    }

    /// Forgets a channel without telling the server.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn remove(&self, channel: usize) {
        if let Some(id) = self.id(channel) {
            self.driver.call(|session, _| session.remove_channel(id));
            self.registry.write().remove_channel(id);
        }
    }

    /// A channel's state, `"closed"`, `"joining"`, `"joined"` or `"errored"`, or with `join_ref`
    /// the ref of its current join (`undefined` if none was sent); without a channel, the
    /// connection's state: `"connecting"`, `"open"` or `"closed"`. JS strings made here rather
    /// than returned `String`s, which would cost a shim and a copy-out-and-free in the glue; one
    /// export for the three reads.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn state(&self, channel: Option<usize>, join_ref: bool) -> JsValue {
        let Some(channel) = channel else {
            let state = self.driver.read(|session| session.connection_state());
            return JsValue::from_str(match state {
                ConnectionState::Connecting => "connecting",
                ConnectionState::Open => "open",
                _ => "closed",
            });
        };
        let id = self.id(channel);
        if join_ref {
            let join_ref = id.and_then(|id| {
                self.driver
                    .read(|session| session.join_ref(id).map(JsValue::from_str))
            });
            return join_ref.unwrap_or(JsValue::UNDEFINED);
        }
        let state = id.and_then(|id| self.driver.read(|session| session.channel_state(id)));
        JsValue::from_str(match state {
            Some(ChannelState::Joining) => "joining",
            Some(ChannelState::Joined) => "joined",
            Some(ChannelState::Errored) => "errored",
            _ => "closed",
        })
    }

    /// Sends a join ([`JOIN`](Client::JOIN), with `timeout`), a push ([`PUSH`](Client::PUSH), with
    /// `event`, `payload` and `timeout`) or a leave ([`LEAVE`](Client::LEAVE)) on a channel: one
    /// export for the three, which share their bookkeeping (three exports would each carry it).
    #[wasm_bindgen(skip_jsdoc)]
    pub fn send(
        &self,
        op: u32,
        channel: usize,
        event: Option<String>,
        payload: JsValue,
        timeout: Option<f64>,
    ) -> Result<Option<Push>, JsValue> {
        match op {
            Client::JOIN => self.join(channel, timeout),
            Client::PUSH => self.push(channel, event, payload, timeout),
            _ => Ok(self.leave(channel)),
        }
    }
}

impl Client {
    /// [`send`](Client::send)'s join (`api.js` passes the numbers).
    pub const JOIN: u32 = 0;
    /// [`send`](Client::send)'s push.
    pub const PUSH: u32 = 1;
    /// [`send`](Client::send)'s leave.
    pub const LEAVE: u32 = 2;

    /// Joins a channel, with `timeout` ms for this and every rejoin (and as the default of its
    /// pushes); the push answers every (re)join.
    fn join(&self, channel: usize, timeout: Option<f64>) -> Result<Option<Push>, JsValue> {
        let id = self.known(channel)?;
        let state = self.driver.read(|session| session.channel_state(id));
        let joining_or_joined = matches!(
            state,
            Some(ChannelState::Joining | ChannelState::Joined | ChannelState::Errored)
        );
        if !joining_or_joined {
            refresh_params(&self.driver, &self.registry, id)?;
        }
        let timeout = timeout.and_then(millis);
        let push = self
            .driver
            .call(|session, now| session.join(id, timeout, now))
            .map_err(|error| join_refused(&error))?;
        Ok(self.track(id, push, true))
    }

    /// Pushes `event` with `payload` (JSON, or an `ArrayBuffer` as a binary frame), with `timeout`
    /// ms (default: the join's). `undefined` if the channel is not joined (`api.js` throws
    /// phoenix.js's message, which names the topic).
    fn push(
        &self,
        channel: usize,
        event: Option<String>,
        payload: JsValue,
        timeout: Option<f64>,
    ) -> Result<Option<Push>, JsValue> {
        let id = self.known(channel)?;
        let payload = to_wire(&payload)?;
        let timeout = timeout.and_then(millis);
        let pushed = self.driver.call(|session, now| {
            session.push(id, event.unwrap_or_default(), payload, timeout, now)
        });
        match pushed {
            Ok(push) => Ok(self.track(id, push, false)),
            Err(PushError::NotJoined) => Ok(None),
            Err(PushError::UnknownChannel) => Err(refused(REMOVED)),
            Err(PushError::Encode(_)) => Err(refused(TOO_LONG)),
            Err(_) => Err(refused("the push was refused")),
        }
    }

    /// Leaves: sends `phx_leave` if connected and closes the channel at once; `None` when there
    /// was nothing to tell the server (`api.js` answers `ok` at once, as phoenix.js does).
    fn leave(&self, channel: usize) -> Option<Push> {
        let left = self
            .id(channel)
            .map(|id| (id, self.driver.call(|session, now| session.leave(id, now))));
        match left {
            Some((id, Ok(push))) => self.track(id, push, false),
            // Not joined (or removed): nothing to tell the server, and nothing to wait for.
            _ => {
                self.driver.pump();
                None
            }
        }
    }

    fn id(&self, channel: usize) -> Option<ChannelId> {
        self.ids.read().get(channel).copied()
    }

    /// The id of a channel, or the error for a channel this client did not make.
    fn known(&self, channel: usize) -> Result<ChannelId, JsValue> {
        self.id(channel).ok_or_else(|| refused(REMOVED))
    }

    /// Registers `push`'s answers, then lets the driver send it.
    fn track(&self, channel: ChannelId, push: PushId, join: bool) -> Option<Push> {
        let hooks = self.registry.read().track(channel, push, join);
        self.driver.pump();
        hooks
    }
}

/// Calls the channel's params function, if its params are one, and hands the result to the
/// session for the next join (phoenix.js calls it each time its join push is sent). Runs with no
/// borrow of the driver or the registry held: the function is user code.
fn refresh_params(
    driver: &Driver,
    registry: &RefCell<Registry>,
    channel: ChannelId,
) -> Result<(), JsValue> {
    let function = registry.read().params_function(channel);
    let Some(function) = function else {
        return Ok(());
    };
    let params = to_wire(&function.call0(&JsValue::UNDEFINED)?)?;
    driver
        .call(|session, _| session.set_channel_params(channel, params))
        .map_err(|error| join_refused(&error))
}

// The errors a refused join or push throws, in the JS API's words: static strings rather than
// the session errors' `Display`, whose formatting code would weigh on the package.

/// A channel that its socket's `remove` forgot (the session's `UnknownChannel`).
const REMOVED: &str =
    "the channel was removed from its socket; make a new one with socket.channel(topic, params)";
/// The session's `Encode`: in this package (V2, refs on every push), only a binary payload's
/// frame with a topic or event over 255 bytes.
const TOO_LONG: &str =
    "an ArrayBuffer payload cannot be sent on a topic or as an event longer than 255 bytes";

fn refused(message: &str) -> JsValue {
    js_sys::Error::new(message).into()
}

fn join_refused(error: &JoinError) -> JsValue {
    refused(match error {
        JoinError::AlreadyJoined => {
            "tried to join multiple times. 'join' can only be called again once the channel is closed"
        }
        JoinError::UnknownChannel => REMOVED,
        JoinError::Encode(_) => TOO_LONG,
        _ => "the join was refused",
    })
}

/// The driver's [`BeforeRejoin`] hook: refreshes the params of each channel whose params are a
/// function and that is about to rejoin: every errored one when the connection opens, those whose
/// rejoin timer is due when a timer fires. A function that throws is reported as uncaught, and
/// the rejoin carries the params it returned last.
fn before_rejoin(registry: Rc<RefCell<Registry>>) -> BeforeRejoin {
    Box::new(move |driver: &Driver, timer: Option<Timestamp>| {
        let channels = registry.read().with_params_functions();
        for channel in channels {
            let rejoins = driver.read(|session| match timer {
                None => session.channel_state(channel) == Some(ChannelState::Errored),
                Some(now) => session.rejoin_due(channel, now),
            });
            if rejoins && let Err(error) = refresh_params(driver, &registry, channel) {
                Callbacks::report(&error);
            }
        }
    })
}

/// A timeout in ms, as phoenix.js takes it: anything but a positive number means the default.
fn millis(ms: f64) -> Option<Duration> {
    (ms > 0.0).then(|| options::duration_ms(ms))
}
