// The TypeScript declarations compile against phoenix.js-style code (types-check.ts), with and
// without the DOM library. Needs a TypeScript compiler: `typescript` in the repository's
// node_modules, or ALIGHT_TSC=/path/to/tsc; skipped without one.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = process.env.ALIGHT_REPO_ROOT ?? path.join(here, "..", "..");
const tsc =
  process.env.ALIGHT_TSC ?? [path.join(root, "node_modules", "typescript", "bin", "tsc")].find(existsSync);

const configs = {
  "Node (nodenext, DOM)": ["--module", "nodenext", "--moduleResolution", "nodenext", "--lib", "es2022,dom"],
  "bundler, no DOM": ["--module", "esnext", "--moduleResolution", "bundler", "--lib", "es2020"],
};

for (const [name, flags] of Object.entries(configs)) {
  test(`the declarations type-check: ${name}`, { skip: tsc ? false : "no TypeScript compiler" }, () => {
    const args = ["--noEmit", "--strict", "--target", "es2020", ...flags, path.join(here, "types-check.ts")];
    const run = spawnSync(tsc, args, { cwd: here, encoding: "utf8", shell: false });
    assert.equal(run.status, 0, `tsc ${args.join(" ")}\n${run.stdout}${run.stderr}`);
  });
}
