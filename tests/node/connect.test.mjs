// Connecting with phoenix.js: params and vsn, authToken, refused connects, heartbeats, the idle
// timeout and server-side disconnects.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Serializer } from "phoenix";

import {
  Recorder,
  Session,
  WebSocket,
  deadline,
  disconnect,
  httpPost,
  join,
  joinResult,
  pushResult,
  record,
  recordJoins,
  startServer,
} from "./helpers.mjs";

let server;
before(async () => {
  server = await startServer();
});
after(() => server.stop());

test("connect sends params first and vsn=2.0.0, and the server speaks V2", async (t) => {
  const session = new Session(t);
  const raw = new Recorder("raw frames");
  const socket = await session.connect(server, {
    params: { token: "abc", n: 1 },
    decode: (data, callback) => {
      raw.push(data);
      return Serializer.decode(data, callback);
    },
  });
  assert.equal(socket.conn.url, `${server.socketUrl}/websocket?token=abc&n=1&vsn=2.0.0`);
  assert.equal(socket.connectionState(), "open");
  // Without authToken phoenix.js offers no subprotocol, so none is selected.
  assert.equal(socket.conn.protocol, "");

  const channel = socket.channel("room:connect", {});
  assert.deepEqual(await join(channel), { user: null });
  const joinRef = channel.joinRef();
  // The join reply is a V2 array `[join_ref, ref, topic, "phx_reply", {status, response}]`.
  assert.deepEqual(JSON.parse(raw.items.at(-1)), [
    joinRef,
    joinRef,
    "room:connect",
    "phx_reply",
    { status: "ok", response: { user: null } },
  ]);
});

test("authToken valid-token: the phoenix subprotocol is selected and private:x joins as alice", async (t) => {
  const session = new Session(t);
  const socket = await session.connect(server, { authToken: "valid-token" });
  assert.equal(socket.conn.protocol, "phoenix");
  const channel = socket.channel("private:x", {});
  assert.deepEqual(await join(channel), { user: "alice" });
  assert.deepEqual(await pushResult(channel, "ping", { hello: "alice" }), {
    status: "ok",
    response: { hello: "alice" },
  });
});

test("private:x without a token is refused with unauthorized", async (t) => {
  const session = new Session(t);
  const socket = await session.connect(server);
  const channel = socket.channel("private:x", {});
  assert.deepEqual(await joinResult(channel), {
    status: "error",
    response: { reason: "unauthorized" },
  });
  channel.leave();
});

test("authToken bad-token: each attempt is closed at once with 4001 unauthorized, and phoenix.js retries", async (t) => {
  const session = new Session(t);
  const socket = session.socket(server, { authToken: "bad-token" });
  socket.connect();
  // The server accepts the upgrade and closes it at once, so that a browser can read why; phoenix.js
  // treats it as any abnormal close and retries on its reconnect backoff.
  assert.deepEqual(await socket.closes.nth(1), { code: 4001, reason: "unauthorized" });
  assert.deepEqual(await socket.closes.nth(2), { code: 4001, reason: "unauthorized" });
  assert.notEqual(socket.connectionState(), "open");

  // A valid identity that may not connect is 4003 forbidden.
  const token = Buffer.from("banned-token").toString("base64").replace(/=/g, "");
  const ws = new WebSocket(server.websocketUrl(), ["phoenix", `base64url.bearer.phx.${token}`]);
  session.raw.push(ws);
  const closed = await deadline(
    new Promise((resolve, reject) => {
      ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() }));
      ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    }),
    5000,
    "the refused socket's close",
  );
  assert.deepEqual(closed, { code: 4003, reason: "forbidden" });
});

test("heartbeats are answered with an ok phx_reply on the phoenix topic", async (t) => {
  const session = new Session(t);
  const sent = new Recorder("heartbeats sent");
  const socket = session.socket(server, {
    heartbeatIntervalMs: 50,
    logger: (kind, msg) => {
      const match = /^phoenix heartbeat \(.*, (\d+)\)$/.exec(msg);
      if (kind === "push" && match) sent.push(match[1]);
    },
  });
  socket.connect();
  const replies = await socket.messages.until(
    (msgs) => msgs.filter((m) => m.topic === "phoenix").length >= 3,
    "three heartbeat replies",
  );
  const heartbeatReplies = replies.filter((m) => m.topic === "phoenix");
  for (const reply of heartbeatReplies) {
    assert.equal(reply.event, "phx_reply");
    assert.equal(reply.join_ref, null);
    assert.deepEqual(reply.payload, { status: "ok", response: {} });
    assert.ok(sent.items.includes(reply.ref), `reply ${reply.ref} answers a heartbeat we sent`);
  }
  assert.equal(socket.closes.length, 0, "no heartbeat timeout");

  // socket.ping measures a round trip over the same heartbeat.
  const rtt = await deadline(
    new Promise((resolve) => assert.ok(socket.ping(resolve))),
    5000,
    "socket.ping",
  );
  assert.equal(typeof rtt, "number");
});

test("server-side disconnect of user_socket:alice closes with 1001 and phoenix.js reconnects", async (t) => {
  const session = new Session(t);
  const alice = await session.connect(server, { authToken: "valid-token" });
  const aliceElsewhere = await session.connect(server, { authToken: "valid-token" });
  const bystander = await session.connect(server);
  const channel = alice.channel("private:x", {});
  const { joins } = recordJoins(channel);
  await joins.nth(1);
  const other = bystander.channel("room:bystander", {});
  await join(other);

  const response = await httpPost(`${server.httpUrl}/test/disconnect/user_socket:alice`, "");
  assert.equal(response.status, 200);

  const closed = await alice.closes.nth(1);
  assert.equal(closed.code, 1001);
  // Every socket connected with that id goes.
  assert.equal((await aliceElsewhere.closes.nth(1)).code, 1001);
  // phoenix.js reconnects and rejoins its channels.
  await alice.opens.nth(2);
  assert.deepEqual(await joins.nth(2), { user: "alice" });
  assert.deepEqual(await pushResult(channel, "ping", { again: true }), {
    status: "ok",
    response: { again: true },
  });
  // Other sockets are not affected.
  assert.deepEqual(await pushResult(other, "ping", {}), { status: "ok", response: {} });
  assert.equal(bystander.closes.length, 0);
});

test("disconnect() then connect() on the same Socket rejoins its channels", async (t) => {
  const session = new Session(t);
  const socket = await session.connect(server);
  const channel = socket.channel("room:reconnect", {});
  const { joins } = recordJoins(channel);
  await joins.nth(1);
  await disconnect(socket);
  assert.equal(socket.connectionState(), "closed");
  assert.equal(channel.state, "errored");

  socket.connect();
  await socket.opens.nth(2);
  await joins.nth(2);
  const shouts = record(channel, "shout");
  assert.equal((await pushResult(channel, "shout", { back: true })).status, "ok");
  assert.deepEqual(await shouts.nth(1), { back: true });
});

test("idle timeout closes a silent socket with 1001; a heartbeating one stays open", async (t) => {
  const session = new Session(t);
  const idleServer = await session.server({ args: ["--idle-ms", "300"] });
  const silent = await session.connect(idleServer, { heartbeatIntervalMs: 600000 });
  const opened = Date.now();
  const lively = await session.connect(idleServer, { heartbeatIntervalMs: 50 });

  const closed = await silent.closes.nth(1);
  assert.equal(closed.code, 1001);
  assert.equal(closed.reason, "idle timeout");
  assert.ok(Date.now() - opened >= 200, "not closed long before the idle timeout");
  await silent.opens.nth(2); // phoenix.js reconnects after the close
  await disconnect(silent);

  // Twelve heartbeat round trips take well over two idle periods.
  await lively.messages.until(
    (msgs) => msgs.filter((m) => m.topic === "phoenix").length >= 12,
    "twelve heartbeat replies",
  );
  assert.equal(lively.closes.length, 0);
});
