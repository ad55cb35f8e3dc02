// phoenix.js's `Socket` and `Channel`, in plain JavaScript over the module's one class, `Client`
// (client.rs): a socket is a `Client`, a channel the number its client knows it by. What only
// moves JS values around stays here: the arguments' forms, the callback lists (`Callbacks`, from
// callbacks.js), the logger, phoenix.js's error messages. As wasm-bindgen classes they cost the
// module an export shim per method and the glue a wrapper per method.
//
// scripts/build-client appends this file, with options.js, to web.js, where `Client` (the
// wasm-bindgen class), `Callbacks` and `Push` (callbacks.js, inlined) are declared.

export class Socket {
  #logger;
  #callbacks;
  #client;

  /** The `onOpen`/`onClose`/`onError`/`onMessage` registration: a string ref. */
  #on(event, callback) {
    const ref = this.#callbacks.onRef(event, callback);
    this.#client.observe();
    return ref;
  }

  constructor(endPoint, opts) {
    const read = readOptions(opts);
    /** A function, `true` for `debug` (the console), or undefined. */
    this.#logger = read[6];
    this.#callbacks = new Callbacks();
    this.#client = new Client(endPoint, read, this.#callbacks);
  }

  /** Releases the JS handle; a connected socket stays alive until `disconnect()`. */
  free() {
    this.#client.free();
  }

  [Symbol.dispose]() {
    this.free();
  }

  connect(params) {
    this.#client.connect(params);
  }

  /** `disconnect(callback?, code?, reason?)`, or `disconnect(code?, reason?)`. */
  disconnect(callback, code, reason) {
    if (typeof callback !== "function") [callback, code, reason] = [undefined, callback, code];
    this.#client.disconnect(
      typeof code === "number" && code >= 0 && code <= 65535 ? code : undefined,
      typeof reason === "string" ? reason : undefined,
    );
    if (callback) Callbacks.call(callback);
  }

  onOpen(callback) {
    return this.#on("open", callback);
  }

  onClose(callback) {
    return this.#on("close", callback);
  }

  onError(callback) {
    return this.#on("error", callback);
  }

  onMessage(callback) {
    return this.#on("message", callback);
  }

  off(refs) {
    this.#callbacks.offRefs(refs);
    this.#client.observe();
  }

  channel(topic, params) {
    return new Channel(this.#client, topic, params);
  }

  remove(channel) {
    this.#client.remove(channel._id);
  }

  connectionState() {
    return this.#client.state();
  }

  isConnected() {
    return this.#client.state() === "open";
  }

  hasLogger() {
    return this.#logger !== undefined;
  }

  log(kind, msg, data) {
    if (this.#logger !== undefined) Callbacks.log(this.#logger, kind, msg, data);
  }
}

export class Channel {
  #client;
  #topic;
  #callbacks;

  constructor(client, topic, params) {
    this.#client = client;
    this.#topic = topic;
    this.#callbacks = new Callbacks();
    this._id = client.channel(topic, params, this.#callbacks);
  }

  /** As `Socket`'s (`free()`, `using`): a channel owns nothing, its socket's `Client` does. */
  free() {}

  [Symbol.dispose]() {}

  get topic() {
    return this.#topic;
  }

  get state() {
    return this.#client.state(this._id);
  }

  joinRef() {
    return this.#client.state(this._id, true);
  }

  join(timeout) {
    return this.#client.send(/* JOIN */ 0, this._id, undefined, undefined, timeout);
  }

  on(event, callback) {
    return this.#callbacks.on(event, callback);
  }

  off(event, ref) {
    this.#callbacks.off(event, ref);
  }

  onClose(callback) {
    return this.on("phx_close", callback);
  }

  onError(callback) {
    return this.on("phx_error", callback);
  }

  push(event, payload, timeout) {
    const push = this.#client.send(/* PUSH */ 1, this._id, event, payload, timeout);
    if (push) return push;
    throw new Error(
      `tried to push '${event}' to '${this.#topic}' before joining. Use channel.join() before pushing events`,
    );
  }

  /** `timeout` is accepted for phoenix.js's signature and not needed: a leave closes at once. */
  leave() {
    const push = this.#client.send(/* LEAVE */ 2, this._id);
    if (push) return push;
    // Nothing to tell the server: `ok` at once, as phoenix.js answers a leave it cannot push.
    const left = new Push();
    left.__resolve("ok", {});
    return left;
  }
}
