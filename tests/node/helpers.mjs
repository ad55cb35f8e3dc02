// Shared machinery of the phoenix.js conformance suite: the fixture server as a child process,
// phoenix.js sockets wired to it, and promise helpers that wait on events under a deadline.
//
// Nothing here waits a fixed time for something to happen: every wait resolves on an event and
// fails the test when its deadline passes first.

import http from "node:http";

import { Socket } from "phoenix";
import WebSocket from "ws";

import { REPO_ROOT, binary, deadline, spawnServer } from "../support/process.mjs";

export { REPO_ROOT, WebSocket, deadline };

/** The fixture's API key for `POST /api/broadcast` (`tests/src/fixture.rs`). */
export const API_KEY = "test-api-key";

/** How long a single wait may take before it fails the test. */
export const DEFAULT_DEADLINE_MS = 5000;

/**
 * A list of observed events that tests can wait on: `until(predicate)` resolves as soon as the
 * events seen so far satisfy `predicate`, and fails when the deadline passes first.
 */
export class Recorder {
  constructor(name = "events") {
    this.name = name;
    /** @type {unknown[]} */
    this.items = [];
    /** @type {Set<{predicate: (items: unknown[]) => boolean, resolve: (items: unknown[]) => void}>} */
    this.waiters = new Set();
  }

  get length() {
    return this.items.length;
  }

  get last() {
    return this.items[this.items.length - 1];
  }

  /** Records `item` and wakes the waiters it satisfies. */
  push(item) {
    this.items.push(item);
    for (const waiter of [...this.waiters]) {
      if (waiter.predicate(this.items)) {
        this.waiters.delete(waiter);
        waiter.resolve(this.items);
      }
    }
  }

  /** Resolves with the items once `predicate(items)` holds. */
  until(predicate, what = "a condition", ms = DEFAULT_DEADLINE_MS) {
    if (predicate(this.items)) return Promise.resolve(this.items);
    let waiter;
    const met = new Promise((resolve) => {
      waiter = { predicate, resolve };
      this.waiters.add(waiter);
    });
    return deadline(met, ms, () => `${what} (${this.name} so far: ${this.describe()})`).finally(() =>
      this.waiters.delete(waiter),
    );
  }

  /** Resolves with the `n`th item (1-based) once it was recorded. */
  async nth(n, ms = DEFAULT_DEADLINE_MS) {
    const items = await this.until((items) => items.length >= n, `${this.name} #${n}`, ms);
    return items[n - 1];
  }

  /** Resolves with the first item, recorded so far or later, that satisfies `predicate`. */
  async find(predicate, what = `one of ${this.name}`, ms = DEFAULT_DEADLINE_MS) {
    const items = await this.until((items) => items.some(predicate), what, ms);
    return items.find(predicate);
  }

  describe() {
    const text = JSON.stringify(this.items, (_, v) =>
      v instanceof ArrayBuffer ? `ArrayBuffer(${v.byteLength})` : v,
    );
    return text.length > 600 ? `${text.slice(0, 600)}…` : text;
  }
}

/**
 * Starts `target/debug/conformance-server` with `args` (e.g. `["--idle-ms", "300"]`) and resolves
 * once it printed `LISTENING <port>`.
 * @param {{args?: string[], port?: number}} [options]
 */
export async function startServer({ args = [], port } = {}) {
  const argv = [...args];
  if (port !== undefined) argv.push("--port", String(port));
  // Closing stdin shuts the server down gracefully (and happens by itself if this process dies).
  const server = await spawnServer({
    bin: binary(
      "ALIGHT_CONFORMANCE_SERVER",
      "conformance-server",
      "cargo build -p alight-tests --bin conformance-server",
    ),
    args: argv,
    ready: /^LISTENING (\d+)$/m,
    stop: "stdin",
  });
  const listeningPort = server.port;
  return {
    port: listeningPort,
    /** The endpoint to give phoenix.js (it appends `/websocket`). */
    socketUrl: `ws://127.0.0.1:${listeningPort}/socket`,
    /** The raw WebSocket URL for a given serializer version. */
    websocketUrl: (vsn = "2.0.0") =>
      `ws://127.0.0.1:${listeningPort}/socket/websocket?vsn=${encodeURIComponent(vsn)}`,
    httpUrl: `http://127.0.0.1:${listeningPort}`,
    child: server.child,
    exited: server.exited,
    get stderr() {
      return server.stderr;
    },
    /**
     * Closes stdin (graceful shutdown), waits for the exit, and kills the process if it has not
     * exited by the deadline. Resolves with `{code, signal, killed}`; safe to call twice.
     */
    stop: () => server.stop(),
  };
}

/**
 * `POST`s `body` (JSON) to `url` with `headers`; resolves with `{status, body}`.
 * Uses a fresh connection each time so that nothing is pooled across server restarts.
 */
export function httpPost(url, body, headers = {}) {
  const data = typeof body === "string" ? body : JSON.stringify(body);
  const request = new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: "POST",
        agent: false,
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(data),
          ...headers,
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => (text += chunk));
        res.on("end", () => resolve({ status: res.statusCode, body: text }));
      },
    );
    req.on("error", reject);
    req.end(data);
  });
  return deadline(request, DEFAULT_DEADLINE_MS, `POST ${url}`);
}

/** `POST /api/broadcast` on `server` with the fixture's API key. */
export function apiBroadcast(server, topic, event, payload, key = API_KEY) {
  const headers = key === null ? {} : { authorization: `Bearer ${key}` };
  return httpPost(`${server.httpUrl}/api/broadcast`, { topic, event, payload }, headers);
}

/**
 * What a test opened, closed at its end: create one per test with `new Session(t)`.
 * Sockets are phoenix.js sockets on the `ws` transport with fast reconnect and rejoin backoffs.
 */
export class Session {
  /** @param {import("node:test").TestContext} t */
  constructor(t) {
    /** @type {Socket[]} */
    this.sockets = [];
    /** @type {WebSocket[]} */
    this.raw = [];
    /** @type {Array<{stop: () => Promise<unknown>}>} */
    this.servers = [];
    t.after(() => this.close());
  }

  /** Starts a fixture server that is stopped at the end of the test. */
  async server(options) {
    const server = await startServer(options);
    this.servers.push(server);
    return server;
  }

  /**
   * A phoenix.js socket for `server` (not yet connected), with recorders of its state changes:
   * `opens`, `closes` (the CloseEvents), `errors` and `messages` (decoded messages).
   */
  socket(server, opts = {}) {
    const socket = new Socket(server.socketUrl, {
      transport: WebSocket,
      reconnectAfterMs: () => 50,
      rejoinAfterMs: () => 50,
      timeout: DEFAULT_DEADLINE_MS,
      ...opts,
    });
    const opens = new Recorder("opens");
    const closes = new Recorder("closes");
    const errors = new Recorder("errors");
    const messages = new Recorder("messages");
    socket.onOpen(() => opens.push(Date.now()));
    socket.onClose((event) => closes.push({ code: event.code, reason: event.reason }));
    socket.onError((error) => errors.push(error?.message ?? String(error)));
    socket.onMessage((msg) => messages.push(msg));
    this.sockets.push(socket);
    return Object.assign(socket, { opens, closes, errors, messages });
  }

  /** A phoenix.js socket for `server`, connected and open. */
  async connect(server, opts = {}) {
    const socket = this.socket(server, opts);
    socket.connect();
    await socket.opens.nth(1);
    return socket;
  }

  /** A raw `ws` client (for frames phoenix.js would never send). Resolves once open. */
  async rawSocket(url, protocols) {
    const ws = new WebSocket(url, protocols);
    ws.binaryType = "arraybuffer";
    this.raw.push(ws);
    await deadline(
      new Promise((resolve, reject) => {
        ws.once("open", resolve);
        ws.once("error", reject);
      }),
      DEFAULT_DEADLINE_MS,
      `raw WebSocket ${url} to open`,
    );
    return ws;
  }

  async close() {
    await Promise.all(this.sockets.map((socket) => disconnect(socket)));
    for (const ws of this.raw) {
      // Aborting a handshake emits an error that nobody needs to see.
      ws.on("error", () => {});
      if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
    }
    await Promise.all(this.servers.map((server) => server.stop()));
  }
}

/** Disconnects a phoenix.js socket and resolves once phoenix.js is done with its connection. */
export function disconnect(socket) {
  return deadline(
    new Promise((resolve) => socket.disconnect(resolve)),
    DEFAULT_DEADLINE_MS,
    "socket.disconnect",
  );
}

/**
 * Joins `channel` and resolves with `{status, response}` of the first answer: "ok", "error" or
 * "timeout" (which phoenix.js reports after the channel's timeout).
 */
export function joinResult(channel, timeout) {
  const push = timeout === undefined ? channel.join() : channel.join(timeout);
  return settle(push, `join of ${channel.topic}`);
}

/** Joins `channel`; resolves with the ok response and rejects on an error or timeout. */
export async function join(channel, timeout) {
  const { status, response } = await joinResult(channel, timeout);
  if (status !== "ok") {
    throw new Error(`join of ${channel.topic}: ${status} ${JSON.stringify(response)}`);
  }
  return response;
}

/** Pushes `event` and resolves with `{status, response}` ("ok", "error" or "timeout"). */
export function pushResult(channel, event, payload = {}, timeout) {
  const push =
    timeout === undefined ? channel.push(event, payload) : channel.push(event, payload, timeout);
  return settle(push, `reply to ${event} on ${channel.topic}`, timeout);
}

function settle(push, what, timeout) {
  const answer = new Promise((resolve) => {
    for (const status of ["ok", "error", "timeout"]) {
      push.receive(status, (response) => resolve({ status, response }));
    }
  });
  return deadline(answer, (timeout ?? DEFAULT_DEADLINE_MS) + 2000, what);
}

/**
 * Records every `event` the channel receives (payloads), from now on.
 * @returns {Recorder}
 */
export function record(channel, event) {
  const recorder = new Recorder(`${channel.topic} ${event}`);
  channel.on(event, (payload) => recorder.push(payload));
  return recorder;
}

/** Records every successful (re)join of `channel`; call before `join`, then join with `push`. */
export function recordJoins(channel) {
  const joins = new Recorder(`${channel.topic} joins`);
  const push = channel.join();
  push.receive("ok", (response) => joins.push(response));
  return { joins, push };
}

/** Bytes of an ArrayBuffer or view, as a plain array (for deepEqual). */
export function bytes(buffer) {
  return Array.from(new Uint8Array(buffer));
}
