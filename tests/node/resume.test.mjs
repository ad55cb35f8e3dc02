// Topic history with stock phoenix.js: a broadcast's position arrives as the second argument of
// `channel.on(event, (payload, ref) => …)`, the app joins with `() => ({since: last})`, and its
// automatic rejoin after a dropped connection gets everything it missed, once, in order.
//
// The fixture's `history:*` keeps 10,000 broadcasts (tests/src/fixture.rs).

import assert from "node:assert/strict";
import { test } from "node:test";

import { Recorder, Session, apiBroadcast } from "./helpers.mjs";
import { gatedTransport, resumable } from "./history.mjs";

async function publish(server, topic, from, to) {
  for (let n = from; n <= to; n++) {
    const { status } = await apiBroadcast(server, topic, "n", { n });
    assert.equal(status, 202);
  }
}

const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

test("positions arrive as the ref of broadcasts and the join reply carries one", async (t) => {
  const session = new Session(t);
  const server = await session.server();
  const socket = await session.connect(server);
  const app = resumable(socket, "history:refs");
  const joined = await app.joins.nth(1);
  assert.match(joined.position, /^[0-9a-f]{12}-0$/);
  assert.equal(joined.recovered, undefined);
  await publish(server, "history:refs", 1, 2);
  await app.numbers.nth(2);
  const epoch = joined.position.slice(0, 12);
  assert.equal(app.last, `${epoch}-2`);
  // Heartbeats still work with positions going by: a ping is answered.
  const rtt = await new Promise((resolve) => socket.ping(resolve));
  assert.equal(typeof rtt, "number");
});

test("a dropped connection's automatic rejoin gets every missed broadcast once, in order, then live ones", async (t) => {
  const session = new Session(t);
  const server = await session.server();
  const gate = { closed: false };
  const socket = await session.connect(server, { transport: gatedTransport(gate) });
  const app = resumable(socket, "history:resume");
  await app.joins.nth(1);
  await publish(server, "history:resume", 1, 2);
  await app.numbers.nth(2);

  // Cut the TCP connection without a close frame; phoenix.js retries against the closed gate.
  gate.closed = true;
  socket.conn.terminate();
  assert.equal((await socket.closes.nth(1)).code, 1006);
  await publish(server, "history:resume", 3, 7);
  gate.closed = false;

  const rejoined = await app.joins.nth(2);
  assert.equal(rejoined.recovered, true, JSON.stringify(rejoined));
  await app.numbers.nth(7);
  await publish(server, "history:resume", 8, 9);
  await app.numbers.nth(9);
  // A barrier: one more live broadcast proves nothing else was queued before it.
  await publish(server, "history:resume", 10, 10);
  assert.deepEqual(await app.numbers.until((ns) => ns.includes(10)), range(1, 10));
});

test("after a server restart (in-memory history) the rejoin says recovered: false", async (t) => {
  const session = new Session(t);
  const first = await session.server();
  const socket = await session.connect(first);
  const app = resumable(socket, "history:restart");
  await app.joins.nth(1);
  await publish(first, "history:restart", 1, 1);
  await app.numbers.nth(1);

  assert.equal((await first.stop()).code, 0);
  const second = await session.server({ port: first.port });
  const rejoined = await app.joins.nth(2);
  assert.equal(rejoined.recovered, false, JSON.stringify(rejoined));
  assert.match(rejoined.position, /^[0-9a-f]{12}-\d+$/);
  // The app reloads and carries on from the new position.
  assert.equal(app.last, rejoined.position);
  await publish(second, "history:restart", 2, 2);
  assert.deepEqual(await app.numbers.until((ns) => ns.length === 2), [1, 2]);
});

test("a garbled since is recovered: false and the channel stays joined", async (t) => {
  const session = new Session(t);
  const server = await session.server();
  const socket = await session.connect(server);
  const joins = new Recorder("joins");
  const channel = socket.channel("history:garbled", { since: "not-a-position" });
  channel.join().receive("ok", (response) => joins.push(response));
  const joined = await joins.nth(1);
  assert.equal(joined.recovered, false);
  assert.equal(channel.state, "joined");
  const numbers = new Recorder("n");
  channel.on("n", (payload) => numbers.push(payload.n));
  await publish(server, "history:garbled", 1, 1);
  assert.deepEqual(await numbers.until((ns) => ns.length === 1), [1]);
});
