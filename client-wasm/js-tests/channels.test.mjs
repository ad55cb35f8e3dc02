// Channels against the real fixture server (tests/src/fixture.rs): join, push and its three
// answers, broadcasts, server pushes, binary payloads, leave and channel callbacks.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  Harness,
  Recorder,
  apiBroadcast,
  bytes,
  join,
  pushResult,
  record,
  settle,
  startServer,
} from "./helpers.mjs";

let server;
before(async () => {
  server = await startServer();
});
after(() => server.stop());

test("join: ok with the reply, params sent, state joined", async (t) => {
  const h = new Harness(t);
  const socket = await h.connect(server.socketUrl);
  const channel = socket.channel("room:join", { hello: "world" });
  const states = [channel.state];
  const push = channel.join();
  states.push(channel.state);
  assert.deepEqual(await settle(push), { status: "ok", response: { user: null } });
  states.push(channel.state);
  assert.deepEqual(states, ["closed", "joining", "joined"]);
  assert.equal(typeof channel.joinRef(), "string");
  // receive() after the answer came calls back at once, as phoenix.js does.
  let late = null;
  push.receive("ok", (response) => (late = response));
  assert.deepEqual(late, { user: null });
  // onMessage saw the reply as phoenix.js decodes it.
  const reply = socket.messages.items.find((m) => m.event === "phx_reply" && m.topic === "room:join");
  assert.deepEqual(reply.payload, { status: "ok", response: { user: null } });
  assert.equal(reply.ref, channel.joinRef());
});

test("join refused: error with the reason, then the channel retries", async (t) => {
  const h = new Harness(t);
  const socket = await h.connect(server.socketUrl);
  const channel = socket.channel("room:refused", { refuse: "nope" });
  const errors = new Recorder("join errors");
  channel.join().receive("error", (response) => errors.push(response));
  assert.deepEqual(await errors.nth(1), { reason: "nope" });
  assert.equal(channel.state, "errored");
  // rejoinAfterMs is 50 ms in the harness: the refused join is retried.
  assert.deepEqual(await errors.nth(2), { reason: "nope" });
  assert.throws(() => channel.join(), /join multiple times/);
});

test("push: ok with the response, error with the reason, timeout when no reply comes", async (t) => {
  const h = new Harness(t);
  const socket = await h.connect(server.socketUrl);
  const channel = socket.channel("room:push", {});
  await join(channel);
  assert.deepEqual(await pushResult(channel, "ping", { n: 1, s: "ünï ✓", a: [1, null] }), {
    status: "ok",
    response: { n: 1, s: "ünï ✓", a: [1, null] },
  });
  assert.deepEqual(await pushResult(channel, "fail", {}), {
    status: "error",
    response: { reason: "failed" },
  });
  const started = Date.now();
  assert.deepEqual(await pushResult(channel, "noreply", {}, 200), { status: "timeout", response: {} });
  assert.ok(Date.now() - started >= 190, "the timeout is the push's own");
  // Chaining: receive returns the push.
  const answers = new Recorder("answers");
  channel
    .push("count", {})
    .receive("ok", (r) => answers.push(["ok", r]))
    .receive("error", (r) => answers.push(["error", r]));
  assert.deepEqual(await answers.nth(1), ["ok", { count: 1 }]);
});

test("broadcast: every socket on the topic gets it, the sender too", async (t) => {
  const h = new Harness(t);
  const [a, b] = await Promise.all([h.connect(server.socketUrl), h.connect(server.socketUrl)]);
  const ca = a.channel("room:bcast", {});
  const cb = b.channel("room:bcast", {});
  await Promise.all([join(ca), join(cb)]);
  const shoutsA = record(ca, "shout");
  const shoutsB = record(cb, "shout");
  assert.equal((await pushResult(ca, "shout", { body: "hi" })).status, "ok");
  assert.deepEqual(await shoutsA.nth(1), { body: "hi" });
  assert.deepEqual(await shoutsB.nth(1), { body: "hi" });

  // From the HTTP API, and the callback arguments are phoenix.js's (payload, ref, joinRef).
  const args = new Recorder("args");
  cb.on("news", (...rest) => args.push(rest));
  assert.equal((await apiBroadcast(server, "room:bcast", "news", { n: 2 })).status, 202);
  assert.deepEqual(await args.nth(1), [{ n: 2 }, null, cb.joinRef()]);

  // off(event, ref) removes one callback; the other still hears.
  const ref = cb.on("news", () => assert.fail("removed callback was called"));
  cb.off("news", ref);
  await apiBroadcast(server, "room:bcast", "news", { n: 3 });
  assert.deepEqual((await args.nth(2))[0], { n: 3 });
});

test("server push to one channel (push_me)", async (t) => {
  const h = new Harness(t);
  const socket = await h.connect(server.socketUrl);
  const channel = socket.channel("room:pushme", {});
  await join(channel);
  const pushed = record(channel, "pushed");
  assert.equal((await pushResult(channel, "push_me", { x: 1 })).status, "ok");
  assert.deepEqual(await pushed.nth(1), { x: 1 });
});

test("binary: an ArrayBuffer goes out as a binary frame and comes back as an ArrayBuffer", async (t) => {
  const h = new Harness(t);
  const socket = await h.connect(server.socketUrl);
  const channel = socket.channel("room:binary", {});
  await join(channel);
  const payload = Uint8Array.from([0, 1, 2, 253, 254, 255]).buffer;
  const { status, response } = await pushResult(channel, "ping", payload);
  assert.equal(status, "ok");
  assert.ok(response instanceof ArrayBuffer, "the reply is an ArrayBuffer");
  assert.deepEqual(bytes(response), [0, 1, 2, 253, 254, 255]);
  // Broadcast of a binary payload (shout relays it as is).
  const shouts = record(channel, "shout");
  await pushResult(channel, "shout", Uint8Array.from([7, 8, 9]).buffer);
  const shout = await shouts.nth(1);
  assert.ok(shout instanceof ArrayBuffer);
  assert.deepEqual(bytes(shout), [7, 8, 9]);
  // onMessage sees the binary reply as phoenix.js decodes it.
  const reply = socket.messages.items.find(
    (m) => m.event === "phx_reply" && m.payload.response instanceof ArrayBuffer,
  );
  assert.ok(reply, "a binary reply was seen by onMessage");
});

test("a large binary payload goes through the send queue intact", async (t) => {
  const h = new Harness(t);
  const socket = await h.connect(server.socketUrl);
  const channel = socket.channel("room:large", {});
  await join(channel);
  const big = new Uint8Array(512 * 1024).map((_, i) => i % 251);
  const answers = await Promise.all(
    [0, 1, 2].map(() => pushResult(channel, "ping", big.buffer.slice(0))),
  );
  for (const { status, response } of answers) {
    assert.equal(status, "ok");
    assert.equal(response.byteLength, big.byteLength);
    assert.deepEqual(new Uint8Array(response).subarray(0, 300), big.subarray(0, 300));
  }
});

test("leave: ok at once, onClose with 'leave', nothing more for the channel", async (t) => {
  const h = new Harness(t);
  const socket = await h.connect(server.socketUrl);
  const channel = socket.channel("room:leave", {});
  await join(channel);
  const closes = new Recorder("channel closes");
  channel.onClose((reason) => closes.push(reason));
  assert.deepEqual(await settle(channel.leave()), { status: "ok", response: {} });
  assert.equal(channel.state, "closed");
  assert.equal(await closes.nth(1), "leave");
  assert.throws(() => channel.push("ping", {}), /before joining/);
  // The server heard the leave: its phx_close for the join arrives (and concerns no channel).
  await socket.messages.find((m) => m.event === "phx_close" && m.topic === "room:leave");
});

test("crash: onError with the server's reason, then an automatic rejoin", async (t) => {
  const h = new Harness(t);
  const socket = await h.connect(server.socketUrl);
  const channel = socket.channel("room:crash", {});
  const joins = new Recorder("joins");
  channel.join().receive("ok", (r) => joins.push(r));
  await joins.nth(1);
  const errors = new Recorder("channel errors");
  channel.onError((reason) => errors.push(reason));
  channel.push("crash", {}, 100); // no reply comes; a short timeout leaves no timer behind
  assert.deepEqual(await errors.nth(1), { reason: "channel_crash" });
  await joins.nth(2);
  assert.equal(channel.state, "joined");
  assert.deepEqual(await pushResult(channel, "count", {}), { status: "ok", response: { count: 1 } });
});

test("socket callbacks: off removes them; the logger hears transport, push and receive", async (t) => {
  const h = new Harness(t);
  const lines = [];
  const socket = h.socket(server.socketUrl, {
    logger: (kind, msg, data) => lines.push({ kind, msg, data }),
  });
  const opens = new Recorder("opens");
  const ref = socket.onOpen(() => assert.fail("removed onOpen was called"));
  socket.onOpen(() => opens.push(true));
  socket.off([ref]);
  assert.equal(socket.hasLogger(), true);
  socket.connect();
  await opens.nth(1);
  const channel = socket.channel("room:log", {});
  await join(channel);
  const kinds = new Set(lines.map((l) => l.kind));
  for (const kind of ["transport", "push", "receive"]) assert.ok(kinds.has(kind), kind);
  const push = lines.find((l) => l.kind === "push");
  assert.match(push.msg, /^room:log phx_join \(\d+, \d+\)$/);
  const receive = lines.find((l) => l.kind === "receive");
  assert.match(receive.msg, /^ok room:log phx_reply \(\d+\)$/);
  assert.deepEqual(receive.data, { status: "ok", response: { user: null } });
});
