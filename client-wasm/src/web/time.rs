//! The clock and the one-shot timers: `performance.now()`, `setTimeout` and `clearTimeout`, which
//! browsers, workers and Node all have.

use std::time::Duration;

use alight_protocol::client::Timestamp;

use super::Handler;
use js_sys::Function;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;

    // The id is a number in browsers and a `Timeout` object in Node, so it stays a `JsValue`.
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &Function, delay_ms: f64) -> JsValue;

    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
}

/// `setTimeout` takes a signed 32-bit delay and fires at once on anything longer.
const MAX_DELAY_MS: f64 = 2_147_483_647.0;

/// Now, as a duration since the page (or process) started. Monotonic, as the session needs.
pub(crate) fn now() -> Timestamp {
    let ms = performance_now();
    if ms.is_finite() && ms > 0.0 {
        Timestamp::from_duration(Duration::from_micros((ms * 1000.0) as u64))
    } else {
        Timestamp::ZERO
    }
}

/// A pending `setTimeout` that owns its callback: dropping it clears the timeout and frees the
/// closure, so nothing is left behind in the JS heap.
pub(crate) struct Timeout {
    id: JsValue,
    // Kept alive for as long as the browser may call it. If it is dropped while running (a
    // callback that drops its own timer), wasm-bindgen frees it once it returns.
    _callback: Handler,
}

impl Timeout {
    /// Calls `callback` once, `delay` from now (rounded up to a whole millisecond, so that it
    /// never fires before the deadline it was armed for).
    pub(crate) fn new(delay: Duration, callback: impl Fn() + 'static) -> Timeout {
        let callback = Handler::new(move |_| callback());
        let delay_ms = (delay.as_secs_f64() * 1000.0).ceil().min(MAX_DELAY_MS);
        let id = set_timeout(callback.as_ref().unchecked_ref(), delay_ms);
        Timeout {
            id,
            _callback: callback,
        }
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        // Clearing a timeout that already fired is a no-op.
        clear_timeout(&self.id);
    }
}

impl std::fmt::Debug for Timeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timeout").finish_non_exhaustive()
    }
}
