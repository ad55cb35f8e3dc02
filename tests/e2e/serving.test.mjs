// How the demo serves its pages and files (demo/src/assets.rs): compressed for a browser that
// accepts it, the .wasm as application/wasm, `Cache-Control: no-cache` with `Last-Modified`, so
// that a second load revalidates (304, no body) instead of downloading again or running stale
// modules.
//
// Build first: `cargo build -p alight-demo` and `scripts/build-client`.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  demoAndBrowserPerFile,
  newContext,
  openPage,
} from "./helpers.mjs";

let dataDir;
let demo;
let browser;
demoAndBrowserPerFile((started) => ({ dataDir, demo, browser } = started));

/** The response headers of `GET path` sent with `headers` (the body is read and dropped). */
async function get(path, headers = {}) {
  const response = await fetch(new URL(path, demo.url), { headers });
  await response.arrayBuffer();
  return response;
}

test("Chromium gets the page, its scripts and the .wasm compressed, with no-cache", async () => {
  const context = await newContext(browser);
  const seen = [];
  const page = await openPage(context, demo, "/?user=alice", {
    setup: (page) =>
      page.on("response", async (response) => {
        const url = new URL(response.url());
        if (url.pathname.startsWith("/socket") || url.pathname.startsWith("/v1/") || url.pathname.startsWith("/api/")) return;
        seen.push({ path: url.pathname, status: response.status(), headers: await response.allHeaders() });
      }),
  });
  const paths = seen.map(({ path }) => path);
  for (const expected of ["/", "/static/style.css", "/static/app.js", "/pkg/index.js", "/pkg/alight_client_bg.wasm"]) {
    assert.ok(paths.includes(expected), `${expected} was loaded: ${paths.join(", ")}`);
  }
  for (const { path, status, headers } of seen) {
    assert.equal(status, 200, path);
    // Chromium accepts brotli; every text file and the .wasm is worth compressing.
    assert.equal(headers["content-encoding"], "br", `${path} is compressed`);
    assert.equal(headers["cache-control"], "no-cache", `${path} is revalidated`);
    assert.ok(headers["last-modified"], `${path} has a validator`);
  }
  const wasm = seen.find(({ path }) => path === "/pkg/alight_client_bg.wasm");
  assert.equal(wasm.headers["content-type"], "application/wasm");
  assert.deepEqual(page.errors, []);
  await context.close();
});

test("gzip for a client without brotli, identity for one without either, 304 on revalidation", async () => {
  const gzip = await get("/pkg/alight_client_bg.wasm", { "accept-encoding": "gzip" });
  assert.equal(gzip.status, 200);
  assert.equal(gzip.headers.get("content-encoding"), "gzip");
  assert.equal(gzip.headers.get("content-type"), "application/wasm");
  assert.match(gzip.headers.get("vary") ?? "", /accept-encoding/i);

  const plain = await get("/static/style.css", { "accept-encoding": "identity" });
  assert.equal(plain.status, 200);
  assert.equal(plain.headers.get("content-encoding"), null);
  assert.equal(plain.headers.get("cache-control"), "no-cache");

  const lastModified = plain.headers.get("last-modified");
  const again = await get("/static/style.css", { "if-modified-since": lastModified });
  assert.equal(again.status, 304);
});

test("the API is not given the static files' cache header", async () => {
  const health = await get("/healthz");
  assert.notEqual(health.headers.get("cache-control"), "no-cache");
});
