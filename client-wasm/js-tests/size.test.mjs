// The package's weight: what a page that imports @alight/client downloads (the wasm, and web.js
// with the API and Presence), gzipped at level 9 as the build reports it, stays within its budget.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { test } from "node:test";
import { gzipSync } from "node:zlib";

const require = createRequire(import.meta.url);
const packageDir = path.dirname(require.resolve("@alight/client/package.json"));

/** The most the package may weigh, gzipped: 15 KB (issue #22), features included. */
const BUDGET_BYTES = 15 * 1024;

/** The files a page loads, whatever the entry (index.js and node.js are a few lines over web.js). */
const LOADED = ["alight_client_bg.wasm", "web.js"];

test(`the package a page loads is at most ${BUDGET_BYTES} bytes gzipped`, () => {
  const sizes = LOADED.map((file) => {
    const bytes = readFileSync(path.join(packageDir, file));
    return [file, gzipSync(bytes, { level: 9 }).length];
  });
  const total = sizes.reduce((sum, [, size]) => sum + size, 0);
  const parts = sizes.map(([file, size]) => `${file} ${size}`).join(", ");
  assert.ok(total <= BUDGET_BYTES, `${total} bytes gzipped (${parts}), over the budget of ${BUDGET_BYTES}`);
});
