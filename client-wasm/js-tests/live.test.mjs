// `LiveCollection` against the real shape server (target/debug/sync-server: a table `items` whose
// users see only the rows they own, served as `shape:items` over channels): the snapshot, then
// inserts, updates and deletes as they commit (written by another SQLite connection), a snapshot
// larger than one chunk, a reconnect that resumes with only the missed changes, a rotated shape
// and a resume that cannot be served (a fresh snapshot replaces the rows), a refused join, and
// the declarations type-checked.
//
// Connections are cut by a TCP proxy between the client and the server, as a network drop would.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { LiveCollection } from "@alight/client/live";

import { Harness, REPO_ROOT, Recorder } from "./helpers.mjs";
import { startLiveServer } from "./live-server.mjs";

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

const here = path.dirname(fileURLToPath(import.meta.url));
const tsc = process.env.ALIGHT_TSC ?? [path.join(REPO_ROOT, "node_modules", "typescript", "bin", "tsc")].find(existsSync);

test("the LiveCollection declarations type-check with a row type", { skip: tsc ? false : "no TypeScript compiler" }, () => {
  const args = ["--noEmit", "--strict", "--target", "es2020", "--module", "nodenext", "--moduleResolution", "nodenext", "--lib", "es2022", path.join(here, "live-types-check.ts")];
  const run = spawnSync(tsc, args, { cwd: here, encoding: "utf8" });
  assert.equal(run.status, 0, `tsc ${args.join(" ")}\n${run.stdout}${run.stderr}`);
});
