// The application's callbacks, kept in plain JavaScript: `Push` (phoenix.js's, with `receive`)
// and `Callbacks` (the `on`/`off` lists of a channel and of a socket). socket.js's `Socket` and
// `Channel` make their lists, which the driver triggers and through which it makes and answers
// pushes; callbacks never cross into wasm. socket.js and live.js call `callBack`, `report` and
// `logTo` too (web.js joins the modules into one scope).
//
// A callback that throws does not stop the others: its exception is reported as uncaught
// (`reportError` in browsers and Deno; in Node, a rejected promise is reported as unhandled).

/** Reports `error` as uncaught, and returns. */
function report(error) {
  if (typeof reportError === "function") reportError(error);
  else Promise.reject(error);
}

/** Calls `callback(a, b, c)`; an exception is reported as uncaught, and the caller carries on. */
function callBack(callback, a, b, c) {
  try {
    callback(a, b, c);
  } catch (error) {
    report(error);
  }
}

/** Logs to `logger`: a function `(kind, msg, data)`, or `true` for the console (`debug`). */
function logTo(logger, kind, msg, data) {
  if (typeof logger === "function") callBack(logger, kind, msg, data);
  else console.log(`${kind}: ${msg}`, data);
}

export class Push {
  /** `[status, callback]` pairs, in the order they were given. */
  #hooks = [];
  /** The latest answer, `[status, response]`, or null. */
  #received = null;

  /** Kept for the API of phoenix.js's classes here (`free()`, `using`): a push owns nothing in
   * wasm. */
  free() {}

  [Symbol.dispose]() {}

  receive(status, callback) {
    this.#hooks.push([status, callback]);
    if (this.#received && this.#received[0] === status) callBack(callback, this.#received[1]);
    return this;
  }

  /** The answer (`Callbacks.answer`, or a leave with nothing to send): every `receive(status)`
   * callback, with `response`. */
  __resolve(status, response) {
    const matching = this.#hooks.filter(([s]) => s === status);
    this.#received = [status, response];
    for (const [, callback] of matching) callBack(callback, response);
  }
}

/** Callbacks by event name, each with a ref for `off`; a channel's also keep its pushes. */
export class Callbacks {
  /** `[event, ref, callback]`, in the order they were given. */
  #list = [];
  #ref = 0;
  /** The pushes in flight by the session's push id, and the id of the current join. */
  #pushes = new Map();
  #join;

  /** A new push with the session's `id`; a join's answers every rejoin, and replaces the last. */
  track(id, join) {
    const push = new Push();
    if (join) {
      this.#pushes.delete(this.#join);
      this.#join = id;
    }
    this.#pushes.set(id, push);
    return push;
  }

  /** The module's answer to push `id`, if it is still tracked; only the join answers again. */
  answer(id, status, response) {
    const push = this.#pushes.get(id);
    if (id !== this.#join) this.#pushes.delete(id);
    push?.__resolve(status, response);
  }

  /** Adds `callback` for `event`; returns its ref (a number). */
  on(event, callback) {
    this.#list.push([event, ++this.#ref, callback]);
    return this.#ref;
  }

  /** phoenix.js's socket refs are strings. */
  onRef(event, callback) {
    return String(this.on(event, callback));
  }

  /** Removes the callbacks for `event`, or only the one with `ref`. */
  off(event, ref) {
    this.#list = this.#list.filter(([e, r]) => e !== event || (ref !== undefined && r !== ref));
  }

  /** Removes the callbacks with these (string) refs, whatever their event. */
  offRefs(refs) {
    this.#list = this.#list.filter(([, r]) => !refs.includes(String(r)));
  }

  /** Calls the callbacks that `event` has now with `(a, b, c)`. */
  trigger(event, a, b, c) {
    for (const [, , callback] of this.#list.filter(([e]) => e === event)) {
      callBack(callback, a, b, c);
    }
  }
}
