// The demo page around the bell: the login form when no user is named, and what the page says
// when the browser client package is not built (simulated by answering /pkg/* with the server's
// own 404, so client-wasm/pkg is never touched).
//
// Build first: `cargo build -p alight-demo` and `scripts/build-client`. Screenshots: target/e2e/.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  connectionState,
  launchBrowser,
  newContext,
  openPage,
  removeDataDir,
  screenshot,
  startDemo,
  tempDataDir,
} from "./helpers.mjs";

let dataDir;
let demo;
let browser;

before(async () => {
  dataDir = tempDataDir();
  demo = await startDemo({ dataDir });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await demo?.stop();
  if (dataDir) removeDataDir(dataDir);
});

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

test("without the client package the page says how to build it", async () => {
  const context = await newContext(browser);
  await context.route("**/pkg/**", async (route) => {
    const missing = await fetch(new URL("/pkg/no-such-file.js", demo.url));
    await route.fulfill({ status: missing.status, body: await missing.text() });
  });
  const page = await openPage(context, demo, "/?user=dave", { waitOnline: false });
  await page.waitForSelector("#client.error");
  assert.match(await page.textContent("#client"), /scripts\/build-client/);
  assert.equal(await page.isHidden("#app"), true);
  await screenshot(page, "page-3-client-not-built");
  await context.close();
});
