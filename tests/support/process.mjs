// Servers as child processes, shared by the node suites (tests/node, tests/e2e,
// client-wasm/js-tests may follow): find the binary, spawn it, wait for the line that names its
// port, and stop it gracefully with a deadline before a kill.
//
// Every wait resolves on an event and fails when its deadline passes first.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (this file lives in `tests/support/`). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/** How long a server may take to exit once asked (its own shutdown timeout is 5 s). */
export const EXIT_DEADLINE_MS = 8000;

/**
 * Rejects with a message naming `what` if `promise` has not settled within `ms`.
 * @template T
 * @param {Promise<T>} promise
 * @param {number} ms
 * @param {string | (() => string)} what (a function is called when the deadline passes)
 * @returns {Promise<T>}
 */
export function deadline(promise, ms, what) {
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => {
      const name = typeof what === "function" ? what() : what;
      reject(new Error(`timed out after ${ms} ms waiting for ${name}`));
    }, ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/**
 * The path of a built binary: `process.env[envVar]`, else `target/debug/<name>`; throws with
 * `buildHint` when it is missing.
 */
export function binary(envVar, name, buildHint) {
  const bin = process.env[envVar] ?? path.join(REPO_ROOT, "target", "debug", name);
  if (!existsSync(bin)) {
    throw new Error(`${name} not found at ${bin}: build it with \`${buildHint}\` or set ${envVar}`);
  }
  return bin;
}

/**
 * Spawns `bin` with `args` and resolves once its stdout matched `ready` (whose first group is the
 * port). `stop` ends it: `"stdin"` closes its stdin, `"SIGTERM"` signals it; either way it is
 * killed if it has not exited by {@link EXIT_DEADLINE_MS}. Set `ALIGHT_SERVER_LOG=1` to see its
 * stderr.
 * @param {{bin: string, args: string[], env?: object, ready: RegExp, stop: "stdin" | "SIGTERM",
 *          readyMs?: number}} options
 */
export async function spawnServer({ bin, args, env = {}, ready, stop, readyMs = 15000 }) {
  const name = path.basename(bin);
  const child = spawn(bin, args, {
    cwd: REPO_ROOT,
    stdio: [stop === "stdin" ? "pipe" : "ignore", "pipe", "pipe"],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn", ...env },
  });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => {
    if (process.env.ALIGHT_SERVER_LOG) process.stderr.write(chunk);
    if (stderr.length < 64 * 1024) stderr += chunk;
  });
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  const exited = new Promise((resolve) => {
    child.once("exit", (code, signal) => {
      process.removeListener("exit", killOnExit);
      resolve({ code, signal });
    });
  });
  const listening = new Promise((resolve, reject) => {
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const match = ready.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.once("error", reject);
    exited.then(({ code, signal }) =>
      reject(new Error(`${name} exited (${code ?? signal}) before listening:\n${stderr}`)),
    );
  });
  let port;
  try {
    port = await deadline(listening, readyMs, `${name} to print where it listens`);
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  let stopping = null;
  return {
    port,
    child,
    exited,
    get stderr() {
      return stderr;
    },
    /** Asks the server to stop; resolves with `{code, signal, killed}`. Safe to call twice. */
    stop() {
      stopping ??= (async () => {
        if (stop === "stdin") child.stdin.end();
        else child.kill("SIGTERM");
        try {
          return { ...(await deadline(exited, EXIT_DEADLINE_MS, `${name} to exit`)), killed: false };
        } catch {
          child.kill("SIGKILL");
          return { ...(await exited), killed: true };
        }
      })();
      return stopping;
    },
  };
}

/**
 * Starts `alight-demo` on `127.0.0.1:<port>` (0: any free port) with its data in `dataDir` and
 * `apiKey` as `ALIGHT_API_KEY`, ignoring any `ALIGHT_*` settings of the caller's environment.
 */
export function spawnDemo({ dataDir, port = 0, apiKey }) {
  const env = { ALIGHT_API_KEY: apiKey };
  const bin = binary("ALIGHT_DEMO_BIN", "alight-demo", "cargo build -p alight-demo");
  const server = spawnServer({
    bin,
    args: ["--bind", `127.0.0.1:${port}`, "--data", dataDir],
    env: { ...env, ALIGHT_TOKEN_SECRET: undefined, ALIGHT_BIND: undefined, ALIGHT_DATA: undefined },
    ready: /serving http:\/\/127\.0\.0\.1:(\d+)\//,
    stop: "SIGTERM",
  });
  return server;
}
