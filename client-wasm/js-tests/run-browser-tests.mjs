// Runs client-wasm/tests/web.rs (wasm-bindgen-test) in headless Chromium against real servers.
//
// Run with: node client-wasm/js-tests/run-browser-tests.mjs   (scripts/test-client does)
//
// Starts target/debug/conformance-server and a `ws` server that accepts and never answers, passes
// their URLs to the test build (ALIGHT_TEST_SERVER, ALIGHT_TEST_HTTP, ALIGHT_SILENT_SERVER, read
// with option_env!), and runs `cargo test -p alight-client --target wasm32-unknown-unknown --test
// web` through wasm-bindgen-test-runner with chromedriver and Chromium's flags for running as
// root in a container (webdriver.json, in a temporary directory with a fresh profile).
// Then loads the package's browser entry (index.js) in Chromium with playwright-core
// (browser-entry.mjs). Exits non-zero if either fails; stops the servers either way.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { WebSocketServer } from "ws";

import { REPO_ROOT, startServer } from "../../tests/node/helpers.mjs";
import { CHROMIUM_ARGS, checkBrowserEntry } from "./browser-entry.mjs";

const chromium = process.env.CHROMIUM ?? "/usr/bin/chromium";
const chromedriver = process.env.CHROMEDRIVER ?? "/usr/bin/chromedriver";

const scratch = mkdtempSync(path.join(tmpdir(), "alight-browser-"));
const webdriverJson = path.join(scratch, "webdriver.json");
writeFileSync(
  webdriverJson,
  JSON.stringify({
    "goog:chromeOptions": {
      binary: chromium,
      args: [...CHROMIUM_ARGS, `--user-data-dir=${path.join(scratch, "profile")}`],
    },
  }),
);

const server = await startServer();
// Accepts (answering the `phoenix` subprotocol), then never sends anything.
const silent = new WebSocketServer({
  host: "127.0.0.1",
  port: 0,
  handleProtocols: (protocols) => (protocols.has("phoenix") ? "phoenix" : false),
});
await new Promise((resolve, reject) => {
  silent.once("listening", resolve);
  silent.once("error", reject);
});

let status = 1;
try {
  const env = {
    ...process.env,
    PATH: `${process.env.HOME}/.cargo/bin:${process.env.PATH}`,
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER: "wasm-bindgen-test-runner",
    CHROMEDRIVER: chromedriver,
    WASM_BINDGEN_TEST_WEBDRIVER_JSON: webdriverJson,
    WASM_BINDGEN_TEST_TIMEOUT: process.env.WASM_BINDGEN_TEST_TIMEOUT ?? "60",
    // The page fetches the fixture's test-only HTTP route; no cross-origin isolation needed.
    WASM_BINDGEN_TEST_NO_ORIGIN_ISOLATION: "1",
    ALIGHT_TEST_SERVER: server.socketUrl,
    ALIGHT_TEST_HTTP: server.httpUrl,
    ALIGHT_SILENT_SERVER: `ws://127.0.0.1:${silent.address().port}/socket`,
    ALIGHT_BROWSER_SERVERS_REQUIRED: "1",
  };
  const args = ["test", "-p", "alight-client", "--target", "wasm32-unknown-unknown", "--test", "web"];
  console.log(`run-browser-tests: cargo ${args.join(" ")} (Chromium ${chromium})`);
  const cargo = spawn("cargo", args, { cwd: REPO_ROOT, env, stdio: "inherit" });
  status = await new Promise((resolve) => cargo.on("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0))));

  console.log("run-browser-tests: the package's browser entry (index.js) in Chromium");
  const pkg = path.join(REPO_ROOT, "client-wasm", "pkg");
  const result = await checkBrowserEntry(pkg, server.socketUrl, chromium, path.join(scratch, "entry-profile"));
  const expected = JSON.stringify({ state: "joined", response: { hello: "from the page" } });
  if (JSON.stringify(result) === expected) {
    console.log(`run-browser-tests: index.js ok: ${JSON.stringify(result)}`);
  } else {
    console.error(`run-browser-tests: index.js gave ${JSON.stringify(result)}, expected ${expected}`);
    status ||= 1;
  }
} finally {
  for (const client of silent.clients) client.terminate();
  await new Promise((resolve) => silent.close(resolve));
  await server.stop();
  rmSync(scratch, { recursive: true, force: true });
}
process.exit(status);
