// Resume of a history channel in headless Chromium against the fixture server's `history:*`
// topics (tests/src/fixture.rs): the network goes away (`context.setOffline`, which fires the
// page's `offline` and `online` events), broadcasts are published meanwhile, and the package's
// automatic rejoin gets every missed one once, in order (`recovered: true`); after the server
// restarts (in-memory history) the rejoin reports `recovered: false`.
//
// Run with: node --test client-wasm/js-tests/browser/   (scripts/test-client does). Needs what
// reconnect.test.mjs needs.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { chromium } from "playwright-core";

import { Recorder, apiBroadcast, httpPost, startServer } from "../../../tests/node/helpers.mjs";
import { CHROMIUM_ARGS } from "../browser-entry.mjs";
import { servePackage } from "./site.mjs";

/** How long one step may take (the machine is small and shared). */
const STEP_MS = 5000;
/** Each test's overall deadline. */
const TEST_MS = 40_000;

// One socket with one history channel; what it hears goes to `report(kind, data)`.
const PAGE = `<!doctype html>
<title>resume</title>
<script type="module">
  import { Socket } from "./index.js";
  window.start = (url, topic, reconnectMs) => {
    const socket = new Socket(url, { reconnectAfterMs: () => reconnectMs, rejoinAfterMs: () => 100, jitter: 0 });
    socket.onOpen(() => report("open"));
    socket.onClose((event) => report("close", { code: event.code, reason: event.reason }));
    socket.connect();
    const channel = socket.channel(topic, {});
    channel.on("n", (payload, ref) => report("n", { n: payload.n, ref }));
    channel.onRecover((info) => report("recover", info));
    channel.join().receive("ok", (response) => report("joined", response));
    window.client = { socket, channel };
  };
  window.state = () => [window.client.socket.connectionState(), window.client.channel.position()];
  window.stop = () => window.client?.socket.disconnect();
  window.pageReady = true;
</script>`;

let site;
let browser;
let profile;

before(async () => {
  site = await servePackage(PAGE);
  profile = mkdtempSync(path.join(tmpdir(), "alight-resume-"));
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: CHROMIUM_ARGS,
  });
});

after(async () => {
  await browser?.close();
  site?.server.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

/** A fresh page running the harness against `url` on `topic`, and what it reports. */
async function openPage(t, url, topic, reconnectMs) {
  const context = await browser.newContext();
  const events = new Recorder("page events");
  const errors = [];
  const page = await context.newPage();
  page.on("pageerror", (error) => errors.push(error.message));
  await page.exposeFunction("report", (kind, data) => events.push({ kind, data }));
  await page.goto(site.url);
  await page.waitForFunction(() => window.pageReady === true, null, { timeout: STEP_MS });
  t.after(async () => {
    await page.evaluate(() => window.stop()).catch(() => {});
    await context.close();
    assert.deepEqual(errors, [], "uncaught errors in the page");
  });
  const of = (kind) => events.items.filter((e) => e.kind === kind).map((e) => e.data);
  /** Resolves with the data of the `n`th `kind` event. */
  const nth = async (kind, n, ms = STEP_MS) => {
    await events.until(() => of(kind).length >= n, `${kind} #${n}`, ms);
    return of(kind)[n - 1];
  };
  await page.evaluate((args) => window.start(...args), [url, topic, reconnectMs]);
  return { context, page, nth, of };
}

async function publish(server, topic, from, to) {
  for (let n = from; n <= to; n++) {
    assert.equal((await apiBroadcast(server, topic, "n", { n })).status, 202);
  }
}

test("offline, missed broadcasts, online: the rejoin recovers every one once, in order", { timeout: TEST_MS }, async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const topic = "history:chromium";
  // The reconnect backoff is a minute: only the `online` event can bring it back in time.
  const { context, page, nth, of } = await openPage(t, server.socketUrl, topic, 60_000);
  const joined = await nth("joined", 1);
  assert.match(joined.position, /^[0-9a-f]{12}-0$/);
  const epoch = joined.position.slice(0, 12);
  await publish(server, topic, 1, 2);
  await nth("n", 2);

  const cut = Date.now();
  await context.setOffline(true);
  assert.deepEqual(await nth("close", 1), { code: 1006, reason: "offline" });
  const closedIn = Date.now() - cut;
  assert.ok(closedIn < 2000, `closed ${closedIn} ms after going offline`);
  assert.equal((await page.evaluate(() => window.state()))[0], "closed");
  await publish(server, topic, 3, 6);

  await context.setOffline(false);
  assert.deepEqual(await nth("recover", 1), { recovered: true });
  await publish(server, topic, 7, 7);
  await nth("n", 7);
  assert.deepEqual(
    of("n"),
    [1, 2, 3, 4, 5, 6, 7].map((n) => ({ n, ref: `${epoch}-${n}` })),
    "each broadcast once, in order, with its position",
  );
  assert.deepEqual(await page.evaluate(() => window.state()), ["open", `${epoch}-7`]);
  assert.equal((await nth("joined", 2)).recovered, true);
});

test("after a server restart (in-memory history) the rejoin reports recovered: false", { timeout: TEST_MS }, async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const topic = "history:chromium-restart";
  const { page, nth } = await openPage(t, server.socketUrl, topic, 100);
  await nth("joined", 1);
  await publish(server, topic, 1, 1);
  await nth("n", 1);
  // The fixture restarts in process: sockets closed with 1012, a fresh history.
  await httpPost(`${server.httpUrl}/test/restart`, {});
  assert.equal((await nth("close", 1)).code, 1012);
  assert.deepEqual(await nth("recover", 1), { recovered: false });
  const rejoined = await nth("joined", 2);
  assert.equal(rejoined.recovered, false);
  // The app reloads from here: the channel's position is the new stream's.
  assert.equal((await page.evaluate(() => window.state()))[1], rejoined.position);
});
