// `Presence` from @alight/client against the official phoenix.js `Presence`: on the fixture
// server's `presence:*` channel (tests/src/fixture.rs) both follow joins, an update, leaves, a
// crashed channel and a dropped socket and show the same list; and the statics give what
// phoenix.js's give on fixed inputs.
//
// The server batches diffs per topic over 50 ms; each step waits for both lists to show the
// expected state (on their onSync), then compares them with each other and with the server's.

import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";

import { Presence } from "@alight/client";

import { Harness, REPO_ROOT, Recorder, httpPost, join, pushResult } from "./helpers.mjs";

const phoenix = await import(
  pathToFileURL(path.join(REPO_ROOT, "node_modules", "phoenix", "priv", "static", "phoenix.mjs")).href
);

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

/** A presence's `list()` as `{key: [meta, ...]}`, keys and metas sorted. */
function normalized(presence) {
  const out = {};
  const entries = presence.list((key, { metas }) => [key, metas]);
  for (const [key, metas] of entries.sort(([a], [b]) => (a < b ? -1 : 1))) {
    out[key] = metas.map((meta) => JSON.stringify(canonical(meta))).sort().map((t) => JSON.parse(t));
  }
  return out;
}

/** The server's list of the topic, normalized likewise. */
async function serverList(channel) {
  const { status, response } = await pushResult(channel, "list");
  assert.equal(status, "ok");
  return normalized({ list: (chooser) => phoenix.Presence.list(response, chooser) });
}

/** Records each onSync of `presence` (its normalized list) and the onJoin/onLeave calls. */
function watch(presence, name) {
  const syncs = new Recorder(`${name} syncs`);
  const calls = [];
  presence.onJoin((key, current, joined) => calls.push(["join", key, current?.metas.length ?? 0, joined.metas.length]));
  presence.onLeave((key, current, left) => calls.push(["leave", key, current.metas.length, left.metas.length]));
  presence.onSync(() => syncs.push(normalized(presence)));
  return {
    presence,
    calls,
    until: (predicate, what) => syncs.until(() => predicate(normalized(presence)), `${name}: ${what}`),
  };
}

const countOf = (list, key) => list[key]?.length ?? 0;

test("our Presence and phoenix.js's show the same list through joins, an update, leaves, a crash and a drop", async (t) => {
  const h = new Harness(t);
  const server = await h.server();
  const topic = "presence:compare";

  // Ours watches from a socket the server can drop (token `valid-token`: socket id
  // `user_socket:alice`); phoenix.js's from a phoenix.js socket.
  const oursSocket = await h.connect(server.socketUrl, { authToken: "valid-token" });
  const oursChannel = oursSocket.channel(topic, {});
  const ours = watch(new Presence(oursChannel), "ours");
  const phxSocket = new phoenix.Socket(server.socketUrl, {
    reconnectAfterMs: () => 50,
    rejoinAfterMs: () => 50,
  });
  t.after(() => phxSocket.disconnect());
  phxSocket.connect();
  const phxChannel = phxSocket.channel(topic, {});
  const theirs = watch(new phoenix.Presence(phxChannel), "phoenix.js");
  await join(oursChannel);
  await new Promise((resolve, reject) =>
    phxChannel.join().receive("ok", resolve).receive("error", reject).receive("timeout", reject),
  );

  /** Waits until both lists satisfy `predicate`, then checks they equal each other and the server's. */
  const agree = async (predicate, what) => {
    await Promise.all([ours.until(predicate, what), theirs.until(predicate, what)]);
    const list = await serverList(oursChannel);
    assert.deepEqual(normalized(ours.presence), list, `${what}: ours vs the server`);
    assert.deepEqual(normalized(theirs.presence), list, `${what}: phoenix.js vs the server`);
    return list;
  };

  // Joins: members on @alight/client sockets.
  const member = async (name) => {
    const socket = await h.connect(server.socketUrl);
    const channel = socket.channel(topic, { name });
    const reply = await join(channel);
    return { socket, channel, reply };
  };
  const alice = await member("alice");
  const bob1 = await member("bob");
  const bob2 = await member("bob");
  await agree((l) => countOf(l, "alice") === 1 && countOf(l, "bob") === 2, "alice and two bobs");
  assert.equal(ours.presence.list()[0].metas[0].online_at, 1700000000);

  // An update: one leave and one join of alice, ending with one meta.
  const updated = await pushResult(alice.channel, "update", { status: "away" });
  assert.equal(updated.status, "ok");
  await agree((l) => l.alice?.[0]?.status === "away" && countOf(l, "alice") === 1, "alice away");

  // Leaves: a channel left, a socket disconnected.
  await new Promise((resolve) => bob1.channel.leave().receive("ok", resolve));
  await agree((l) => countOf(l, "bob") === 1, "one bob left");
  bob2.socket.disconnect();
  await agree((l) => countOf(l, "bob") === 0, "no bob");

  // A crashed channel: alice leaves and is tracked again under a new ref on the rejoin.
  const before = (await serverList(oursChannel)).alice[0].phx_ref;
  const errored = new Promise((resolve) => alice.channel.onError(resolve));
  alice.channel.push("crash", {});
  await errored;
  await agree((l) => countOf(l, "alice") === 1 && l.alice[0].phx_ref !== before, "alice back");

  // Our watcher's socket is dropped by the server: it reconnects and rejoins, takes the new
  // state (carol joined meanwhile or just after) and lists what phoenix.js lists.
  const joinRef = oursChannel.joinRef();
  assert.equal((await httpPost(`${server.httpUrl}/test/disconnect/user_socket:alice`, {})).status, 200);
  const carol = await member("carol");
  await oursSocket.opens.nth(2);
  await agree((l) => countOf(l, "alice") === 1 && countOf(l, "carol") === 1, "carol, after the drop");
  assert.notEqual(oursChannel.joinRef(), joinRef, "our channel rejoined");
  assert.equal(ours.presence.inPendingSyncState(), false);
  carol.socket.disconnect();
  await agree((l) => countOf(l, "carol") === 0 && countOf(l, "alice") === 1, "carol gone");

  // The callbacks saw the same joins and leaves, bar how the server's batches fell.
  assert.ok(ours.calls.some(([kind, key]) => kind === "leave" && key === "bob"));
  assert.ok(ours.calls.some(([kind, key, current]) => kind === "join" && key === "alice" && current === 0));
});

test("diffs wait for the state of the channel's current join, as in phoenix.js", () => {
  // A stand-in channel: our Presence needs only `on` and `joinRef`.
  const make = (Class) => {
    const handlers = {};
    const channel = { ref: "1", on: (event, cb) => (handlers[event] = cb), joinRef: () => channel.ref };
    const presence = new Class(channel);
    const syncs = [];
    presence.onSync(() => syncs.push(presence.list((key) => key)));
    return { channel, handlers, presence, syncs };
  };
  const runs = [Presence, phoenix.Presence].map((Class) => {
    const run = make(Class);
    const { channel, handlers, presence } = run;
    handlers.presence_diff({ joins: { b: { metas: [{ phx_ref: "b1" }] } }, leaves: {} });
    const pendingBefore = presence.inPendingSyncState();
    handlers.presence_state({ a: { metas: [{ phx_ref: "a1" }] } });
    handlers.presence_diff({ joins: {}, leaves: { a: { metas: [{ phx_ref: "a1" }] } } });
    channel.ref = "2"; // rejoined: diffs wait again
    handlers.presence_diff({ joins: { c: { metas: [{ phx_ref: "c1" }] } }, leaves: {} });
    const pendingAfter = presence.inPendingSyncState();
    handlers.presence_state({ d: { metas: [{ phx_ref: "d1" }] } });
    return { pendingBefore, pendingAfter, syncs: run.syncs, list: presence.list() };
  });
  assert.deepEqual(runs[0], runs[1]);
  assert.deepEqual(runs[0].syncs, [["a", "b"], ["b"], ["d", "c"]]);
});

test("the statics give what phoenix.js's give", () => {
  const cases = [
    // phoenix.js's own example: u1 stays, u2 leaves, u3 joins, u4 has a new meta.
    {
      current: {
        u1: { metas: [{ id: 1, phx_ref: "1" }] },
        u2: { metas: [{ id: 2, phx_ref: "2" }] },
        u4: { metas: [{ id: 4, phx_ref: "4" }] },
      },
      next: {
        u1: { metas: [{ id: 1, phx_ref: "1" }] },
        u3: { metas: [{ id: 3, phx_ref: "3" }] },
        u4: { metas: [{ id: 4, phx_ref: "4.2", phx_ref_prev: "4" }] },
      },
      diff: {
        joins: { u1: { metas: [{ phx_ref: "1.2" }] }, u5: { metas: [{ phx_ref: "5" }] } },
        leaves: { u2: { metas: [{ phx_ref: "2" }] }, nobody: { metas: [{ phx_ref: "9" }] } },
      },
    },
    // Integer-like keys list first; a key named like an Object.prototype property is a key.
    {
      current: { b: { metas: [{ phx_ref: "b" }] }, 10: { metas: [{ phx_ref: "10" }] } },
      next: { __proto__: null, constructor: { metas: [{ phx_ref: "c" }] }, 2: { metas: [{ phx_ref: "2" }] } },
      diff: { joins: { b: { metas: [{ phx_ref: "b" }, { phx_ref: "b2" }] } }, leaves: { b: { metas: [{ phx_ref: "b" }] } } },
    },
    // Empty states and diffs.
    { current: {}, next: {}, diff: { joins: {}, leaves: {} } },
  ];
  const trace = (P, { current, next, diff }) => {
    const calls = [];
    const onJoin = (key, cur, joined) => calls.push(["join", key, clone(cur), clone(joined)]);
    const onLeave = (key, cur, left) => calls.push(["leave", key, clone(cur), clone(left)]);
    const synced = P.syncState(clone(current), clone(next), onJoin, onLeave);
    const diffed = P.syncDiff(clone(current), clone(diff), onJoin, onLeave);
    const quiet = P.syncDiff(clone(current), clone(diff));
    const nulls = P.syncDiff(clone(current), clone(diff), null, null);
    return {
      synced: shape(synced),
      diffed: shape(diffed),
      quiet: shape(quiet),
      nulls: shape(nulls),
      calls,
      list: P.list(synced),
      chosen: P.list(diffed, (key, { metas }) => `${key}:${metas.map((m) => m.phx_ref).join(",")}`),
      nullChooser: P.list(diffed, null),
    };
  };
  for (const input of cases) {
    assert.deepEqual(trace(Presence, input), trace(phoenix.Presence, input), JSON.stringify(input));
  }
});

/** A value as JSON, or undefined; for comparing callback arguments as they were then. */
function clone(value) {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

/** A state's keys in order with their values, and whether it has a prototype. */
function shape(state) {
  return {
    keys: Object.getOwnPropertyNames(state),
    values: Object.getOwnPropertyNames(state).map((key) => clone(state[key])),
    nullProto: Object.getPrototypeOf(state) === null,
  };
}
