// Channels through phoenix.js: joins, pushes and their replies, leave, duplicate joins, crashes,
// server-side stop, intercepted events and binary payloads.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  Session,
  apiBroadcast,
  bytes,
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

test("join ok replies with the channel's response and the channel is joined", async (t) => {
  const session = new Session(t);
  const socket = await session.connect(server);
  const channel = socket.channel("room:join-ok", { any: "params" });
  assert.deepEqual(await joinResult(channel), { status: "ok", response: { user: null } });
  assert.equal(channel.state, "joined");
});

test("join error: {refuse: 'nope'} is refused with {reason: 'nope'}", async (t) => {
  const session = new Session(t);
  const socket = await session.connect(server);
  const channel = socket.channel("room:join-error", { refuse: "nope" });
  assert.deepEqual(await joinResult(channel), { status: "error", response: { reason: "nope" } });
  assert.equal(channel.state, "errored");
  channel.leave(); // stop phoenix.js's rejoin attempts
});

test("join of an unmatched topic is refused with {reason: 'unmatched topic'}", async (t) => {
  const session = new Session(t);
  const socket = await session.connect(server);
  const channel = socket.channel("nowhere:1", {});
  assert.deepEqual(await joinResult(channel), {
    status: "error",
    response: { reason: "unmatched topic" },
  });
  channel.leave();
});

test("the unmatched-topic reply carries no join_ref, as Phoenix's encode_ignore sends it", async (t) => {
  // Phoenix.Socket answers with `%Reply{ref: ref, topic: topic, ...}`: join_ref stays nil.
  const session = new Session(t);
  const socket = await session.connect(server);
  const channel = socket.channel("nowhere:2", {});
  assert.equal((await joinResult(channel)).status, "error");
  channel.leave();
  const reply = socket.messages.items.find((m) => m.topic === "nowhere:2");
  assert.deepEqual(
    [reply.join_ref, reply.ref, reply.topic, reply.event, reply.payload],
    [null, reply.ref, "nowhere:2", "phx_reply", { status: "error", response: { reason: "unmatched topic" } }],
  );
});

test("the 101st channel on a socket is refused with {reason: 'too many channels joined'}", async (t) => {
  const session = new Session(t);
  const socket = await session.connect(server);
  const channels = Array.from({ length: 100 }, (_, i) => socket.channel(`room:many-${i}`, {}));
  await Promise.all(channels.map((channel) => join(channel)));
  const extra = socket.channel("room:many-extra", {});
  assert.deepEqual(await joinResult(extra), {
    status: "error",
    response: { reason: "too many channels joined" },
  });
  extra.leave();
  // Leaving one makes room again.
  await new Promise((resolve) => channels[0].leave().receive("ok", resolve));
  const another = socket.channel("room:many-another", {});
  assert.deepEqual(await join(another), { user: null });
});

test("at the channel limit, a join of an unmatched topic is still refused as unmatched", async (t) => {
  // Phoenix routes the topic first and checks max_channels_per_transport only for a known one.
  const session = new Session(t);
  const socket = await session.connect(server);
  const channels = Array.from({ length: 100 }, (_, i) => socket.channel(`room:full-${i}`, {}));
  await Promise.all(channels.map((channel) => join(channel)));
  const unmatched = socket.channel("nowhere:full", {});
  assert.deepEqual(await joinResult(unmatched), {
    status: "error",
    response: { reason: "unmatched topic" },
  });
  unmatched.leave();
});

test("a join that crashes is refused with {reason: 'join crashed'}", async (t) => {
  const session = new Session(t);
  const socket = await session.connect(server);
  const channel = socket.channel("room:join-crash", { crash: true });
  assert.deepEqual(await joinResult(channel), {
    status: "error",
    response: { reason: "join crashed" },
  });
  channel.leave();
  // The socket survives it.
  const other = socket.channel("room:after-join-crash", {});
  await join(other);
  assert.equal(socket.closes.length, 0);
});

test("push replies: ok (ping echo), error (fail), timeout (noreply), server push (push_me)", async (t) => {
  const session = new Session(t);
  const socket = await session.connect(server);
  const channel = socket.channel("room:push", {});
  await join(channel);

  assert.deepEqual(await pushResult(channel, "ping", { n: 1, s: "é", list: [1, null] }), {
    status: "ok",
    response: { n: 1, s: "é", list: [1, null] },
  });
  assert.deepEqual(await pushResult(channel, "fail", {}), {
    status: "error",
    response: { reason: "failed" },
  });
  assert.deepEqual(await pushResult(channel, "noreply", {}, 200), {
    status: "timeout",
    response: {},
  });
  assert.deepEqual(await pushResult(channel, "no_such_event", {}), {
    status: "error",
    response: { reason: "unknown event" },
  });

  const pushed = record(channel, "pushed");
  assert.deepEqual(await pushResult(channel, "push_me", { for: "me" }), {
    status: "ok",
    response: {},
  });
  assert.deepEqual(await pushed.nth(1), { for: "me" });
  // The push is addressed to this join.
  const frame = socket.messages.items.find((m) => m.event === "pushed");
  assert.equal(frame.join_ref, channel.joinRef());
  assert.equal(frame.ref, null);
  // Still joined and answering after all that.
  assert.deepEqual(await pushResult(channel, "count", {}), { status: "ok", response: { count: 1 } });
});

test("leave: ok, the channel is closed, later broadcasts are not received", async (t) => {
  const session = new Session(t);
  const leaver = await session.connect(server);
  const shouter = await session.connect(server);
  const left = leaver.channel("room:leave", {});
  const barrier = leaver.channel("room:leave-barrier", {});
  await join(left);
  await join(barrier);
  const closed = record(left, "phx_close");
  const speaker = shouter.channel("room:leave", {});
  const speakerBarrier = shouter.channel("room:leave-barrier", {});
  await join(speaker);
  await join(speakerBarrier);

  const leave = left.leave();
  const answer = await new Promise((resolve) => {
    leave.receive("ok", () => resolve("ok"));
    leave.receive("timeout", () => resolve("timeout"));
  });
  assert.equal(answer, "ok");
  assert.equal(left.state, "closed");
  assert.equal(closed.length, 1, "onClose fired once");

  // The server acknowledges with the leave's refs and then closes the join.
  // (phoenix.js closes the channel on the reply; the phx_close frame follows it.)
  const joinRef = left.joinRef();
  const close = await leaver.messages.find(
    (m) => m.topic === "room:leave" && m.event === "phx_close",
    "phx_close after the leave",
  );
  const afterLeave = leaver.messages.items.filter((m) => m.topic === "room:leave");
  const reply = afterLeave.at(-2);
  assert.equal(reply.event, "phx_reply");
  assert.equal(reply.join_ref, joinRef);
  assert.deepEqual(reply.payload, { status: "ok", response: {} });
  assert.deepEqual([close.join_ref, close.ref, close.event, close.payload], [joinRef, joinRef, "phx_close", {}]);

  // A shout on the left topic, then one on the barrier topic: the second reaching the leaver
  // shows the first was not sent to it (one sender, one receiver: delivery is in order).
  const seenBefore = leaver.messages.length;
  assert.equal((await pushResult(speaker, "shout", { after: "leave" })).status, "ok");
  assert.equal((await pushResult(speakerBarrier, "shout", { barrier: true })).status, "ok");
  await leaver.messages.find((m) => m.topic === "room:leave-barrier" && m.event === "shout");
  const since = leaver.messages.items.slice(seenBefore);
  assert.deepEqual(
    since.filter((m) => m.topic === "room:leave"),
    [],
    "no frame for the left topic after leaving",
  );
});

test("duplicate join from a new Channel object: phoenix.js leaves the old one, the new one is joined", async (t) => {
  const session = new Session(t);
  const socket = await session.connect(server);
  const first = socket.channel("room:dup", {});
  await join(first);
  const firstClosed = record(first, "phx_close");
  const firstShouts = record(first, "shout");

  const second = socket.channel("room:dup", {});
  const secondShouts = record(second, "shout");
  assert.deepEqual(await join(second), { user: null });
  await firstClosed.nth(1);
  assert.equal(first.state, "closed");
  assert.equal(second.state, "joined");
  assert.ok(!socket.channels.includes(first), "the old channel is removed from the socket");

  assert.equal((await pushResult(second, "shout", { to: "second" })).status, "ok");
  assert.deepEqual(await secondShouts.nth(1), { to: "second" });
  // Exactly one shout frame reached the socket, for the new channel only.
  const shoutFrames = socket.messages.items.filter((m) => m.event === "shout");
  assert.equal(shoutFrames.length, 1);
  assert.equal(firstShouts.length, 0);
  assert.equal(second.state, "joined");
});

test("duplicate join on the wire: the new join is answered, then phx_close for the stale join_ref", async (t) => {
  const session = new Session(t);
  const socket = await session.connect(server);
  // phoenix.js leaves the open channel of a topic before joining it again; turn that off so
  // that the server sees a second phx_join for a topic it has joined, as after a lost leave.
  socket.leaveOpenTopic = () => {};
  const first = socket.channel("room:dup-wire", {});
  await join(first);
  const firstRef = first.joinRef();
  const firstClosed = record(first, "phx_close");
  const firstShouts = record(first, "shout");

  const second = socket.channel("room:dup-wire", {});
  const secondClosed = record(second, "phx_close");
  const secondShouts = record(second, "shout");
  const from = socket.messages.length;
  assert.deepEqual(await join(second), { user: null });
  const secondRef = second.joinRef();
  await firstClosed.nth(1);

  const frames = socket.messages.items
    .slice(from)
    .map((m) => [m.join_ref, m.ref, m.topic, m.event, m.payload]);
  assert.deepEqual(frames, [
    [secondRef, secondRef, "room:dup-wire", "phx_reply", { status: "ok", response: { user: null } }],
    [firstRef, firstRef, "room:dup-wire", "phx_close", {}],
  ]);
  // phoenix.js hands the phx_close to the channel it belongs to and drops it for the new one.
  assert.equal(first.state, "closed");
  assert.equal(second.state, "joined");
  assert.equal(secondClosed.length, 0);

  assert.equal((await pushResult(second, "shout", { once: true })).status, "ok");
  assert.deepEqual(await secondShouts.nth(1), { once: true });
  assert.equal(socket.messages.items.filter((m) => m.event === "shout").length, 1);
  assert.equal(firstShouts.length, 0);
});

test("channel crash: phx_error, phoenix.js rejoins with fresh state, other channels unaffected", async (t) => {
  const session = new Session(t);
  const socket = await session.connect(server);
  const crashing = socket.channel("room:crash-a", {});
  const { joins } = recordJoins(crashing);
  await joins.nth(1);
  const calm = socket.channel("room:crash-b", {});
  await join(calm);
  const errors = record(crashing, "phx_error");
  const calmErrors = record(calm, "phx_error");
  const calmClosed = record(calm, "phx_close");

  assert.deepEqual(await pushResult(crashing, "count"), { status: "ok", response: { count: 1 } });
  assert.deepEqual(await pushResult(crashing, "count"), { status: "ok", response: { count: 2 } });
  assert.deepEqual(await pushResult(calm, "count"), { status: "ok", response: { count: 1 } });

  const crashJoinRef = crashing.joinRef();
  const crash = pushResult(crashing, "crash", {}, 500);
  assert.deepEqual(await errors.nth(1), { reason: "channel_crash" });
  const errorFrame = socket.messages.items.find((m) => m.event === "phx_error");
  assert.deepEqual(
    [errorFrame.join_ref, errorFrame.ref, errorFrame.topic],
    [crashJoinRef, crashJoinRef, "room:crash-a"],
  );
  // A crashed handler sends no reply.
  assert.deepEqual(await crash, { status: "timeout", response: {} });

  // phoenix.js rejoins on its rejoin backoff; the new channel process starts from scratch.
  await joins.nth(2);
  assert.equal(crashing.state, "joined");
  assert.notEqual(crashing.joinRef(), crashJoinRef);
  assert.deepEqual(await pushResult(crashing, "count"), { status: "ok", response: { count: 1 } });

  // The other channel kept its state and never errored.
  assert.deepEqual(await pushResult(calm, "count"), { status: "ok", response: { count: 2 } });
  assert.equal(calmErrors.length, 0);
  assert.equal(calmClosed.length, 0);
  assert.equal(socket.closes.length, 0);
});

test("stop: the reply arrives, then phx_close closes the channel", async (t) => {
  const session = new Session(t);
  const socket = await session.connect(server);
  const channel = socket.channel("room:stop", {});
  await join(channel);
  const closed = record(channel, "phx_close");
  assert.deepEqual(await pushResult(channel, "stop"), { status: "ok", response: {} });
  await closed.nth(1);
  assert.equal(channel.state, "closed");
  assert.ok(!socket.channels.includes(channel));
});

test("an intercepted censored broadcast arrives as {censored: true}", async (t) => {
  const session = new Session(t);
  const socket = await session.connect(server);
  const channel = socket.channel("room:censored", {});
  await join(channel);
  const censored = record(channel, "censored");
  const response = await apiBroadcast(server, "room:censored", "censored", { secret: "hunter2" });
  assert.equal(response.status, 202);
  assert.deepEqual(await censored.nth(1), { censored: true });
  // handle_out pushes to this join, like Phoenix's push/3 from handle_out.
  const frame = socket.messages.items.find((m) => m.event === "censored");
  assert.equal(frame.join_ref, channel.joinRef());
});

test("binary: an ArrayBuffer ping comes back as an ArrayBuffer with the same bytes", async (t) => {
  const session = new Session(t);
  const socket = await session.connect(server);
  const other = await session.connect(server);
  const channel = socket.channel("room:binary", {});
  const listener = other.channel("room:binary", {});
  await join(channel);
  await join(listener);

  const sent = new Uint8Array(300);
  for (let i = 0; i < sent.length; i++) sent[i] = (i * 7) & 0xff;
  const { status, response } = await pushResult(channel, "ping", sent.buffer.slice(0));
  assert.equal(status, "ok");
  assert.ok(response instanceof ArrayBuffer, "the reply response is an ArrayBuffer");
  assert.deepEqual(bytes(response), bytes(sent));

  // A binary broadcast reaches other sockets as an ArrayBuffer too.
  const shouts = record(listener, "shout");
  assert.equal((await pushResult(channel, "shout", new Uint8Array([0, 1, 255]).buffer)).status, "ok");
  const payload = await shouts.nth(1);
  assert.ok(payload instanceof ArrayBuffer);
  assert.deepEqual(bytes(payload), [0, 1, 255]);

  // And a binary server push.
  const pushed = record(channel, "pushed");
  assert.equal((await pushResult(channel, "push_me", new Uint8Array([9, 8]).buffer)).status, "ok");
  const pushedPayload = await pushed.nth(1);
  assert.ok(pushedPayload instanceof ArrayBuffer);
  assert.deepEqual(bytes(pushedPayload), [9, 8]);
});
