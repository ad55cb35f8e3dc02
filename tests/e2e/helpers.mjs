// Shared machinery of the browser tests: the demo server as a child process (restartable on the
// same port and data directory), headless Chromium through playwright-core, pages logged in as a
// user, and screenshots under target/e2e/.
//
// Nothing here waits a fixed time: every wait is on an event or a DOM condition, under a deadline.

import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before } from "node:test";

import { chromium } from "playwright-core";

import { REPO_ROOT, deadline, spawnDemo } from "../support/process.mjs";

export { REPO_ROOT, deadline };

/** Where screenshots go (under `target/`, never committed). */
export const SCREENSHOT_DIR = path.join(REPO_ROOT, "target", "e2e");
/** The API key the tests give the demo through `ALIGHT_API_KEY`. */
export const API_KEY = "e2e-test-api-key";
/** How long one wait may take before it fails the test (the machine is small and shared). */
export const WAIT_MS = 15000;

const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];


/** A fresh temporary data directory; `removeDataDir` deletes it. */
export function tempDataDir() {
  return mkdtempSync(path.join(os.tmpdir(), "alight-e2e-"));
}

export function removeDataDir(dir) {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Starts the demo on `127.0.0.1:<port>` (0: any free port) with its data in `dataDir`, and
 * resolves once it printed the URL it serves. `stop()` sends SIGTERM (a graceful shutdown: sockets
 * close with 1012) and resolves once it exited.
 */
export async function startDemo({ dataDir, port = 0 }) {
  const server = await spawnDemo({ dataDir, port, apiKey: API_KEY });
  return {
    port: server.port,
    url: `http://127.0.0.1:${server.port}`,
    stop: () => server.stop(),
  };
}

/** `POST /api/notifications` with the API key; resolves with the stored notification. */
export async function notify(demo, userId, title, body = "") {
  const response = await fetch(`${demo.url}/api/notifications`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${API_KEY}` },
    body: JSON.stringify({ user_id: userId, title, body }),
  });
  const answer = await response.json();
  if (response.status !== 201) {
    throw new Error(`POST /api/notifications answered ${response.status}: ${JSON.stringify(answer)}`);
  }
  return answer.notification;
}

/** Headless Chromium (`/usr/bin/chromium` unless `CHROMIUM` says otherwise). */
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: CHROMIUM_ARGS,
  });
}

/**
 * Opens `pathAndQuery` of the demo in a new tab of `context` and records the page's uncaught
 * errors in `page.errors` (tests assert it stays empty). `setup(page)` runs before the page
 * loads (to listen to its WebSockets, say). Waits until the connection indicator says online,
 * unless `waitOnline` is false.
 */
export async function openPage(context, demo, pathAndQuery, { waitOnline = true, setup } = {}) {
  const page = await context.newPage();
  setup?.(page);
  page.setDefaultTimeout(WAIT_MS);
  page.errors = [];
  page.on("pageerror", (err) => page.errors.push(err.message));
  page.on("console", (message) => {
    if (message.type() === "error" && process.env.ALIGHT_E2E_CONSOLE) {
      console.error(`[page console] ${message.text()}`);
    }
  });
  await page.goto(`${demo.url}${pathAndQuery}`);
  if (waitOnline) await connectionState(page, "online");
  return page;
}

/** Waits until the page's connection indicator shows `state`. */
export function connectionState(page, state) {
  return page.waitForSelector(`#connection[data-state="${state}"]`);
}

/**
 * Records the payload of every `phx_join` that `page` sends on `topic`, into `joins`.
 * Call it from `openPage`'s `setup`, so that the first join is recorded too.
 */
export function recordJoins(page, topic, joins) {
  page.on("websocket", (ws) =>
    ws.on("framesent", ({ payload }) => {
      let frame = null;
      try {
        frame = typeof payload === "string" ? JSON.parse(payload) : null;
      } catch {
        // Not a JSON frame: not a join.
      }
      if (Array.isArray(frame) && frame[2] === topic && frame[3] === "phx_join") joins.push(frame[4]);
    }),
  );
}

/** A new browser context (its own storage, like a separate browser profile) of 1100×720. */
export function newContext(browser, options = {}) {
  return browser.newContext({ viewport: { width: 1100, height: 720 }, ...options });
}

/** Saves a screenshot of `page` as `target/e2e/<name>.png` (animations run to their end). */
export async function screenshot(page, name) {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`), animations: "disabled" });
}

/**
 * For a test file on one demo and one browser: before its tests, starts the demo on a fresh data
 * folder and launches Chromium, and hands the three to `onStart`; after them, closes the browser,
 * stops the demo and removes the folder.
 */
export function demoAndBrowserPerFile(onStart) {
  const started = {};
  before(async () => {
    started.dataDir = tempDataDir();
    started.demo = await startDemo({ dataDir: started.dataDir });
    started.browser = await launchBrowser();
    onStart(started);
  });
  after(async () => {
    await started.browser?.close();
    await started.demo?.stop();
    if (started.dataDir) removeDataDir(started.dataDir);
  });
}
