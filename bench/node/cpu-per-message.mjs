// Run with: node bench/node/cpu-per-message.mjs [messages]   (after scripts/build-client)
//
// The browser client's CPU per received message, against phoenix.js's: a page in headless
// Chromium joins a channel of a small `ws` server, which then sends it `messages` broadcasts
// (100,000 by default) at once; the page counts them with `channel.on`. Reported per client: the
// wall time from the first message to the last, and the page's script and task time over the
// run (Chromium's Performance metrics), both per message. Three runs each, alternating; the
// medians are printed. The numbers go to bench/README.md.

import { readFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";
import { WebSocketServer } from "ws";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const MESSAGES = Number(process.argv[2] ?? 100_000);
const RUNS = 3;

// Answers joins and heartbeats; after a join, sends every broadcast at once.
const wss = new WebSocketServer({
  host: "127.0.0.1",
  port: 0,
  handleProtocols: (protocols) => (protocols.has("phoenix") ? "phoenix" : false),
});
await new Promise((resolve) => wss.once("listening", resolve));
wss.on("connection", (ws) => {
  ws.on("message", (data) => {
    const [joinRef, ref, topic, event] = JSON.parse(data.toString());
    ws.send(JSON.stringify([joinRef, ref, topic, "phx_reply", { status: "ok", response: {} }]));
    if (event !== "phx_join") return;
    for (let n = 1; n <= MESSAGES; n++) {
      ws.send(JSON.stringify([null, null, topic, "msg", { n, body: "hello" }]));
    }
  });
});
const socketUrl = `ws://127.0.0.1:${wss.address().port}/socket`;

const PAGE = `<!doctype html><script type="module">
  window.run = async (client, url, messages) => {
    const { Socket } = await import(client === "alight" ? "/pkg/index.js" : "/phoenix.mjs");
    const socket = new Socket(url, { heartbeatIntervalMs: 600000 });
    socket.connect();
    const channel = socket.channel("room:bench", {});
    let count = 0;
    let first;
    const done = new Promise((resolve) => {
      channel.on("msg", () => {
        if (++count === 1) first = performance.now();
        if (count === messages) resolve(performance.now() - first);
      });
    });
    channel.join();
    const ms = await done;
    socket.disconnect();
    return ms;
  };
  window.ready = true;
</script>`;

const TYPES = { ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm" };
const site = http.createServer(async (req, res) => {
  const name = new URL(req.url, "http://x").pathname;
  const file =
    name === "/phoenix.mjs"
      ? path.join(root, "node_modules", "phoenix", "priv", "static", "phoenix.mjs")
      : name.startsWith("/pkg/")
        ? path.join(root, "client-wasm", "pkg", path.basename(name))
        : null;
  if (name === "/") return res.writeHead(200, { "content-type": "text/html" }).end(PAGE);
  try {
    const body = await readFile(file);
    res.writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream" }).end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((resolve) => site.listen(0, "127.0.0.1", resolve));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});

async function measure(client) {
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${site.address().port}/`);
  await page.waitForFunction(() => window.ready === true);
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Performance.enable");
  const metric = async (name) =>
    (await cdp.send("Performance.getMetrics")).metrics.find((m) => m.name === name).value;
  const [script0, task0] = [await metric("ScriptDuration"), await metric("TaskDuration")];
  const wall = await page.evaluate(([c, u, n]) => window.run(c, u, n), [client, socketUrl, MESSAGES]);
  const [script1, task1] = [await metric("ScriptDuration"), await metric("TaskDuration")];
  await page.close();
  const perMessage = (ms) => (ms * 1000) / MESSAGES;
  return {
    wall: perMessage(wall),
    script: perMessage((script1 - script0) * 1000),
    task: perMessage((task1 - task0) * 1000),
  };
}

const results = { alight: [], phoenix: [] };
for (let run = 0; run < RUNS; run++) {
  for (const client of ["alight", "phoenix"]) results[client].push(await measure(client));
}
const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
for (const [client, runs] of Object.entries(results)) {
  const [wall, script, task] = ["wall", "script", "task"].map((k) => median(runs.map((r) => r[k])));
  console.log(
    `${client}: ${MESSAGES} broadcasts, per message: ${wall.toFixed(2)} µs wall, ` +
      `${script.toFixed(2)} µs script, ${task.toFixed(2)} µs task (medians of ${RUNS})`,
  );
}
await browser.close();
site.close();
for (const client of wss.clients) client.terminate();
wss.close();
