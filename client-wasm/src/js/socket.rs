//! `Socket`: phoenix.js's socket, on the session and the browser driver.

use std::cell::RefCell;
use std::rc::Rc;

use alight_protocol::Payload;
use alight_protocol::client::ConnectionState;
use js_sys::{Array, Function};
use wasm_bindgen::prelude::*;

use super::callbacks::Callbacks;
use super::channel::{Channel, before_rejoin};
use super::options;
use super::payload::to_wire;
use super::registry::{CLOSE, ERROR, MESSAGE, OPEN, Registry, log_to, sink};
use crate::web::driver::{Driver, NO_WEBSOCKET};

/// What a socket and its channels and pushes share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) driver: Rc<Driver>,
    pub(crate) registry: Rc<RefCell<Registry>>,
}

impl Shared {
    /// Tells the driver which frames to report, after the callbacks or the logger changed.
    fn observe(&self) {
        let (received, sent) = self.registry.borrow().observes();
        self.driver.observe(received, sent);
    }
}

/// A connection to a Phoenix (or Alight) endpoint, with its channels.
#[wasm_bindgen(skip_typescript)]
#[derive(Debug)]
pub struct Socket {
    shared: Rc<Shared>,
}

#[wasm_bindgen]
impl Socket {
    /// `new Socket(endPoint, opts)`: nothing is sent until `connect()`.
    #[wasm_bindgen(skip_jsdoc, constructor)]
    pub fn new(end_point: String, opts: JsValue) -> Result<Socket, JsValue> {
        let options = options::parse(end_point, &opts)?;
        let registry = Rc::new(RefCell::new(Registry::default()));
        registry.borrow_mut().logger = options.logger;
        let driver = Driver::new(
            options.config,
            options.connect,
            sink(registry.clone()),
            before_rejoin(registry.clone()),
        );
        let shared = Rc::new(Shared { driver, registry });
        shared.observe();
        Ok(Socket { shared })
    }

    /// Connects, unless connected or connecting already. `params` replaces the connect params
    /// (deprecated in phoenix.js; pass them to the constructor).
    #[wasm_bindgen(skip_jsdoc)]
    pub fn connect(&self, params: JsValue) -> Result<(), JsValue> {
        if self.shared.driver.transport_class().is_none() {
            return Err(js_sys::TypeError::new(NO_WEBSOCKET).into());
        }
        if params.is_truthy() {
            self.shared.driver.set_params(params);
        }
        self.shared.driver.act(|session, now| session.connect(now));
        Ok(())
    }

    /// Disconnects and stops reconnecting: `disconnect(callback?, code?, reason?)` as phoenix.js,
    /// or `disconnect(code?, reason?)`. The callback runs once the socket let go of the
    /// connection (at once: the close handshake goes on without it).
    #[wasm_bindgen(skip_jsdoc)]
    pub fn disconnect(&self, first: JsValue, second: JsValue, third: JsValue) {
        let (callback, code, reason) = match first.dyn_into::<Function>() {
            Ok(callback) => (Some(callback), second, third),
            Err(first) => (None, first, second),
        };
        let code = code
            .as_f64()
            .filter(|c| (0.0..=f64::from(u16::MAX)).contains(c))
            .map(|c| c as u16);
        self.shared.driver.disconnect(code, reason.as_string());
        if let Some(callback) = callback {
            let none = &JsValue::UNDEFINED;
            Callbacks::call(&callback, none, none, none);
        }
    }

    /// Calls `callback()` whenever the connection opens; returns a ref for `off`.
    #[wasm_bindgen(skip_jsdoc, js_name = onOpen)]
    pub fn on_open(&self, callback: &Function) -> JsValue {
        self.on(OPEN, callback)
    }

    /// Calls `callback(closeEvent)` whenever the connection closes; returns a ref for `off`.
    #[wasm_bindgen(skip_jsdoc, js_name = onClose)]
    pub fn on_close(&self, callback: &Function) -> JsValue {
        self.on(CLOSE, callback)
    }

    /// Calls `callback(error)` on every transport error; returns a ref for `off`.
    #[wasm_bindgen(skip_jsdoc, js_name = onError)]
    pub fn on_error(&self, callback: &Function) -> JsValue {
        self.on(ERROR, callback)
    }

    /// Calls `callback(message)` for every frame received; returns a ref for `off`.
    #[wasm_bindgen(skip_jsdoc, js_name = onMessage)]
    pub fn on_message(&self, callback: &Function) -> JsValue {
        self.on(MESSAGE, callback)
    }

    /// Removes the `onOpen`/`onClose`/`onError`/`onMessage` callbacks with these refs.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn off(&self, refs: Array) {
        let callbacks = self.shared.registry.borrow().socket.clone();
        callbacks.off_refs(&refs);
        self.shared.observe();
    }

    /// A channel for `topic`, joined with `params` when `join()` is called. A function is called
    /// before every join and rejoin, as phoenix.js does, and its result sent.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn channel(&self, topic: String, params: JsValue) -> Result<Channel, JsValue> {
        let function = params.dyn_ref::<Function>().cloned();
        let params = match function {
            Some(_) => Payload::empty(),
            None => to_wire(&params)?,
        };
        let id = self
            .shared
            .driver
            .call(|session, _| session.channel(topic.clone(), params));
        if let Some(function) = function {
            let mut registry = self.shared.registry.borrow_mut();
            registry.set_params_function(id, function);
        }
        Ok(Channel::new(self.shared.clone(), id, topic))
    }

    /// Forgets `channel` without telling the server (phoenix.js `remove`); `leave()` it first.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn remove(&self, channel: &Channel) {
        let id = channel.id();
        self.shared
            .driver
            .call(|session, _| session.remove_channel(id));
        self.shared.registry.borrow_mut().remove_channel(id);
    }

    /// `"connecting"`, `"open"` or `"closed"` (phoenix.js also has `"closing"`, which never
    /// lasts here: the socket lets go of a connection as soon as it closes it).
    #[wasm_bindgen(skip_jsdoc, js_name = connectionState)]
    pub fn connection_state(&self) -> JsValue {
        let state = self
            .shared
            .driver
            .read(|session| session.connection_state());
        // A `JsValue`, not a `String`, as `Channel`'s getters (channel.rs says why).
        JsValue::from_str(match state {
            ConnectionState::Connecting => "connecting",
            ConnectionState::Open => "open",
            _ => "closed",
        })
    }

    /// Whether the connection is open.
    #[wasm_bindgen(skip_jsdoc, js_name = isConnected)]
    pub fn is_connected(&self) -> bool {
        self.shared.driver.read(|session| session.is_connected())
    }

    /// Whether a logger (or `debug`) was given.
    #[wasm_bindgen(skip_jsdoc, js_name = hasLogger)]
    pub fn has_logger(&self) -> bool {
        self.shared.registry.borrow().logger.is_some()
    }

    /// Logs through the socket's logger.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn log(&self, kind: JsValue, msg: JsValue, data: JsValue) {
        let logger = self.shared.registry.borrow().logger.clone();
        log_to(logger.as_ref(), &kind, &msg, &data);
    }
}

impl Socket {
    fn on(&self, event: &str, callback: &Function) -> JsValue {
        let callbacks = self.shared.registry.borrow().socket.clone();
        let reference = callbacks.on_ref(event, callback);
        self.shared.observe();
        reference
    }
}
