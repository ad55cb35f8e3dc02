// The browser client in headless Chromium against a fixture server that is really stopped and
// started again (same port): the reconnect after a server restart, a push made while offline,
// and the prompt reconnect when the page becomes visible again.
//
// Run with: node --test client-wasm/js-tests/browser/   (scripts/test-client does, with the packed
// package). Needs target/debug/conformance-server (or ALIGHT_CONFORMANCE_SERVER), the package
// (ALIGHT_CLIENT_PKG, else client-wasm/pkg: `scripts/build-client`), Chromium (CHROMIUM, else
// /usr/bin/chromium) and playwright-core from the root node_modules.
//
// Here the server process itself is stopped and started again from Node, through the packed
// package's JS API; channels.test.mjs covers the same case with the fixture's in-process restart
// (`POST /test/restart`).
//
// The page reports every socket and channel event to the test (`report`, exposed by playwright),
// and the test waits on those, each wait under a deadline; nothing sleeps.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { chromium } from "playwright-core";

import { Recorder, startServer } from "../../../tests/node/helpers.mjs";
import { CHROMIUM_ARGS } from "../browser-entry.mjs";
import { servePackage } from "./site.mjs";

/** How long one step may take (the machine is small and shared). */
const STEP_MS = 5000;
/** The reconnect backoff of the socket that must come back on visibility, not on its timer. */
const LONG_BACKOFF_MS = 60_000;
/** How soon after the page is shown again that socket must have rejoined: far below the backoff. */
const PROMPT_MS = 5000;
/** Each test's overall deadline. */
const TEST_MS = 40_000;

// A socket per name, with one channel; everything they hear goes to `report(name, kind, data)`.
const PAGE = `<!doctype html>
<title>reconnect</title>
<script type="module">
  import { Socket } from "./index.js";
  const clients = {};
  window.start = (name, url, reconnectMs, topic) => {
    const socket = new Socket(url, {
      params: { who: name },
      reconnectAfterMs: () => reconnectMs,
      rejoinAfterMs: () => 100,
      jitter: 0,
    });
    socket.onOpen(() => report(name, "open"));
    socket.onClose((event) => report(name, "close", { code: event.code }));
    socket.connect();
    const channel = socket.channel(topic, {});
    channel.join()
      .receive("ok", (response) => report(name, "joined", response))
      .receive("error", (response) => report(name, "join error", response));
    clients[name] = { socket, channel };
  };
  window.push = (name, event, payload) => {
    clients[name].channel.push(event, payload, 10000)
      .receive("ok", (response) => report(name, "reply", response))
      .receive("error", (response) => report(name, "reply error", response))
      .receive("timeout", () => report(name, "reply timeout"));
  };
  window.connectionState = (name) => clients[name].socket.connectionState();
  window.stopAll = () => Object.values(clients).forEach(({ socket }) => socket.disconnect());
  window.pageReady = true;
</script>`;

let site;
let browser;
let profile;

before(async () => {
  site = await servePackage(PAGE);
  profile = mkdtempSync(path.join(tmpdir(), "alight-reconnect-"));
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

/**
 * A fresh page with the harness loaded, and what it reports: `events` ({name, kind, data}) and
 * `attempts` (the `who` of every WebSocket the page opens, refused ones included). Closed, with
 * the server, at the end of the test.
 */
async function openPage(t) {
  const context = await browser.newContext();
  const events = new Recorder("page events");
  const attempts = [];
  const errors = [];
  const page = await context.newPage();
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("websocket", (ws) => attempts.push(new URL(ws.url()).searchParams.get("who")));
  await page.exposeFunction("report", (name, kind, data) => events.push({ name, kind, data }));
  await page.goto(site.url);
  await page.waitForFunction(() => window.pageReady === true, null, { timeout: STEP_MS });
  t.after(async () => {
    await page.evaluate(() => window.stopAll()).catch(() => {});
    await context.close();
    assert.deepEqual(errors, [], "uncaught errors in the page");
  });
  /** Resolves once `name` reported `kind` `n` times; with the `n`th one's data. */
  const nth = async (name, kind, n, ms = STEP_MS) => {
    const matching = (items) => items.filter((e) => e.name === name && e.kind === kind);
    const items = await events.until((items) => matching(items).length >= n, `${name} ${kind} #${n}`, ms);
    return matching(items)[n - 1].data;
  };
  const count = (name, kind) => events.items.filter((e) => e.name === name && e.kind === kind).length;
  const tries = (name) => attempts.filter((who) => who === name).length;
  return { page, events, nth, count, tries };
}

/** A fixture server stopped at the end of the test (whichever instance is running then). */
async function serverFor(t, options) {
  const holder = { server: await startServer(options) };
  t.after(() => holder.server.stop());
  return holder;
}

test(
  "after the server restarts the socket reconnects, rejoins, and a push made offline is answered",
  { timeout: TEST_MS },
  async (t) => {
    const fixture = await serverFor(t);
    const { page, nth, count } = await openPage(t);
    const url = fixture.server.socketUrl;
    await page.evaluate(([url]) => window.start("client", url, 100, "room:restart"), [url]);
    await nth("client", "open", 1);
    assert.deepEqual(await nth("client", "joined", 1), { user: null });

    // The process exits (a graceful shutdown closes the socket with 1012).
    const { port } = fixture.server;
    const stopped = await fixture.server.stop();
    assert.equal(stopped.killed, false, "the server exits by itself");
    assert.equal((await nth("client", "close", 1)).code, 1012);

    // Offline: the push waits for the rejoin, the reconnects are refused meanwhile.
    await page.evaluate(() => window.push("client", "ping", { sent: "offline" }));
    // Closed, or connecting when the 100 ms backoff has already started an attempt.
    assert.notEqual(await page.evaluate(() => window.connectionState("client")), "open");

    fixture.server = await startServer({ port });
    await nth("client", "open", 2);
    assert.deepEqual(await nth("client", "joined", 2), { user: null });
    assert.deepEqual(await nth("client", "reply", 1), { sent: "offline" });
    assert.equal(count("client", "reply timeout"), 0);

    await page.evaluate(() => window.push("client", "ping", { sent: "online" }));
    assert.deepEqual(await nth("client", "reply", 2), { sent: "online" });
  },
);

test(
  "a socket waiting out a long backoff reconnects as soon as the page is shown again",
  { timeout: TEST_MS },
  async (t) => {
    const fixture = await serverFor(t);
    const { page, nth, count, tries } = await openPage(t);
    const url = fixture.server.socketUrl;
    // `slow` backs off 60 s after a lost connection; `control` 100 ms, as a barrier below.
    await page.evaluate(
      ([url, long]) => {
        window.start("slow", url, long, "room:slow");
        window.start("control", url, 100, "room:control");
      },
      [url, LONG_BACKOFF_MS],
    );
    await nth("slow", "joined", 1);
    await nth("control", "joined", 1);

    const { port } = fixture.server;
    await fixture.server.stop();
    assert.equal((await nth("slow", "close", 1)).code, 1012);
    fixture.server = await startServer({ port });

    // Without a visibility change: `control` comes back on its timer, rejoins and gets a reply,
    // while `slow` has not even tried (refused attempts count too).
    await nth("control", "open", 2);
    await nth("control", "joined", 2);
    await page.evaluate(() => window.push("control", "ping", { barrier: true }));
    await nth("control", "reply", 1);
    assert.equal(tries("slow"), 1, "slow made no attempt on its own");
    assert.equal(count("slow", "open"), 1);
    assert.equal(await page.evaluate(() => window.connectionState("slow")), "closed");

    // Hidden, then visible. Headless Chromium keeps every page visible whatever is done to it
    // (tried with Chromium 156: minimizing the window with `Browser.setWindowBounds`, another tab
    // brought to the front with `Target.activateTarget`/`page.bringToFront()`, background
    // targets), so the page's `document.hidden`/`visibilityState` are redefined on the real
    // document and a real `visibilitychange` event is dispatched on it, as a browser would.
    const setHidden = (hidden) =>
      page.evaluate((hidden) => {
        Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
        Object.defineProperty(document, "visibilityState", {
          configurable: true,
          get: () => (hidden ? "hidden" : "visible"),
        });
        document.dispatchEvent(new Event("visibilitychange", { bubbles: true }));
      }, hidden);
    await setHidden(true);
    const shown = Date.now();
    await setHidden(false);
    await nth("slow", "open", 2, PROMPT_MS);
    assert.deepEqual(await nth("slow", "joined", 2, PROMPT_MS - (Date.now() - shown)), {
      user: null,
    });
    await page.evaluate(() => window.push("slow", "ping", { after: "visible" }));
    assert.deepEqual(await nth("slow", "reply", 1, PROMPT_MS - (Date.now() - shown)), {
      after: "visible",
    });
    const took = Date.now() - shown;
    assert.ok(took < PROMPT_MS, `rejoined and answered ${took} ms after the page was shown`);
    t.diagnostic(`rejoined and answered ${took} ms after the page was shown`);
    assert.equal(tries("slow"), 2, "exactly one connection attempt on becoming visible");
  },
);
