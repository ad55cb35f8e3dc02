// Run with: node bench/node/page-weight.mjs   (after scripts/build-client)
//
// The page weight of the client README's example app, bundled for the browser as an app would
// ship it (esbuild: ESM, es2022, minified, gzip -9), with @alight/client (client-wasm/pkg, its
// .wasm fetched beside the bundle) and with phoenix.js (the `phoenix` npm package, whose Presence
// comes with it). Prints one line per client; the numbers go to bench/README.md.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

import { build } from "esbuild";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const pkg = path.join(root, "client-wasm", "pkg");

// The README's example, with Presence as a page with a member list has it.
const app = (from) => `
import { Socket, Presence } from ${JSON.stringify(from)};
const socket = new Socket("/socket", { params: { token: window.userToken } });
socket.connect();
const channel = socket.channel("room:lobby", {});
channel.on("new_msg", (payload) => console.log("new message", payload));
const presence = new Presence(channel);
presence.onSync(() => console.log(presence.list()));
channel.join()
  .receive("ok", () => channel.push("new_msg", { body: "hello" }))
  .receive("error", ({ reason }) => console.log("join refused", reason));
`;

const gz = (bytes) => gzipSync(bytes, { level: 9 }).length;

async function weigh(name, from, assets = []) {
  const dir = mkdtempSync(path.join(tmpdir(), "page-weight-"));
  try {
    const entry = path.join(dir, "app.js");
    writeFileSync(entry, app(from));
    const out = path.join(dir, "out.js");
    await build({
      entryPoints: [entry],
      bundle: true,
      format: "esm",
      target: "es2022",
      minify: true,
      outfile: out,
      logLevel: "error",
      nodePaths: [path.join(root, "node_modules")],
    });
    const js = readFileSync(out);
    const sizes = [["app bundle", js.length, gz(js)]];
    for (const asset of assets) {
      const bytes = readFileSync(asset);
      sizes.push([path.basename(asset), bytes.length, gz(bytes)]);
    }
    const total = sizes.reduce((sum, [, , g]) => sum + g, 0);
    const parts = sizes.map(([what, b, g]) => `${what} ${b} B (${g} gz)`).join(", ");
    console.log(`${name}: ${total} bytes gzipped: ${parts}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await weigh("@alight/client", path.join(pkg, "index.js"), [path.join(pkg, "alight_client_bg.wasm")]);
await weigh("phoenix.js", "phoenix");
