//! The `Socket` options, read the way phoenix.js reads them (`options.js` reads them from the
//! object, in JavaScript, for `api.js`'s `Socket`; this makes the session's configuration of
//! them).
//!
//! | option | default | becomes |
//! |---|---|---|
//! | `params` | `{}` | [`ConnectOptions::params`], evaluated on every connect |
//! | `authToken` | none | [`ConnectOptions::auth_token`], evaluated on every connect |
//! | `timeout` | 10 000 ms | [`ClientConfig::timeout`] |
//! | `heartbeatIntervalMs` | 30 000 ms | [`ClientConfig::heartbeat_interval`] |
//! | `reconnectAfterMs` | phoenix.js's steps | [`ClientConfig::reconnect_after`], sampled (below) |
//! | `rejoinAfterMs` | phoenix.js's steps | [`ClientConfig::rejoin_after`], sampled (below) |
//! | `vsn` | `"2.0.0"` (or `2.0`, `2.0.x`), the only one | checked by `options.js`: anything else throws a `RangeError` |
//! | `logger`, `debug` | none | [`Options::logger`] |
//! | `transport` | global `WebSocket` | [`ConnectOptions::transport`] |
//! | `jitter` (not in phoenix.js) | 0.2 | [`ClientConfig::jitter`] |
//!
//! The package speaks V2 only, as phoenix.js 1.8 does: the protocol's V1 serializer is not
//! compiled in, and `vsn: "1.0.0"` throws from the constructor rather than failing at connect.
//! `options.js` checks `vsn` as [`Serializer::from_vsn`](alight_protocol::Serializer::from_vsn)
//! reads it (parsing it here would compile in the error's conversion), and the
//! session keeps its default, V2.
//!
//! As in phoenix.js, a number option that is missing, zero or not a number takes its default.
//!
//! The session's [`Backoff::Custom`] takes a plain `fn`, which cannot call into JS, so a
//! `reconnectAfterMs`/`rejoinAfterMs` function is sampled once, when the socket is made: tries 1
//! to 32 (`SAMPLED_TRIES` in options.js) become steps and try 33 the delay for every later one. A
//! function of the tries alone, as phoenix.js's documentation shows them, behaves exactly the same.

use std::time::Duration;

use alight_protocol::client::{Backoff, ClientConfig};
use js_sys::{Array, Function, Math};
use wasm_bindgen::prelude::*;

use crate::web::driver::ConnectOptions;

/// Everything a `Socket` is built from.
#[derive(Debug)]
pub(crate) struct Options {
    pub(crate) config: ClientConfig,
    pub(crate) connect: ConnectOptions,
    /// Where log lines go: `logger(kind, msg, data)`, or `true` for `debug` (the console);
    /// `callbacks.js` logs to either.
    pub(crate) logger: Option<JsValue>,
}

#[wasm_bindgen]
extern "C" {
    /// An array of numbers (or `undefined`s), read by [`number`](Numbers::number).
    type Numbers;

    /// `array[index]` as a number: NaN where there is none (`undefined`), which the options
    /// treat as not given. A direct `f64` rather than `JsValue::as_f64`, whose `Option` comes
    /// back through memory, with more glue.
    #[wasm_bindgen(method, indexing_getter)]
    fn number(this: &Numbers, index: u32) -> f64;
}

/// Makes the options `readOptions` (options.js) read for a socket at `endpoint` into its
/// configuration.
pub(crate) fn parse(endpoint: String, read: &Array) -> Options {
    let numbers: &Numbers = read.unchecked_ref();
    let present = |ms: f64| (!ms.is_nan()).then_some(ms);
    let millis = |index: u32| present(numbers.number(index)).map(duration_ms);
    // The sampled delays of tries 1 to 33: steps, then the delay of every later try.
    let backoff = |index: u32| -> Option<Backoff> {
        let delays = read.get(index);
        if delays.is_undefined() {
            return None;
        }
        let delays: Numbers = delays.unchecked_into();
        // A plain loop into the variant: the array's iterator collected into a `Vec`, then into
        // `Backoff::steps`'s, compiles larger.
        let mut steps = Vec::new();
        let mut index = 0;
        // To the end of the array (`undefined`): `Array.length` would be one more import.
        while let Some(ms) = present(delays.number(index)) {
            steps.push(duration_ms(ms));
            index += 1;
        }
        let then = steps.pop()?;
        Some(Backoff::Steps { steps, then })
    };

    let mut config = ClientConfig::default().seed(random_seed());
    if let Some(timeout) = millis(0) {
        config = config.timeout(timeout);
    }
    if let Some(interval) = millis(1) {
        config = config.heartbeat_interval(Some(interval));
    }
    if let Some(backoff) = backoff(2) {
        config = config.reconnect_after(backoff);
    }
    if let Some(backoff) = backoff(3) {
        config = config.rejoin_after(backoff);
    }
    if let Some(jitter) = present(numbers.number(4)) {
        config = config.jitter(jitter);
    }
    let logger = Some(read.get(5)).filter(|logger| !logger.is_undefined());
    let connect = ConnectOptions {
        endpoint,
        // phoenix.js: `closure(opts.params || {})`, `opts.authToken && closure(opts.authToken)`.
        params: read.get(6),
        auth_token: read.get(7),
        transport: read.get(8).dyn_into::<Function>().ok(),
    };
    Options {
        config,
        connect,
        logger,
    }
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
