// The live table page (`/live`): the stock `@electric-sql/client` in Chromium against the demo's
// `GET /v1/shape?table=notifications`. Rows appear, change and disappear in place whether the
// write comes from the API, the page's own form, or the `sqlite3` shell on the demo's database.
//
// Build first: `cargo build -p alight-demo` (the page needs no wasm client; it needs `npm ci` for
// node_modules/@electric-sql/client). Screenshots: target/e2e/.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { after, test } from "node:test";

import {
  demoAndBrowserPerFile,
  newContext,
  notify,
  openPage,
  screenshot,
  WAIT_MS,
} from "./helpers.mjs";

let dataDir;
let demo;
let browser;
demoAndBrowserPerFile((started) => ({ dataDir, demo, browser } = started));

/** Runs `sql` with the sqlite3 shell on the demo's database; false if there is no shell. */
function sqlite3(sql) {
  return new Promise((resolve, reject) => {
    const child = spawn("sqlite3", ["-cmd", ".timeout 5000", path.join(dataDir, "alight.db"), sql]);
    child.on("error", (err) => (err.code === "ENOENT" ? resolve(false) : reject(err)));
    child.on("exit", (code) => (code === 0 ? resolve(true) : reject(new Error(`sqlite3 exited ${code}`))));
  });
}

const rowTitles = (page) => page.$$eval("#rows tr td:nth-child(3)", (tds) => tds.map((td) => td.textContent));

test("the live table shows the user's rows and follows inserts, updates and deletes", async (t) => {
  await notify(demo, "alice", "first for alice");
  await notify(demo, "bob", "for bob only");
  const context = await newContext(browser);
  t.after(() => context.close());
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  const errors = [];
  page.on("pageerror", (err) => errors.push(err.message));
  await page.goto(`${demo.url}/live?user=alice`);
  await page.waitForSelector('#sync-state[data-state="live"]');
  await page.waitForFunction(() => document.querySelectorAll("#rows tr").length === 1);
  assert.deepEqual(await rowTitles(page), ["first for alice"]);

  // An insert through the API, and one from the page's form.
  await notify(demo, "alice", "second for alice");
  await page.waitForFunction(() => document.querySelectorAll("#rows tr").length === 2);
  await page.fill("#add-title", "from the page");
  await page.press("#add-title", "Enter");
  await page.waitForFunction(() => document.querySelectorAll("#rows tr").length === 3);
  await screenshot(page, "live-1-rows");

  // An update and a delete from another process.
  if (await sqlite3("UPDATE notifications SET read_at = 1 WHERE title = 'first for alice';")) {
    await page.waitForSelector('#rows tr[data-read="true"]');
    await sqlite3("DELETE FROM notifications WHERE title = 'second for alice';");
    await page.waitForFunction(() => document.querySelectorAll("#rows tr").length === 2);
    assert.deepEqual(await rowTitles(page), ["first for alice", "from the page"]);
  }
  assert.ok(!(await rowTitles(page)).includes("for bob only"));
  assert.deepEqual(errors, []);
});

test("the live table has the same top bar as the other pages, keeping the user in its links", async (t) => {
  const context = await newContext(browser);
  t.after(() => context.close());
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  await page.goto(`${demo.url}/live?user=alice`);
  await page.waitForSelector('#sync-state[data-state="live"]');
  const links = await page.$$eval("header.topbar nav a", (as) =>
    as.map((a) => [a.textContent, new URL(a.href).pathname + new URL(a.href).search, a.getAttribute("aria-current")]),
  );
  assert.deepEqual(links, [
    ["Notifications", "/?user=alice", null],
    ["Rooms", "/room?name=lobby&user=alice", null],
    ["Live table", "/live?user=alice", "page"],
  ]);
  assert.equal(await page.textContent("#user-chip .user-name"), "alice");
});

test("the bell shows a notification written with the sqlite3 shell, and its read mark", async (t) => {
  const context = await newContext(browser);
  t.after(() => context.close());
  const page = await openPage(context, demo, "/?user=carol");
  // The bell applies the shape's changes once it is live (`data-shape` says so).
  await page.waitForSelector('#bell[data-shape="live"]', { state: "attached" });
  const inserted = await sqlite3(
    "INSERT INTO notifications (user_id, title, body, inserted_at) " +
      "VALUES ('carol', 'from the shell', '', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));",
  );
  if (!inserted) {
    // CI installs it (scripts/setup): there a missing shell is a failure, not a skip.
    assert.ok(!process.env.CI, "the sqlite3 shell is not installed (scripts/setup installs it)");
    t.skip("the sqlite3 shell is not installed (scripts/setup installs it)");
    return;
  }
  await page.waitForSelector("#toasts .toast", { state: "attached" });
  await page.waitForFunction(() => document.getElementById("badge").textContent === "1");
  assert.match(await page.textContent("#toasts"), /from the shell/);
  await sqlite3("UPDATE notifications SET read_at = 1 WHERE title = 'from the shell';");
  await page.waitForFunction(() => document.getElementById("badge").hidden);
  await screenshot(page, "live-2-bell-from-shell");
  assert.deepEqual(page.errors, []);
});
