// phoenix.js's `Socket` and `Channel`, in plain JavaScript over the module's one class, `Client`
// (client.rs): a socket is a `Client`, a channel the number its client knows it by. What only
// moves JS values around stays here: the arguments' forms, the callback lists (`Callbacks`, from
// callbacks.js), the logger, phoenix.js's error messages. As wasm-bindgen classes they cost the
// module an export shim per method and the glue a wrapper per method.
//
// scripts/build-client appends this file, with options.js, to web.js, where `Client` (the
// wasm-bindgen class), `Callbacks` and `Push` (callbacks.js, inlined) are declared.

/** The `onOpen`/`onClose`/`onError`/`onMessage` registration: a string ref. */
function onSocket(socket, event, callback) {
  const ref = socket._callbacks.onRef(event, callback);
  socket._client.observe();
  return ref;
}

export class Socket {
  constructor(endPoint, opts) {
    const read = readOptions(opts);
    /** A function, `true` for `debug` (the console), or undefined. */
    this._logger = read[6];
    this._callbacks = new Callbacks();
    this._client = new Client(endPoint, read, this._callbacks);
  }

  /** Releases the JS handle; a connected socket stays alive until `disconnect()`. */
  free() {
    this._client.free();
  }

  [Symbol.dispose]() {
    this.free();
  }

  connect(params) {
    this._client.connect(params);
  }

  /** `disconnect(callback?, code?, reason?)`, or `disconnect(code?, reason?)`. */
  disconnect(callback, code, reason) {
    if (typeof callback !== "function") [callback, code, reason] = [undefined, callback, code];
    this._client.disconnect(
      typeof code === "number" && code >= 0 && code <= 65535 ? code : undefined,
      typeof reason === "string" ? reason : undefined,
    );
    if (callback) Callbacks.call(callback);
  }

  onOpen(callback) {
    return onSocket(this, "open", callback);
  }

  onClose(callback) {
    return onSocket(this, "close", callback);
  }

  onError(callback) {
    return onSocket(this, "error", callback);
  }

  onMessage(callback) {
    return onSocket(this, "message", callback);
  }

  off(refs) {
    this._callbacks.offRefs(refs);
    this._client.observe();
  }

  channel(topic, params) {
    return new Channel(this._client, topic, params);
  }

  remove(channel) {
    this._client.remove(channel._id);
  }

  connectionState() {
    return this._client.state();
  }

  isConnected() {
    return this._client.state() === "open";
  }

  hasLogger() {
    return this._logger !== undefined;
  }

  log(kind, msg, data) {
    if (this._logger !== undefined) Callbacks.log(this._logger, kind, msg, data);
  }
}

export class Channel {
  constructor(client, topic, params) {
    this._client = client;
    this._topic = topic;
    this._callbacks = new Callbacks();
    this._id = client.channel(topic, params, this._callbacks);
  }

  /** As `Socket`'s (`free()`, `using`): a channel owns nothing, its socket's `Client` does. */
  free() {}

  [Symbol.dispose]() {}

  get topic() {
    return this._topic;
  }

  get state() {
    return this._client.state(this._id);
  }

  joinRef() {
    return this._client.joinRef(this._id);
  }

  join(timeout) {
    return this._client.join(this._id, timeout);
  }

  on(event, callback) {
    return this._callbacks.on(event, callback);
  }

  off(event, ref) {
    this._callbacks.off(event, ref);
  }

  onClose(callback) {
    return this.on("phx_close", callback);
  }

  onError(callback) {
    return this.on("phx_error", callback);
  }

  push(event, payload, timeout) {
    const push = this._client.push(this._id, event, payload, timeout);
    if (push) return push;
    throw new Error(
      `tried to push '${event}' to '${this._topic}' before joining. Use channel.join() before pushing events`,
    );
  }

  /** `timeout` is accepted for phoenix.js's signature and not needed: a leave closes at once. */
  leave() {
    return this._client.leave(this._id);
  }
}
