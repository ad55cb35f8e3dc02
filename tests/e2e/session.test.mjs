// What the demo's pages tell a user when the connection or the sign-in goes wrong
// (demo/static/session.js): a forged or expired token ("your session is no longer valid"), another
// user's token (the refused channel's reason, on the page), the browser going offline (within
// 2 s), an invalid user or room in the address, and `?user=` remembered like a login.
//
// Tokens are swapped by answering the page's `POST /api/login` from the test. Build first:
// `cargo build -p alight-demo` and `scripts/build-client`. Screenshots: target/e2e/session-*.png.

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";

import {
  connectionState,
  demoAndBrowserPerFile,
  newContext,
  openPage,
  screenshot,
} from "./helpers.mjs";

let dataDir;
let demo;
let browser;
demoAndBrowserPerFile((started) => ({ dataDir, demo, browser } = started));

/** A real login token for `userId`. */
async function login(userId) {
  const response = await fetch(`${demo.url}/api/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ user_id: userId }),
  });
  assert.equal(response.status, 200);
  return (await response.json()).token;
}

/**
 * A token for `userId` signed with the demo's secret but expired an hour ago (demo/src/token.rs:
 * `<user_id>.<expiry><HMAC-SHA256 over the context, the id and the expiry, base64url>`).
 */
function expiredToken(userId) {
  const secret = readFileSync(path.join(dataDir, "token_secret"), "utf8").trim();
  const expiry = Math.floor(Date.now() / 1000) - 3600;
  const signature = createHmac("sha256", secret)
    .update(`alight-demo login v2\n${userId}\n${expiry}`)
    .digest("base64url");
  return `${userId}.${expiry}${signature}`;
}

/** A context whose pages get `token` from `POST /api/login`, whoever they log in as. */
async function contextWithToken(token) {
  const context = await newContext(browser);
  await context.route("**/api/login", (route) =>
    route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify({ token }) }),
  );
  return context;
}

/** Counts the WebSockets `page` opens to the demo's socket, into `sockets`. */
function countSockets(sockets) {
  return (page) =>
    page.on("websocket", (ws) => {
      if (ws.url().includes("/socket/websocket")) sockets.push(ws);
    });
}

test("a forged token: the page says the session is no longer valid and stops retrying", async () => {
  const real = await login("mallory");
  const forged = `alice.${real.split(".")[1]}`;
  const context = await contextWithToken(forged);
  const sockets = [];
  const page = await openPage(context, demo, "/?user=alice", {
    waitOnline: false,
    setup: countSockets(sockets),
  });
  await connectionState(page, "refused");
  const notice = page.locator("#session-notice");
  await notice.waitFor({ state: "visible" });
  assert.match(await notice.textContent(), /Your session is no longer valid\. Log in again/);
  assert.equal(await page.locator("#session-notice button").textContent(), "Log in again");
  // Refused at once, not after retries: the first socket (and the client's one retry with a fresh
  // token, where it makes one) was all it took.
  assert.ok(sockets.length <= 2, `${sockets.length} sockets opened`);
  // The inbox does not pretend the user has no notifications.
  await page.click("#bell-button");
  assert.doesNotMatch(await page.textContent("#inbox"), /No notifications yet/);
  await page.keyboard.press("Escape");
  await screenshot(page, "session-1-forged-token");
  assert.deepEqual(page.errors, []);

  // Logging in again (the demo's login is password-less) gets a valid token: online.
  await context.unroute("**/api/login");
  await page.click("#session-notice button");
  await connectionState(page, "online");
  assert.equal(await page.isHidden("#session-notice"), true);
  await context.close();
});

test("an expired token: the same \"log in again\", and logging in again works", async () => {
  const context = await contextWithToken(expiredToken("henry"));
  const page = await openPage(context, demo, "/room?name=lobby&user=henry", { waitOnline: false });
  await connectionState(page, "refused");
  assert.match(await page.textContent("#session-notice"), /Your session is no longer valid/);
  await context.unroute("**/api/login");
  await page.click("#session-notice button");
  await connectionState(page, "online");
  assert.deepEqual(page.errors, []);
  await context.close();
});

test("another user's token: the refused channel and its reason are on the page", async () => {
  const context = await contextWithToken(await login("alice"));
  const page = await openPage(context, demo, "/?user=bob", { waitOnline: false });
  await connectionState(page, "error");
  const notice = page.locator("#session-notice");
  await notice.waitFor({ state: "visible" });
  assert.match(await notice.textContent(), /Cannot open bob's notifications:.*unauthorized/);
  await page.click("#bell-button");
  const empty = await page.textContent("#inbox-empty");
  assert.match(empty, /Cannot show your notifications: unauthorized/);
  assert.doesNotMatch(empty, /No notifications yet/);
  await screenshot(page, "session-2-another-users-token");
  assert.deepEqual(page.errors, []);
  await context.close();
});

test("offline: the indicator says so within 2 s, and is online again once the network is back", async () => {
  const context = await newContext(browser);
  const page = await openPage(context, demo, "/room?name=offline-test&user=carol");
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", {
    offline: true,
    latency: 0,
    downloadThroughput: -1,
    uploadThroughput: -1,
  });
  await page.waitForSelector('#connection[data-state="offline"]', { timeout: 2000 });
  assert.match(await page.textContent("#session-notice"), /You are offline/);
  await screenshot(page, "session-3-offline");

  await cdp.send("Network.emulateNetworkConditions", {
    offline: false,
    latency: 0,
    downloadThroughput: -1,
    uploadThroughput: -1,
  });
  await connectionState(page, "online");
  assert.equal(await page.isHidden("#session-notice"), true);
  assert.deepEqual(page.errors, []);
  await context.close();
});

test("an invalid user or room in the address is named, not silently replaced", async () => {
  const context = await newContext(browser);
  const page = await openPage(context, demo, "/?user=not%20valid!", { waitOnline: false });
  await page.waitForSelector("#login", { state: "visible" });
  assert.match(await page.textContent("#login-error"), /“not valid!” in the address is not a user id/);
  assert.equal(await page.inputValue("#login-user"), "not valid!");

  const room = await openPage(context, demo, "/room?name=no%20such!&user=dan");
  assert.match(await room.textContent("#room-notice"), /“no such!” is not a room name.*#lobby/);
  assert.equal(await room.textContent("#room-title"), "lobby");
  assert.equal(new URL(room.url()).searchParams.get("name"), "lobby");
  await screenshot(room, "session-4-invalid-room");
  for (const tab of [page, room]) assert.deepEqual(tab.errors, []);
  await context.close();
});

test("?user= is remembered like a login: the next tab without it is the same user", async () => {
  const context = await newContext(browser);
  await openPage(context, demo, "/?user=erin");
  const next = await openPage(context, demo, "/room?name=lobby");
  assert.equal(await next.textContent("#user-chip .user-name"), "erin");
  assert.equal(await next.isHidden("#login"), true);
  await context.close();
});
