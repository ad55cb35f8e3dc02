// Run with: node bench/node/first-load.mjs   (after scripts/build-client and cargo build -p alight-demo)
//
// The demo's cold first load as a browser sees it: a fresh headless Chromium profile (empty
// cache) opens `/?user=alice` and `/room?name=lobby&user=alice` until the connection indicator
// says online and the bell follows its shape, and every response's bytes over the wire (headers and body as received,
// compressed if it was: CDP `Network.loadingFinished.encodedDataLength`) are summed, with the
// body bytes after decoding beside them. Then the same page is loaded again in the same tab (a
// warm load: what the cache headers save). Prints one line per load; the numbers go to
// bench/README.md.

import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

import { chromium } from "playwright-core";

import { spawnDemo } from "../../tests/support/process.mjs";

const PAGES = ["/?user=alice", "/room?name=lobby&user=alice"];

/** Loads `url` in `page` until online; resolves with `{requests, wire, decoded, byType}`. */
async function measure(page, cdp, url) {
  const sizes = new Map();
  const types = new Map();
  const onResponse = ({ requestId, type }) => types.set(requestId, type);
  const onData = ({ requestId, dataLength }) =>
    sizes.set(requestId, { ...(sizes.get(requestId) ?? { wire: 0 }), decoded: (sizes.get(requestId)?.decoded ?? 0) + dataLength });
  const onFinished = ({ requestId, encodedDataLength }) =>
    sizes.set(requestId, { decoded: 0, ...sizes.get(requestId), wire: encodedDataLength });
  cdp.on("Network.responseReceived", onResponse);
  cdp.on("Network.dataReceived", onData);
  cdp.on("Network.loadingFinished", onFinished);
  await page.goto(url);
  await page.waitForSelector('#connection[data-state="online"]', { timeout: 30000 });
  // The bell follows the Electric shape once the page is up; it is loaded when the shape is live.
  // Its live request stays open; what it received so far counts.
  await page.waitForSelector('#bell[data-shape="live"]', { timeout: 30000 });
  cdp.off("Network.responseReceived", onResponse);
  cdp.off("Network.dataReceived", onData);
  cdp.off("Network.loadingFinished", onFinished);
  let wire = 0;
  let decoded = 0;
  const byType = {};
  for (const [id, size] of sizes) {
    wire += size.wire;
    decoded += size.decoded;
    const type = types.get(id) ?? "Other";
    byType[type] = (byType[type] ?? 0) + size.wire;
  }
  return { requests: sizes.size, wire, decoded, byType };
}

const dataDir = mkdtempSync(path.join(os.tmpdir(), "alight-first-load-"));
const demo = await spawnDemo({ dataDir, apiKey: "first-load" });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic"],
});
try {
  for (const pagePath of PAGES) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    const url = `http://127.0.0.1:${demo.port}${pagePath}`;
    for (const load of ["cold", "warm"]) {
      const { requests, wire, decoded, byType } = await measure(page, cdp, url);
      console.log(
        `${pagePath} ${load}: ${requests} responses, ${wire} bytes over the wire ` +
          `(${decoded} decoded) ${JSON.stringify(byType)}`,
      );
    }
    await context.close();
  }
} finally {
  await browser.close();
  await demo.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
