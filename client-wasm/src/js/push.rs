//! `Push` is a JavaScript class (`push.js`): the module creates and answers pushes, and the
//! application's `receive` calls stay in JavaScript.

use js_sys::Function;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/src/js/push.js")]
extern "C" {
    /// A join, push or leave, for its answer: `receive("ok" | "error" | "timeout", callback)`.
    #[derive(Debug, Clone)]
    pub type Push;

    #[wasm_bindgen(constructor)]
    pub(crate) fn new() -> Push;

    /// Calls `callback(response)` when the answer has `status` (at once if it already has);
    /// returns the push, for chaining.
    #[wasm_bindgen(method)]
    pub fn receive(this: &Push, status: &str, callback: &Function) -> Push;

    /// Answers the push: calls its `receive(status)` callbacks with `response`.
    #[wasm_bindgen(method, js_name = __resolve)]
    pub(crate) fn resolve(this: &Push, status: &str, response: &JsValue);
}

impl Push {
    /// A push answered already (phoenix.js's local `ok` for a leave that was not sent).
    pub(crate) fn answered(status: &str, response: &JsValue) -> Push {
        let push = Push::new();
        push.resolve(status, response);
        push
    }
}
