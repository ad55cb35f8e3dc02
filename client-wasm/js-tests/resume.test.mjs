// Resume of history channels (issue #15) through the JS API: a channel keeps its last position
// (the join reply's, then each broadcast's ref), rejoins with `since`, drops what it had, and
// tells `onRecover` callbacks whether the server replayed everything. Against a scripted server
// (exact frames) and against the fixture server's `history:*` topics (tests/src/fixture.rs).

import assert from "node:assert/strict";
import { test } from "node:test";

import { WebSocket } from "ws";

import { Harness, Recorder, apiBroadcast, deadline, join } from "./helpers.mjs";

const EPOCH = "0123456789ab";
const at = (offset, epoch = EPOCH) => `${epoch}-${offset}`;

/** The app every test writes: numbers, the refs they came with, and every recovery. */
function follow(channel) {
  const numbers = new Recorder(`${channel.topic} n`);
  const refs = [];
  const recoveries = new Recorder(`${channel.topic} recoveries`);
  channel.on("n", ({ n }, ref) => {
    numbers.push(n);
    refs.push(ref);
  });
  channel.onRecover((info) => recoveries.push(info));
  return { numbers, refs, recoveries };
}

test("a history channel rejoins with since, drops what it had, and reports recovered", async (t) => {
  const harness = new Harness(t);
  const server = await harness.wsServer();
  const socket = harness.socket(server.socketUrl);
  socket.connect();
  const channel = socket.channel("history:s", { a: 1 });
  const app = follow(channel);
  channel.join();
  assert.equal(channel.position(), undefined);

  const first = await server.connections.nth(1);
  const [joinRef, , , , params] = JSON.parse(await first.frames.nth(1));
  assert.deepEqual(params, { a: 1 }, "the first join has no since");
  const send = (conn, frame) => conn.ws.send(JSON.stringify(frame));
  send(first, [joinRef, joinRef, "history:s", "phx_reply", { status: "ok", response: { position: at(0) } }]);
  for (const n of [1, 2]) send(first, [null, at(n), "history:s", "n", { n }]);
  await app.numbers.nth(2);
  assert.deepEqual(app.refs, [at(1), at(2)], "the position is the callback's ref, as in phoenix.js");
  assert.equal(channel.position(), at(2));

  first.ws.terminate();
  const second = await server.connections.nth(2);
  const [rejoinRef, , , , rejoinParams] = JSON.parse(await second.frames.nth(1));
  assert.deepEqual(rejoinParams, { a: 1, since: at(2) });
  const reply = { status: "ok", response: { position: at(5), recovered: true } };
  send(second, [rejoinRef, rejoinRef, "history:s", "phx_reply", reply]);
  // A replay that overlaps what the channel had: 2 is dropped.
  for (const n of [2, 3, 4, 5]) send(second, [null, at(n), "history:s", "n", { n }]);
  send(second, [null, null, "history:s", "n", { n: 6 }]);
  assert.deepEqual(await app.numbers.nth(6).then(() => app.numbers.items), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(await app.recoveries.nth(1), { recovered: true });
  assert.equal(channel.position(), at(5), "a broadcast without a position leaves it");

  // The server lost the history: recovered false, and the new stream's position is taken.
  second.ws.terminate();
  const third = await server.connections.nth(3);
  const [thirdRef, , , , thirdParams] = JSON.parse(await third.frames.nth(1));
  assert.equal(thirdParams.since, at(5));
  const lost = { status: "ok", response: { position: at(9, "fedcba987654"), recovered: false } };
  send(third, [thirdRef, thirdRef, "history:s", "phx_reply", lost]);
  assert.deepEqual(await app.recoveries.nth(2), { recovered: false });
  send(third, [null, at(10, "fedcba987654"), "history:s", "n", { n: 7 }]);
  await app.numbers.nth(7);
  assert.equal(channel.position(), at(10, "fedcba987654"));
});

test("join params with a since of their own keep it", async (t) => {
  const harness = new Harness(t);
  const server = await harness.wsServer();
  const socket = harness.socket(server.socketUrl);
  socket.connect();
  let own;
  const channel = socket.channel("history:own", () => (own ? { since: own } : {}));
  const joined = new Promise((resolve) => channel.join().receive("ok", resolve));
  const first = await server.connections.nth(1);
  const [joinRef] = JSON.parse(await first.frames.nth(1));
  const reply = { status: "ok", response: { position: at(3) } };
  first.ws.send(JSON.stringify([joinRef, joinRef, "history:own", "phx_reply", reply]));
  await joined;
  own = at(7);
  first.ws.terminate();
  const second = await server.connections.nth(2);
  const [, , , , params] = JSON.parse(await second.frames.nth(1));
  assert.deepEqual(params, { since: at(7) });
  assert.equal(channel.position(), at(3));
});

test("a channel without history sends no since and never reports a recovery", async (t) => {
  const harness = new Harness(t);
  const server = await harness.wsServer();
  const socket = harness.socket(server.socketUrl);
  socket.connect();
  const channel = socket.channel("room:s", {});
  const app = follow(channel);
  channel.join();
  const first = await server.connections.nth(1);
  const [joinRef] = JSON.parse(await first.frames.nth(1));
  first.ws.send(JSON.stringify([joinRef, joinRef, "room:s", "phx_reply", { status: "ok", response: {} }]));
  first.ws.send(JSON.stringify([null, null, "room:s", "n", { n: 1 }]));
  await app.numbers.nth(1);
  first.ws.terminate();
  const second = await server.connections.nth(2);
  const [, , , , params] = JSON.parse(await second.frames.nth(1));
  assert.deepEqual(params, {});
  assert.equal(channel.position(), undefined);
  assert.deepEqual(app.recoveries.items, []);
});

/** A `ws` class whose instances the test can cut (TCP dropped, no close frame), and whose
 * connection attempts fail while `gate.closed`. */
function cuttable(gate) {
  return class extends WebSocket {
    constructor(url, protocols) {
      super(gate.closed ? url.replace(/:\d+\//, ":1/") : url, protocols);
      gate.current = this;
    }
  };
}

test("against the real server: a dropped connection's rejoin gets every missed broadcast once, in order", async (t) => {
  const harness = new Harness(t);
  const server = await harness.server();
  const gate = { closed: false };
  const socket = await harness.connect(server.socketUrl, { transport: cuttable(gate) });
  const channel = socket.channel("history:js-resume", {});
  const app = follow(channel);
  const joined = await join(channel);
  assert.match(joined.position, /^[0-9a-f]{12}-0$/);
  const publish = async (from, to) => {
    for (let n = from; n <= to; n++) {
      assert.equal((await apiBroadcast(server, "history:js-resume", "n", { n })).status, 202);
    }
  };
  await publish(1, 2);
  await app.numbers.nth(2);

  gate.closed = true;
  gate.current.terminate();
  await socket.closes.nth(1);
  await publish(3, 7);
  gate.closed = false;

  assert.deepEqual(await app.recoveries.nth(1), { recovered: true });
  await publish(8, 8);
  assert.deepEqual(await app.numbers.until((ns) => ns.includes(8)), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(channel.position(), `${joined.position.slice(0, 12)}-8`);
});

test("against the real server: a restart (in-memory history) reports recovered: false", async (t) => {
  const harness = new Harness(t);
  const first = await harness.server();
  const socket = await harness.connect(first.socketUrl);
  const channel = socket.channel("history:js-restart", {});
  const app = follow(channel);
  await join(channel);
  await apiBroadcast(first, "history:js-restart", "n", { n: 1 });
  await app.numbers.nth(1);
  await first.stop();
  const second = await harness.server({ port: first.port });
  assert.deepEqual(await deadline(app.recoveries.nth(1, 15_000), 16_000, "the rejoin"), { recovered: false });
  await apiBroadcast(second, "history:js-restart", "n", { n: 2 });
  await app.numbers.nth(2);
});
