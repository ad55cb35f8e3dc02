//! The application's callbacks are JavaScript objects (`callbacks.js`): `Push`, which the
//! module creates and answers, and `Callbacks`, the `on`/`off` lists of channels and sockets,
//! which the module triggers. Adding, removing and calling callbacks stays in JavaScript.

use js_sys::{Array, Function};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/src/js/callbacks.js")]
extern "C" {
    /// A join, push or leave, for its answer: `receive("ok" | "error" | "timeout", callback)`.
    #[derive(Debug, Clone)]
    pub type Push;

    /// Calls `callback(response)` when the answer has `status` (at once if it already has);
    /// returns the push, for chaining.
    #[wasm_bindgen(method)]
    pub fn receive(this: &Push, status: &str, callback: &Function) -> Push;

    /// Callbacks by event name, each with a ref: a channel's `on` callbacks, or a socket's
    /// `onOpen`/`onClose`/`onError`/`onMessage` (events `open`, `close`, `error`, `message`).
    #[derive(Debug, Clone)]
    pub type Callbacks;

    /// An empty list.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Callbacks;

    /// Adds `callback` for `event`; returns its ref.
    #[wasm_bindgen(method)]
    pub fn on(this: &Callbacks, event: &str, callback: &Function) -> u32;

    /// [`on`](Callbacks::on), with the ref as a string (phoenix.js's socket refs).
    #[wasm_bindgen(method, js_name = onRef)]
    pub fn on_ref(this: &Callbacks, event: &str, callback: &Function) -> JsValue;

    /// A new push of this channel with the session's id `push`, for [`answer`](Callbacks::answer);
    /// a join (`join`) is answered on every rejoin, and replaces the channel's previous join.
    #[wasm_bindgen(method)]
    pub(crate) fn track(this: &Callbacks, push: f64, join: bool) -> Push;

    /// Answers the push `push` with `status` and `response`, if it is still tracked: a push that
    /// is not the current join is answered once.
    #[wasm_bindgen(method)]
    pub(crate) fn answer(this: &Callbacks, push: f64, status: &str, response: &JsValue);

    /// Removes the callbacks for `event`, or only the one with `reference`.
    #[wasm_bindgen(method)]
    pub(crate) fn off(this: &Callbacks, event: &str, reference: &JsValue);

    /// Removes the callbacks with these refs.
    #[wasm_bindgen(method, js_name = offRefs)]
    pub(crate) fn off_refs(this: &Callbacks, refs: &Array);

    /// Whether `event` has callbacks.
    #[wasm_bindgen(method)]
    pub(crate) fn has(this: &Callbacks, event: &str) -> bool;

    /// Calls the callbacks of `event` with `(a, b, c)`; one that throws is reported as uncaught.
    #[wasm_bindgen(method)]
    pub(crate) fn trigger(this: &Callbacks, event: &str, a: &JsValue, b: &JsValue, c: &JsValue);

    /// Calls a user callback with `(a, b, c)`; an exception is reported as uncaught, and the
    /// caller carries on.
    #[wasm_bindgen(static_method_of = Callbacks)]
    pub(crate) fn call(callback: &Function, a: &JsValue, b: &JsValue, c: &JsValue);

    /// `reportError(error)` where it exists (browsers, Deno); elsewhere (Node) a rejected
    /// promise, which Node reports as unhandled as it would an exception thrown by a phoenix.js
    /// callback.
    #[wasm_bindgen(static_method_of = Callbacks)]
    pub(crate) fn report(error: &JsValue);

    /// Reports a frame to its observers: `what` is `"receive"` or `"push"` (`target` is the
    /// logger) or `"message"` (`target` is the socket's [`Callbacks`]); phoenix.js's log lines
    /// and message objects are made there. `status` is a reply's (`payload` its response), or
    /// `undefined`.
    #[wasm_bindgen(static_method_of = Callbacks)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn frame(
        what: &str,
        target: &JsValue,
        join_ref: &JsValue,
        reference: &JsValue,
        topic: &str,
        event: &str,
        payload: &JsValue,
        status: &JsValue,
    );

    /// Logs `kind`, `msg` and `data` to a socket's logger: a function, or `true` for the console.
    #[wasm_bindgen(static_method_of = Callbacks)]
    pub(crate) fn log(logger: &JsValue, kind: &JsValue, msg: &JsValue, data: &JsValue);
}
