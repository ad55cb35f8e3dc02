// The stock `@electric-sql/client` (ShapeStream, Shape; the version pinned in package-lock.json)
// against Alight's shape server (`tests/src/bin/sync-server.rs`): what an Electric user relies on,
// from the first snapshot to live changes, resumption, must-refetch, SSE and authorization.
//
// Build the server first: `cargo build -p alight-tests --bin sync-server`.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { Shape, ShapeStream, isChangeMessage, isControlMessage } from "@electric-sql/client";

import { Socket } from "phoenix";
import WebSocket from "ws";

import { Recorder, deadline, httpPost, join, joinResult, pushResult, record } from "./helpers.mjs";
import { binary, spawnDemo, spawnServer } from "../support/process.mjs";

const WAIT_MS = 5000;

// The client throttles a save of its up-to-date cursors (to localStorage in a browser) with a
// 60 s timer that it does not unref, which in Node only keeps the process alive for a minute
// after the tests. Long timers are unref'd here; nothing in these tests waits on one.
const realSetTimeout = globalThis.setTimeout;
globalThis.setTimeout = (fn, ms, ...args) => {
  const timer = realSetTimeout(fn, ms, ...args);
  if (ms >= 30_000) timer.unref?.();
  return timer;
};

/** Starts `sync-server` on a fresh database; stopped by `after`. */
async function startSyncServer(args = []) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "alight-sync-"));
  const db = path.join(dir, "items.db");
  const server = await spawnServer({
    bin: binary("ALIGHT_SYNC_SERVER", "sync-server", "cargo build -p alight-tests --bin sync-server"),
    args: ["--db", db, ...args],
    ready: /^LISTENING (\d+)$/m,
    stop: "stdin",
  });
  const url = `http://127.0.0.1:${server.port}`;
  return {
    db,
    url,
    shapeUrl: `${url}/v1/shape`,
    socketUrl: `ws://127.0.0.1:${server.port}/socket`,
    /** Runs SQL on a connection of its own (not the one the shape server reads with). */
    async exec(sql) {
      const res = await fetch(`${url}/test/exec`, { method: "POST", body: sql });
      assert.equal(res.status, 200, await res.text());
    },
    async rotate() {
      const res = await fetch(`${url}/test/rotate`, { method: "POST" });
      assert.equal(res.status, 200);
    },
    async stop() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const auth = (user) => ({ Authorization: `Bearer ${user}` });

/** A ShapeStream for `user` that is aborted when the test ends. */
function stream(t, server, user, { params = {}, ...options } = {}) {
  const controller = new AbortController();
  t.after(() => controller.abort());
  return new ShapeStream({
    url: server.shapeUrl,
    params: { table: "items", ...params },
    headers: user ? auth(user) : undefined,
    signal: controller.signal,
    ...options,
  });
}

/** Records a Shape's row sets; `until` waits for one that satisfies a predicate. */
function watchRows(shape) {
  const seen = new Recorder("row sets");
  shape.subscribe(({ rows }) => seen.push(rows));
  return seen;
}

/** Records the messages of a stream, batch by batch flattened. */
function watchMessages(s) {
  const seen = new Recorder("messages");
  const errors = new Recorder("errors");
  s.subscribe(
    (messages) => messages.forEach((m) => seen.push(m)),
    (error) => errors.push(error),
  );
  return { seen, errors };
}

const titles = (rows) => rows.map((r) => r.title).sort();
const hasTitles = (...wanted) => (sets) =>
  sets.length > 0 && JSON.stringify(titles(sets.at(-1))) === JSON.stringify([...wanted].sort());

describe("@electric-sql/client against alight-sync", () => {
  let server;
  before(async () => {
    server = await startSyncServer();
  });
  after(() => server?.stop());

  test("a snapshot holds the user's rows with typed values", async (t) => {
    await server.exec(`DELETE FROM items;
      INSERT INTO items (owner, title, done, secret) VALUES
        ('alice', 'a-one', 0, 's1'), ('alice', 'a-two', 1, 's2'), ('bob', 'b-one', 0, 's3');`);
    const shape = new Shape(stream(t, server, "alice"));
    const rows = await deadline(shape.rows, WAIT_MS, "the snapshot");
    assert.deepEqual(titles(rows), ["a-one", "a-two"]);
    const two = rows.find((r) => r.title === "a-two");
    assert.equal(typeof two.id, "number");
    assert.equal(two.done, true);
    assert.equal(two.owner, "alice");
    assert.ok(!("secret" in two), "a column that is not readable is never sent");
  });

  test("live inserts, updates and deletes reach a Shape", async (t) => {
    await server.exec("DELETE FROM items;");
    const shape = new Shape(stream(t, server, "alice"));
    await deadline(shape.rows, WAIT_MS, "the snapshot");
    const sets = watchRows(shape);
    await server.exec("INSERT INTO items (owner, title) VALUES ('alice', 'new')");
    await sets.until(hasTitles("new"), "the insert");
    await server.exec("UPDATE items SET title = 'renamed', done = 1 WHERE title = 'new'");
    const [row] = (await sets.until(hasTitles("renamed"), "the update")).at(-1);
    assert.equal(row.done, true);
    await server.exec("DELETE FROM items WHERE title = 'renamed'");
    await sets.until(hasTitles(), "the delete");
  });

  test("replica=full sends whole rows and the old values of changed columns", async (t) => {
    await server.exec("DELETE FROM items; INSERT INTO items (owner, title) VALUES ('alice', 'before');");
    const s = stream(t, server, "alice", { params: { replica: "full" } });
    const { seen } = watchMessages(s);
    await seen.find((m) => isControlMessage(m) && m.headers.control === "up-to-date", "up-to-date");
    await server.exec("UPDATE items SET title = 'after' WHERE title = 'before'");
    const update = await seen.find((m) => isChangeMessage(m) && m.headers.operation === "update");
    assert.equal(update.value.title, "after");
    assert.equal(update.value.owner, "alice", "the whole row, not only what changed");
    assert.deepEqual(update.old_value, { title: "before" });
    await server.exec("DELETE FROM items WHERE title = 'after'");
    const del = await seen.find((m) => isChangeMessage(m) && m.headers.operation === "delete");
    assert.equal(del.value.title, "after", "a delete carries the row");
  });

  test("replica=default sends the key and the changed columns", async (t) => {
    await server.exec("DELETE FROM items; INSERT INTO items (owner, title) VALUES ('alice', 'x');");
    const s = stream(t, server, "alice");
    const { seen } = watchMessages(s);
    await seen.find((m) => isControlMessage(m) && m.headers.control === "up-to-date", "up-to-date");
    await server.exec("UPDATE items SET done = 1 WHERE title = 'x'");
    const update = await seen.find((m) => isChangeMessage(m) && m.headers.operation === "update");
    assert.deepEqual(Object.keys(update.value).sort(), ["done", "id"]);
    assert.equal(update.old_value, undefined);
  });

  test("resuming from a saved offset and handle gets only later changes", async (t) => {
    await server.exec("DELETE FROM items; INSERT INTO items (owner, title) VALUES ('alice', 'old');");
    const first = stream(t, server, "alice");
    const { seen } = watchMessages(first);
    await seen.find((m) => isControlMessage(m) && m.headers.control === "up-to-date", "up-to-date");
    const offset = first.lastOffset;
    const handle = first.shapeHandle;
    first.unsubscribeAll();
    await server.exec("INSERT INTO items (owner, title) VALUES ('alice', 'later')");
    const resumed = stream(t, server, "alice", { offset, handle });
    const again = watchMessages(resumed);
    const change = await again.seen.find(isChangeMessage, "the later insert");
    assert.equal(change.value.title, "later");
    await again.seen.find((m) => isControlMessage(m) && m.headers.control === "up-to-date");
    const changes = again.seen.items.filter(isChangeMessage);
    assert.deepEqual(
      changes.map((m) => m.value.title),
      ["later"],
      "the row from before the offset is not sent again",
    );
  });

  test("a forced must-refetch (409) is handled by the client", async (t) => {
    await server.exec("DELETE FROM items; INSERT INTO items (owner, title) VALUES ('alice', 'kept');");
    const s = stream(t, server, "alice");
    const shape = new Shape(s);
    await deadline(shape.rows, WAIT_MS, "the snapshot");
    const { seen } = watchMessages(s);
    const sets = watchRows(shape);
    const oldHandle = s.shapeHandle;
    await server.rotate();
    await server.exec("INSERT INTO items (owner, title) VALUES ('alice', 'after-rotation')");
    await seen.find((m) => isControlMessage(m) && m.headers.control === "must-refetch", "must-refetch");
    await sets.until(hasTitles("kept", "after-rotation"), "the refetched rows");
    assert.notEqual(s.shapeHandle, oldHandle, "the client moved to the new handle");
    // A raw request with the old handle gets Electric's 409.
    const res = await fetch(
      `${server.shapeUrl}?table=items&offset=0_0&handle=${encodeURIComponent(oldHandle)}`,
      { headers: auth("alice") },
    );
    assert.equal(res.status, 409);
    assert.deepEqual(await res.json(), [{ headers: { control: "must-refetch" } }]);
    assert.equal(res.headers.get("electric-handle"), s.shapeHandle);
  });

  test("SSE mode delivers live changes", async (t) => {
    await server.exec("DELETE FROM items;");
    const urls = [];
    const recordingFetch = async (input, init) => {
      const response = await fetch(input, init);
      urls.push({ url: String(input), type: response.headers.get("content-type") });
      return response;
    };
    const shape = new Shape(stream(t, server, "alice", { liveSse: true, fetchClient: recordingFetch }));
    await deadline(shape.rows, WAIT_MS, "the snapshot");
    const sets = watchRows(shape);
    await server.exec("INSERT INTO items (owner, title) VALUES ('alice', 'over-sse')");
    await sets.until(hasTitles("over-sse"), "the insert over SSE");
    await server.exec("UPDATE items SET title = 'still-sse' WHERE title = 'over-sse'");
    await sets.until(hasTitles("still-sse"), "the update over SSE");
    const sse = urls.filter((u) => u.url.includes("live_sse=true"));
    assert.ok(sse.length > 0, `an SSE request was made: ${JSON.stringify(urls)}`);
    assert.match(sse[0].type, /text\/event-stream/);
  });

  test("a long-poll with nothing to send answers up-to-date when its hold ends", async () => {
    const quick = await startSyncServer(["--long-poll-ms", "200"]);
    try {
      const first = await fetch(`${quick.shapeUrl}?table=items&offset=-1`, { headers: auth("alice") });
      await first.text();
      const handle = first.headers.get("electric-handle");
      const offset = first.headers.get("electric-offset");
      const live = await fetch(
        `${quick.shapeUrl}?table=items&offset=${offset}&handle=${handle}&live=true`,
        { headers: auth("alice") },
      );
      assert.equal(live.status, 200);
      assert.deepEqual(await live.json(), [{ headers: { control: "up-to-date" } }]);
      assert.ok(live.headers.has("electric-up-to-date"));
      assert.ok(live.headers.get("electric-cursor"));
      assert.match(live.headers.get("cache-control"), /max-age=5/);
    } finally {
      await quick.stop();
    }
  });

  test("live requests past a shape's subscriber limit get 503 with retry-after", async () => {
    const limited = await startSyncServer(["--max-subscribers", "1", "--long-poll-ms", "3000"]);
    const controller = new AbortController();
    try {
      const first = await fetch(`${limited.shapeUrl}?table=items&offset=-1`, { headers: auth("alice") });
      await first.text();
      const live = `${limited.shapeUrl}?table=items&live=true&offset=${first.headers.get("electric-offset")}` +
        `&handle=${first.headers.get("electric-handle")}`;
      // Two at once: one holds the shape's only place (for the 3 s hold), the other is refused
      // at once, so the refusal is the first answer.
      const requests = [0, 1].map(() => fetch(live, { headers: auth("alice"), signal: controller.signal }));
      const refused = await deadline(Promise.race(requests), WAIT_MS, "the first answer");
      assert.equal(refused.status, 503);
      assert.ok(refused.headers.get("retry-after"));
      assert.ok((await refused.json()).message);
      controller.abort();
      await Promise.allSettled(requests);
    } finally {
      await limited.stop();
    }
  });

  test("without a token the shape is 401; with one, never another user's rows", async (t) => {
    await server.exec(`DELETE FROM items;
      INSERT INTO items (owner, title) VALUES ('alice', 'mine'), ('bob', 'his');`);
    const anonymous = await fetch(`${server.shapeUrl}?table=items&offset=-1`);
    assert.equal(anonymous.status, 401);
    assert.ok((await anonymous.json()).message);
    for (const where of ["owner = 'bob'", "owner = 'bob' OR owner = 'alice'", "NOT (owner = 'alice')"]) {
      const shape = new Shape(stream(t, server, "alice", { params: { where } }));
      const rows = await deadline(shape.rows, WAIT_MS, `the snapshot for ${where}`);
      assert.ok(rows.every((r) => r.owner === "alice"), `${where}: ${JSON.stringify(rows)}`);
    }
    const shape = new Shape(stream(t, server, "alice", { params: { where: "owner = $1", params: ["bob"] } }));
    assert.deepEqual(await deadline(shape.rows, WAIT_MS, "the snapshot"), []);
    // Live: bob's new row never reaches alice, hers does.
    const mine = new Shape(stream(t, server, "alice"));
    await deadline(mine.rows, WAIT_MS, "the snapshot");
    const sets = watchRows(mine);
    await server.exec("INSERT INTO items (owner, title) VALUES ('bob', 'his-too'), ('alice', 'mine-too')");
    await sets.until(hasTitles("mine", "mine-too"), "alice's insert");
    assert.ok(sets.items.every((rows) => rows.every((r) => r.owner === "alice")));
  });

  test("parameters bind values, and injection attempts in where are refused", async (t) => {
    await server.exec(`DELETE FROM items;
      INSERT INTO items (owner, title) VALUES ('alice', 'a'), ('alice', 'b');`);
    const bound = new Shape(stream(t, server, "alice", { params: { where: "title = $1", params: ["a' OR '1'='1"] } }));
    assert.deepEqual(await deadline(bound.rows, WAIT_MS, "the snapshot"), [], "a parameter is a value, never SQL");
    for (const where of [
      "title = 'a'; DROP TABLE items",
      "title = 'a' OR 1=1",
      "title = 'a' -- ",
      "id IN (SELECT id FROM items)",
      "lower(title) = 'a'",
      "secret = 's1'",
      "title LIKE '%'",
    ]) {
      const res = await fetch(`${server.shapeUrl}?table=items&offset=-1&where=${encodeURIComponent(where)}`, {
        headers: auth("alice"),
      });
      assert.equal(res.status, 400, where);
      const body = await res.json();
      assert.equal(body.message, "Invalid request");
      assert.ok(body.errors.where[0].length > 0, `${where}: ${JSON.stringify(body)}`);
    }
    // The stock client reports the 400 to onError.
    const errors = new Recorder("errors");
    const bad = stream(t, server, "alice", {
      params: { where: "title = 'a' OR 1=1" },
      onError: (error) => errors.push(error),
    });
    bad.subscribe(() => {});
    const [error] = await errors.until((e) => e.length > 0, "onError");
    assert.equal(error.status, 400);
    // And the table is still there.
    const shape = new Shape(stream(t, server, "alice"));
    assert.equal((await deadline(shape.rows, WAIT_MS, "the snapshot")).length, 2);
  });

  test("bad requests get Electric's status codes and a JSON message", async () => {
    const get = async (query) => {
      const res = await fetch(`${server.shapeUrl}?${query}`, { headers: auth("alice") });
      return { status: res.status, body: await res.json() };
    };
    assert.equal((await get("offset=-1")).status, 400);
    assert.deepEqual(Object.keys((await get("table=nope&offset=-1")).body.errors), ["table"]);
    assert.deepEqual(Object.keys((await get("table=items&offset=3_0")).body.errors), ["handle"]);
    assert.deepEqual(Object.keys((await get("table=items&offset=-1&live=true")).body.errors), ["live"]);
    assert.deepEqual(Object.keys((await get("table=items&offset=abc&handle=x")).body.errors), ["offset"]);
    assert.deepEqual(Object.keys((await get("table=items&columns=title")).body.errors), ["columns"]);
    assert.deepEqual(Object.keys((await get("table=items&columns=id,secret")).body.errors), ["columns"]);
    const first = await fetch(`${server.shapeUrl}?table=items&offset=-1`, { headers: auth("alice") });
    await first.text();
    const handle = first.headers.get("electric-handle");
    assert.deepEqual(
      Object.keys((await get(`table=items&offset=999999999_0&handle=${handle}`)).body.errors),
      ["offset"],
    );
  });

  test("browsers may read Electric's headers (CORS)", async () => {
    const res = await fetch(`${server.shapeUrl}?table=items&offset=-1`, {
      headers: { ...auth("alice"), Origin: "http://example.test" },
    });
    await res.text();
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    const exposed = res.headers.get("access-control-expose-headers");
    for (const h of ["electric-handle", "electric-offset", "electric-schema", "electric-up-to-date", "electric-cursor"]) {
      assert.ok(exposed.includes(h), `${h} in ${exposed}`);
    }
    const preflight = await fetch(`${server.shapeUrl}?table=items`, {
      method: "OPTIONS",
      headers: {
        Origin: "http://example.test",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
      },
    });
    assert.ok(preflight.status === 204 || preflight.status === 200);
    assert.match(preflight.headers.get("access-control-allow-headers"), /authorization/i);
  });

  test("a write from a separate sqlite3 process is delivered", async (t) => {
    const sqlite3 = await new Promise((resolve) => {
      const probe = spawn("sqlite3", ["-version"]);
      probe.on("error", () => resolve(false));
      probe.on("exit", (code) => resolve(code === 0));
    });
    if (!sqlite3) {
      // CI installs it (scripts/setup): there a missing shell is a failure, not a skip.
      assert.ok(!process.env.CI, "the sqlite3 shell is not installed (scripts/setup installs it)");
      t.skip("the sqlite3 shell is not installed (scripts/setup installs it)");
      return;
    }
    await server.exec("DELETE FROM items;");
    const shape = new Shape(stream(t, server, "alice"));
    await deadline(shape.rows, WAIT_MS, "the snapshot");
    const sets = watchRows(shape);
    const code = await new Promise((resolve, reject) => {
      const child = spawn("sqlite3", [
        "-cmd",
        ".timeout 5000",
        server.db,
        "INSERT INTO items (owner, title) VALUES ('alice', 'from-the-shell');",
      ]);
      child.on("error", reject);
      child.on("exit", resolve);
    });
    assert.equal(code, 0);
    await sets.until(hasTitles("from-the-shell"), "the shell's insert");
  });
});

describe("the demo's notifications as a shape", () => {
  const apiKey = "sync-test-api-key";
  let demo;
  let dataDir;
  before(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), "alight-demo-sync-"));
    const server = await spawnDemo({ dataDir, apiKey });
    const url = `http://127.0.0.1:${server.port}`;
    demo = { server, url, shapeUrl: `${url}/v1/shape` };
  });
  after(async () => {
    await demo?.server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const login = async (user) => {
    const { status, body } = await httpPost(`${demo.url}/api/login`, { user_id: user });
    assert.equal(status, 200, body);
    return JSON.parse(body).token;
  };
  const notify = async (user, title) => {
    const { status, body } = await httpPost(
      `${demo.url}/api/notifications`,
      { user_id: user, title, body: "" },
      { authorization: `Bearer ${apiKey}` },
    );
    assert.equal(status, 201, body);
  };

  test("GET /v1/shape answers the logged-in user's rows, live, and 401 without a token", async (t) => {
    const alice = await login("alice");
    await notify("alice", "for alice");
    await notify("bob", "for bob");
    const anonymous = await fetch(`${demo.shapeUrl}?table=notifications&offset=-1`);
    assert.equal(anonymous.status, 401);
    const forged = await fetch(`${demo.shapeUrl}?table=notifications&offset=-1`, {
      headers: auth("alice.not-a-signature"),
    });
    assert.equal(forged.status, 401);
    const controller = new AbortController();
    t.after(() => controller.abort());
    const shape = new Shape(
      new ShapeStream({
        url: demo.shapeUrl,
        params: { table: "notifications", where: "user_id = 'bob' OR user_id = 'alice'" },
        headers: auth(alice),
        signal: controller.signal,
      }),
    );
    const rows = await deadline(shape.rows, WAIT_MS, "alice's snapshot");
    assert.deepEqual(titles(rows), ["for alice"]);
    const sets = watchRows(shape);
    await notify("bob", "bob again");
    await notify("alice", "alice again");
    await sets.until(hasTitles("for alice", "alice again"), "alice's new notification");
    assert.ok(sets.items.every((rows) => rows.every((r) => r.user_id === "alice")));
  });
});

describe("shapes over channels (phoenix.js, shape:<table>)", () => {
  let server;
  let small;
  before(async () => {
    server = await startSyncServer();
    // A feed of 5 changes and one subscriber per shape: the bounds, reachable in a test.
    small = await startSyncServer(["--feed", "5", "--max-subscribers", "1"]);
  });
  after(async () => {
    await server?.stop();
    await small?.stop();
  });

  /** A connected phoenix.js socket for `user` (anonymous without one), closed by `t.after`. */
  async function connect(t, user, on = server) {
    const socket = new Socket(on.socketUrl, {
      transport: WebSocket,
      params: user ? { token: user } : {},
      reconnectAfterMs: () => 50,
      rejoinAfterMs: () => 50,
    });
    const opened = new Promise((resolve) => socket.onOpen(resolve));
    socket.connect();
    await deadline(opened, WAIT_MS, "the socket to open");
    t.after(() => new Promise((resolve) => socket.disconnect(resolve)));
    return socket;
  }

  /**
   * A `shape:items` channel that keeps its last position (from replies and from the `ref` slot
   * of `changes` broadcasts) and sends it as `since` on every rejoin, as @alight/client does.
   */
  function resumable(socket, params = {}) {
    const state = { position: undefined };
    const channel = socket.channel("shape:items", () =>
      state.position === undefined ? params : { ...params, since: state.position },
    );
    const changes = new Recorder("changes");
    channel.on("changes", (payload, ref) => {
      changes.push({ payload, ref });
      state.position = ref;
    });
    const joins = new Recorder("joins");
    channel.join().receive("ok", (reply) => {
      state.position = reply.position;
      joins.push(reply);
    });
    return { channel, state, changes, joins };
  }

  const inserted = (messages) => messages.filter((m) => m.headers?.operation === "insert").map((m) => m.value.title);
  const POSITION = /^[0-9a-f]{12}-\d+$/;

  test("the join reply carries the user's snapshot and a position; changes follow as positioned broadcasts of her rows only", async (t) => {
    await server.exec(`DELETE FROM items;
      INSERT INTO items (owner, title) VALUES ('alice', 'mine'), ('bob', 'his');`);
    const socket = await connect(t, "alice");
    const { changes, joins } = resumable(socket, { where: "owner = 'bob' OR owner = 'alice'" });
    const reply = await joins.nth(1);
    assert.deepEqual(inserted(reply.messages), ["mine"]);
    assert.equal(reply.more, false);
    assert.equal(reply.recovered, undefined, "no since, no recovered");
    assert.match(reply.offset, /^\d+_0$/);
    assert.match(reply.position, POSITION);
    assert.ok(reply.handle);
    await server.exec("INSERT INTO items (owner, title) VALUES ('bob', 'his-too'), ('alice', 'mine-too');");
    const first = await changes.nth(1);
    assert.equal(first.payload.handle, reply.handle);
    assert.deepEqual(inserted(first.payload.messages), ["mine-too"]);
    assert.equal(first.ref, first.payload.position, "the position rides in the ref slot");
    assert.match(first.ref, POSITION);
    assert.equal(first.ref.split("-")[0], reply.position.split("-")[0], "one epoch per shape");
    assert.ok(Number(first.ref.split("-")[1]) > Number(reply.position.split("-")[1]));
    await server.exec("UPDATE items SET done = 1 WHERE title = 'mine'");
    const second = await changes.nth(2);
    assert.equal(second.payload.messages[0].headers.operation, "update");
    assert.ok(changes.items.every((c) => c.payload.messages.every((m) => m.value.owner !== "bob")));
  });

  test("a large snapshot comes in bounded chunks pulled with `more`; what is committed meanwhile follows it once", async (t) => {
    await server.exec(`DELETE FROM items;
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1200)
      INSERT INTO items (owner, title) SELECT 'alice', 'row ' || i FROM n;`);
    const socket = await connect(t, "alice");
    const channel = socket.channel("shape:items", {});
    const changes = record(channel, "changes");
    const reply = await join(channel);
    assert.equal(reply.more, true);
    assert.ok(reply.messages.length > 0 && reply.messages.length <= 500, `${reply.messages.length}`);
    const keys = new Set(reply.messages.map((m) => m.key));
    await server.exec("INSERT INTO items (owner, title) VALUES ('alice', 'during the snapshot')");
    let last = reply;
    let pulls = 0;
    const titles = [];
    while (last.more) {
      // A position given while paging a snapshot is not one to resume from.
      assert.notEqual(last.position.split("-")[0], undefined);
      const { status, response } = await pushResult(channel, "more", {});
      assert.equal(status, "ok", JSON.stringify(response));
      assert.ok(response.messages.length <= 500);
      response.messages.forEach((m) => keys.add(m.key));
      titles.push(...inserted(response.messages));
      last = response;
      pulls += 1;
    }
    assert.ok(pulls >= 2);
    assert.match(last.position, POSITION);
    assert.notEqual(last.position.split("-")[0], reply.position.split("-")[0], "paging epoch differs");
    // The row committed during the snapshot is in it or follows it, exactly once.
    await server.exec("INSERT INTO items (owner, title) VALUES ('alice', 'after')");
    await changes.find((c) => inserted(c.messages).includes("after"), "the later insert");
    const during = titles.filter((x) => x === "during the snapshot").length +
      changes.items.flatMap((c) => inserted(c.messages)).filter((x) => x === "during the snapshot").length;
    assert.equal(during, 1);
    assert.equal(keys.size, 1201);
    const done = await pushResult(channel, "more", {});
    assert.equal(done.status, "error", "nothing more once live");
  });

  test("a rejoin after a disconnect sends `since` and gets only the changes made while away, recovered", async (t) => {
    await server.exec("DELETE FROM items; INSERT INTO items (owner, title) VALUES ('alice', 'before');");
    const socket = await connect(t, "alice");
    const { changes, joins, state } = resumable(socket);
    const first = await joins.nth(1);
    assert.deepEqual(inserted(first.messages), ["before"]);
    await server.exec("INSERT INTO items (owner, title) VALUES ('alice', 'live')");
    await changes.find((c) => inserted(c.payload.messages).includes("live"), "the live insert");
    const seenAt = state.position;
    const closed = new Promise((resolve) => socket.onClose(resolve));
    socket.conn.close();
    await deadline(closed, WAIT_MS, "the socket to close");
    await server.exec("INSERT INTO items (owner, title) VALUES ('alice', 'while away')");
    const again = await joins.nth(2);
    assert.equal(again.recovered, true);
    assert.equal(again.handle, first.handle);
    // The insert comes in the reply, or right after it if the capture had not read it yet.
    const after = () => [...inserted(again.messages), ...changes.items.slice(1).flatMap((c) => inserted(c.payload.messages))];
    await changes.until(() => after().includes("while away"), "the insert made while away");
    assert.deepEqual(after(), ["while away"], "nothing from before the position");
    assert.ok(Number(state.position.split("-")[1]) > Number(seenAt.split("-")[1]));
  });

  test("a `since` that cannot be resumed gets recovered: false and a fresh snapshot", async (t) => {
    await server.exec("DELETE FROM items; INSERT INTO items (owner, title) VALUES ('alice', 'x');");
    const socket = await connect(t, "alice");
    const first = await join(socket.channel("shape:items", {}));
    for (const since of ["nonsense", "000000000000-1", first.position.replace(/-\d+$/, "-999999999"), 42]) {
      const reply = await join(socket.channel("shape:items", { since }));
      assert.equal(reply.recovered, false, `since ${since}`);
      assert.deepEqual(inserted(reply.messages), ["x"]);
    }
    // Another user's position is not alice's either.
    const bob = await connect(t, "bob");
    const bobs = await join(bob.channel("shape:items", {}));
    const reply = await join(socket.channel("shape:items", { since: bobs.position }));
    assert.equal(reply.recovered, false);
  });

  test("a rotated shape sends `refetch`; rejoining from its position gets recovered: false and a new handle", async (t) => {
    await server.exec("DELETE FROM items; INSERT INTO items (owner, title) VALUES ('alice', 'x');");
    const socket = await connect(t, "alice");
    const channel = socket.channel("shape:items", {});
    const refetch = record(channel, "refetch");
    const reply = await join(channel);
    await server.rotate();
    const notice = await refetch.nth(1);
    assert.equal(notice.handle, reply.handle);
    const fresh = await join(socket.channel("shape:items", { since: reply.position }));
    assert.equal(fresh.recovered, false);
    assert.notEqual(fresh.handle, reply.handle);
    assert.deepEqual(inserted(fresh.messages), ["x"]);
  });

  test("past the log's bound a shape's subscribers get `refetch` and a rejoin is not recovered; past the subscriber limit a join is unavailable", async (t) => {
    await small.exec("DELETE FROM items; INSERT INTO items (owner, title) VALUES ('alice', 'x');");
    const socket = await connect(t, "alice", small);
    const channel = socket.channel("shape:items", {});
    const first = await join(channel);
    // One channel per topic and socket: the second shape on a socket of its own.
    const watcher = await connect(t, "alice", small);
    const all = watcher.channel("shape:items", { where: "title = 'x' OR title <> 'x'" });
    const refetch = record(all, "refetch");
    const second = await joinResult(all);
    assert.equal(second.status, "ok", "another shape has its own subscribers");
    const other = await connect(t, "alice", small);
    const third = await joinResult(other.channel("shape:items", {}));
    assert.equal(third.status, "error");
    assert.equal(third.response.reason, "unavailable");
    assert.match(third.response.message, /too many/);
    await new Promise((resolve) => channel.leave().receive("ok", resolve));
    // The feed holds 5 changes: 20 in one transaction leave the shapes' clients behind it.
    await small.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20)
      INSERT INTO items (owner, title) SELECT 'alice', 'n' || i FROM n;`);
    await refetch.nth(1);
    const reply = await join(other.channel("shape:items", { since: first.position }));
    assert.equal(reply.recovered, false);
    assert.equal(inserted(reply.messages).length, 21);
  });

  test("joining without an identity, or with an unsupported where, is refused", async (t) => {
    const anonymous = await connect(t, null);
    const refused = await joinResult(anonymous.channel("shape:items", {}));
    assert.equal(refused.status, "error");
    assert.equal(refused.response.reason, "unauthorized");
    const alice = await connect(t, "alice");
    const bad = await joinResult(alice.channel("shape:items", { where: "owner = 'bob' OR 1=1" }));
    assert.equal(bad.status, "error");
    assert.equal(bad.response.reason, "bad_request");
    assert.match(bad.response.message, /column on the left/);
  });
});
