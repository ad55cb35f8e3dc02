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

test("no page threw", () => {
  for (const page of [alice, bob]) assert.deepEqual(page.errors, []);
});
