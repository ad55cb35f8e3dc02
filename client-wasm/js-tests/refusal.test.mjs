// Connections a server refuses (CONTRACTS.md "Refusal close codes": 4001 unauthorized, 4003
// forbidden), the browser's offline/online events, and `heartbeatTimeoutMs`, against scripted
// `ws` servers that close, stay silent or answer exactly as each test needs.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Harness, Recorder } from "./helpers.mjs";
import { SECRET, sign } from "./jwt.mjs";

/** A scripted server closing every connection at once with `codes[i]` (the last for later ones). */
async function refusing(h, codes) {
  let n = 0;
  return h.wsServer((conn) => {
    const code = codes[Math.min(n++, codes.length - 1)];
    if (code) conn.ws.close(code, code === 4003 ? "forbidden" : "unauthorized");
  });
}

/** Records the socket's `onError` arguments as they are. */
function errors(socket) {
  const seen = new Recorder("errors");
  socket.onError((error) => seen.push(error));
  return seen;
}

test("4003: onError gets {code, reason}, no reconnect, state closed; connect() starts again", async (t) => {
  const h = new Harness(t);
  const server = await refusing(h, [4003, 0]);
  const socket = h.socket(server.socketUrl, { reconnectAfterMs: () => 1 });
  const seen = errors(socket);
  socket.connect();
  assert.deepEqual(await seen.nth(1), { code: 4003, reason: "forbidden" });
  assert.deepEqual(await socket.closes.nth(1), { code: 4003, reason: "forbidden" });
  assert.equal(socket.connectionState(), "closed");
  // The reconnect backoff is 1 ms: a reconnect would have come before this other connection.
  const marker = await h.wsServer();
  const other = h.socket(marker.socketUrl);
  other.connect();
  await other.opens.nth(1);
  assert.equal(server.connections.length, 1, "no reconnect after a 4003");

  socket.connect();
  await socket.opens.nth(1);
  await server.connections.nth(2);
});

test("4001: the token function is called again and the socket reconnects at once, once", async (t) => {
  const h = new Harness(t);
  const server = await refusing(h, [4001]);
  let tokens = 0;
  const socket = h.socket(server.socketUrl, {
    reconnectAfterMs: () => 60_000,
    authToken: () => `token-${++tokens}`,
  });
  const seen = errors(socket);
  socket.connect();
  // The second connection comes at once (not after the minute of backoff), with a new token.
  const second = await server.connections.nth(2);
  assert.match(second.protocols, /base64url\.bearer\.phx\./);
  assert.deepEqual(await seen.nth(1), { code: 4001, reason: "unauthorized" });
  await socket.closes.nth(2);
  assert.equal(tokens, 2);
  assert.equal(socket.connectionState(), "closed");
  assert.equal(server.connections.length, 2);
});

test("a 4001 after a channel joined (an expired token) reconnects at once and rejoins", async (t) => {
  const h = new Harness(t);
  const server = await h.server({ args: ["--jwt-secret", SECRET] });
  let issued = 0;
  // The phoenix.js way of passing a token (a params function): the package does not refresh
  // it in band, so the first one, living two seconds, expires under the joined channel.
  const socket = h.socket(server.socketUrl, {
    reconnectAfterMs: () => 60_000,
    params: () => ({ token: sign("ann", issued++ === 0 ? 2 : 60) }),
  });
  const seen = errors(socket);
  socket.connect();
  const channel = socket.channel("room:expiry", {});
  const joins = new Recorder("joins");
  channel.join().receive("ok", (response) => joins.push(response));
  await joins.nth(1);
  assert.deepEqual(await socket.closes.nth(1, 10_000), { code: 4001, reason: "token expired" });
  // At once, not after the minute of backoff, with a fresh token; the channel rejoins.
  await joins.nth(2);
  assert.equal(issued, 2);
  assert.deepEqual(seen.items, []);
});

test("offline closes at once with reason offline; online reconnects at once and rejoins", async (t) => {
  const h = new Harness(t);
  const target = new EventTarget();
  globalThis.addEventListener = target.addEventListener.bind(target);
  t.after(() => delete globalThis.addEventListener);
  const server = await h.server();
  const socket = await h.connect(server.socketUrl, { reconnectAfterMs: () => 60_000 });
  const channel = socket.channel("room:offline", {});
  const joins = new Recorder("joins");
  channel.join().receive("ok", (response) => joins.push(response));
  await joins.nth(1);

  target.dispatchEvent(new Event("offline"));
  assert.deepEqual(socket.closes.items, [{ code: 1006, reason: "offline" }]);
  assert.equal(socket.connectionState(), "closed");
  assert.equal(channel.state, "errored");

  target.dispatchEvent(new Event("online"));
  assert.equal(socket.connectionState(), "connecting");
  await socket.opens.nth(2);
  await joins.nth(2);
  assert.equal(channel.state, "joined");
});

test("heartbeatTimeoutMs: a server that stops answering is left after that long", async (t) => {
  const h = new Harness(t);
  // Answers the first heartbeat only.
  let answered = 0;
  const server = await h.wsServer((conn) => {
    conn.ws.on("message", (data) => {
      const [joinRef, ref, topic, event] = JSON.parse(data.toString());
      if (topic === "phoenix" && event === "heartbeat" && answered++ === 0) {
        conn.ws.send(JSON.stringify([joinRef, ref, "phoenix", "phx_reply", { status: "ok", response: {} }]));
      }
    });
  });
  const socket = h.socket(server.socketUrl, { heartbeatIntervalMs: 100, heartbeatTimeoutMs: 300 });
  socket.connect();
  await socket.opens.nth(1);
  const started = Date.now();
  const closed = await socket.closes.nth(1, 5000);
  assert.deepEqual(closed, { code: 1000, reason: "heartbeat timeout" });
  // First heartbeat at 100 ms (answered), the second at 200, given up at 500.
  const took = Date.now() - started;
  assert.ok(took >= 450, `closed after ${took} ms, before the timeout`);
});
