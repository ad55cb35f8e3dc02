// Loads the package's browser entry (index.js) in headless Chromium with playwright-core
// (browser-entry.mjs) against the fixture server; the tests of js-tests/browser/ cover the client's
// behaviour in Chromium.
//
// Run with: node client-wasm/js-tests/run-browser-tests.mjs   (scripts/test-client does)
//
// Starts target/debug/conformance-server; exits non-zero if the page does not get its reply;
// stops the server either way.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { REPO_ROOT, startServer } from "../../tests/node/helpers.mjs";
import { checkBrowserEntry } from "./browser-entry.mjs";

const chromium = process.env.CHROMIUM ?? "/usr/bin/chromium";

const scratch = mkdtempSync(path.join(tmpdir(), "alight-browser-"));
const server = await startServer();

let status = 0;
try {
  console.log("run-browser-tests: the package's browser entry (index.js) in Chromium");
  const pkg = path.join(REPO_ROOT, "client-wasm", "pkg");
  const result = await checkBrowserEntry(pkg, server.socketUrl, chromium, path.join(scratch, "entry-profile"));
  const expected = JSON.stringify({ state: "joined", response: { hello: "from the page" } });
  if (JSON.stringify(result) === expected) {
    console.log(`run-browser-tests: index.js ok: ${JSON.stringify(result)}`);
  } else {
    console.error(`run-browser-tests: index.js gave ${JSON.stringify(result)}, expected ${expected}`);
    status = 1;
  }
} finally {
  await server.stop();
  rmSync(scratch, { recursive: true, force: true });
}
process.exit(status);
