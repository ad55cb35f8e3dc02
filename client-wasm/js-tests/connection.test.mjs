// The connection's life: auth tokens and params (functions, async, re-evaluated on every
// connect), reconnecting to a restarted server with rejoin, a push made while offline, heartbeat
// timeout detection against a server that stops answering, disconnect.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  Harness,
  Recorder,
  apiBroadcast,
  httpPost,
  join,
  pushResult,
  record,
  recordJoins,
  settle,
} from "./helpers.mjs";

test("the URL carries the params then vsn; the token is the second subprotocol", async (t) => {
  const h = new Harness(t);
  const server = await h.wsServer();
  const socket = h.socket(server.socketUrl, {
    params: { token: "a b&c", nested: { x: 1 } },
    authToken: "a?>~b",
  });
  socket.connect();
  const conn = await server.connections.nth(1);
  assert.equal(conn.url, "/socket/websocket?token=a%20b%26c&nested%5Bx%5D=1&vsn=2.0.0");
  // btoa("a?>~b") = "YT8+fmI=": the standard alphabet, padding dropped (PHOENIX-NOTES.md).
  assert.equal(conn.protocols, "phoenix, base64url.bearer.phx.YT8+fmI");
  await socket.opens.nth(1);
  assert.equal(socket.isConnected(), true);
  assert.equal(socket.connectionState(), "open");
});

test("authToken and params functions (async too) are called again on every connect", async (t) => {
  const h = new Harness(t);
  const server = await h.server();
  let tokenCalls = 0;
  let paramsCalls = 0;
  const socket = h.socket(server.socketUrl, {
    authToken: async () => {
      tokenCalls += 1;
      return "valid-token";
    },
    params: () => {
      paramsCalls += 1;
      return { attempt: paramsCalls };
    },
  });
  socket.connect();
  await socket.opens.nth(1);
  const channel = socket.channel("private:x", {});
  const { joins } = recordJoins(channel);
  assert.deepEqual(await joins.nth(1), { user: "alice" });
  assert.deepEqual([tokenCalls, paramsCalls], [1, 1]);

  // The server drops every socket of user_socket:alice (1001); the client reconnects, calling
  // both functions again, and rejoins as alice.
  const dropped = await httpPost(`${server.httpUrl}/test/disconnect/user_socket:alice`, {});
  assert.equal(dropped.status, 200);
  assert.equal((await socket.closes.nth(1)).code, 1001);
  await socket.opens.nth(2);
  assert.deepEqual(await joins.nth(2), { user: "alice" });
  assert.deepEqual([tokenCalls, paramsCalls], [2, 2]);
});

test("each reconnect sends the params and token the functions return then", async (t) => {
  const h = new Harness(t);
  // Closes every connection right after it opens, so the client keeps reconnecting.
  const server = await h.wsServer((conn) => conn.ws.close(4000, "again"));
  let n = 0;
  const socket = h.socket(server.socketUrl, {
    params: async () => ({ n: ++n }),
    authToken: () => `token-${n}`,
  });
  socket.connect();
  const first = await server.connections.nth(1);
  const second = await server.connections.nth(2);
  socket.disconnect();
  assert.equal(first.url, "/socket/websocket?n=1&vsn=2.0.0");
  assert.equal(first.protocols, `phoenix, base64url.bearer.phx.${btoa("token-1").replace(/=/g, "")}`);
  assert.equal(second.url, "/socket/websocket?n=2&vsn=2.0.0");
  assert.equal(second.protocols, `phoenix, base64url.bearer.phx.${btoa("token-2").replace(/=/g, "")}`);
});

// Connects `socket`, whose first attempt fails with `message` before opening (onError, then a
// close with 1006), and checks that the reconnect reaches `server` at `url` and opens.
async function failsThenReconnects(socket, server, message, url) {
  socket.connect();
  assert.equal(await socket.errors.nth(1), message);
  assert.equal((await socket.closes.nth(1)).code, 1006);
  const conn = await server.connections.nth(1);
  assert.equal(conn.url, url);
  await socket.opens.nth(1);
}

test("a failing params function is an error and a reconnect, not an exception", async (t) => {
  const h = new Harness(t);
  const server = await h.wsServer();
  let calls = 0;
  const socket = h.socket(server.socketUrl, {
    params: () => {
      calls += 1;
      if (calls === 1) throw new Error("not yet");
      return Promise.resolve({ ok: 1 });
    },
  });
  await failsThenReconnects(socket, server, "not yet", "/socket/websocket?ok=1&vsn=2.0.0");
});

test("a params getter that throws is an error and a reconnect, not an exception", async (t) => {
  const h = new Harness(t);
  const server = await h.wsServer();
  let calls = 0;
  const params = {
    get n() {
      if (++calls === 1) throw new Error("not readable yet");
      return calls;
    },
  };
  const socket = h.socket(server.socketUrl, { params });
  await failsThenReconnects(socket, server, "not readable yet", "/socket/websocket?n=2&vsn=2.0.0");
});

test("a token btoa cannot encode is an error and a reconnect, before any connection", async (t) => {
  const h = new Harness(t);
  const server = await h.wsServer();
  let calls = 0;
  const socket = h.socket(server.socketUrl, {
    authToken: () => (++calls === 1 ? "ab\u0100" : "ok"),
  });
  socket.connect();
  assert.match(await socket.errors.nth(1), /character above U\+00FF at index 2/);
  assert.equal((await socket.closes.nth(1)).code, 1006);
  const conn = await server.connections.nth(1);
  assert.equal(conn.protocols, `phoenix, base64url.bearer.phx.${btoa("ok").replace(/=/g, "")}`);
  await socket.opens.nth(1);
});

test("frames that do not decode are dropped and logged with why; the connection stays", async (t) => {
  const h = new Harness(t);
  const server = await h.wsServer((conn) => {
    conn.ws.send("{not json");
    conn.ws.send('["1",null,"room:1"]');
    conn.ws.send(new Uint8Array([9, 1, 2]));
  });
  const lines = new Recorder("log lines");
  const socket = h.socket(server.socketUrl, { logger: (kind, msg) => lines.push(`${kind}: ${msg}`) });
  socket.connect();
  const dropped = (why) => `receive: dropped a frame that does not decode: ${why}`;
  await lines.until((seen) => seen.filter((line) => line.includes("does not decode")).length === 3);
  assert.deepEqual(lines.items.filter((line) => line.includes("does not decode")), [
    dropped("not JSON"),
    dropped("not a [join_ref, ref, topic, event, payload] array"),
    dropped("a malformed binary frame"),
  ]);
  assert.equal(socket.connectionState(), "open");
});

test("server restart: reconnects on the same port, rejoins, hears the new server", async (t) => {
  const h = new Harness(t);
  const first = await h.server();
  const socket = await h.connect(first.socketUrl);
  const channel = socket.channel("room:restart", {});
  const { joins } = recordJoins(channel);
  await joins.nth(1);
  const errors = record(channel, "phx_error");
  const news = record(channel, "news");

  assert.equal((await first.stop()).code, 0);
  assert.equal((await socket.closes.nth(1)).code, 1012);
  assert.deepEqual(await errors.nth(1), { source: "transport", reason: "connection_closed" });
  assert.equal(channel.state, "errored");

  // A push made while offline waits in the channel and goes out once it has rejoined.
  const offline = settle(channel.push("ping", { sent: "offline" }), "the offline push");

  const second = await h.server({ port: first.port });
  await socket.opens.nth(2);
  await joins.nth(2);
  assert.equal(channel.state, "joined");
  assert.deepEqual(await offline, { status: "ok", response: { sent: "offline" } });

  assert.equal((await apiBroadcast(second, "room:restart", "news", { after: "restart" })).status, 202);
  assert.deepEqual(await news.nth(1), { after: "restart" });
  assert.deepEqual(await pushResult(channel, "count", {}), { status: "ok", response: { count: 1 } });
});

test("heartbeat timeout: a server that stops answering is detected and left", async (t) => {
  const h = new Harness(t);
  // Accepts, never replies to anything.
  const server = await h.wsServer();
  const socket = h.socket(server.socketUrl, { heartbeatIntervalMs: 100 });
  socket.connect();
  const conn = await server.connections.nth(1);
  await socket.opens.nth(1);
  // The first heartbeat goes out after one interval; without a reply by the next tick the client
  // closes (1000, "heartbeat timeout") and reconnects.
  const heartbeat = JSON.parse(await conn.frames.nth(1));
  assert.deepEqual(heartbeat.slice(2), ["phoenix", "heartbeat", {}]);
  assert.deepEqual(await socket.closes.nth(1), { code: 1000, reason: "heartbeat timeout" });
  const serverSide = await new Promise((resolve) => {
    if (conn.ws.readyState === conn.ws.CLOSED) resolve("closed");
    else conn.ws.once("close", (code, reason) => resolve(`${code} ${reason}`));
  });
  assert.match(serverSide, /^(closed|1000 heartbeat timeout)$/);
  await server.connections.nth(2);
  await socket.opens.nth(2);
});

test("heartbeats answered keep the connection open", async (t) => {
  const h = new Harness(t);
  const server = await h.server();
  const socket = await h.connect(server.socketUrl, { heartbeatIntervalMs: 50 });
  const replies = new Recorder("heartbeat replies");
  socket.onMessage((m) => m.topic === "phoenix" && replies.push(m.payload.status));
  assert.deepEqual((await replies.until((r) => r.length >= 4)).slice(0, 4), ["ok", "ok", "ok", "ok"]);
  assert.equal(socket.closes.length, 0);
});

test("disconnect: callback, close code, no reconnect, and connect again rejoins", async (t) => {
  const h = new Harness(t);
  const server = await h.server();
  const socket = await h.connect(server.socketUrl);
  const channel = socket.channel("room:again", {});
  const { joins } = recordJoins(channel);
  await joins.nth(1);
  let called = false;
  socket.disconnect(() => (called = true), 4001, "bye");
  assert.equal(called, true);
  assert.deepEqual(await socket.closes.nth(1), { code: 4001, reason: "bye" });
  assert.equal(socket.connectionState(), "closed");
  assert.equal(channel.state, "errored");
  socket.connect();
  await socket.opens.nth(2);
  await joins.nth(2);
  assert.equal(channel.state, "joined");
  socket.disconnect(1000);
  assert.equal((await socket.closes.nth(2)).code, 1000);
});

test("a channel params function is called for every join and rejoin, and its value sent", async (t) => {
  const h = new Harness(t);
  // Answers every join with ok; records the frames of each connection.
  const server = await h.wsServer((conn) => {
    conn.ws.on("message", (data) => {
      const [joinRef, ref, topic, event] = JSON.parse(data.toString());
      if (event === "phx_join") {
        conn.ws.send(JSON.stringify([joinRef, ref, topic, "phx_reply", { status: "ok", response: {} }]));
      }
    });
  });
  const socket = await h.connect(server.socketUrl);
  let seen = 0;
  let calls = 0;
  const channel = socket.channel("room:params", () => {
    calls += 1;
    return seen ? { last_seen_id: seen } : {};
  });
  assert.equal(calls, 0, "not called before the join");
  const { joins } = recordJoins(channel);
  await joins.nth(1);
  const joinsOf = async (conn, n) =>
    (await conn.frames.until((f) => f.filter((x) => x.includes("phx_join")).length >= n))
      .map((text) => JSON.parse(text))
      .filter(([, , , event]) => event === "phx_join")
      .map(([, , , , payload]) => payload);
  const first = await server.connections.nth(1);
  assert.deepEqual(await joinsOf(first, 1), [{}]);

  // The server drops the socket: the rejoin on the next connection carries the new value.
  seen = 41;
  first.ws.close(1011, "dropped");
  await socket.opens.nth(2);
  await joins.nth(2);
  const second = await server.connections.nth(2);
  assert.deepEqual(await joinsOf(second, 1), [{ last_seen_id: 41 }]);

  // The channel crashes: the rejoin on the rejoin timer carries the value then.
  seen = 42;
  const [joinRef] = JSON.parse(second.frames.items.find((f) => f.includes("phx_join")));
  second.ws.send(JSON.stringify([joinRef, joinRef, "room:params", "phx_error", {}]));
  await joins.nth(3);
  assert.deepEqual(await joinsOf(second, 2), [{ last_seen_id: 41 }, { last_seen_id: 42 }]);
  assert.equal(calls, 3);

  // Leaving and joining again calls it again; one that throws makes `join()` throw.
  channel.leave();
  seen = 43;
  await settle(channel.join());
  assert.deepEqual((await joinsOf(second, 3)).at(-1), { last_seen_id: 43 });
  channel.leave();
  const failing = socket.channel("room:failing", () => {
    throw new Error("no params yet");
  });
  assert.throws(() => failing.join(), /no params yet/);
  assert.equal(failing.state, "closed");
});
