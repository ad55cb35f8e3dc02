// The demo page around the bell: the login form when no user is named, and what the page says
// when the browser client cannot be loaded (simulated by failing the .wasm download, so
// client-wasm/pkg is never touched).
//
// Build first: `cargo build -p alight-demo` and `scripts/build-client`. Screenshots: target/e2e/.

import assert from "node:assert/strict";
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

test("without a user the page asks for one, remembers it, and connects", async () => {
  const context = await newContext(browser);
  const page = await openPage(context, demo, "/", { waitOnline: false });
  await page.waitForSelector("#login", { state: "visible" });
  assert.equal(await page.evaluate(() => document.activeElement?.id), "login-user");
  await screenshot(page, "page-1-login");

  await page.fill("#login-user", "carol");
  await page.press("#login-user", "Enter");
  await connectionState(page, "online");
  assert.equal(await page.textContent("#user-chip .user-name"), "carol");
  assert.equal(await page.inputValue("#send-to"), "carol");

  // Another tab of this browser is carol too, without asking.
  const other = await openPage(context, demo, "/");
  assert.equal(await other.textContent("#user-chip .user-name"), "carol");
  assert.equal(await other.isHidden("#login"), true);

  // The form sends with carol's login token; the bell of both tabs rings.
  await page.fill("#send-title-input", "Hello from the form");
  await page.click("#send-form button[type=submit]");
  await page.waitForSelector("#send-status.ok");
  assert.match(await page.textContent("#send-status"), /^Sent to carol \(#\d+\)\.$/);
  for (const tab of [page, other]) await tab.waitForSelector("#toasts .toast");
  await screenshot(page, "page-2-sent-from-the-form");
  for (const tab of [page, other]) assert.deepEqual(tab.errors, []);
  await context.close();
});

test("when the .wasm cannot be downloaded the page says so in words a user can act on", async () => {
  const context = await newContext(browser);
  await context.route("**/pkg/*.wasm", (route) => route.abort("connectionreset"));
  const page = await openPage(context, demo, "/?user=dave", { waitOnline: false });
  await page.waitForSelector("#client.error");
  const text = await page.textContent("#client");
  assert.match(text, /could not load all of its parts.*Check your connection and try again/s);
  // A developer's instruction is no help to a user: it stays in the console and the server's 404.
  assert.doesNotMatch(text, /build-client|scripts\//);
  assert.equal(await page.textContent("#client button"), "Try again");
  assert.equal(await page.isHidden("#app"), true);
  await screenshot(page, "page-3-client-not-loaded");
  assert.deepEqual(page.errors, []);
  await context.close();
});
