// `@alight/client/live` in headless Chromium against the shape server (target/debug/sync-server):
// a page holds a LiveCollection of its user's `items` and renders it; rows written by another
// SQLite connection appear, change and disappear in the page as they commit, and after the
// server drops the page's connection the rows written meanwhile arrive as recovered changes.
//
// Run with: node --test client-wasm/js-tests/browser/   (scripts/test-client does, with the
// packed package). Needs Chromium (CHROMIUM overrides /usr/bin/chromium) and
// `cargo build -p alight-tests --bin sync-server`.
//
// The page waits on events under a deadline; the test waits on the page's state with
// `waitForFunction`, under a deadline too. Nothing sleeps.

import assert from "node:assert/strict";
import net from "node:net";
import { after, before, test } from "node:test";

import { chromium } from "playwright-core";

import { CHROMIUM_ARGS } from "../browser-entry.mjs";
import { startLiveServer } from "../live-server.mjs";
import { servePackage } from "./site.mjs";

const WAIT_MS = 10_000;

// The page: `start(url)` makes a socket for alice and a LiveCollection of `items`, renders the
// rows as list items, and keeps what it saw in `window.seen`.
const PAGE = `<!doctype html>
<title>live</title>
<ul id="rows"></ul>
<script type="module">
  import { Socket } from "./index.js";
  import { LiveCollection } from "./live.js";
  window.seen = { events: [], opens: 0, closes: 0 };
  window.start = (url) => {
    const socket = new Socket(url, { params: { token: "alice" }, reconnectAfterMs: () => 50, rejoinAfterMs: () => 50 });
    socket.onOpen(() => seen.opens++);
    socket.onClose(() => seen.closes++);
    socket.connect();
    const items = new LiveCollection(socket, "items");
    items.subscribe((event) => {
      seen.events.push({ type: event.type, recovered: event.recovered, changes: event.changes?.map((c) => c.operation + " " + c.value.title) });
      if (event.rows) {
        const list = document.getElementById("rows");
        list.replaceChildren(
          ...[...event.rows.values()].sort((a, b) => a.title.localeCompare(b.title)).map((row) => {
            const li = document.createElement("li");
            li.textContent = row.title;
            return li;
          }),
        );
      }
    });
    return items.ready.then((rows) => rows.size);
  };
  window.pageReady = true;
</script>`;

let site;
let browser;
let server;

before(async () => {
  site = await servePackage(PAGE);
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: CHROMIUM_ARGS });
  server = await startLiveServer();
});

after(async () => {
  await browser?.close();
  site?.server.close();
  await server?.stop();
});

/** A TCP proxy to the server; `cut()` drops every connection through it. */
async function proxy(t) {
  const open = new Set();
  let down = false;
  const relay = net.createServer((client) => {
    if (down) return client.destroy();
    const upstream = net.connect(server.port, "127.0.0.1");
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
  await new Promise((resolve) => relay.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    for (const [client] of open) client.destroy();
    return new Promise((resolve) => relay.close(resolve));
  });
  return {
    socketUrl: `ws://127.0.0.1:${relay.address().port}/socket`,
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

/** A fresh page; closed at the end of the test, with no uncaught error. */
async function openPage(t) {
  const context = await browser.newContext();
  const errors = [];
  const page = await context.newPage();
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto(site.url);
  await page.waitForFunction(() => window.pageReady === true, null, { timeout: WAIT_MS });
  t.after(async () => {
    await context.close();
    assert.deepEqual(errors, [], "uncaught errors in the page");
  });
  return page;
}

/** Waits until the page lists exactly `titles`. */
async function shows(page, titles, what) {
  try {
    await page.waitForFunction(
      (want) => JSON.stringify([...document.querySelectorAll("#rows li")].map((li) => li.textContent)) === want,
      JSON.stringify(titles),
      { timeout: WAIT_MS },
    );
  } catch {
    const shown = await page.evaluate(() => [...document.querySelectorAll("#rows li")].map((li) => li.textContent));
    assert.fail(`${what}: the page shows ${JSON.stringify(shown)}, expected ${JSON.stringify(titles)}`);
  }
}

test("rows arrive in the page live through the channel: insert, update, delete", async (t) => {
  await server.exec(`DELETE FROM items;
    INSERT INTO items (owner, title) VALUES ('alice', 'b first'), ('bob', 'not hers');`);
  const page = await openPage(t);
  assert.equal(await page.evaluate((url) => start(url), server.socketUrl), 1);
  await shows(page, ["b first"], "the snapshot");

  await server.exec("INSERT INTO items (owner, title) VALUES ('alice', 'a second'), ('bob', 'his too');");
  await shows(page, ["a second", "b first"], "the insert");
  await server.exec("UPDATE items SET title = 'c renamed' WHERE title = 'b first';");
  await shows(page, ["a second", "c renamed"], "the update");
  await server.exec("DELETE FROM items WHERE title = 'a second';");
  await shows(page, ["c renamed"], "the delete");

  const events = await page.evaluate(() => seen.events);
  assert.deepEqual(events.map((e) => e.type), ["snapshot", "changes", "changes", "changes"]);
  assert.deepEqual(events.slice(1).map((e) => e.changes), [["insert a second"], ["update c renamed"], ["delete a second"]]);
});

test("after the connection drops, the rejoin brings the rows written meanwhile as recovered changes", async (t) => {
  await server.exec("DELETE FROM items; INSERT INTO items (owner, title) VALUES ('alice', 'before');");
  const link = await proxy(t);
  const page = await openPage(t);
  await page.evaluate((url) => start(url), link.socketUrl);
  await shows(page, ["before"], "the snapshot");

  link.cut();
  await page.waitForFunction(() => seen.closes >= 1, null, { timeout: WAIT_MS });
  await server.exec("INSERT INTO items (owner, title) VALUES ('alice', 'while away');");
  link.restore();
  await shows(page, ["before", "while away"], "the missed insert");
  const events = await page.evaluate(() => seen.events);
  assert.deepEqual(events.filter((e) => e.type === "snapshot").length, 1, "no second snapshot");
  assert.ok(events.some((e) => e.type === "changes" && e.recovered), "the rejoin resumed");
  // In the resuming rejoin's reply, or in the broadcast right after it if the server's capture
  // had not read the write yet.
  assert.deepEqual(events.flatMap((e) => e.changes ?? []), ["insert while away"]);
});
