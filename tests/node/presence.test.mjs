// Presence through phoenix.js: the official `Presence` on a watcher's channel follows joins,
// updates, leaves, a crashed channel and dropped sockets, and ends with exactly the server's list
// (the fixture's `list` event answers with `Presence::list` of the topic).
//
// The server batches diffs per topic over 50 ms; nothing here depends on how changes fall into
// windows: each test waits for phoenix.js's onSync to show the expected list, then compares.
//
// A joiner's `presence_state` is the list as of the topic's last diff, one frame shared by every
// joiner of a window and sent without a join_ref; the joiner's own entry, still pending, follows
// in the next diff.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Presence } from "phoenix";

import { Recorder, Session, join, pushResult, startServer } from "./helpers.mjs";

let server;
before(async () => {
  server = await startServer();
});
after(() => server.stop());

/** JSON with object keys sorted, so that metas compare whatever order their fields came in. */
function canonical(value) {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, canonical(value[key])]),
    );
  }
  return value;
}

/** `{key: [meta, ...]}` with keys and metas sorted: phoenix.js and the server order metas differently. */
function normalized(state) {
  const out = {};
  for (const key of Object.getOwnPropertyNames(state).sort()) {
    out[key] = state[key].metas
      .map((meta) => JSON.stringify(canonical(meta)))
      .sort()
      .map((text) => JSON.parse(text));
  }
  return out;
}

/** A phoenix.js `Presence` on `channel`, recording its callbacks. */
function watch(channel) {
  const presence = new Presence(channel);
  const syncs = new Recorder(`${channel.topic} syncs`);
  const joins = [];
  const leaves = [];
  presence.onJoin((key, current, joined) =>
    joins.push({ key, current: current?.metas.length ?? 0, joined: joined.metas.length }),
  );
  presence.onLeave((key, current, left) =>
    leaves.push({ key, current: current.metas.length, left: left.metas.map((m) => m.phx_ref) }),
  );
  presence.onSync(() => syncs.push(normalized(presence.state)));
  return {
    presence,
    joins,
    leaves,
    /** Resolves once the list satisfies `predicate(normalizedState)`. */
    until: (predicate, what) => syncs.until(() => predicate(normalized(presence.state)), what),
  };
}

/** The server's list of the channel's topic. */
async function serverList(channel) {
  const { status, response } = await pushResult(channel, "list");
  assert.equal(status, "ok");
  return normalized(response);
}

/** A phoenix.js socket joined to `topic` as `name` (or watching, without a name). */
async function member(session, topic, name) {
  const socket = await session.connect(server);
  const channel = socket.channel(topic, name === undefined ? {} : { name });
  const watcher = watch(channel);
  const reply = await join(channel);
  return { socket, channel, watcher, reply };
}

const countOf = (state, key) => state[key]?.length ?? 0;

test("phoenix.js Presence follows joins, an update and leaves to the server's list", async (t) => {
  const session = new Session(t);
  const topic = "presence:flow";
  const watcher = await member(session, topic);
  await watcher.watcher.until((s) => Object.keys(s).length === 0, "the first state");

  const alice = await member(session, topic, "alice");
  const bob1 = await member(session, topic, "bob");
  const bob2 = await member(session, topic, "bob");
  await watcher.watcher.until(
    (s) => countOf(s, "alice") === 1 && countOf(s, "bob") === 2,
    "alice and two bobs",
  );
  assert.deepEqual(normalized(watcher.watcher.presence.state), await serverList(watcher.channel));
  // Each join's reply carried the phx_ref that the list shows.
  const aliceRef = alice.reply.phx_ref;
  assert.equal(watcher.watcher.presence.state.alice.metas[0].phx_ref, aliceRef);
  assert.equal(watcher.watcher.presence.state.alice.metas[0].online_at, 1700000000);

  const updated = await pushResult(alice.channel, "update", { status: "away" });
  assert.equal(updated.status, "ok");
  await watcher.watcher.until((s) => s.alice?.[0]?.status === "away", "alice away");
  const meta = watcher.watcher.presence.state.alice.metas[0];
  assert.equal(meta.phx_ref, updated.response.phx_ref);
  assert.equal(meta.phx_ref_prev, aliceRef);
  assert.equal(watcher.watcher.presence.state.alice.metas.length, 1);

  await new Promise((resolve) => bob1.channel.leave().receive("ok", resolve));
  await watcher.watcher.until((s) => countOf(s, "bob") === 1, "one bob left");
  assert.deepEqual(
    watcher.watcher.leaves
      .filter((l) => l.key === "bob")
      .map(({ current, left }) => [current, left.length]),
    [[1, 1]],
    "bob left one tab and is still there",
  );
  assert.deepEqual(normalized(watcher.watcher.presence.state), await serverList(watcher.channel));

  bob2.socket.disconnect();
  await watcher.watcher.until((s) => countOf(s, "bob") === 0, "no bob");
  const list = await serverList(watcher.channel);
  assert.deepEqual(Object.keys(list), ["alice"]);
  assert.deepEqual(normalized(watcher.watcher.presence.state), list);
  // Alice's own Presence, fed the same way, agrees.
  await alice.watcher.until((s) => countOf(s, "bob") === 0 && s.alice?.[0]?.status === "away");
  assert.deepEqual(normalized(alice.watcher.presence.state), list);
});

test("a crashed channel leaves, phoenix.js rejoins it, and every Presence agrees", async (t) => {
  const session = new Session(t);
  const topic = "presence:crash";
  const watcher = await member(session, topic);
  const alice = await member(session, topic, "alice");
  await watcher.watcher.until((s) => countOf(s, "alice") === 1, "alice");
  const before = watcher.watcher.presence.state.alice.metas[0].phx_ref;

  const errored = new Promise((resolve) => alice.channel.onError(resolve));
  alice.channel.push("crash", {});
  await errored;
  // phoenix.js rejoins after 50 ms and the channel tracks alice again, under a new ref.
  await watcher.watcher.until(
    (s) => countOf(s, "alice") === 1 && s.alice[0].phx_ref !== before,
    "alice back under a new ref",
  );
  // The leave and the rejoin may share a diff (phoenix.js then applies the join first).
  assert.ok(
    watcher.watcher.leaves.some((l) => l.key === "alice" && l.left.includes(before)),
    "the crash was seen as a leave of the old ref",
  );
  const list = await serverList(watcher.channel);
  assert.deepEqual(normalized(watcher.watcher.presence.state), list);
  // The rejoined channel's own Presence took the new state (its join ref changed).
  await alice.watcher.until((s) => countOf(s, "alice") === 1 && s.alice[0].phx_ref !== before);
  assert.deepEqual(normalized(alice.watcher.presence.state), list);
});

test("a dropped socket and an abruptly terminated one both leave", async (t) => {
  const session = new Session(t);
  const topic = "presence:drop";
  const watcher = await member(session, topic);
  const carol = await member(session, topic, "carol");
  const raw = await session.rawSocket(server.websocketUrl());
  raw.send(JSON.stringify(["1", "1", topic, "phx_join", { name: "dave" }]));
  await watcher.watcher.until((s) => countOf(s, "carol") === 1 && countOf(s, "dave") === 1);

  raw.terminate();
  await watcher.watcher.until((s) => countOf(s, "dave") === 0, "dave gone");
  carol.socket.disconnect();
  await watcher.watcher.until((s) => Object.keys(s).length === 0, "nobody left");
  assert.deepEqual(await serverList(watcher.channel), {});
});

test("twenty members joining at once reach every Presence, in batched diffs", async (t) => {
  const session = new Session(t);
  const topic = "presence:crowd";
  const watcher = await member(session, topic);
  const names = Array.from({ length: 20 }, (_, i) => `user${i}`);
  const members = await Promise.all(names.map((name) => member(session, topic, name)));
  await watcher.watcher.until((s) => Object.keys(s).length === 20, "twenty members");
  const diffs = watcher.socket.messages.items.filter((m) => m.event === "presence_diff");
  assert.ok(diffs.length <= 20, `${diffs.length} diffs for 20 joins`);
  const list = await serverList(watcher.channel);
  assert.deepEqual(normalized(watcher.watcher.presence.state), list);
  // The last member to join sees everyone too.
  const last = members[members.length - 1];
  await last.watcher.until((s) => Object.keys(s).length === 20);
  assert.deepEqual(normalized(last.watcher.presence.state), list);
});

test("a joiner's Presence takes the shared state without a join_ref and then lists itself", async (t) => {
  const session = new Session(t);
  const topic = "presence:self";
  const alice = await member(session, topic, "alice");
  await alice.watcher.until((s) => countOf(s, "alice") === 1, "alice lists herself");
  const bob = await member(session, topic, "bob");
  await bob.watcher.until((s) => countOf(s, "alice") === 1 && countOf(s, "bob") === 1, "bob's list");
  await alice.watcher.until((s) => countOf(s, "bob") === 1, "alice sees bob");
  for (const { socket, name } of [
    { socket: alice.socket, name: "alice" },
    { socket: bob.socket, name: "bob" },
  ]) {
    const states = socket.messages.items.filter((m) => m.topic === topic && m.event === "presence_state");
    assert.equal(states.length, 1, `${name} got one state`);
    assert.equal(states[0].join_ref, null, `${name}'s state is in broadcast form`);
    assert.equal(states[0].ref, null);
  }
  const list = await serverList(alice.channel);
  assert.deepEqual(normalized(alice.watcher.presence.state), list);
  assert.deepEqual(normalized(bob.watcher.presence.state), list);
});
