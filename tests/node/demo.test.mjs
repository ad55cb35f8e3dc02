// The demo app (`target/debug/alight-demo`) through phoenix.js: the `room:*` contract, login
// tokens, and notifications stored in SQLite and broadcast on `notifications:<user_id>` (live to
// every socket of the user, mark-read across tabs, catch-up on rejoin, persistence across restarts).
//
// Build first: `cargo build -p alight-demo` (scripts/test does). ALIGHT_DEMO_BIN picks another build.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { Presence } from "phoenix";

import { spawnDemo } from "../support/process.mjs";

import {
  Session,
  deadline,
  disconnect,
  httpPost,
  join,
  joinResult,
  pushResult,
  record,
  recordJoins,
} from "./helpers.mjs";

const API_KEY = "demo-test-api-key";

/**
 * Starts the demo on 127.0.0.1:0 with its data in `dataDir` (a fresh temporary directory unless
 * given) and resolves once it printed the URL it serves. `stop()` sends SIGTERM (graceful shutdown)
 * and waits for the exit; the temporary directory is removed when `removeData` is set.
 */
async function startDemo({ dataDir, removeData = dataDir === undefined } = {}) {
  const data = dataDir ?? mkdtempSync(path.join(os.tmpdir(), "alight-demo-test-"));
  const server = await spawnDemo({ dataDir: data, apiKey: API_KEY });
  const { port } = server;
  return {
    port,
    dataDir: data,
    socketUrl: `ws://127.0.0.1:${port}/socket`,
    httpUrl: `http://127.0.0.1:${port}`,
    exited: server.exited,
    get stderr() {
      return server.stderr;
    },
    async stop() {
      const result = await server.stop();
      if (removeData) rmSync(data, { recursive: true, force: true });
      return result;
    },
  };
}

/** `POST /api/login` → the token for `userId`. */
async function login(demo, userId) {
  const { status, body } = await httpPost(`${demo.httpUrl}/api/login`, { user_id: userId });
  assert.equal(status, 200, body);
  const response = JSON.parse(body);
  assert.equal(response.user_id, userId);
  return response.token;
}

/** `POST /api/notifications` with `auth` as the bearer token; resolves with `{status, json}`. */
async function notify(demo, notification, auth = API_KEY) {
  const headers = auth === null ? {} : { authorization: `Bearer ${auth}` };
  const { status, body } = await httpPost(`${demo.httpUrl}/api/notifications`, notification, headers);
  return { status, json: JSON.parse(body) };
}

/** Creates a notification with the API key and resolves with it (asserting 201). */
async function created(demo, userId, title, body = "") {
  const { status, json } = await notify(demo, { user_id: userId, title, body });
  assert.equal(status, 201, JSON.stringify(json));
  assert.equal(json.user_id, userId);
  return json.notification;
}

/** A fresh user id per test, so tests sharing one demo never see each other's notifications. */
let users = 0;
function user(name) {
  users += 1;
  return `${name}-${users}-${process.pid}`;
}

/** A socket logged in as `userId`, its `notifications:<userId>` channel and its join reply. */
async function joinNotifications(session, demo, token, userId, params = {}) {
  const socket = await session.connect(demo, { authToken: token });
  const channel = socket.channel(`notifications:${userId}`, params);
  const notifications = record(channel, "notification");
  const reads = record(channel, "read");
  const reply = await join(channel);
  return { socket, channel, notifications, reads, reply };
}

let demo;
before(async () => {
  demo = await startDemo();
});
after(() => demo.stop());

test("room:<name>: shout reaches every member, the sender included, and ping echoes", async (t) => {
  const session = new Session(t);
  // Anonymous sockets may join rooms.
  const [a, b] = await Promise.all([session.connect(demo), session.connect(demo)]);
  const roomA = a.channel("room:lobby", { name: "a" });
  const roomB = b.channel("room:lobby", {});
  // Rooms keep history: the reply carries the room's position, and nothing else.
  const joinedA = await join(roomA);
  assert.deepEqual(Object.keys(joinedA), ["position"]);
  assert.match(joinedA.position, /^[0-9a-f]{12}-\d+$/);
  assert.deepEqual(await join(roomB), joinedA);
  const shoutsA = record(roomA, "shout");
  const shoutsB = record(roomB, "shout");

  assert.deepEqual(await pushResult(roomA, "shout", { body: "hi all" }), { status: "ok", response: {} });
  assert.deepEqual(await shoutsA.nth(1), { body: "hi all" });
  assert.deepEqual(await shoutsB.nth(1), { body: "hi all" });

  assert.deepEqual(await pushResult(roomB, "ping", { n: 7 }), { status: "ok", response: { n: 7 } });
  assert.deepEqual(await pushResult(roomB, "dance", {}), {
    status: "error",
    response: { reason: "unknown event" },
  });
});

test("room:<name>: members who join with a name are in the room's presence, anonymous ones are not", async (t) => {
  const session = new Session(t);
  const topic = `room:presence-${process.pid}`;
  const [ada, bob, anon] = await Promise.all([
    session.connect(demo),
    session.connect(demo),
    session.connect(demo),
  ]);
  const adaRoom = ada.channel(topic, { name: "ada" });
  const adaPresence = new Presence(adaRoom);
  // Resolves once ada's list (as phoenix.js's Presence builds it) has exactly `names`.
  const listed = (names) =>
    deadline(
      new Promise((resolve) => {
        const check = () => {
          const keys = adaPresence.list((key) => key).sort();
          if (JSON.stringify(keys) === JSON.stringify(names)) resolve(keys);
        };
        adaPresence.onSync(check);
        check();
      }),
      5000,
      `ada's presence list to be ${names.join(", ")}`,
    );
  await join(adaRoom);
  await listed(["ada"]);
  await join(anon.channel(topic, {}));
  const bobRoom = bob.channel(topic, { name: "bob" });
  await join(bobRoom);
  assert.deepEqual(await listed(["ada", "bob"]), ["ada", "bob"]);
  await new Promise((resolve) => bobRoom.leave().receive("ok", resolve));
  assert.deepEqual(await listed(["ada"]), ["ada"]);
});

test("login issues a token; bad requests get a JSON error with the right status", async () => {
  const token = await login(demo, "alice");
  assert.match(token, /^alice\.[A-Za-z0-9_-]+$/);
  // The same user gets a token that works the same way (it is deterministic).
  assert.equal(await login(demo, "alice"), token);

  const invalid = await httpPost(`${demo.httpUrl}/api/login`, { user_id: "not valid!" });
  assert.equal(invalid.status, 422);
  assert.match(JSON.parse(invalid.body).error, /user_id/);

  const missing = await httpPost(`${demo.httpUrl}/api/login`, {});
  assert.equal(missing.status, 422);
  assert.ok(JSON.parse(missing.body).error);

  const notJson = await httpPost(`${demo.httpUrl}/api/login`, "{nope");
  assert.equal(notJson.status, 400);
  assert.ok(JSON.parse(notJson.body).error);
});

test("joining your own notifications replies with the unread count", async (t) => {
  const session = new Session(t);
  const alice = user("alice");
  const first = await created(demo, alice, "first", "one");
  const second = await created(demo, alice, "second");
  assert.ok(second.id > first.id);
  assert.deepEqual(first, {
    id: first.id,
    title: "first",
    body: "one",
    inserted_at: first.inserted_at,
    read: false,
    sender: "system",
  });

  const token = await login(demo, alice);
  const { reply } = await joinNotifications(session, demo, token, alice);
  assert.deepEqual(reply, { unread: 2 });

  // The token also works as the `token` param (for clients that cannot set authToken).
  const viaParams = await session.connect(demo, { params: { token } });
  const channel = viaParams.channel(`notifications:${alice}`, {});
  assert.deepEqual((await join(channel)).unread, 2);
});

test("joining another user's notifications, or joining anonymously, is refused as unauthorized", async (t) => {
  const session = new Session(t);
  const alice = user("alice");
  const bob = user("bob");
  const aliceSocket = await session.connect(demo, { authToken: await login(demo, alice) });
  const bobsTopic = aliceSocket.channel(`notifications:${bob}`, {});
  assert.deepEqual(await joinResult(bobsTopic), {
    status: "error",
    response: { reason: "unauthorized" },
  });
  bobsTopic.leave();

  const anonymous = await session.connect(demo);
  const alicesTopic = anonymous.channel(`notifications:${alice}`, {});
  assert.deepEqual(await joinResult(alicesTopic), {
    status: "error",
    response: { reason: "unauthorized" },
  });
  alicesTopic.leave();
});

test("a forged token is refused at connect: closed at once with 4001 unauthorized, never joined", async (t) => {
  const session = new Session(t);
  const token = await login(demo, "mallory");
  const forged = `alice.${token.split(".")[1]}`;
  const socket = session.socket(demo, { authToken: forged });
  socket.connect();
  assert.deepEqual(await socket.closes.nth(1), { code: 4001, reason: "unauthorized" });
  assert.equal(socket.messages.length, 0);
});

test("POST /api/notifications arrives live in both of a user's sockets, and not in another user's", async (t) => {
  const session = new Session(t);
  const alice = user("alice");
  const bob = user("bob");
  const aliceToken = await login(demo, alice);
  const tab1 = await joinNotifications(session, demo, aliceToken, alice);
  const tab2 = await joinNotifications(session, demo, aliceToken, alice);
  const bobs = await joinNotifications(session, demo, await login(demo, bob), bob);

  const forAlice = await created(demo, alice, "for alice", "hello");
  assert.deepEqual(await tab1.notifications.nth(1), forAlice);
  assert.deepEqual(await tab2.notifications.nth(1), forAlice);

  // Barrier: bob's own notification arrives, so alice's would have arrived before it.
  const forBob = await created(demo, bob, "for bob");
  assert.deepEqual(await bobs.notifications.nth(1), forBob);
  assert.equal(bobs.notifications.length, 1);
  // A broadcast: no join_ref, no ref.
  const frame = tab1.socket.messages.items.find((m) => m.event === "notification");
  assert.equal(frame.join_ref, null);
  assert.equal(frame.ref, null);

  // A logged-in user's token authorizes the API too (the demo page's form).
  const viaForm = await notify(demo, { user_id: alice, title: "from the form", body: "" }, aliceToken);
  assert.equal(viaForm.status, 201);
  assert.deepEqual(await tab2.notifications.nth(2), viaForm.json.notification);
});

test("POST /api/notifications refuses missing or wrong credentials and invalid fields", async () => {
  const alice = user("alice");
  const ok = { user_id: alice, title: "hi", body: "" };
  for (const auth of [null, "wrong-key", `${alice}.forged`]) {
    const { status, json } = await notify(demo, ok, auth);
    assert.equal(status, 401, `auth ${auth}`);
    assert.match(json.error, /API key or login token/);
  }
  const cases = [
    [{ user_id: "a:b", title: "hi" }, 422, /user_id/],
    [{ user_id: alice, title: "   " }, 422, /title must not be empty/],
    [{ user_id: alice, title: "x".repeat(201) }, 422, /title must be at most 200/],
    [{ user_id: alice, title: "hi", body: "x".repeat(4001) }, 422, /body must be at most 4000/],
    [{ user_id: alice, title: 5 }, 422, /title/],
    ["{not json", 400, /./],
  ];
  for (const [body, expected, error] of cases) {
    const { status, json } = await notify(demo, body);
    assert.equal(status, expected, JSON.stringify(body).slice(0, 80));
    assert.match(json.error, error);
  }
  // None of the refused ones was stored.
  const { status } = await notify(demo, ok);
  assert.equal(status, 201);
});

test("mark_read and mark_all_read in one tab reach the other tab as `read`", async (t) => {
  const session = new Session(t);
  const alice = user("alice");
  const bob = user("bob");
  const [n1, n2, n3] = [
    await created(demo, alice, "one"),
    await created(demo, alice, "two"),
    await created(demo, alice, "three"),
  ];
  const bobs = await created(demo, bob, "bob's");
  const token = await login(demo, alice);
  const tab1 = await joinNotifications(session, demo, token, alice);
  const tab2 = await joinNotifications(session, demo, token, alice);
  assert.equal(tab1.reply.unread, 3);

  assert.deepEqual(await pushResult(tab1.channel, "mark_read", { id: n2.id }), {
    status: "ok",
    response: { unread: 2 },
  });
  assert.deepEqual(await tab2.reads.nth(1), { ids: [n2.id], unread: 2 });
  assert.deepEqual(await tab1.reads.nth(1), { ids: [n2.id], unread: 2 });

  // Marking it again changes nothing and broadcasts nothing.
  assert.deepEqual(await pushResult(tab1.channel, "mark_read", { id: n2.id }), {
    status: "ok",
    response: { unread: 2 },
  });
  // Bob's notification, or no notification at all, is not found for alice.
  for (const id of [bobs.id, 999999999]) {
    assert.deepEqual(await pushResult(tab1.channel, "mark_read", { id }), {
      status: "error",
      response: { reason: "not found" },
    });
  }
  // A payload of the wrong shape is refused by the schema.
  const wrong = await pushResult(tab1.channel, "mark_read", { id: "two" });
  assert.equal(wrong.status, "error");
  assert.match(wrong.response.reason, /invalid payload/);

  assert.deepEqual(await pushResult(tab2.channel, "mark_all_read", {}), {
    status: "ok",
    response: { unread: 0 },
  });
  // The next `read` in tab 1 is mark_all_read's: nothing was broadcast in between.
  assert.deepEqual(await tab1.reads.nth(2), { all: true, unread: 0 });
  assert.deepEqual(await tab2.reads.nth(2), { all: true, unread: 0 });

  // The database agrees: a fresh join sees everything read.
  const tab3 = await joinNotifications(session, demo, token, alice);
  assert.equal(tab3.reply.unread, 0);
  assert.ok([n1, n3].every((n) => n.id !== n2.id));
});

test("shape:notifications: a rejoin after a disconnect sends its position and receives every missed notification", async (t) => {
  const session = new Session(t);
  const alice = user("alice");
  const earlier = await created(demo, alice, "earlier");
  const token = await login(demo, alice);

  const socket = await session.connect(demo, { authToken: token });
  // The client keeps the last position it reached; phoenix.js calls the params function on every
  // join.
  let position;
  const channel = socket.channel("shape:notifications", () => (position === undefined ? {} : { since: position }));
  const changes = record(channel, "changes");
  channel.on("changes", (c) => (position = c.position));
  const { joins } = recordJoins(channel);
  const first = await joins.nth(1);
  position = first.position;
  const titles = (messages) => messages.filter((m) => m.headers.operation === "insert").map((m) => m.value.title);
  assert.deepEqual(titles(first.messages), ["earlier"]);
  assert.equal(Number(first.messages[0].value.id), earlier.id, "values come as Electric sends them: text");

  await created(demo, alice, "live");
  assert.deepEqual(titles((await changes.nth(1)).messages), ["live"]);

  await disconnect(socket);
  await created(demo, alice, "missed 1");
  await created(demo, alice, "missed 2");
  socket.connect();
  const rejoin = await joins.nth(2);
  assert.equal(rejoin.recovered, true);
  // The misses come in the reply, or right after it if the capture had not read them yet.
  const after = () => [...titles(rejoin.messages), ...changes.items.slice(1).flatMap((c) => titles(c.messages))];
  await changes.until(() => after().length >= 2, "the missed notifications");
  assert.deepEqual(after(), ["missed 1", "missed 2"]);
});

test("notifications and tokens survive a restart on the same data directory", async (t) => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "alight-demo-restart-"));
  const first = await startDemo({ dataDir, removeData: false });
  const token = await login(first, "carol");
  const stored = await created(first, "carol", "kept");
  const { code } = await first.stop();
  assert.equal(code, 0);

  // This one removes the directory when the session stops it.
  const second = await startDemo({ dataDir, removeData: true });
  const session = new Session(t);
  session.servers.push(second);
  // The token secret was kept, so the old token still works; the row was kept too.
  const { reply } = await joinNotifications(session, second, token, "carol");
  assert.deepEqual(reply, { unread: 1 });
  assert.equal(stored.title, "kept");
});
