//! The application's callbacks, and the dispatch of the driver's notices to them.
//!
//! | notice | callbacks |
//! |---|---|
//! | open, close, error | `socket.onOpen/onClose/onError` |
//! | frame received | `socket.onMessage`, and the logger (`receive`) |
//! | frame sent | the logger (`push`) |
//! | reply, timeout | the push's `receive(status)` callbacks |
//! | message | the channel's `on(event)` callbacks |
//! | channel errored (crash, lost connection) | `on("phx_error")` (`onError`) |
//! | channel closed (leave, server close) | `on("phx_close")` (`onClose`) |
//!
//! The callback lists and the pushes' callbacks are JavaScript objects (`callbacks.js`); this
//! keeps one per channel and per socket, and decides which to trigger. A channel's pushes in
//! flight are kept by its callbacks object, by the session's push id. A callback that throws
//! does not stop the others: its exception is reported as uncaught (`reportError`, or an unhandled
//! rejection where there is none, as in Node).

use std::cell::RefCell;
use std::rc::Rc;

use alight_protocol::client::{ChannelId, ChannelState, Event, PushId, StateCause};
use alight_protocol::{Body, Frame};
use js_sys::Function;
use wasm_bindgen::prelude::*;

use super::callbacks::{Callbacks, Push};
use super::payload::{parse, to_js};
use crate::web::Shared;
use crate::web::driver::{Driver, Notice, Sink};

/// phoenix.js's channel events for a channel's own state.
pub(crate) const PHX_CLOSE: &str = "phx_close";
pub(crate) const PHX_ERROR: &str = "phx_error";

/// The socket events, as the socket's [`Callbacks`] name them.
pub(crate) const OPEN: &str = "open";
pub(crate) const CLOSE: &str = "close";
pub(crate) const ERROR: &str = "error";
pub(crate) const MESSAGE: &str = "message";

/// Every callback of one socket. Borrowed only to add, remove or copy out callbacks, never while
/// one runs (the [`Callbacks`] objects are cloned out first: they are handles).
///
/// The channels are a vector searched linearly: tens rather than thousands, and each `BTreeMap` key/value pair would add its own copy
/// of the tree code to the package (about 10 KB of wasm each).
#[derive(Debug)]
pub(crate) struct Registry {
    pub(crate) socket: Callbacks,
    channels: Vec<(ChannelId, Bindings)>,
    pub(crate) logger: Option<JsValue>,
}

/// A channel's `on(event)` callbacks and pushes in flight (its `api.js` `Channel`'s), and its
/// params function.
#[derive(Debug)]
pub(crate) struct Bindings {
    callbacks: Callbacks,
    /// `socket.channel(topic, () => params)`: called before every (re)join.
    params: Option<Function>,
}

impl Registry {
    /// A socket's registry: its `onOpen`/`onClose`/`onError`/`onMessage` callbacks (its
    /// `api.js` `Socket`'s) and its logger.
    pub(crate) fn new(socket: Callbacks, logger: Option<JsValue>) -> Registry {
        Registry {
            socket,
            channels: Vec::new(),
            logger,
        }
    }

    /// Whether frames must be observed: for `onMessage` callbacks (received) and the logger
    /// (both ways).
    pub(crate) fn observes(&self) -> (bool, bool) {
        let logging = self.logger.is_some();
        (logging || self.socket.has(MESSAGE), logging)
    }

    /// A new channel, with its callbacks and the function its params come from, if they do.
    pub(crate) fn add_channel(
        &mut self,
        channel: ChannelId,
        callbacks: Callbacks,
        params: Option<Function>,
    ) {
        let bindings = Bindings { callbacks, params };
        self.channels.push((channel, bindings));
    }

    /// The channel's params function, if its params are one.
    pub(crate) fn params_function(&self, channel: ChannelId) -> Option<Function> {
        let bindings = self.channels.iter().find(|(c, _)| *c == channel);
        bindings.and_then(|(_, b)| b.params.clone())
    }

    /// Every channel whose params are a function. A plain loop: `filter_map` and `collect`, with
    /// a clone of each function, compile larger.
    pub(crate) fn with_params_functions(&self) -> Vec<ChannelId> {
        let mut channels = Vec::new();
        for (channel, bindings) in &self.channels {
            if bindings.params.is_some() {
                channels.push(*channel);
            }
        }
        channels
    }

    /// Tracks a push's answers in its channel's callbacks; a join's, for every (re)join of its
    /// channel.
    pub(crate) fn track(&self, channel: ChannelId, push: PushId, join: bool) -> Option<Push> {
        let callbacks = self.bindings(channel)?;
        Some(callbacks.track(push.as_u64() as f64, join))
    }

    /// Forgets a channel removed from the socket, with its pushes (the session drops them
    /// without answering).
    pub(crate) fn remove_channel(&mut self, channel: ChannelId) {
        self.channels.retain(|(c, _)| *c != channel);
    }

    fn bindings(&self, channel: ChannelId) -> Option<Callbacks> {
        let bindings = self.channels.iter().find(|(c, _)| *c == channel);
        bindings.map(|(_, b)| b.callbacks.clone())
    }
}

/// The driver's sink: dispatches each notice to the callbacks of `registry`.
pub(crate) fn sink(registry: Rc<RefCell<Registry>>) -> Sink {
    Box::new(move |driver: &Rc<Driver>, notice: Notice| {
        dispatch(&registry, driver, notice);
    })
}

fn dispatch(registry: &RefCell<Registry>, driver: &Rc<Driver>, notice: Notice) {
    let socket = |event: &str, arg: &JsValue| {
        let callbacks = registry.read().socket.clone();
        let none = &JsValue::UNDEFINED;
        callbacks.trigger(event, arg, none, none);
    };
    match notice {
        Notice::Event(Event::Open) => socket(OPEN, &JsValue::UNDEFINED),
        Notice::Closed(event) => {
            log(registry, "transport", "close", &event);
            socket(CLOSE, &event);
        }
        Notice::Errored(error) => {
            log(registry, "transport", "error", &error);
            socket(ERROR, &error);
        }
        Notice::Incoming(frame) => {
            let logger = registry.read().logger.clone();
            if let Some(logger) = logger {
                observe("receive", &logger, &frame);
            }
        }
        Notice::Received(frame) => {
            let callbacks = registry.read().socket.clone();
            if callbacks.has(MESSAGE) {
                observe("message", &callbacks, &frame);
            }
        }
        Notice::Sent(frame) => {
            let logger = registry.read().logger.clone();
            if let Some(logger) = logger {
                observe("push", &logger, &frame);
            }
        }
        Notice::Log { kind, msg, data } => log(registry, kind, &msg, &data),
        Notice::Event(Event::Reply {
            push,
            channel,
            status,
            response,
        }) => {
            let callbacks = registry.read().bindings(channel);
            if let Some(callbacks) = callbacks {
                callbacks.answer(push.as_u64() as f64, &status, &to_js(&response));
            }
        }
        Notice::Event(Event::Timeout { push, channel }) => {
            let callbacks = registry.read().bindings(channel);
            if let Some(callbacks) = callbacks {
                callbacks.answer(push.as_u64() as f64, "timeout", &parse("{}"));
            }
        }
        Notice::Event(Event::Message {
            channel,
            event,
            payload,
        }) => {
            let callbacks = registry.read().bindings(channel);
            if let Some(callbacks) = callbacks.filter(|c| c.has(&event)) {
                trigger(driver, channel, &callbacks, &event, &to_js(&payload));
            }
        }
        Notice::Event(Event::ChannelState {
            channel,
            state,
            cause,
        }) => {
            let (event, payload) = match (state, cause) {
                (ChannelState::Errored, StateCause::ServerError(payload)) => {
                    (PHX_ERROR, to_js(&payload))
                }
                (ChannelState::Errored, StateCause::ConnectionLost) => (
                    PHX_ERROR,
                    parse(r#"{"source":"transport","reason":"connection_closed"}"#),
                ),
                (ChannelState::Closed, StateCause::ServerClose(payload)) => {
                    (PHX_CLOSE, to_js(&payload))
                }
                (ChannelState::Closed, _) => (PHX_CLOSE, "leave".into()),
                _ => return,
            };
            let callbacks = registry.read().bindings(channel);
            if let Some(callbacks) = callbacks {
                trigger(driver, channel, &callbacks, event, &payload);
            }
        }
        // Events added to the session later are not for the JS API until it knows them.
        Notice::Event(_) => {}
    }
}

/// Calls a channel's callbacks with `(payload, ref, joinRef)` as phoenix.js does (the ref of a
/// server push or broadcast is `null`).
fn trigger(
    driver: &Rc<Driver>,
    channel: ChannelId,
    callbacks: &Callbacks,
    event: &str,
    payload: &JsValue,
) {
    let join_ref = driver
        .read(|session| session.join_ref(channel).map(JsValue::from_str))
        .unwrap_or(JsValue::NULL);
    callbacks.trigger(event, payload, &JsValue::NULL, &join_ref);
}

/// Hands `frame` to [`Callbacks::frame`], which makes phoenix.js's message object or log line.
fn observe(what: &str, target: &JsValue, frame: &Frame) {
    let string = |s: &Option<String>| s.as_deref().map_or(JsValue::NULL, JsValue::from_str);
    let (payload, status) = match &frame.body {
        Body::Event { payload, .. } => (to_js(payload), JsValue::UNDEFINED),
        Body::Reply { status, response } => (to_js(response), JsValue::from_str(status)),
    };
    Callbacks::frame(
        what,
        target,
        &string(&frame.join_ref),
        &string(&frame.msg_ref),
        &frame.topic,
        frame.event(),
        &payload,
        &status,
    );
}

fn log(registry: &RefCell<Registry>, kind: &str, msg: &str, data: &JsValue) {
    let logger = registry.read().logger.clone();
    log_to(logger.as_ref(), &kind.into(), &msg.into(), data);
}

/// Logs to `logger`, if any.
pub(crate) fn log_to(logger: Option<&JsValue>, kind: &JsValue, msg: &JsValue, data: &JsValue) {
    if let Some(logger) = logger {
        Callbacks::log(logger, kind, msg, data);
    }
}
