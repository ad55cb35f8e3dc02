// The package's browser entry (index.js: top-level await, the .wasm fetched beside it) in headless
// Chromium: a page imports `Socket` from it as an application would, joins a channel of the
// fixture server and gets a reply. The Node tests cannot cover this entry (Node's fetch has no
// file: URLs).
//
// Run with: node client-wasm/js-tests/browser-entry.mjs <pkg dir> <ws://…/socket>
// (run-browser-tests.mjs does, with the fixture server it started).

import { readFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";

import { chromium } from "playwright-core";

import { deadline } from "../../tests/node/helpers.mjs";

export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

const PAGE = (socketUrl) => `<!doctype html>
<script type="module">
  import { Socket } from "./index.js";
  const socket = new Socket(${JSON.stringify(socketUrl)}, { params: { from: "page" } });
  socket.connect();
  const channel = socket.channel("room:entry", {});
  channel.join().receive("ok", () => {
    channel.push("ping", { hello: "from the page" }).receive("ok", (response) => {
      window.result = { state: channel.state, response };
      socket.disconnect();
    });
  });
</script>`;

const TYPES = { ".js": "text/javascript", ".wasm": "application/wasm", ".html": "text/html" };

/** Serves `pkgDir` and the test page on 127.0.0.1; resolves with the server and its URL. */
async function serve(pkgDir, socketUrl) {
  const server = http.createServer(async (req, res) => {
    const name = new URL(req.url, "http://x").pathname.slice(1) || "index.html";
    try {
      const body =
        name === "index.html" ? PAGE(socketUrl) : await readFile(path.join(pkgDir, path.basename(name)));
      res.writeHead(200, { "content-type": TYPES[path.extname(name)] ?? "application/octet-stream" });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${server.address().port}/` };
}

/** Loads the page in Chromium and resolves with what it reports (throws on a page error). */
export async function checkBrowserEntry(pkgDir, socketUrl, executablePath, userDataDir) {
  const { server, url } = await serve(pkgDir, socketUrl);
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
  });
  try {
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (error) => errors.push(error.message));
    await page.goto(url);
    const result = await deadline(
      page.waitForFunction(() => window.result, null, { timeout: 0 }).then((h) => h.jsonValue()),
      10_000,
      () => `the page to join and get a reply (page errors: ${errors.join("; ") || "none"})`,
    );
    if (errors.length > 0) throw new Error(`page errors: ${errors.join("; ")}`);
    return result;
  } finally {
    await context.close();
    server.close();
  }
}
