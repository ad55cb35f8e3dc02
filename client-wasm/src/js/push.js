// `Push`: phoenix.js's, in plain JavaScript. The wasm module makes one per join, push and leave
// (`new Push()`) and answers it (`__resolve`); what the application does with it (`receive`,
// chained) never crosses into wasm. As a wasm-bindgen class, `receive` and its bookkeeping were
// 2.7 KB of the module and a class wrapper in the glue; here they are a few lines.

/** Calls `callback(value)`; an exception is reported as uncaught and the caller carries on. */
function call(callback, value) {
  try {
    callback(value);
  } catch (error) {
    // `reportError` in browsers and Deno; in Node, a rejected promise is reported as unhandled.
    if (typeof reportError === "function") reportError(error);
    else Promise.reject(error);
  }
}

export class Push {
  constructor() {
    /** `[status, callback]` pairs, in the order they were given. */
    this._hooks = [];
    /** The latest answer, `[status, response]`, or null. */
    this._received = null;
  }

  /** Kept for the API of the wasm-bindgen classes: a push owns nothing in wasm. */
  free() {}

  receive(status, callback) {
    this._hooks.push([status, callback]);
    if (this._received && this._received[0] === status) call(callback, this._received[1]);
    return this;
  }

  /** The wasm module's answer: every `receive(status)` callback, with `response`. */
  __resolve(status, response) {
    const matching = this._hooks.filter(([s]) => s === status);
    this._received = [status, response];
    for (const [, callback] of matching) call(callback, response);
  }
}
