// `LiveCollection` against the real shape server (target/debug/sync-server: a table `items` whose
// users see only the rows they own, served as `shape:items` over channels): the snapshot, then
// inserts, updates and deletes as they commit (written by another SQLite connection), a snapshot
// larger than one chunk, a reconnect that resumes with only the missed changes (paged when they
// are many), a rotated shape and a resume that cannot be served (a fresh snapshot replaces the
// rows), a refused join, the declarations type-checked, and the row types alight_sync generates
// (`sync-server --emit-ts`, the demo's demo/static/rows.d.ts): rows hold the values they declare,
// and code using them type-checks.
//
// Connections are cut by a TCP proxy between the client and the server, as a network drop would.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

import { LiveCollection } from "@alight/client/live";

import { Harness, REPO_ROOT, Recorder } from "./helpers.mjs";
import { rowTypes, startLiveServer } from "./live-server.mjs";

/** A TCP proxy to `port` on 127.0.0.1; `cut()` drops every connection through it. */
async function proxy(t, port) {
  const open = new Set();
  let down = false;
  const server = net.createServer((client) => {
    if (down) return client.destroy();
    const upstream = net.connect(port, "127.0.0.1");
    const pair = [client, upstream];
    open.add(pair);
    const drop = () => {
      open.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    for (const [client, upstream] of open) {
      client.destroy();
      upstream.destroy();
    }
    return new Promise((resolve) => server.close(resolve));
  });
  return {
    socketUrl: `ws://127.0.0.1:${server.address().port}/socket`,
    /** Drops every connection and refuses new ones until `restore()`. */
    cut() {
      down = true;
      for (const [client] of open) client.destroy();
    },
    restore() {
      down = false;
    },
  };
}

/**
 * The events of `collection` as plain data: `{type, titles, changes, recovered}`, with the rows'
 * titles sorted as they were when the event came.
 */
function watch(collection) {
  const events = new Recorder("live events");
  collection.subscribe((event) => {
    const titles = event.rows ? [...event.rows.values()].map((row) => row.title).sort() : undefined;
    const changes = event.changes?.map(({ operation, value, old }) => ({ operation, title: value.title, old: old?.title }));
    events.push({ type: event.type, titles, changes, recovered: event.recovered, response: event.response });
  });
  return events;
}

const titlesOf = (rows) => [...rows.values()].map((row) => row.title).sort();

/**
 * The row types of generated declarations (alight_sync::typescript_rows):
 * `{ItemsRow: {done: {type: "boolean", nullable: false}, ...}, ...}`.
 */
function declaredRows(text) {
  const types = {};
  for (const [, name, body] of text.matchAll(/^export type (\w+) = \{\n([\s\S]*?)^\};$/gm)) {
    const fields = [...body.matchAll(/^ {2}("[^"]*"|[\w$]+): (\w+)( \| null)?;$/gm)];
    assert.equal(fields.length, body.trim().split("\n").length, `every line of ${name} is a field`);
    types[name] = Object.fromEntries(
      fields.map(([, field, type, nullable]) => [field.startsWith('"') ? JSON.parse(field) : field, { type, nullable: !!nullable }]),
    );
  }
  return types;
}

/** Asserts that `row` has exactly the fields `declared` gives, each holding a value of its type. */
function assertRowType(row, declared, what) {
  assert.deepEqual(Object.keys(row).sort(), Object.keys(declared).sort(), `${what}: the declared fields`);
  for (const [field, { type, nullable }] of Object.entries(declared)) {
    const value = row[field];
    const fits =
      value === null
        ? nullable
        : type === "Json"
          ? ["boolean", "number", "string", "object"].includes(typeof value)
          : typeof value === type;
    assert.ok(fits, `${what}.${field} holds ${JSON.stringify(value)} (${typeof value}); declared ${type}${nullable ? " | null" : ""}`);
  }
}

describe("LiveCollection over shape:items", () => {
  let server;
  before(async () => {
    server = await startLiveServer();
  });
  after(() => server?.stop());

  test("the snapshot holds the user's rows by key; inserts, updates and deletes follow as they commit", async (t) => {
    await server.exec(`DELETE FROM items;
      INSERT INTO items (owner, title) VALUES ('alice', 'one'), ('alice', 'two'), ('bob', 'his');`);
    const h = new Harness(t);
    const socket = await h.connect(server.socketUrl, { params: { token: "alice" } });
    const items = new LiveCollection(socket, "items", { where: "owner = 'bob' OR owner = 'alice'" });
    t.after(() => items.close());
    const rows = await items.ready;
    assert.deepEqual(titlesOf(rows), ["one", "two"]);
    const one = [...rows.values()].find((row) => row.title === "one");
    assert.deepEqual(Object.keys(one).sort(), ["done", "id", "owner", "title"]);
    assert.equal(rows.get(`"main"."items"/"${one.id}"`), one, "rows are keyed by Electric's key");

    const events = watch(items);
    assert.deepEqual(events.items[0], { type: "snapshot", titles: ["one", "two"], changes: undefined, recovered: undefined, response: undefined });

    await server.exec("INSERT INTO items (owner, title) VALUES ('bob', 'not hers'), ('alice', 'three');");
    const inserted = await events.find((e) => e.type === "changes", "the insert");
    assert.deepEqual(inserted.changes, [{ operation: "insert", title: "three", old: undefined }]);
    assert.deepEqual(inserted.titles, ["one", "three", "two"]);

    await server.exec("UPDATE items SET done = 1 WHERE title = 'one';");
    const updated = await events.find((e) => e.changes?.[0]?.operation === "update", "the update");
    assert.deepEqual(updated.changes, [{ operation: "update", title: "one", old: "one" }]);
    const after = items.rows.get(`"main"."items"/"${one.id}"`);
    const { done, ...rest } = after;
    assert.deepEqual(rest, (({ done, ...others }) => others)(one), "an update's changed columns merge into the whole row");
    assert.equal(String(done), "true");

    await server.exec("DELETE FROM items WHERE title = 'two';");
    const deleted = await events.find((e) => e.changes?.[0]?.operation === "delete", "the delete");
    assert.deepEqual(deleted.changes, [{ operation: "delete", title: "two", old: "two" }]);
    assert.deepEqual(titlesOf(items.rows), ["one", "three"]);
    assert.ok(events.items.every((e) => e.type !== "snapshot" || e === events.items[0]), "no second snapshot");
    assert.ok([...items.rows.values()].every((row) => row.owner === "alice"));
  });

  test("a snapshot larger than a chunk arrives whole, as one snapshot event", async (t) => {
    await server.exec(`DELETE FROM items;
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1200)
      INSERT INTO items (owner, title) SELECT 'alice', 'row ' || i FROM n;`);
    const h = new Harness(t);
    const socket = await h.connect(server.socketUrl, { params: { token: "alice" } });
    const items = new LiveCollection(socket, "items", { columns: ["id", "title"] });
    t.after(() => items.close());
    const events = watch(items);
    const rows = await items.ready;
    assert.equal(rows.size, 1200);
    assert.deepEqual(Object.keys(rows.values().next().value).sort(), ["id", "title"], "only the columns asked for");
    await server.exec("INSERT INTO items (owner, title) VALUES ('alice', 'row 1201');");
    await events.find((e) => e.type === "changes", "the insert after the snapshot");
    assert.equal(items.rows.size, 1201);
    assert.equal(events.items.filter((e) => e.type === "snapshot").length, 1);
  });

  test("after a dropped connection the rejoin resumes: only the changes missed, recovered", async (t) => {
    await server.exec("DELETE FROM items; INSERT INTO items (owner, title) VALUES ('alice', 'before');");
    const h = new Harness(t);
    const link = await proxy(t, server.port);
    const socket = await h.connect(link.socketUrl, { params: { token: "alice" } });
    const items = new LiveCollection(socket, "items");
    t.after(() => items.close());
    await items.ready;
    const events = watch(items);

    // Written while the client is away: the server cannot push it, the rejoin must bring it.
    link.cut();
    await socket.closes.nth(1);
    await server.exec("INSERT INTO items (owner, title) VALUES ('alice', 'while away');");
    link.restore();
    const missed = (e) => e.changes?.some((c) => c.title === "while away");
    await events.find(missed, "the missed insert");
    // The reply to the resuming rejoin carries it, or the broadcast right after the reply
    // does, if the server's capture had not read the write yet.
    assert.ok(events.items.some((e) => e.type === "changes" && e.recovered), "the rejoin resumed");
    assert.deepEqual(events.items.find(missed).changes, [{ operation: "insert", title: "while away", old: undefined }]);
    assert.deepEqual(titlesOf(items.rows), ["before", "while away"]);
    assert.equal(events.items.filter((e) => e.type === "snapshot").length, 1, "only the subscribe's snapshot");

    await server.exec("INSERT INTO items (owner, title) VALUES ('alice', 'after');");
    await events.until((items) => items.some((e) => e.changes?.some((c) => c.title === "after")), "the later insert");
    assert.deepEqual(titlesOf(items.rows), ["after", "before", "while away"]);
  });

  test("a resume with more changes than one reply holds pulls them all, as recovered changes", async (t) => {
    await server.exec("DELETE FROM items; INSERT INTO items (owner, title) VALUES ('alice', 'before');");
    const h = new Harness(t);
    const link = await proxy(t, server.port);
    const socket = await h.connect(link.socketUrl, { params: { token: "alice" } });
    const items = new LiveCollection(socket, "items");
    t.after(() => items.close());
    await items.ready;
    const events = watch(items);

    link.cut();
    await socket.closes.nth(1);
    // Three transactions of 700 rows: more than a reply carries, so the catch-up is paged.
    const batch = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 700) " +
      "INSERT INTO items (owner, title) SELECT 'alice', 'away ' || i FROM n;";
    await server.exec(batch + batch + batch);
    link.restore();
    const inserted = (all) => all.flatMap((e) => e.changes ?? []).filter((c) => c.operation === "insert").length;
    await events.until((all) => inserted(all) === 2100, "the 2100 missed inserts", 20_000);
    assert.equal(items.rows.size, 2101);
    assert.equal(events.items.filter((e) => e.type === "snapshot").length, 1, "no second snapshot");
    assert.equal(events.items[1].recovered, true, "the first event after the rejoin is its recovery");
  });

  test("a shape rotated while away cannot resume: the rejoin's fresh snapshot replaces the rows", async (t) => {
    await server.exec("DELETE FROM items; INSERT INTO items (owner, title) VALUES ('alice', 'kept'), ('alice', 'gone');");
    const h = new Harness(t);
    const link = await proxy(t, server.port);
    const socket = await h.connect(link.socketUrl, { params: { token: "alice" } });
    const items = new LiveCollection(socket, "items");
    t.after(() => items.close());
    await items.ready;
    const events = watch(items);

    link.cut();
    await socket.closes.nth(1);
    await server.rotate();
    await server.exec("DELETE FROM items WHERE title = 'gone'; INSERT INTO items (owner, title) VALUES ('alice', 'new');");
    link.restore();
    const fresh = await events.find((e, i) => e.type === "snapshot" && i > 0, "the fresh snapshot");
    assert.deepEqual(fresh.titles, ["kept", "new"]);
    assert.deepEqual(titlesOf(items.rows), ["kept", "new"]);
  });

  test("a shape rotated while connected is refetched on a new channel", async (t) => {
    await server.exec("DELETE FROM items; INSERT INTO items (owner, title) VALUES ('alice', 'x');");
    const h = new Harness(t);
    const socket = await h.connect(server.socketUrl, { params: { token: "alice" } });
    const items = new LiveCollection(socket, "items");
    t.after(() => items.close());
    await items.ready;
    const first = items.channel;
    const events = watch(items);
    await server.rotate();
    await events.until((items) => items.filter((e) => e.type === "snapshot").length === 2, "the refetched snapshot");
    assert.notEqual(items.channel, first);
    assert.equal(first.state, "closed", "the old channel was left");
    await server.exec("INSERT INTO items (owner, title) VALUES ('alice', 'y');");
    await events.until((items) => items.some((e) => e.changes?.some((c) => c.title === "y")), "a change on the new channel");
    assert.deepEqual(titlesOf(items.rows), ["x", "y"]);
  });

  test("rows hold the values their generated types declare, in snapshots and in changes", async (t) => {
    const types = declaredRows(rowTypes());
    assert.deepEqual(Object.keys(types).sort(), ["ItemsRow", "KindsRow"]);
    assert.deepEqual(types.ItemsRow.done, { type: "boolean", nullable: false });
    await server.exec(`DELETE FROM items; DELETE FROM kinds;
      INSERT INTO items (owner, title, done, secret) VALUES ('alice', 'one', 1, 's');
      INSERT INTO kinds VALUES (1, 'alice', 7, 5000000000, 0.5, 1, '{"tags":["a"]}', 'label', x'ab01', 12.5),
                               (2, 'alice', 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL);`);
    const h = new Harness(t);
    const socket = await h.connect(server.socketUrl, { params: { token: "alice" } });
    const items = new LiveCollection(socket, "items");
    const kinds = new LiveCollection(socket, "kinds");
    t.after(() => (items.close(), kinds.close()));
    const checkAll = (when) => {
      for (const [key, row] of items.rows) assertRowType(row, types.ItemsRow, `${when} ${key}`);
      for (const [key, row] of kinds.rows) assertRowType(row, types.KindsRow, `${when} ${key}`);
    };
    await Promise.all([items.ready, kinds.ready]);
    assert.equal(kinds.rows.size, 2);
    checkAll("snapshot");
    const full = kinds.rows.get('"main"."kinds"/"1"');
    assert.deepEqual(
      full,
      { id: 1, owner: "alice", count: 7, big: 5000000000, ratio: 0.5, flag: true, doc: { tags: ["a"] }, label: "label", data: "ab01", amount: "12.5" },
    );

    const changed = new Recorder("changed rows");
    for (const collection of [items, kinds]) {
      collection.subscribe((event) => event.changes?.forEach(({ value }) => changed.push(value)));
    }
    await server.exec(`INSERT INTO kinds VALUES (3, 'alice', -1, 1, 1e300, 0, '[1, null]', 'x', x'AB01', 3);
      UPDATE kinds SET big = 2, flag = 0, doc = '"text"', amount = 'n/a' WHERE id = 2;
      UPDATE kinds SET big = NULL, flag = NULL, doc = NULL WHERE id = 1;`);
    await changed.until((rows) => rows.length === 3, "the insert and the updates");
    for (const row of changed.items) assertRowType(row, types.KindsRow, `change of kinds ${row.id}`);
    assert.deepEqual(kinds.rows.get('"main"."kinds"/"2"').doc, "text");
    assert.deepEqual(kinds.rows.get('"main"."kinds"/"3"').doc, [1, null]);
    assert.equal(kinds.rows.get('"main"."kinds"/"3"').data, "ab01", "a blob is the same hexadecimal text in a change as in a snapshot");
    await server.exec("UPDATE items SET done = 0, title = 'one again';");
    await changed.until((rows) => rows.length === 4, "the items update");
    assertRowType(changed.last, types.ItemsRow, "change of items");
    assert.equal(changed.last.done, false);
    checkAll("after the changes");
  });

  test("a refused join rejects `ready` and tells subscribers", async (t) => {
    const h = new Harness(t);
    const anonymous = await h.connect(server.socketUrl);
    const items = new LiveCollection(anonymous, "items");
    t.after(() => items.close());
    const events = watch(items);
    await assert.rejects(items.ready, (response) => response.reason === "unauthorized");
    assert.equal(events.items[0].type, "error");

    const alice = await h.connect(server.socketUrl, { params: { token: "alice" } });
    const bad = new LiveCollection(alice, "items", { where: "owner = 'bob' OR 1=1" });
    t.after(() => bad.close());
    await assert.rejects(bad.ready, (response) => response.reason === "bad_request");
  });
});

test("the demo's notifications hold the values its generated demo/static/rows.d.ts declares", async (t) => {
  const { spawnDemo } = await import(pathToFileURL(path.join(REPO_ROOT, "tests", "support", "process.mjs")).href);
  const { NotificationsRow } = declaredRows(readFileSync(path.join(REPO_ROOT, "demo", "static", "rows.d.ts"), "utf8"));
  assert.deepEqual(NotificationsRow.read_at, { type: "number", nullable: true });
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "alight-live-demo-"));
  const apiKey = "live-test-api-key";
  const demo = await spawnDemo({ dataDir, apiKey });
  t.after(async () => {
    await demo.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const url = `http://127.0.0.1:${demo.port}`;
  const post = async (route, body, token) => {
    const headers = { "content-type": "application/json", ...(token && { authorization: `Bearer ${token}` }) };
    const response = await fetch(`${url}${route}`, { method: "POST", headers, body: JSON.stringify(body) });
    const json = await response.json();
    assert.ok(response.ok, `${route}: ${response.status} ${JSON.stringify(json)}`);
    return json;
  };
  const { notification: first } = await post("/api/notifications", { user_id: "alice", title: "one", body: "b" }, apiKey);

  const h = new Harness(t);
  const { token } = await post("/api/login", { user_id: "alice" });
  const socket = await h.connect(`ws://127.0.0.1:${demo.port}/socket`, { authToken: token });
  const bell = new LiveCollection(socket, "notifications");
  t.after(() => bell.close());
  const changed = new Recorder("changed notifications");
  bell.subscribe((event) => event.changes?.forEach(({ value }) => changed.push(value)));
  const rows = await bell.ready;
  assert.equal(rows.size, 1);
  for (const row of rows.values()) assertRowType(row, NotificationsRow, "snapshot");
  assert.equal(rows.values().next().value.read_at, null);

  // A read mark sets read_at (a number), an insert adds an unread row (read_at null).
  const channel = socket.channel("notifications:alice");
  await new Promise((resolve, reject) => channel.join().receive("ok", resolve).receive("error", reject));
  await new Promise((resolve, reject) => channel.push("mark_read", { id: first.id }).receive("ok", resolve).receive("error", reject));
  await post("/api/notifications", { user_id: "alice", title: "two", body: "b" }, apiKey);
  await changed.until((rows) => rows.length >= 2, "the read mark and the insert");
  for (const row of changed.items) assertRowType(row, NotificationsRow, `change of ${row.id}`);
  for (const row of bell.rows.values()) assertRowType(row, NotificationsRow, `row ${row.id}`);
  const readAt = [...bell.rows.values()].find((row) => row.id === first.id).read_at;
  assert.equal(typeof readAt, "number");
});

test("values are typed by the reply's column types; a rejoin sends the last position as since", async (t) => {
  // A scripted server, for what the shape server does not send yet: `schema` in the join reply.
  const h = new Harness(t);
  const server = await h.wsServer();
  const socket = h.socket(server.socketUrl);
  socket.connect();
  const items = new LiveCollection(socket, "items", { where: "done = $1", params: ["false"] });
  t.after(() => items.close());
  const events = watch(items);
  const send = (conn, frame) => conn.ws.send(JSON.stringify(frame));
  const topic = "shape:items";
  const position = (n) => `0123456789ab-${n}`;

  const first = await server.connections.nth(1);
  const [joinRef, , joinTopic, , params] = JSON.parse(await first.frames.nth(1));
  assert.equal(joinTopic, topic);
  assert.deepEqual(params, { where: "done = $1", params: ["false"], since: null });
  const insert = (id, title) => ({
    key: `"main"."items"/"${id}"`,
    value: { id: String(id), title, done: "false", meta: '{"tags":["a"]}', note: null },
    headers: { operation: "insert", relation: ["main", "items"] },
  });
  const schema = {
    id: { type: "int4", pk_index: 0, not_null: true },
    title: { type: "text" },
    done: { type: "bool" },
    meta: { type: "json" },
    note: { type: "text" },
  };
  const reply = { handle: "h", offset: "3_0", position: position(3), schema, messages: [insert(1, "one")], more: false };
  send(first, [joinRef, joinRef, topic, "phx_reply", { status: "ok", response: reply }]);
  const rows = await items.ready;
  assert.deepEqual(rows.get('"main"."items"/"1"'), { id: 1, title: "one", done: false, meta: { tags: ["a"] }, note: null });

  const update = { key: '"main"."items"/"1"', value: { id: "1", done: "true" }, headers: { operation: "update" } };
  send(first, [null, position(4), topic, "changes", { handle: "h", offset: "4_0", position: position(4), messages: [update] }]);
  await events.find((e) => e.type === "changes", "the update");
  assert.deepEqual(items.rows.get('"main"."items"/"1"'), { id: 1, title: "one", done: true, meta: { tags: ["a"] }, note: null });

  first.ws.terminate();
  const second = await server.connections.nth(2);
  const [, , , , rejoinParams] = JSON.parse(await second.frames.nth(1));
  assert.deepEqual(rejoinParams, { where: "done = $1", params: ["false"], since: position(4) });
});

const here = path.dirname(fileURLToPath(import.meta.url));
const tsc = process.env.ALIGHT_TSC ?? [path.join(REPO_ROOT, "node_modules", "typescript", "bin", "tsc")].find(existsSync);

test("the LiveCollection declarations type-check with a row type", { skip: tsc ? false : "no TypeScript compiler" }, () => {
  const args = ["--noEmit", "--strict", "--target", "es2020", "--module", "nodenext", "--moduleResolution", "nodenext", "--lib", "es2022", path.join(here, "live-types-check.ts")];
  const run = spawnSync(tsc, args, { cwd: here, encoding: "utf8" });
  assert.equal(run.status, 0, `tsc ${args.join(" ")}\n${run.stdout}${run.stderr}`);
});

test("code using the generated row types type-checks; a wrong field does not", { skip: tsc ? false : "no TypeScript compiler" }, (t) => {
  const generated = path.join(here, "generated");
  mkdirSync(generated, { recursive: true });
  t.after(() => rmSync(generated, { recursive: true, force: true }));
  writeFileSync(path.join(generated, "demo-rows.d.ts"), readFileSync(path.join(REPO_ROOT, "demo", "static", "rows.d.ts")));
  writeFileSync(path.join(generated, "items-rows.d.ts"), rowTypes());
  const args = ["--noEmit", "--strict", "--target", "es2020", "--module", "nodenext", "--moduleResolution", "nodenext", "--lib", "es2022", path.join(here, "rows-types-check.ts")];
  const run = spawnSync(tsc, args, { cwd: here, encoding: "utf8" });
  assert.equal(run.status, 0, `tsc ${args.join(" ")}\n${run.stdout}${run.stderr}`);
});
