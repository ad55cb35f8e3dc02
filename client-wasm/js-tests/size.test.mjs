// The package's weight: what a page that uses every feature of @alight/client downloads (the
// wasm; web.js with the API, Presence and LiveCollection; the main entry index.js and the
// `@alight/client/live` entry over it), each gzipped at level 9 as the build reports it, stays
// within its budget.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { test } from "node:test";
import { gzipSync } from "node:zlib";

const require = createRequire(import.meta.url);
const packageDir = path.dirname(require.resolve("@alight/client/package.json"));

/**
 * The most the package may weigh, gzipped: the 15 KB (15,000 bytes) issue #22 asks for, with
 * every feature counted (resume, live collections, offline handling, refusal codes, Presence;
 * client-wasm/README.md's table says where the bytes go). What grows it past that fails here.
 */
const BUDGET_BYTES = 15_000;

/** Every file a page that imports `@alight/client` and `@alight/client/live` loads. */
const LOADED = ["alight_client_bg.wasm", "web.js", "index.js", "live.js"];

test(`the package a page loads is at most ${BUDGET_BYTES} bytes gzipped`, () => {
  const sizes = LOADED.map((file) => {
    const bytes = readFileSync(path.join(packageDir, file));
    return [file, gzipSync(bytes, { level: 9 }).length];
  });
  const total = sizes.reduce((sum, [, size]) => sum + size, 0);
  const parts = sizes.map(([file, size]) => `${file} ${size}`).join(", ");
  assert.ok(total <= BUDGET_BYTES, `${total} bytes gzipped (${parts}), over the budget of ${BUDGET_BYTES}`);
});

test("live.js is LiveCollection from web.js, not a copy", () => {
  const live = readFileSync(path.join(packageDir, "live.js"), "utf8");
  assert.match(live, /^export\s*\{\s*LiveCollection\s*\}\s*from\s*"\.\/web\.js";?\s*$/);
});
