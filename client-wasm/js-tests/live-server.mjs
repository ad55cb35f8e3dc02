// The shape server of the LiveCollection tests (live.test.mjs, browser/live.test.mjs):
// target/debug/sync-server on a scratch SQLite file, with tables `items` and `kinds` whose users
// see the rows they own, served as `shape:<table>` over channels (the socket's `token` param is
// the user); and the TypeScript row types it generates for them.
//
// The repository is ALIGHT_REPO_ROOT (scripts/test-client sets it where the tests run from a
// copy), else two directories up from here.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = process.env.ALIGHT_REPO_ROOT ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const { binary, spawnServer } = await import(pathToFileURL(path.join(root, "tests", "support", "process.mjs")).href);

const syncServer = () => binary("ALIGHT_SYNC_SERVER", "sync-server", "cargo build -p alight-tests --bin sync-server");

/**
 * The TypeScript row types of the server's tables (`items`, `kinds`), as `sync-server --emit-ts`
 * prints them with `alight_sync::typescript_rows`.
 */
export function rowTypes() {
  const run = spawnSync(syncServer(), ["--emit-ts"], { encoding: "utf8" });
  assert.equal(run.status, 0, `sync-server --emit-ts\n${run.stderr}`);
  return run.stdout;
}

/** Starts the server; `exec(sql)` writes with a connection of its own, `rotate()` forces a refetch. */
export async function startLiveServer() {
  const dir = mkdtempSync(path.join(os.tmpdir(), "alight-live-"));
  const server = await spawnServer({
    bin: syncServer(),
    args: ["--db", path.join(dir, "items.db")],
    ready: /^LISTENING (\d+)$/m,
    stop: "stdin",
  });
  const url = `http://127.0.0.1:${server.port}`;
  return {
    port: server.port,
    socketUrl: `ws://127.0.0.1:${server.port}/socket`,
    async exec(sql) {
      const res = await fetch(`${url}/test/exec`, { method: "POST", body: sql });
      assert.equal(res.status, 200, await res.text());
    },
    async rotate() {
      const res = await fetch(`${url}/test/rotate`, { method: "POST" });
      assert.equal(res.status, 200);
    },
    async stop() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
