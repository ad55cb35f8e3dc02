//! `Channel`: phoenix.js's, on the session's channels.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use alight_protocol::client::{ChannelId, ChannelState, JoinError, PushError, Timestamp};
use js_sys::Function;
use wasm_bindgen::prelude::*;

use super::callbacks::Callbacks;
use super::callbacks::Push;
use super::payload::{object, to_wire};
use super::registry::{PHX_CLOSE, PHX_ERROR, Registry};
use super::socket::Shared;
use crate::web::driver::{BeforeRejoin, Driver};

/// A channel of a socket: one topic, joined with its params.
#[wasm_bindgen(skip_typescript)]
#[derive(Debug)]
pub struct Channel {
    shared: Rc<Shared>,
    id: ChannelId,
    topic: String,
}

impl Channel {
    pub(crate) fn new(shared: Rc<Shared>, id: ChannelId, topic: String) -> Channel {
        Channel { shared, id, topic }
    }

    pub(crate) fn id(&self) -> ChannelId {
        self.id
    }
}

/// Calls the channel's params function, if its params are one, and hands the result to the
/// session for the next join (phoenix.js calls it each time its join push is sent). Runs with no
/// borrow of the driver or the registry held: the function is user code.
pub(crate) fn refresh_params(
    driver: &Driver,
    registry: &RefCell<Registry>,
    channel: ChannelId,
) -> Result<(), JsValue> {
    let function = registry.borrow().params_function(channel);
    let Some(function) = function else {
        return Ok(());
    };
    let params = to_wire(&function.call0(&JsValue::UNDEFINED)?)?;
    driver
        .call(|session, _| session.set_channel_params(channel, params))
        .map_err(|error| js_sys::Error::new(&error.to_string()).into())
}

/// The driver's [`BeforeRejoin`] hook: refreshes the params of each channel whose params are a
/// function and that is about to rejoin: every errored one when the connection opens, those whose
/// rejoin timer is due when a timer fires. A function that throws is reported as uncaught, and
/// the rejoin carries the params it returned last.
pub(crate) fn before_rejoin(registry: Rc<RefCell<Registry>>) -> BeforeRejoin {
    Box::new(move |driver: &Driver, timer: Option<Timestamp>| {
        let functions = registry.borrow().params_functions();
        for (channel, _) in functions {
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

#[wasm_bindgen]
impl Channel {
    // The getters return `JsValue`s made from strings rather than `String`s: a returned `String`
    // costs each method a shim in the module and a copy-out-and-free in the glue.

    /// The topic.
    #[wasm_bindgen(skip_jsdoc, getter)]
    pub fn topic(&self) -> JsValue {
        JsValue::from_str(&self.topic)
    }

    /// `"closed"`, `"joining"`, `"joined"` or `"errored"` (phoenix.js's `"leaving"` never lasts
    /// here: a leave closes the channel at once).
    #[wasm_bindgen(skip_jsdoc, getter)]
    pub fn state(&self) -> JsValue {
        let state = self
            .shared
            .driver
            .read(|session| session.channel_state(self.id));
        JsValue::from_str(match state {
            Some(ChannelState::Joining) => "joining",
            Some(ChannelState::Joined) => "joined",
            Some(ChannelState::Errored) => "errored",
            _ => "closed",
        })
    }

    /// The ref of the current join, if one was sent.
    #[wasm_bindgen(skip_jsdoc, js_name = joinRef)]
    pub fn join_ref(&self) -> JsValue {
        self.shared
            .driver
            .read(|session| session.join_ref(self.id).map(JsValue::from_str))
            .unwrap_or(JsValue::UNDEFINED)
    }

    /// Joins, with `timeout` ms for this and every rejoin (and as the default of pushes). The
    /// returned push answers every (re)join.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn join(&self, timeout: Option<f64>) -> Result<Push, JsValue> {
        let timeout = timeout.and_then(millis);
        let state = self
            .shared
            .driver
            .read(|session| session.channel_state(self.id));
        let joining_or_joined = matches!(
            state,
            Some(ChannelState::Joining | ChannelState::Joined | ChannelState::Errored)
        );
        if !joining_or_joined {
            refresh_params(&self.shared.driver, &self.shared.registry, self.id)?;
        }
        let push = self
            .shared
            .driver
            .call(|session, now| session.join(self.id, timeout, now))
            .map_err(|error| match error {
                JoinError::AlreadyJoined => js_sys::Error::new(
                    "tried to join multiple times. 'join' can only be called again once the channel is closed",
                ),
                other => js_sys::Error::new(&other.to_string()),
            })?;
        let push = self.shared.registry.borrow_mut().track(self.id, push, true);
        self.shared.driver.pump();
        Ok(push)
    }

    /// Calls `callback(payload, ref, joinRef)` for every `event` the channel receives; returns a
    /// ref for `off`.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn on(&self, event: &str, callback: &Function) -> u32 {
        let callbacks = self.shared.registry.borrow_mut().callbacks(self.id);
        callbacks.on(event, callback)
    }

    /// Removes the callbacks for `event`, or only the one with `ref`.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn off(&self, event: &str, reference: JsValue) {
        let callbacks = self.shared.registry.borrow_mut().callbacks(self.id);
        callbacks.off(event, &reference);
    }

    /// Calls `callback(reason)` when the channel closes (left, or closed by the server).
    #[wasm_bindgen(skip_jsdoc, js_name = onClose)]
    pub fn on_close(&self, callback: &Function) -> u32 {
        self.on(PHX_CLOSE, callback)
    }

    /// Calls `callback(reason)` when the channel errors (it crashed on the server, or the
    /// connection was lost); it rejoins by itself.
    #[wasm_bindgen(skip_jsdoc, js_name = onError)]
    pub fn on_error(&self, callback: &Function) -> u32 {
        self.on(PHX_ERROR, callback)
    }

    /// Pushes `event` with `payload` (JSON, or an `ArrayBuffer` as a binary frame), with
    /// `timeout` ms (default: the join's). Waits in the channel while it is not joined.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn push(
        &self,
        event: String,
        payload: JsValue,
        timeout: Option<f64>,
    ) -> Result<Push, JsValue> {
        let payload = to_wire(&payload)?;
        let timeout = timeout.and_then(millis);
        let push = self
            .shared
            .driver
            .call(|session, now| session.push(self.id, event.clone(), payload, timeout, now))
            .map_err(|error| match error {
                PushError::NotJoined => js_sys::Error::new(
                    &[
                        "tried to push '",
                        &event,
                        "' to '",
                        &self.topic,
                        "' before joining. Use channel.join() before pushing events",
                    ]
                    .concat(),
                ),
                other => js_sys::Error::new(&other.to_string()),
            })?;
        let push = self
            .shared
            .registry
            .borrow_mut()
            .track(self.id, push, false);
        self.shared.driver.pump();
        Ok(push)
    }

    /// Leaves: sends `phx_leave` if connected and closes the channel at once; the returned push
    /// answers `ok` at once, as phoenix.js's does when it cannot push. `timeout` is accepted for
    /// phoenix.js's signature and not needed.
    #[wasm_bindgen(skip_jsdoc)]
    pub fn leave(&self, timeout: Option<f64>) -> Push {
        let _ = timeout;
        let left = self
            .shared
            .driver
            .call(|session, now| session.leave(self.id, now));
        let push = match left {
            Ok(push) => self
                .shared
                .registry
                .borrow_mut()
                .track(self.id, push, false),
            // Not joined (or removed): nothing to tell the server, and nothing to wait for.
            Err(_) => Push::answered("ok", &object(&[])),
        };
        self.shared.driver.pump();
        push
    }
}

/// A timeout in ms, as phoenix.js takes it: anything but a positive number means the default.
fn millis(ms: f64) -> Option<Duration> {
    (ms > 0.0).then(|| super::options::duration_ms(ms))
}
