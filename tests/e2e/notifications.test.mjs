// The notification bell in headless Chromium: two tabs of alice and one of bob on the demo page.
// The bell reads alice's notifications as a shape over the socket (`shape:notifications`). A
// notification sent through the API shows the badge, a toast and its sender in both of alice's
// tabs and not in bob's; marking read and deleting in one tab updates the other; rows written with
// the `sqlite3` shell show up live; the server is stopped and restarted (same port, same data
// directory): the indicator shows reconnecting then online, and a notification stored while the
// page was reconnecting appears without a reload.
//
// Build first: `cargo build -p alight-demo` and `scripts/build-client`. Screenshots: target/e2e/.
// The tests run in order and share one server and one browser.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { after, before, test } from "node:test";

import {
  connectionState,
  launchBrowser,
  newContext,
  notify,
  openPage,
  recordJoins,
  API_KEY,
  removeDataDir,
  screenshot,
  startDemo,
  tempDataDir,
} from "./helpers.mjs";

const ALICE = "alice";
const BOB = "bob";

let dataDir;
let demo;
let browser;
/** Alice's two tabs (one browser context) and bob's tab (another). */
let a1;
let a2;
let b;
/** The payload of every `phx_join` alice's first tab sent on her notifications shape. */
const aliceJoins = [];

before(async () => {
  dataDir = tempDataDir();
  demo = await startDemo({ dataDir });
  browser = await launchBrowser();
  const alice = await newContext(browser);
  const bob = await newContext(browser);
  [a1, a2, b] = await Promise.all([
    openPage(alice, demo, `/?user=${ALICE}`, {
      setup: (page) => recordJoins(page, "shape:notifications", aliceJoins),
    }),
    openPage(alice, demo, `/?user=${ALICE}`),
    openPage(bob, demo, `/?user=${BOB}`),
  ]);
});

after(async () => {
  await browser?.close();
  await demo?.stop();
  if (dataDir) removeDataDir(dataDir);
});

/** Waits until the badge of `page` shows `count` (hidden for 0). */
function badge(page, count) {
  return page.waitForFunction((count) => {
    const badge = document.getElementById("badge");
    return count === 0 ? badge.hidden : !badge.hidden && badge.textContent === String(count);
  }, count);
}

/** Waits for the toast of notification `id` in `page`; resolves with its text. */
async function toast(page, id) {
  const element = await page.waitForSelector(`#toasts .toast[data-id="${id}"]`);
  return element.textContent();
}

/** Waits until the dropdown of `page` holds notification `id` (`.unread` or not, as `read` says). */
function inboxItem(page, id, { read }) {
  const selector = `#inbox-list li[data-id="${id}"]${read ? ":not(.unread)" : ".unread"}`;
  return page.waitForSelector(selector, { state: "attached" });
}

/** Waits until the dropdown of `page` no longer holds notification `id`. */
function noInboxItem(page, id) {
  return page.waitForSelector(`#inbox-list li[data-id="${id}"]`, { state: "detached" });
}

/** Runs `sql` with the `sqlite3` shell on the demo's database: a write the server did not make. */
function sqlite(sql) {
  execFileSync("sqlite3", ["-cmd", ".timeout 5000", path.join(dataDir, "alight.db"), sql]);
}

/** The ids in the dropdown of `page`, in the order shown. */
function inboxIds(page) {
  return page.$$eval("#inbox-list li", (items) => items.map((li) => Number(li.dataset.id)));
}

test("every tab starts online with an empty bell", async () => {
  for (const page of [a1, a2, b]) {
    await badge(page, 0);
    assert.equal(await page.textContent("#connection .connection-text"), "Online");
    assert.equal(await page.getAttribute("#bell-button", "aria-label"), "Notifications, none unread");
  }
  await screenshot(a1, "notifications-1-online");
});

let first;
test("a notification through the API reaches both of alice's tabs and not bob's", async () => {
  const response = await fetch(`${demo.url}/api/notifications`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${API_KEY}` },
    body: JSON.stringify({
      user_id: ALICE,
      sender: "ci-bot",
      title: "Deploy finished",
      body: "api v2.4.1 is live in eu-west-1",
    }),
  });
  assert.equal(response.status, 201);
  first = (await response.json()).notification;
  assert.equal(first.sender, "ci-bot");
  for (const page of [a1, a2]) {
    await badge(page, 1);
    const text = await toast(page, first.id);
    assert.match(text, /Deploy finished/);
    assert.match(text, /From ci-bot/);
    await inboxItem(page, first.id, { read: false });
    assert.match(await page.textContent(`#inbox-list li[data-id="${first.id}"]`), /From ci-bot/);
    assert.equal(await page.getAttribute("#bell-button", "aria-label"), "Notifications, 1 unread");
    assert.equal(await page.getAttribute("#toasts", "aria-live"), "polite");
  }
  await screenshot(a1, "notifications-2-toast-alice");

  // Bob's tab is subscribed to his own topic only. A barrier shows alice's never came: bob's own
  // notification, sent after hers, must arrive alone.
  const bobs = await notify(demo, BOB, "Review requested", "alice asked you to review #318");
  await toast(b, bobs.id);
  await badge(b, 1);
  assert.deepEqual(await inboxIds(b), [bobs.id]);
  assert.equal(await b.locator("#toasts .toast").count(), 1);
  await screenshot(b, "notifications-3-bob-sees-only-his");
});

let second;
test("marking one read in one tab updates the other, and so does mark all read", async () => {
  second = await notify(demo, ALICE, "New comment on #318", "bob: looks good, one nit about naming");
  await Promise.all([badge(a1, 2), badge(a2, 2)]);

  await a1.click("#bell-button");
  await a1.waitForSelector("#inbox", { state: "visible" });
  assert.equal(await a1.getAttribute("#bell-button", "aria-expanded"), "true");
  assert.deepEqual(await inboxIds(a1), [second.id, first.id], "newest first");
  await screenshot(a1, "notifications-4-dropdown");

  await a1.click(`#inbox-list li[data-id="${first.id}"] button.mark-read`);
  for (const page of [a1, a2]) {
    await inboxItem(page, first.id, { read: true });
    await badge(page, 1);
  }
  await inboxItem(a2, second.id, { read: false });
  await a2.click("#bell-button");
  await a2.waitForSelector("#inbox", { state: "visible" });
  await screenshot(a2, "notifications-5-other-tab-after-mark-read");

  await a2.click("#mark-all");
  for (const page of [a1, a2]) {
    await badge(page, 0);
    await inboxItem(page, second.id, { read: true });
  }
  assert.equal(await a1.isDisabled("#mark-all"), true);
  await a2.keyboard.press("Escape");
  await a2.waitForSelector("#inbox", { state: "hidden" });
  assert.equal(await a2.evaluate(() => document.activeElement?.id), "bell-button");
  await a1.keyboard.press("Escape");
});

let missed;
test("after a server restart the tabs reconnect and get what was stored meanwhile, without a reload", async () => {
  for (const page of [a1, a2, b]) await page.evaluate(() => (window.loadedOnce = true));
  const port = demo.port;

  await demo.stop();
  for (const page of [a1, a2, b]) await connectionState(page, "reconnecting");
  assert.equal(await a1.textContent("#connection .connection-text"), "Reconnecting…");
  await screenshot(a1, "notifications-6-reconnecting");

  // Store a notification while the pages cannot connect: through a second server on another port
  // over the same data directory, stopped before the real one comes back.
  const side = await startDemo({ dataDir });
  try {
    missed = await notify(side, ALICE, "Backup completed", "nightly snapshot: 2.3 GB in 41 s");
  } finally {
    await side.stop();
  }

  demo = await startDemo({ dataDir, port });
  assert.equal(demo.port, port);
  for (const page of [a1, a2]) {
    await connectionState(page, "online");
    await inboxItem(page, missed.id, { read: false });
    await badge(page, 1);
    assert.match(await toast(page, missed.id), /Backup completed/);
    assert.deepEqual(await inboxIds(page), [missed.id, second.id, first.id]);
    assert.equal(await page.evaluate(() => window.loadedOnce), true, "the page was not reloaded");
  }
  await screenshot(a1, "notifications-7-back-online-caught-up");

  // Bob's tab is back too, and still sees only his own.
  await connectionState(b, "online");
  const bobs = await notify(demo, BOB, "Standup in 5 minutes", "");
  await toast(b, bobs.id);
  assert.equal((await inboxIds(b)).includes(missed.id), false);
  await badge(b, 2);
});

test("deleting in one tab removes it from the other; the unread count follows", async () => {
  const extra = await notify(demo, ALICE, "Flaky test quarantined", "");
  await Promise.all([badge(a1, 2), badge(a2, 2)]);
  await a1.click("#bell-button");
  await a1.waitForSelector("#inbox", { state: "visible" });
  await a1.click(`#inbox-list li[data-id="${extra.id}"] button.delete-notification`);
  for (const page of [a1, a2]) {
    await noInboxItem(page, extra.id);
    await badge(page, 1);
  }
  // A read one goes without changing the count.
  await a1.click(`#inbox-list li[data-id="${first.id}"] button.delete-notification`);
  for (const page of [a1, a2]) {
    await noInboxItem(page, first.id);
    await badge(page, 1);
    assert.deepEqual(await inboxIds(page), [missed.id, second.id]);
  }
  await screenshot(a1, "notifications-8-after-delete");
  await a1.keyboard.press("Escape");
});

test("rows written with the sqlite3 shell show up live: insert, read mark, delete", async () => {
  sqlite(`INSERT INTO notifications (user_id, sender, title, body, inserted_at)
    VALUES ('${ALICE}', 'shell', 'Written by hand', 'from the sqlite3 shell', ${Date.now()})`);
  let id;
  for (const page of [a1, a2]) {
    await badge(page, 2);
    const element = await page.waitForSelector("#toasts .toast:has-text('Written by hand')");
    id = Number(await element.getAttribute("data-id"));
    assert.match(await element.textContent(), /From shell/);
  }
  sqlite(`UPDATE notifications SET read_at = ${Date.now()} WHERE id = ${id}`);
  for (const page of [a1, a2]) {
    await inboxItem(page, id, { read: true });
    await badge(page, 1);
  }
  sqlite(`DELETE FROM notifications WHERE id = ${id}`);
  for (const page of [a1, a2]) await noInboxItem(page, id);
  // Bob's tab saw none of it.
  assert.equal((await inboxIds(b)).includes(id), false);
});

test("the rejoin after the restart resumed from the position the tab had reached", () => {
  // The first join knew nothing; the channel's params function is called again for the rejoin
  // (as phoenix.js does), which names the last position seen before the restart.
  assert.ok(aliceJoins.length >= 2, `joins seen: ${JSON.stringify(aliceJoins)}`);
  assert.deepEqual(aliceJoins[0], {});
  assert.match(aliceJoins.at(-1).since, /^[0-9a-f]{12}-\d+$/);
});

test("no page threw", () => {
  for (const page of [a1, a2, b]) assert.deepEqual(page.errors, []);
});
