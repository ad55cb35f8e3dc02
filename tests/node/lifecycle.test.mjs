// The server going away and coming back, and the close codes phoenix.js sees: graceful shutdown
// (1012), restart and reconnect, oversized messages (1009) and undecodable frames (1007).

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  Session,
  apiBroadcast,
  deadline,
  join,
  pushResult,
  record,
  recordJoins,
} from "./helpers.mjs";

test("graceful shutdown closes sockets with 1012 and the server exits cleanly", async (t) => {
  const session = new Session(t);
  const server = await session.server();
  const socket = await session.connect(server);
  const channel = socket.channel("room:shutdown", {});
  await join(channel);
  const channelErrors = record(channel, "phx_error");

  const exit = server.stop();
  const closed = await socket.closes.nth(1);
  assert.equal(closed.code, 1012);
  // phoenix.js errors its channels so that they rejoin on the next connection.
  assert.deepEqual(await channelErrors.nth(1), { source: "transport", reason: "connection_closed" });
  assert.equal(channel.state, "errored");
  assert.deepEqual(await exit, { code: 0, signal: null, killed: false });
});

test("server restart: phoenix.js reconnects to the new server, rejoins and receives broadcasts", async (t) => {
  const session = new Session(t);
  const first = await session.server();
  const socket = await session.connect(first);
  const channel = socket.channel("room:restart", {});
  const { joins } = recordJoins(channel);
  await joins.nth(1);
  const broadcasts = record(channel, "news");

  assert.equal((await first.stop()).code, 0);
  assert.equal((await socket.closes.nth(1)).code, 1012);

  // A new server on the same port; phoenix.js keeps retrying until it is there.
  const second = await session.server({ port: first.port });
  await socket.opens.nth(2);
  await joins.nth(2);
  assert.equal(channel.state, "joined");

  const response = await apiBroadcast(second, "room:restart", "news", { after: "restart" });
  assert.equal(response.status, 202);
  assert.deepEqual(await broadcasts.nth(1), { after: "restart" });
  assert.deepEqual(await pushResult(channel, "ping", { still: "here" }), {
    status: "ok",
    response: { still: "here" },
  });
});

test("a message over --max-message closes the socket with 1009", async (t) => {
  const session = new Session(t);
  const server = await session.server({ args: ["--max-message", "1024"] });
  const socket = await session.connect(server);
  const bystander = await session.connect(server);
  const channel = socket.channel("room:big", {});
  await join(channel);
  const calm = bystander.channel("room:big", {});
  await join(calm);

  // Under the limit is fine.
  const small = "x".repeat(800);
  assert.deepEqual(await pushResult(channel, "ping", { small }), {
    status: "ok",
    response: { small },
  });

  const big = "y".repeat(1500);
  const timedOut = pushResult(channel, "ping", { big }, 1000);
  const closed = await socket.closes.nth(1);
  assert.equal(closed.code, 1009);
  assert.notEqual((await timedOut).status, "ok");
  // Other sockets keep working, and phoenix.js reconnects and rejoins.
  assert.deepEqual(await pushResult(calm, "ping", { ok: 1 }), { status: "ok", response: { ok: 1 } });
  await socket.opens.nth(2);
  assert.equal(bystander.closes.length, 0);
});

test("a malformed frame closes that socket with 1007; another socket keeps working", async (t) => {
  const session = new Session(t);
  const server = await session.server();
  const broken = await session.connect(server);
  const healthy = await session.connect(server);
  const brokenChannel = broken.channel("room:malformed", {});
  const healthyChannel = healthy.channel("room:malformed", {});
  await join(brokenChannel);
  await join(healthyChannel);
  const shouts = record(healthyChannel, "shout");

  // Bytes phoenix.js would never send, straight onto its WebSocket.
  broken.conn.send("this is not a phoenix frame");
  const closed = await broken.closes.nth(1);
  assert.equal(closed.code, 1007);

  assert.deepEqual(await pushResult(healthyChannel, "ping", { still: "fine" }), {
    status: "ok",
    response: { still: "fine" },
  });
  assert.equal((await pushResult(healthyChannel, "shout", { n: 1 })).status, "ok");
  assert.deepEqual(await shouts.nth(1), { n: 1 });
  assert.equal(healthy.closes.length, 0);
});

test("frames of the wrong shape close with 1007 too", async (t) => {
  const session = new Session(t);
  const server = await session.server();
  for (const frame of ["{}", "[1, 2, 3]", '["1", "1", "room:x"]', "[", ""]) {
    const ws = await session.rawSocket(server.websocketUrl());
    const code = new Promise((resolve) => ws.once("close", (code) => resolve(code)));
    ws.send(frame);
    assert.equal(await deadline(code, 5000, `the close after ${frame}`), 1007, `close code for ${JSON.stringify(frame)}`);
  }
});
