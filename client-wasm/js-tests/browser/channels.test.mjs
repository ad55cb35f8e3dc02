// The browser client in headless Chromium against real servers, through the packed package's JS
// API as a page uses it: a join, a push and its three answers (binary too), a broadcast to every
// socket, a reconnect and rejoin after the server drops the socket (with an async token
// function), heartbeats answered and a silent server detected, and the fixture's in-process
// restart with a push made offline.
//
// Run with: node --test client-wasm/js-tests/browser/   (scripts/test-client does, with the
// packed package). Needs what reconnect.test.mjs needs.
//
// Each scenario runs in the page (`page.evaluate`); every wait there is on an event, under a
// deadline (`within`), and nothing sleeps.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { chromium } from "playwright-core";
import { WebSocketServer } from "ws";

import { startServer } from "../../../tests/node/helpers.mjs";
import { CHROMIUM_ARGS } from "../browser-entry.mjs";
import { servePackage } from "./site.mjs";

/** Each test's overall deadline. */
const TEST_MS = 40_000;

// The page's helpers: a socket with recorders, and waits under a deadline.
const PAGE = `<!doctype html>
<title>channels</title>
<script type="module">
  import { Socket } from "./index.js";
  const DEADLINE_MS = 5000;
  window.within = (promise, what) =>
    Promise.race([
      promise,
      new Promise((_, reject) => setTimeout(() => reject(new Error("timed out waiting for " + what)), DEADLINE_MS)),
    ]);
  /** Values in order; nth(n) resolves once there are n. */
  window.recorder = () => {
    const items = [];
    const waiting = [];
    return {
      items,
      push(value) {
        items.push(value);
        for (const w of waiting.splice(0)) if (items.length >= w.n) w.resolve(items[w.n - 1]); else waiting.push(w);
      },
      nth(n, what) {
        if (items.length >= n) return Promise.resolve(items[n - 1]);
        return within(new Promise((resolve) => waiting.push({ n, resolve })), what);
      },
    };
  };
  window.settle = (push, what) =>
    within(
      new Promise((resolve) => {
        for (const status of ["ok", "error", "timeout"]) push.receive(status, (response) => resolve({ status, response }));
      }),
      what,
    );
  /** A connected socket with recorders of its opens, closes and messages. */
  window.connect = async (url, opts = {}) => {
    const socket = new Socket(url, { reconnectAfterMs: () => 50, rejoinAfterMs: () => 50, ...opts });
    socket.opens = recorder();
    socket.closes = recorder();
    socket.messages = recorder();
    socket.onOpen(() => socket.opens.push(true));
    socket.onClose((event) => socket.closes.push({ code: event.code, reason: event.reason, wasClean: event.wasClean }));
    socket.onMessage((message) => socket.messages.push(message));
    socket.connect();
    await socket.opens.nth(1, "the socket to open");
    return socket;
  };
  window.post = (url) => fetch(url, { method: "POST", mode: "no-cors" });
  window.pageReady = true;
</script>`;

let site;
let browser;
let fixture;
let silent;

before(async () => {
  site = await servePackage(PAGE);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: CHROMIUM_ARGS,
  });
  fixture = await startServer();
  // Accepts (answering the `phoenix` subprotocol), then never sends anything.
  silent = new WebSocketServer({
    host: "127.0.0.1",
    port: 0,
    handleProtocols: (protocols) => (protocols.has("phoenix") ? "phoenix" : false),
  });
  await new Promise((resolve, reject) => {
    silent.once("listening", resolve);
    silent.once("error", reject);
  });
});

after(async () => {
  await browser?.close();
  site?.server.close();
  for (const client of silent?.clients ?? []) client.terminate();
  await new Promise((resolve) => (silent ? silent.close(resolve) : resolve()));
  await fixture?.stop();
});

/** A fresh page with the helpers loaded; closed at the end of the test, with no uncaught error. */
async function openPage(t) {
  const context = await browser.newContext();
  const errors = [];
  const page = await context.newPage();
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto(site.url);
  await page.waitForFunction(() => window.pageReady === true, null, { timeout: 5000 });
  t.after(async () => {
    await context.close();
    assert.deepEqual(errors, [], "uncaught errors in the page");
  });
  return page;
}

test("join, push and the three answers; binary out and back", { timeout: TEST_MS }, async (t) => {
  const page = await openPage(t);
  const result = await page.evaluate(async (url) => {
    const socket = await connect(url);
    const out = { state: socket.connectionState() };
    const channel = socket.channel("room:web", { from: "browser" });
    out.join = await settle(channel.join(), "the join");
    out.channelState = channel.state;
    out.ping = await settle(channel.push("ping", { n: 1, s: "ü ✓" }), "ping");
    out.fail = await settle(channel.push("fail", {}), "fail");
    out.noreply = (await settle(channel.push("noreply", {}, 200), "noreply")).status;
    const binary = await settle(channel.push("ping", new Uint8Array([0, 1, 254, 255]).buffer), "binary ping");
    out.binary = [binary.status, binary.response instanceof ArrayBuffer, [...new Uint8Array(binary.response)]];
    socket.disconnect();
    return out;
  }, fixture.socketUrl);
  assert.deepEqual(result, {
    state: "open",
    join: { status: "ok", response: { user: null } },
    channelState: "joined",
    ping: { status: "ok", response: { n: 1, s: "ü ✓" } },
    fail: { status: "error", response: { reason: "failed" } },
    noreply: "timeout",
    binary: ["ok", true, [0, 1, 254, 255]],
  });
});

test("a broadcast reaches every socket on the topic, the sender's too", { timeout: TEST_MS }, async (t) => {
  const page = await openPage(t);
  const result = await page.evaluate(async (url) => {
    const [a, b] = [await connect(url), await connect(url)];
    const [ca, cb] = [a.channel("room:web-bcast"), b.channel("room:web-bcast")];
    await settle(ca.join(), "join a");
    await settle(cb.join(), "join b");
    const [heardA, heardB] = [recorder(), recorder()];
    ca.on("shout", (payload) => heardA.push(payload));
    cb.on("shout", (payload) => heardB.push(payload));
    const shout = (await settle(ca.push("shout", { body: "hi" }), "shout")).status;
    const out = { shout, a: await heardA.nth(1, "the sender's shout"), b: await heardB.nth(1, "the other's shout") };
    a.disconnect();
    b.disconnect();
    return out;
  }, fixture.socketUrl);
  assert.deepEqual(result, { shout: "ok", a: { body: "hi" }, b: { body: "hi" } });
});

test("the server drops the socket: reconnect, a new token, rejoin", { timeout: TEST_MS }, async (t) => {
  const page = await openPage(t);
  const result = await page.evaluate(
    async ([url, http]) => {
      let tokenCalls = 0;
      const socket = await connect(url, {
        authToken: async () => {
          tokenCalls += 1;
          return "valid-token";
        },
      });
      const joins = recorder();
      socket.channel("private:web").join().receive("ok", (response) => joins.push(response));
      const out = { first: await joins.nth(1, "the first join") };
      // The server closes every socket of user_socket:alice (1001).
      await post(`${http}/test/disconnect/user_socket:alice`);
      out.close = (await socket.closes.nth(1, "the close")).code;
      await socket.opens.nth(2, "the reconnect");
      out.second = await joins.nth(2, "the rejoin");
      out.tokenCalls = tokenCalls;
      socket.disconnect();
      return out;
    },
    [fixture.socketUrl, fixture.httpUrl],
  );
  assert.deepEqual(result, { first: { user: "alice" }, close: 1001, second: { user: "alice" }, tokenCalls: 2 });
});

test("heartbeats are answered, and a silent server is detected", { timeout: TEST_MS }, async (t) => {
  const page = await openPage(t);
  const silentUrl = `ws://127.0.0.1:${silent.address().port}/socket`;
  const result = await page.evaluate(
    async ([url, silentUrl]) => {
      // Answered: the connection stays open across several heartbeats.
      const socket = await connect(url, { heartbeatIntervalMs: 100 });
      let replies = 0;
      for (let n = 1; replies < 3; n++) {
        const message = await socket.messages.nth(n, "a heartbeat reply");
        if (message.topic === "phoenix") replies += 1;
      }
      const out = { closesWhileAnswered: socket.closes.items.length };
      socket.disconnect();
      // Unanswered: closed with 1000 "heartbeat timeout" by the next tick, then reconnected.
      const quiet = await connect(silentUrl, { heartbeatIntervalMs: 100 });
      out.close = await quiet.closes.nth(1, "the heartbeat timeout");
      await quiet.opens.nth(2, "the reconnect");
      quiet.disconnect();
      return out;
    },
    [fixture.socketUrl, silentUrl],
  );
  assert.deepEqual(result, {
    closesWhileAnswered: 0,
    close: { code: 1000, reason: "heartbeat timeout", wasClean: true },
  });
});

test("after an in-process restart it reconnects, rejoins and sends the push made offline", { timeout: TEST_MS }, async (t) => {
  const page = await openPage(t);
  const result = await page.evaluate(
    async ([url, http]) => {
      const socket = await connect(url);
      const channel = socket.channel("room:web-restart");
      const joins = recorder();
      channel.join().receive("ok", (response) => joins.push(response));
      await joins.nth(1, "the first join");
      // The fixture closes every socket with 1012, as a stopping process does, then binds its
      // address again with a new endpoint that knows nothing of this client.
      await post(`${http}/test/restart`);
      const out = { close: (await socket.closes.nth(1, "the close")).code };
      out.offlineOpen = socket.isConnected();
      // Made while the socket is down: buffered, sent once the channel has joined again.
      const offline = settle(channel.push("ping", { made: "offline" }, 10_000), "the push made offline");
      await socket.opens.nth(2, "the reconnect to the restarted server");
      await joins.nth(2, "the rejoin");
      out.offline = await offline;
      socket.disconnect();
      return out;
    },
    [fixture.socketUrl, fixture.httpUrl],
  );
  assert.deepEqual(result, {
    close: 1012,
    offlineOpen: false,
    offline: { status: "ok", response: { made: "offline" } },
  });
});
