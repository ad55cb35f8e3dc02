// Shared machinery of the @alight/client JS tests. They run against the packed npm package,
// installed into a fresh Node project by scripts/test-client, which copies these files there;
// `ALIGHT_REPO_ROOT` points back at the repository for the fixture server and its helpers.
//
// Nothing here waits a fixed time: every wait resolves on an event, under a deadline.

import path from "node:path";
import { pathToFileURL } from "node:url";

import { Socket } from "@alight/client";
import { WebSocket, WebSocketServer } from "ws";

// Node 20 has no global WebSocket: this is what the README tells Node users to do.
globalThis.WebSocket ??= WebSocket;

const root = process.env.ALIGHT_REPO_ROOT;
if (!root) throw new Error("ALIGHT_REPO_ROOT is not set: run these tests with scripts/test-client");
export const REPO_ROOT = root;

// The phoenix.js suite's helpers: the fixture server as a child process, Recorder, deadline.
const shared = await import(pathToFileURL(path.join(root, "tests", "node", "helpers.mjs")).href);
export const { Recorder, deadline, startServer, apiBroadcast, httpPost, bytes, DEFAULT_DEADLINE_MS } =
  shared;

/**
 * What a test opened, closed at its end: `new Harness(t)`. Sockets are @alight/client sockets
 * with fast reconnect and rejoin backoffs and recorders of what they report.
 */
export class Harness {
  /** @param {import("node:test").TestContext} t */
  constructor(t) {
    this.sockets = [];
    this.servers = [];
    this.wsServers = [];
    t.after(() => this.close());
  }

  /** A fixture server (`target/debug/conformance-server`), stopped at the end of the test. */
  async server(options) {
    const server = await startServer(options);
    this.servers.push(server);
    return server;
  }

  /**
   * A `ws` server on 127.0.0.1 that records each connection (`connections`: `{ws, url,
   * protocols, frames}`, frames as strings or ArrayBuffers) and calls `onConnection(conn)`.
   */
  async wsServer(onConnection = () => {}) {
    const wss = new WebSocketServer({
      host: "127.0.0.1",
      port: 0,
      handleProtocols: (protocols) => (protocols.has("phoenix") ? "phoenix" : false),
    });
    await new Promise((resolve, reject) => {
      wss.once("listening", resolve);
      wss.once("error", reject);
    });
    const connections = new Recorder("connections");
    wss.on("connection", (ws, req) => {
      const conn = {
        ws,
        url: req.url,
        // As a list: clients join the offered subprotocols with "," or ", ".
        protocols: (req.headers["sec-websocket-protocol"] ?? "").split(/,\s*/).join(", "),
        frames: new Recorder("frames"),
      };
      ws.binaryType = "arraybuffer";
      ws.on("message", (data, isBinary) => conn.frames.push(isBinary ? data : data.toString()));
      onConnection(conn);
      connections.push(conn);
    });
    this.wsServers.push(wss);
    const { port } = wss.address();
    return { wss, port, socketUrl: `ws://127.0.0.1:${port}/socket`, connections };
  }

  /**
   * An @alight/client socket for `url` (not connected), with recorders `opens`, `closes`
   * (`{code, reason}`), `errors` and `messages`.
   */
  socket(url, opts = {}) {
    const socket = new Socket(url, {
      reconnectAfterMs: () => 50,
      rejoinAfterMs: () => 50,
      timeout: DEFAULT_DEADLINE_MS,
      ...opts,
    });
    const recorders = {
      opens: new Recorder("opens"),
      closes: new Recorder("closes"),
      errors: new Recorder("errors"),
      messages: new Recorder("messages"),
    };
    socket.onOpen(() => recorders.opens.push(Date.now()));
    socket.onClose((event) => recorders.closes.push({ code: event.code, reason: event.reason }));
    socket.onError((error) => recorders.errors.push(error?.message ?? String(error)));
    socket.onMessage((message) => recorders.messages.push(message));
    this.sockets.push(socket);
    return Object.assign(socket, recorders);
  }

  /** An @alight/client socket for `url`, connected and open. */
  async connect(url, opts = {}) {
    const socket = this.socket(url, opts);
    socket.connect();
    await socket.opens.nth(1);
    return socket;
  }

  async close() {
    for (const socket of this.sockets) socket.disconnect();
    for (const wss of this.wsServers) {
      for (const client of wss.clients) client.terminate();
      await new Promise((resolve) => wss.close(resolve));
    }
    await Promise.all(this.servers.map((server) => server.stop()));
  }
}

/** Resolves with `{status, response}` of the first answer to `push`: ok, error or timeout. */
export function settle(push, what = "an answer", ms = DEFAULT_DEADLINE_MS + 2000) {
  const answer = new Promise((resolve) => {
    for (const status of ["ok", "error", "timeout"]) {
      push.receive(status, (response) => resolve({ status, response }));
    }
  });
  return deadline(answer, ms, what);
}

/** Joins `channel`; resolves with the ok response, rejects on an error or timeout. */
export async function join(channel, timeout) {
  const { status, response } = await settle(channel.join(timeout), `join of ${channel.topic}`);
  if (status !== "ok") throw new Error(`join of ${channel.topic}: ${status} ${JSON.stringify(response)}`);
  return response;
}

/** Pushes and resolves with `{status, response}`. */
export function pushResult(channel, event, payload = {}, timeout) {
  return settle(channel.push(event, payload, timeout), `reply to ${event} on ${channel.topic}`);
}

/** Records every `event` the channel receives (payloads), from now on. */
export function record(channel, event) {
  const recorder = new Recorder(`${channel.topic} ${event}`);
  channel.on(event, (payload) => recorder.push(payload));
  return recorder;
}

/** Joins `channel` and records every ok answer of its join push: one per (re)join. */
export function recordJoins(channel) {
  const joins = new Recorder(`${channel.topic} joins`);
  const push = channel.join();
  push.receive("ok", (response) => joins.push(response));
  return { joins, push };
}

/** The refs of a V2 frame (a JSON array string). */
export function refs(text) {
  const [joinRef, ref] = JSON.parse(text);
  return { joinRef, ref };
}
