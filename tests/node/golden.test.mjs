// The golden frames in protocol/tests/golden/ must be what the pinned phoenix.js produces today:
// re-capture them and compare (capture.mjs --check exits non-zero on any difference).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const capture = fileURLToPath(new URL("../../protocol/tests/golden/capture.mjs", import.meta.url));

test("golden frames match the pinned phoenix.js", () => {
  const run = spawnSync(process.execPath, [capture, "--check"], { encoding: "utf8", timeout: 30_000 });
  assert.equal(run.status, 0, `capture.mjs --check failed:\n${run.stdout}\n${run.stderr}`);
});
