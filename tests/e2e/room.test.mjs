// The room page in headless Chromium: alice and bob open `/room?name=lobby` (each joins
// `room:lobby` with `{name}`), see each other in the presence list, and a chat message from one
// appears in both. A second tab of alice is one entry with two tabs; closing bob's tab takes him
// off alice's list.
//
// Build first: `cargo build -p alight-demo` and `scripts/build-client`. Screenshots: target/e2e/.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
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
let alice;
let bob;

before(async () => {
  dataDir = tempDataDir();
  demo = await startDemo({ dataDir });
  browser = await launchBrowser();
  [alice, bob] = await Promise.all([
    newContext(browser).then((context) => openPage(context, demo, "/room?name=lobby&user=alice")),
    newContext(browser).then((context) => openPage(context, demo, "/room?name=lobby&user=bob")),
  ]);
});

after(async () => {
  await browser?.close();
  await demo?.stop();
  if (dataDir) removeDataDir(dataDir);
});

/** Waits until the presence list of `page` names exactly `names` (sorted). */
function members(page, names) {
  return page.waitForFunction(
    (names) =>
      JSON.stringify([...document.querySelectorAll("#members li")].map((li) => li.dataset.name)) ===
        JSON.stringify(names) &&
      document.getElementById("members-count").textContent === String(names.length),
    names,
  );
}

/** Waits until the chat log of `page` holds a message `body` from `user`. */
function message(page, user, body) {
  return page.waitForFunction(
    ({ user, body }) =>
      [...document.querySelectorAll("#messages .message")].some(
        (item) =>
          item.querySelector(".message-author").textContent.startsWith(user) &&
          item.querySelector(".message-body").textContent === body,
      ),
    { user, body },
  );
}

async function send(page, body) {
  await page.fill("#chat-input", body);
  await page.press("#chat-input", "Enter");
}

test("both members see each other in the presence list", async () => {
  for (const page of [alice, bob]) {
    await members(page, ["alice", "bob"]);
    assert.equal(await page.textContent("#room-title"), "lobby");
  }
  assert.equal(await alice.textContent('#members li[data-name="alice"] .tag'), "you");
  assert.equal(await bob.textContent('#members li[data-name="bob"] .tag'), "you");
});

test("a chat message from one member appears in both tabs", async () => {
  await send(alice, "Morning! Deploy is done, anyone seeing errors?");
  for (const page of [alice, bob]) {
    await message(page, "alice", "Morning! Deploy is done, anyone seeing errors?");
  }
  // The composer clears once the server acknowledged the message.
  await alice.waitForFunction(() => document.getElementById("chat-input").value === "");
  await send(bob, "Ça roule, rien dans les logs.");
  for (const page of [alice, bob]) await message(page, "bob", "Ça roule, rien dans les logs.");
  assert.equal(await alice.locator("#messages .message.mine").count(), 1);
  await screenshot(alice, "room-1-alice");
  await screenshot(bob, "room-2-bob");
});

test("a second tab of the same name is one member with two tabs; a closed tab leaves", async () => {
  const second = await openPage(alice.context(), demo, "/room?name=lobby&user=alice");
  await alice.waitForSelector('#members li[data-name="alice"] .member-tabs');
  assert.equal(await alice.textContent('#members li[data-name="alice"] .member-tabs'), "2 tabs");
  await members(second, ["alice", "bob"]);
  await second.close();
  await alice.waitForSelector('#members li[data-name="alice"] .member-tabs', { state: "detached" });

  await bob.close();
  await members(alice, ["alice"]);
  await screenshot(alice, "room-3-after-bob-left");
});

test("at 375 px the room fits the screen and the top bar takes two rows", async () => {
  const context = await newContext(browser, { viewport: { width: 375, height: 740 } });
  const phone = await openPage(context, demo, "/room?name=a-rather-long-room-name&user=frank");
  await send(phone, "hello from a phone");
  await message(phone, "frank", "hello from a phone");
  const layout = await phone.evaluate(() => {
    const box = (selector) => document.querySelector(selector).getBoundingClientRect();
    const [brand, end, nav] = [".brand", ".topbar-end", ".nav"].map(box);
    return {
      scrollWidth: document.documentElement.scrollWidth,
      clientWidth: document.documentElement.clientWidth,
      // The brand and the user's controls share the first row; the links are the second.
      firstRowShared: brand.top < end.bottom && end.top < brand.bottom,
      navBelow: nav.top >= Math.max(brand.bottom, end.bottom) - 1,
      goRight: box("#room-form button").right,
    };
  });
  assert.equal(layout.scrollWidth, layout.clientWidth, "nothing scrolls sideways");
  assert.equal(layout.firstRowShared, true, "the brand and the controls share a row");
  assert.equal(layout.navBelow, true, "the page links are the second row");
  assert.ok(layout.goRight <= 375, `the Go button ends at ${layout.goRight}px`);
  await screenshot(phone, "room-4-375px");
  assert.deepEqual(phone.errors, []);
  await context.close();
});

test("a \"Not sent\" from while the server was away goes once the room is joined again", async () => {
  const context = await newContext(browser);
  const page = await openPage(context, demo, "/room?name=stale&user=gina");
  await demo.stop();
  await page.waitForSelector('#connection[data-state="reconnecting"]');
  // The push waits for the connection, then times out (the client's 10 s default).
  await send(page, "anyone there?");
  await page.waitForSelector("#chat-status", { state: "visible", timeout: 20000 });
  assert.match(await page.textContent("#chat-status"), /^Not sent/);

  demo = await startDemo({ dataDir, port: demo.port });
  await page.waitForSelector('#connection[data-state="online"]');
  await page.waitForSelector("#chat-status", { state: "hidden" });
  assert.deepEqual(page.errors, []);
  await context.close();
});

test("no page threw", () => {
  for (const page of [alice, bob]) assert.deepEqual(page.errors, []);
});
