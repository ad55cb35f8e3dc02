// phoenix.js's `Socket` and `Channel`, and the driver that runs a socket's wasm core
// (src/browser/mod.rs, loaded by host.js): the WebSocket with its send queue, the timer, the page's visibility, the
// frames (frames.js), the payloads and the callbacks (callbacks.js). The core decides; this does
// what it asks.
//
// # Who runs when
//
// Every call into the core goes through `Driver.#enter`, which makes this driver the host the
// core's calls reach (host.js). Those calls only queue what the application should hear, as
// closures in `#queue`; `#after` then starts a connection the core asked for, re-arms the timer
// and runs the queue. User code (callbacks, the params and token functions) never runs inside
// the core, and a callback that calls back into the socket finds it idle: what that causes is
// queued behind what is already queued, and run by the outermost `#after` (`#dispatching`).
//
// # Lifetime
//
// The WebSocket's handlers and the timer hold the driver: a socket that is connected,
// reconnecting or waiting for a timeout stays alive without a reference to it, as a phoenix.js
// socket does; `disconnect()` lets go of them. The wasm memory of a core is freed when its
// driver is collected (host.js).
//
// scripts/build-client puts this file, after the other modules of src/browser, into web.js,
// where `wasm`, `createCore` and `setDriver` (host.js) are declared.

/** The frames waiting for the socket's own buffer go out while it holds at most this many bytes. */
const HIGH_WATER = 1 << 20;
/** How often (ms) a waiting queue looks at `bufferedAmount` again. */
const RETRY_MS = 10;
/** A connection whose queue would grow past this many bytes is given up and reconnected. */
const MAX_QUEUED = 16 << 20;

const CHANNEL_STATES = ["closed", "joining", "joined", "errored"];
const CONNECTION_STATES = ["closed", "connecting", "open"];

/** The channel callbacks' key of `onRecover` (no event name can be it). */
const RECOVER = Symbol();

/** `[epoch, offset]` of a position `"<12 hex digits>-<offset>"` (server/src/history), or
 * undefined for anything else. */
const positionOf = (text) => {
  const m = /^([0-9a-f]{12})-(0|[1-9]\d*)$/.exec(text);
  return m ? [m[1], +m[2]] : undefined;
};

const REMOVED =
  "the channel was removed from its socket; make a new one with socket.channel(topic, params)";
const NO_WEBSOCKET =
  'no WebSocket: pass the `transport` option, or set `globalThis.WebSocket = (await import("ws")).WebSocket` first';

const clock = () => performance.now();

/** The `op`s of the module's `call` (mod.rs, which has their arguments and results). */
const CONNECT = 0;
const DISCONNECT = 1;
const SIGNAL = 2;
const OPENED = 3;
const CLOSED = 4;
const ERRORED = 5;
const FRAME = 6;
const TIMEOUT = 7;
const NEXT = 8;
const STATE = 9;
const CHANNEL = 10;
const JOIN = 11;
const PUSH = 12;
const LEAVE = 13;
const REMOVE = 14;
const CHANNEL_STATE = 15;
const JOIN_REF = 16;
const REJOIN_DUE = 17;

/** A ref from the core (-1: none) as a frame carries it. */
const refText = (ref) => (ref < 0 ? null : String(ref));

/** A payload kept as text (JSON) or bytes, as a JavaScript value for the logger. */
const payloadValue = (payload) =>
  typeof payload === "string" ? JSON.parse(payload) : payload.slice().buffer;

/** A socket's core and its I/O. */
class Driver {
  /** The handle of the socket's core in the wasm module (host.js). */
  #h;
  #callbacks;
  #logger;
  #endpoint;
  #transport;
  /** The connect params and token: values, or functions called on every connect. */
  params;
  #token;

  /** Channel objects by id, topic numbers by topic. */
  #channels = new Map();
  #topics = new Map();
  #lastTopic = 0;
  /** `[event, payload, channel id]` of each push not yet answered, by push id, and `[event,
   * payload]` of the push being made. */
  #pushes = new Map();
  #making;

  /** What the application hears, in order, and whether an outer call is running it. */
  #queue = [];
  #dispatching = false;

  /** Counts connection attempts and closes: events of an earlier attempt are ignored. */
  #attempt = 0;
  /** The attempt to start once the core's call returns (0: none). */
  #starting = 0;
  #ws = null;
  #url;
  #sendQueue = [];
  #queued = 0;
  #retry = null;
  /** The queue overflowed during the core's call: the connection is given up after it. */
  #overflow = false;

  #timer = null;
  #timerAt = -1;
  /** The token the current connection was made with, and the timer that refreshes it. */
  #connectToken;
  #tokenTimer;

  /** The frame being handled, and what the next close and error report (set by an input, for
   * the events it causes). */
  #frame;
  #closeEvent;
  #errorEvent;
  #disconnectReason;
  /** The code and reason of the latest close the core asked for. */
  #lastClose = [undefined, ""];

  constructor(endPoint, read, callbacks) {
    // read: [timeout, heartbeatIntervalMs, reconnectAfterMs, rejoinAfterMs, jitter, logger,
    // params, authToken, transport, heartbeatTimeoutMs] (options.js).
    const seed = Math.floor(Math.random() * 2 ** 53);
    // The backoffs default to phoenix.js's; the other options' defaults are the core's (mod.rs).
    this.#h = createCore(
      read[0] ?? 0,
      read[1] ?? 0,
      read[9] ?? 0,
      read[2] ?? [10, 50, 100, 150, 200, 250, 500, 1000, 2000, 5000],
      read[3] ?? [1000, 2000, 5000, 10000],
      read[4] ?? NaN,
      seed,
      this,
    );
    this.#endpoint = endPoint;
    this.#logger = read[5];
    this.params = read[6];
    this.#token = read[7];
    this.#transport = read[8];
    this.#callbacks = callbacks;
    watchVisibility((visible) => this.call(SIGNAL, +visible));
    // The browser's network events: offline closes at once, online reconnects at once.
    for (const on of [0, 1]) {
      globalThis.addEventListener?.(on ? "online" : "offline", () => this.call(SIGNAL, on + 2));
    }
  }

  get logger() {
    return this.#logger;
  }

  // --- calls into the core ---------------------------------------------------------------------

  /** `op` on this socket's core (`enter`), then what it caused. */
  call(op, a, b, c, d, now) {
    const result = this.enter(op, a, b, c, d, now);
    this.after();
    return result;
  }

  /** `op` on this socket's core with `a` to `d` at `now` (default: the clock), with this driver
   * as the core's host; the caller then calls `after`. */
  enter(op, a, b, c, d, now = clock()) {
    const previous = setDriver(this);
    try {
      return wasm.call(this.#h, op, now, a, b, c, d);
    } finally {
      setDriver(previous);
    }
  }

  /** What the core says of itself (`op` NEXT, STATE, CHANNEL_STATE, JOIN_REF or REJOIN_DUE: no
   * host calls). */
  ask(op, a, now) {
    return wasm.call(this.#h, op, now, a);
  }

  /** Acts on what the core asked for, then runs the queue unless an outer call does. */
  after() {
    this.#closeEvent = this.#errorEvent = this.#disconnectReason = undefined;
    if (this.#overflow) {
      this.#overflow = false;
      this.#closeEvent = closeEvent(1000, "send queue full");
      this.enter(CLOSED, 1000);
      return this.after();
    }
    const attempt = this.#starting;
    this.#starting = 0;
    if (attempt) this.#startConnect(attempt);
    this.#rearm();
    if (this.#dispatching) return;
    this.#dispatching = true;
    try {
      for (let next; (next = this.#queue.shift()); ) next();
    } finally {
      this.#dispatching = false;
    }
  }

  #later(f) {
    this.#queue.push(f);
  }

  #log(kind, msg, data) {
    const logger = this.#logger;
    if (logger !== undefined) this.#later(() => logTo(logger, kind, msg, data));
  }

  // --- the host: what the core asks for (host.js) ----------------------------------------------

  send(kind, channelId, pushId, joinRef, ref) {
    let topic = "phoenix";
    let event = "heartbeat";
    let payload = "{}";
    if (kind !== 3) {
      const channel = this.#channels.get(channelId);
      topic = channel.topic;
      if (kind === 0) {
        // With `since` once the channel has a position (resume; params that are an object and
        // carry no `since` of their own: a live collection knows its position better).
        const params = channel._params;
        const since = channel._pos;
        event = "phx_join";
        payload =
          since && typeof params === "string" && params[0] === "{"
            ? JSON.stringify({ since, ...JSON.parse(params) })
            : params;
      } else if (kind === 1) event = "phx_leave";
      else [event, payload] = this.#pushes.get(pushId) ?? this.#making;
    }
    const [joinText, refText_] = [refText(joinRef), refText(ref)];
    if (this.#logger !== undefined) {
      this.#log("push", `${topic} ${event} (${joinText}, ${refText_})`, payloadValue(payload));
    }
    this.#transmit(encodeFrame(joinText, refText_, topic, event, payload));
  }

  emit(kind, channelId, pushId, code) {
    const channel = () => this.#channels.get(channelId);
    const answer = (status, response) => this.#later(() => channel()?._callbacks.answer(pushId, status, response));
    const socket = (event, arg) => this.#later(() => this.#callbacks.trigger(event, arg));
    switch (kind) {
      case 8:
        return this.#connect();
      case 0:
        return socket("open");
      case 1: {
        const [lastCode, reason] = this.#lastClose;
        const event = this.#closeEvent ?? closeEvent(code >= 0 ? code : (lastCode ?? 1005), reason);
        this.#closeEvent = undefined;
        this.#log("transport", "close", event);
        return socket("close", event);
      }
      case 9:
        // A refusal (4001, 4003): `{code, reason}` of the close that follows.
        return socket("error", { code, reason: this.#closeEvent?.reason ?? "" });
      case 2: {
        const error = this.#errorEvent;
        this.#errorEvent = undefined;
        this.#log("transport", "error", error);
        return socket("error", error);
      }
      case 3: {
        this.#pushes.delete(pushId);
        const { status, response } = this.#frame.payload;
        answer(status, response);
        // An ok join reply with a `position` makes a history channel; unless it recovered, that
        // position is where it starts (a recovered join's missed broadcasts follow the reply).
        // Taken now, before the frames that follow are handled.
        const ch = channel();
        const recovered = response?.recovered;
        if (ch?._join !== pushId || status !== "ok" || typeof response?.position !== "string") return;
        if (recovered !== true) ch._pos = response.position;
        if (recovered != null) this.#later(() => ch._callbacks.trigger(RECOVER, { recovered: !!recovered }));
        return;
      }
      case 4:
        return answer("ok", {});
      case 5:
        this.#pushes.delete(pushId);
        return answer("timeout", {});
      case 6: {
        const { event, payload, ref } = this.#frame;
        const ch = channel();
        // A broadcast of a history channel at or before its position (same stream) was had
        // already; a newer one's position becomes the channel's.
        const at = positionOf(ref);
        const last = positionOf(ch?._pos);
        if (at && last) {
          if (at[0] === last[0] && at[1] <= last[1]) return;
          ch._pos = ref;
        }
        return this.#later(() => channel()?.__trigger(event, payload, ref));
      }
      default: {
        // A state change: `pushId` is the state, `code` the cause (mod.rs `cause_code`).
        let event = "phx_error";
        let payload;
        if (pushId === 3 && code === 1) payload = this.#frame.payload;
        else if (pushId === 3 && code === 2) payload = { source: "transport", reason: "connection_closed" };
        else if (pushId === 0) {
          event = "phx_close";
          payload = code === 3 ? this.#frame.payload : "leave";
        } else return;
        return this.#later(() => channel()?.__trigger(event, payload));
      }
    }
  }

  #connect() {
    this.#starting = ++this.#attempt;
  }

  close(code, reason) {
    this.#attempt += 1;
    this.#starting = 0;
    const text = this.#disconnectReason ?? ["", "heartbeat timeout", "", "offline"][reason];
    if (reason === 1) this.#log("transport", "heartbeat timeout. Attempting to re-establish connection");
    const given = code < 0 ? undefined : code;
    this.#lastClose = [given, text];
    this.#closeTransport(given, text);
  }

  // --- connecting ------------------------------------------------------------------------------

  transportClass() {
    return this.#transport ?? globalThis.WebSocket;
  }

  /** Evaluates the params and token (connect.js), then opens the WebSocket, unless another
   * connect or a close came first. */
  #startConnect(attempt) {
    prepare(
      this.#endpoint,
      this.params,
      this.#token,
      (args, token) => this.#open(attempt, args, token),
      (error) => this.#failed(attempt, error),
    );
  }

  #open(attempt, args, token) {
    if (attempt !== this.#attempt) return;
    this.#connectToken = token;
    const Transport = this.transportClass();
    if (typeof Transport !== "function") return this.#failed(attempt, new TypeError(NO_WEBSOCKET));
    let ws;
    try {
      ws = new Transport(...args);
      ws.binaryType = "arraybuffer";
    } catch (error) {
      return this.#failed(attempt, error);
    }
    this.#ws = ws;
    this.#url = args[0];
    this.#sendQueue = [];
    this.#queued = 0;
    ws.onopen = () => this.#onOpen(attempt);
    ws.onmessage = (event) => this.#onMessage(attempt, event);
    ws.onerror = (event) => this.#onError(attempt, event);
    ws.onclose = (event) => this.#onClose(attempt, event);
  }

  /** The attempt failed before a WebSocket existed: an error and a close (1006), so the core
   * reconnects after its backoff. */
  #failed(attempt, error) {
    if (attempt !== this.#attempt) return;
    this.#errorEvent = error;
    this.#closeEvent = closeEvent(1006, "");
    this.enter(ERRORED);
    this.call(CLOSED, 1006);
  }

  #current(attempt) {
    return attempt === this.#attempt && this.#ws !== null;
  }

  #onOpen(attempt) {
    if (!this.#current(attempt)) return;
    this.#scheduleRefresh(attempt, this.#connectToken);
    this.#refreshParams();
    this.#log("transport", `connected to ${this.#url}`);
    this.call(OPENED);
  }

  #onError(attempt, event) {
    if (!this.#current(attempt)) return;
    this.#errorEvent = event;
    this.call(ERRORED);
  }

  #onClose(attempt, event) {
    if (!this.#current(attempt)) return;
    this.#detach(this.#ws);
    this.#ws = null;
    this.#closeEvent = event;
    const code = typeof event?.code === "number" ? event.code : -1;
    this.call(CLOSED, code);
  }

  /** A message: shown to the logger, handed to the core, then to `onMessage` callbacks, as
   * phoenix.js does; one that does not decode is dropped and logged with why. */
  #onMessage(attempt, event) {
    if (!this.#current(attempt)) return;
    const data = event?.data;
    // Anything else (a Blob, if someone changed binaryType) is not a Phoenix frame.
    if (typeof data !== "string" && !(data instanceof ArrayBuffer)) return;
    const frame = decodeFrame(data);
    if (typeof frame === "string") {
      this.#log("receive", `dropped a frame that does not decode: ${frame}`);
      return this.after();
    }
    const { ref, topic, event: name, payload } = frame;
    const reply = name === "phx_reply";
    if (this.#logger !== undefined) {
      const line = `${reply ? payload.status : ""} ${topic} ${name} ${ref === null ? "" : `(${ref})`}`;
      this.#log("receive", line, payload);
    }
    const kind = reply ? (payload.status === "ok" ? 0 : 1) : name === "phx_error" ? 2 : name === "phx_close" ? 3 : 4;
    this.#frame = frame;
    this.enter(FRAME, refNumber(frame.join_ref), refNumber(ref), this.#topics.get(topic) ?? 0, kind);
    this.#frame = undefined;
    this.#later(() => this.#callbacks.trigger("message", frame));
    this.after();
  }

  // --- token refresh (server/src/jwt.rs) ------------------------------------------------------

  /** With an `authToken` function and a JWT `token` with `exp`, gets a new token before it
   * expires (halfway there, or a minute before for tokens living over two minutes) and hands it
   * to the server on every joined channel (`access_token`, as Supabase realtime-js does),
   * without reconnecting. A token the server refuses leaves the old one in force: at its expiry
   * the server closes with 4001 and the socket reconnects with a fresh token. */
  #scheduleRefresh(attempt, token) {
    const exp = typeof this.#token === "function" && tokenExpiry(token);
    if (!exp) return;
    const left = exp * 1000 - Date.now();
    this.#tokenTimer = setTimeout(async () => {
      try {
        token = await this.#token();
      } catch (error) {
        return report(error);
      }
      if (!this.#current(attempt)) return;
      for (const channel of this.#channels.values()) {
        if (this.ask(CHANNEL_STATE, channel._id) === 2) channel.push("access_token", { access_token: token });
      }
      this.#scheduleRefresh(attempt, token);
    }, Math.min(left - Math.min(60000, left / 2), 2147483647));
  }

  // --- the WebSocket's send queue --------------------------------------------------------------

  #transmit(data) {
    if (this.#ws === null || this.#overflow) return;
    const size = typeof data === "string" ? data.length : data.byteLength;
    if (this.#queued + size > MAX_QUEUED) {
      this.#log("transport", "send queue full; reconnecting");
      this.#closeTransport(1000, "send queue full");
      this.#overflow = true;
      return;
    }
    this.#queued += size;
    this.#sendQueue.push(data);
    this.#flush(false);
  }

  /** Sends what waits while the socket's buffer has room (all of it, with `force`); if frames
   * remain, looks again after RETRY_MS. */
  #flush(force) {
    const ws = this.#ws;
    while (ws !== null && ws.readyState === 1 && this.#sendQueue.length) {
      if (!force && ws.bufferedAmount > HIGH_WATER) {
        this.#retry ??= setTimeout(() => {
          this.#retry = null;
          if (this.#ws === ws) this.#flush(false);
        }, RETRY_MS);
        return;
      }
      const data = this.#sendQueue.shift();
      this.#queued -= typeof data === "string" ? data.length : data.byteLength;
      // A send fails only on a socket that is no longer open; its close event follows.
      try {
        ws.send(data);
      } catch {}
    }
  }

  /** Hands every waiting frame to the socket, closes it with `code` and `reason`, and lets go. */
  #closeTransport(code, reason) {
    const ws = this.#ws;
    if (ws === null) return;
    this.#flush(true);
    this.#detach(ws);
    this.#ws = null;
    this.#sendQueue = [];
    this.#queued = 0;
    try {
      if (code === undefined) ws.close();
      else ws.close(code, reason);
    } catch {
      // Browsers accept only 1000 and 3000-4999 from a client, and reasons up to 123 bytes.
      try {
        ws.close();
      } catch {}
    }
  }

  #detach(ws) {
    clearTimeout(this.#retry);
    clearTimeout(this.#tokenTimer);
    this.#retry = null;
    ws.onopen = ws.onmessage = ws.onclose = null;
    // Not null: the `ws` package (Node) throws an `error` event nobody listens to, which ends
    // the process, and it emits one when a connection is closed before it opened (phoenix.js
    // installs a no-op for the same reason).
    ws.onerror = () => {};
  }

  // --- the timer -------------------------------------------------------------------------------

  /** Keeps one timeout armed for the core's next deadline. */
  #rearm() {
    const at = this.ask(NEXT);
    if (at === this.#timerAt) return;
    clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerAt = at;
    if (at < 0) return;
    // Rounded up, so that it never fires before the deadline; setTimeout takes 32 bits.
    const delay = Math.min(Math.max(0, Math.ceil(at - clock())), 2147483647);
    this.#timer = setTimeout(() => this.#fire(), delay);
  }

  #fire() {
    this.#timer = null;
    this.#timerAt = -1;
    const now = clock();
    this.#refreshParams(now);
    this.call(TIMEOUT, 0, 0, 0, 0, now);
  }

  // --- channels --------------------------------------------------------------------------------

  /** A channel's id for `topic`. */
  addChannel(channel, topic) {
    let number = this.#topics.get(topic);
    if (number === undefined) this.#topics.set(topic, (number = ++this.#lastTopic));
    const id = this.call(CHANNEL, number);
    this.#channels.set(id, channel);
    return id;
  }

  removeChannel(id) {
    this.#channels.delete(id);
    // The core drops the channel's pushes without answering them.
    for (const [push, entry] of this.#pushes) if (entry[2] === id) this.#pushes.delete(push);
    this.call(REMOVE, id);
  }

  /** The channel, or throws if its socket removed it. */
  known(id) {
    if (!this.#channels.has(id)) throw new Error(REMOVED);
  }

  /** Calls the params functions of the channels about to rejoin: every errored one when the
   * connection opens (no `now`), those whose rejoin timer is due at `now`. One that throws is
   * reported as uncaught, and the rejoin carries what it returned last. */
  #refreshParams(now) {
    for (const channel of this.#channels.values()) {
      const id = channel._id;
      const due = now === undefined ? this.ask(CHANNEL_STATE, id) === 3 : this.ask(REJOIN_DUE, id, now);
      if (due && channel._paramsFunction) {
        try {
          channel.__refreshParams();
        } catch (error) {
          report(error);
        }
      }
    }
  }

  /** Joins (`op` 0), pushes (1) or leaves (2): the push answered through `callbacks`, or
   * a number: -1 the channel is gone, -2 already joined (join) or not joined (push, leave). */
  op(channel, op, timeout, data) {
    const id = channel._id;
    this.#making = data;
    const push = this.enter(JOIN + op, id, timeout);
    this.#making = undefined;
    if (push >= 0 && op === 1) this.#pushes.set(push, [...data, id]);
    if (push >= 0 && op === 0) channel._join = push;
    const result = push >= 0 ? channel._callbacks.track(push, op === 0) : push;
    this.after();
    return result;
  }

  /** What a channel's callbacks get with an event: `(payload, null, joinRef)`, as phoenix.js. */
  joinRef(id) {
    const ref = this.ask(JOIN_REF, id);
    return ref < 0 ? null : String(ref);
  }

  disconnect(code, reason) {
    this.#disconnectReason = reason;
    this.call(DISCONNECT, code);
  }
}

export class Socket {
  #driver;
  #callbacks;

  constructor(endPoint, opts) {
    this.#callbacks = new Callbacks();
    this.#driver = new Driver(endPoint, readOptions(opts), this.#callbacks);
  }

  /** Kept for phoenix.js's API here (`free()`, `using`): a connected socket stays alive until
   * `disconnect()`, and its wasm memory goes with its last reference. */
  free() {}

  [Symbol.dispose]() {}

  connect(params) {
    if (typeof this.#driver.transportClass() !== "function") throw new TypeError(NO_WEBSOCKET);
    if (params) this.#driver.params = params;
    this.#driver.call(CONNECT);
  }

  /** `disconnect(callback?, code?, reason?)`, or `disconnect(code?, reason?)`. */
  disconnect(callback, code, reason) {
    if (typeof callback !== "function") [callback, code, reason] = [undefined, callback, code];
    this.#driver.disconnect(
      typeof code === "number" && code >= 0 && code <= 65535 ? code : -1,
      typeof reason === "string" ? reason : undefined,
    );
    if (callback) callBack(callback);
  }

  onOpen(callback) {
    return this.#callbacks.onRef("open", callback);
  }

  onClose(callback) {
    return this.#callbacks.onRef("close", callback);
  }

  onError(callback) {
    return this.#callbacks.onRef("error", callback);
  }

  onMessage(callback) {
    return this.#callbacks.onRef("message", callback);
  }

  off(refs) {
    this.#callbacks.offRefs(refs);
  }

  channel(topic, params) {
    return new Channel(this.#driver, topic, params);
  }

  remove(channel) {
    this.#driver.removeChannel(channel._id);
  }

  connectionState() {
    return CONNECTION_STATES[this.#driver.ask(STATE)];
  }

  isConnected() {
    return this.#driver.ask(STATE) === 2;
  }

  hasLogger() {
    return this.#driver.logger !== undefined;
  }

  log(kind, msg, data) {
    const logger = this.#driver.logger;
    if (logger !== undefined) logTo(logger, kind, msg, data);
  }
}

export class Channel {
  #driver;
  #topic;

  constructor(driver, topic, params) {
    this.#driver = driver;
    this.#topic = topic;
    this._callbacks = new Callbacks();
    /** `socket.channel(topic, () => params)`: called before every (re)join. */
    this._paramsFunction = typeof params === "function" ? params : undefined;
    /** The params as the next join sends them (frames.js `outgoingPayload`). */
    this._params = this._paramsFunction ? "{}" : outgoingPayload(params);
    this._id = driver.addChannel(this, topic);
  }

  /** As `Socket`'s (`free()`, `using`): a channel owns nothing of its own. */
  free() {}

  [Symbol.dispose]() {}

  get topic() {
    return this.#topic;
  }

  get state() {
    return CHANNEL_STATES[this.#driver.ask(CHANNEL_STATE, this._id)];
  }

  joinRef() {
    const ref = this.#driver.ask(JOIN_REF, this._id);
    return ref < 0 ? undefined : String(ref);
  }

  join(timeout) {
    this.#driver.known(this._id);
    if (this.#driver.ask(CHANNEL_STATE, this._id) === 0) {
      if (this._paramsFunction) this.__refreshParams();
      else checkBinary(this._params, this.#topic, "phx_join");
    }
    const push = this.#driver.op(this, 0, timeout);
    if (push === -2) {
      throw new Error("tried to join multiple times. 'join' can only be called again once the channel is closed");
    }
    return push;
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
    this.#driver.known(this._id);
    const data = outgoingPayload(payload);
    if (this.#driver.ask(CHANNEL_STATE, this._id) !== 0) {
      event = event === undefined ? "" : String(event);
      checkBinary(data, this.#topic, event);
      const push = this.#driver.op(this, 1, timeout, [event, data]);
      if (typeof push === "object") return push;
    }
    throw new Error(
      `tried to push '${event}' to '${this.#topic}' before joining. Use channel.join() before pushing events`,
    );
  }

  /** `timeout` is accepted for phoenix.js's signature and not needed: a leave closes at once. */
  leave() {
    const push = this.#driver.op(this, 2);
    if (typeof push === "object") return push;
    // Nothing to tell the server: `ok` at once, as phoenix.js answers a leave it cannot push.
    const left = new Push();
    left.__resolve("ok", {});
    return left;
  }

  /** Calls the params function and keeps what it returns for the next join. */
  __refreshParams() {
    const params = outgoingPayload(this._paramsFunction());
    checkBinary(params, this.#topic, "phx_join");
    this._params = params;
  }

  /** Calls the `on(event)` callbacks with `(payload, ref, joinRef)`, as phoenix.js does (the
   * ref of a history topic's broadcast is its position; other pushes and broadcasts have none). */
  __trigger(event, payload, ref = null) {
    this._callbacks.trigger(event, payload, ref, this.#driver.joinRef(this._id));
  }

  // --- resume (history topics: server/src/history) ---------------------------------------------

  position() {
    return this._pos;
  }

  onRecover(callback) {
    this._callbacks.on(RECOVER, callback);
  }
}

/** The serializer version this client speaks: V2. */
export function protocolVersion() {
  return "2.0.0";
}
