//! The `Socket` options, read the way phoenix.js reads them.
//!
//! | option | default | becomes |
//! |---|---|---|
//! | `params` | `{}` | [`ConnectOptions::params`], evaluated on every connect |
//! | `authToken` | none | [`ConnectOptions::auth_token`], evaluated on every connect |
//! | `timeout` | 10 000 ms | [`ClientConfig::timeout`] |
//! | `heartbeatIntervalMs` | 30 000 ms | [`ClientConfig::heartbeat_interval`] |
//! | `reconnectAfterMs` | phoenix.js's steps | [`ClientConfig::reconnect_after`], sampled (below) |
//! | `rejoinAfterMs` | phoenix.js's steps | [`ClientConfig::rejoin_after`], sampled (below) |
//! | `vsn` | `"2.0.0"` | [`ClientConfig::serializer`] |
//! | `logger`, `debug` | none | [`Logger`] |
//! | `transport` | global `WebSocket` | [`ConnectOptions::transport`] |
//! | `jitter` (not in phoenix.js) | 0.2 | [`ClientConfig::jitter`] |
//!
//! As in phoenix.js, a number option that is missing, zero or not a number takes its default.
//!
//! The session's [`Backoff::Custom`] takes a plain `fn`, which cannot call into JS, so a
//! `reconnectAfterMs`/`rejoinAfterMs` function is sampled once, here: tries 1 to
//! [`SAMPLED_TRIES`] become steps and try `SAMPLED_TRIES + 1` the delay for every later one. A
//! function of the tries alone, as phoenix.js's documentation shows them, behaves exactly the same.

use std::time::Duration;

use alight_protocol::Serializer;
use alight_protocol::client::{Backoff, ClientConfig};
use js_sys::{Function, Math, Reflect};
use wasm_bindgen::prelude::*;

use crate::web::driver::ConnectOptions;

/// How many tries of a backoff function are sampled.
pub(crate) const SAMPLED_TRIES: u32 = 32;

/// Where log lines go.
#[derive(Debug, Clone)]
pub(crate) enum Logger {
    /// `logger(kind, msg, data)`.
    Function(Function),
    /// `debug: true`: `console.log(`${kind}: ${msg}`, data)`.
    Console,
}

/// Everything a `Socket` is built from.
#[derive(Debug)]
pub(crate) struct Options {
    pub(crate) config: ClientConfig,
    pub(crate) connect: ConnectOptions,
    pub(crate) logger: Option<Logger>,
}

/// Reads `opts` (an object, or `undefined`) for a socket at `endpoint`.
pub(crate) fn parse(endpoint: String, opts: &JsValue) -> Result<Options, JsValue> {
    let get = |name: &str| -> Result<JsValue, JsValue> {
        if opts.is_object() {
            Reflect::get(opts, &JsValue::from_str(name))
        } else {
            Ok(JsValue::UNDEFINED)
        }
    };
    let millis = |name: &str| -> Result<Option<Duration>, JsValue> {
        Ok(get(name)?.as_f64().filter(|ms| *ms > 0.0).map(duration_ms))
    };
    let backoff = |name: &str| -> Result<Option<Backoff>, JsValue> {
        match get(name)?.dyn_into::<Function>() {
            Ok(function) => sample(&function).map(Some),
            Err(_) => Ok(None),
        }
    };

    let mut config = ClientConfig::default().seed(random_seed());
    if let Some(timeout) = millis("timeout")? {
        config = config.timeout(timeout);
    }
    if let Some(interval) = millis("heartbeatIntervalMs")? {
        config = config.heartbeat_interval(Some(interval));
    }
    if let Some(backoff) = backoff("reconnectAfterMs")? {
        config = config.reconnect_after(backoff);
    }
    if let Some(backoff) = backoff("rejoinAfterMs")? {
        config = config.rejoin_after(backoff);
    }
    if let Some(jitter) = get("jitter")?.as_f64() {
        config = config.jitter(jitter);
    }
    if let Some(vsn) = get("vsn")?.as_string() {
        let serializer = Serializer::from_vsn(Some(&vsn))
            .map_err(|error| js_sys::RangeError::new(&error.to_string()))?;
        config = config.serializer(serializer);
    }

    let logger = match get("logger")?.dyn_into::<Function>() {
        Ok(function) => Some(Logger::Function(function)),
        Err(_) if get("debug")?.is_truthy() => Some(Logger::Console),
        Err(_) => None,
    };
    let params = get("params")?;
    let auth_token = get("authToken")?;
    let connect = ConnectOptions {
        endpoint,
        // phoenix.js: `closure(opts.params || {})`, `opts.authToken && closure(opts.authToken)`.
        params: if params.is_truthy() {
            params
        } else {
            js_sys::Object::new().into()
        },
        auth_token: if auth_token.is_truthy() {
            auth_token
        } else {
            JsValue::UNDEFINED
        },
        transport: get("transport")?.dyn_into::<Function>().ok(),
    };
    Ok(Options {
        config,
        connect,
        logger,
    })
}

/// `tries => ms` sampled into steps (see the module documentation).
fn sample(function: &Function) -> Result<Backoff, JsValue> {
    let delay = |tries: u32| -> Result<Duration, JsValue> {
        let ms = function.call1(&JsValue::UNDEFINED, &JsValue::from(tries))?;
        // `setTimeout` treats anything that is not a positive number as 0.
        Ok(ms
            .as_f64()
            .filter(|ms| *ms > 0.0)
            .map_or(Duration::ZERO, duration_ms))
    };
    let steps = (1..=SAMPLED_TRIES)
        .map(delay)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Backoff::steps(steps, delay(SAMPLED_TRIES + 1)?))
}

/// A non-negative number of milliseconds, to the microsecond; NaN is 0 and anything too large
/// the longest delay (`as` saturates), without `Duration`'s float conversions, a kilobyte of the
/// package.
pub(crate) fn duration_ms(ms: f64) -> Duration {
    Duration::from_micros((ms * 1000.0) as u64)
}

/// A seed for the session's jitter, so that clients dropped together do not retry in lockstep.
fn random_seed() -> u64 {
    let half = || (Math::random() * 4_294_967_296.0) as u64;
    half() << 32 | half()
}
