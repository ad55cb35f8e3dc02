// What the cluster tests share: a throwaway redis-server on a free loopback port, demo nodes on
// it (`--redis`, `--node`), and waiting until they hear from each other.

import { spawn, spawnSync } from "node:child_process";
import net from "node:net";

import { binary, deadline, spawnServer } from "../support/process.mjs";

export const API_KEY = "cluster-test-api-key";
export const HAVE_REDIS = spawnSync("redis-server", ["--version"]).status === 0;

/** A free loopback port. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Starts redis-server on a free port in `dir`; resolves once it is ready. */
export async function startRedis(dir) {
  const port = await freePort();
  const child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
    { stdio: ["ignore", "pipe", "ignore"] },
  );
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  const ready = new Promise((resolve, reject) => {
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk) => {
      out += chunk;
      if (out.includes("Ready to accept connections")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`redis-server exited (${code}):\n${out}`)));
  });
  await deadline(ready, 10000, "redis-server to be ready");
  return {
    url: `redis://127.0.0.1:${port}/`,
    stop() {
      process.removeListener("exit", killOnExit);
      child.kill("SIGKILL");
    },
  };
}

/** A demo node on `redis`, with its data in `dataDir` (shared by the nodes). */
export async function startNode(redis, dataDir, name) {
  const server = await spawnServer({
    bin: binary("ALIGHT_DEMO_BIN", "alight-demo", "cargo build -p alight-demo"),
    args: ["--bind", "127.0.0.1:0", "--data", dataDir, "--redis", redis.url, "--node", name],
    env: {
      ALIGHT_API_KEY: API_KEY,
      ALIGHT_TOKEN_SECRET: undefined,
      ALIGHT_BIND: undefined,
      ALIGHT_DATA: undefined,
      ALIGHT_REDIS_URL: undefined,
      ALIGHT_NODE: undefined,
    },
    ready: /serving http:\/\/127\.0\.0\.1:(\d+)\//,
    stop: "SIGTERM",
  });
  return {
    ...server,
    name,
    socketUrl: `ws://127.0.0.1:${server.port}/socket`,
    httpUrl: `http://127.0.0.1:${server.port}`,
  };
}

/** Waits until `node`'s /metrics shows it hears from `others` other nodes. */
export async function untilClustered(node, others) {
  const pattern = new RegExp(`^alight_redis_nodes_up\\{[^}]*\\} ${others}$`, "m");
  return deadline(
    (async () => {
      for (;;) {
        const text = await (await fetch(`${node.httpUrl}/metrics`)).text();
        if (pattern.test(text)) return;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })(),
    10000,
    `${node.name} to hear from ${others} nodes`,
  );
}
