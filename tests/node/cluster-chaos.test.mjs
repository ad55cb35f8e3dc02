// Resume across nodes, with stock phoenix.js against three demo processes on one Redis whose room
// history is kept in Redis Streams: a client cut from node b rejoins on node c and recovers what it
// missed; and the chaos test of topic history run across the three nodes, every reconnection going
// to the next node, ends with every client holding every broadcast once, in order, every rejoin
// having said `recovered: true`.
//
// Needs `redis-server` (scripts/setup installs it; without it the tests are skipped) and
// `cargo build -p alight-demo`. `ALIGHT_CLUSTER_CHAOS_CLIENTS` and
// `ALIGHT_CLUSTER_CHAOS_BROADCASTS` change the chaos test's size.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";

import { Socket } from "phoenix";

import { API_KEY, HAVE_REDIS, startNode, startRedis, untilClustered } from "./cluster.mjs";
import { Session, WebSocket, deadline, disconnect } from "./helpers.mjs";
import { resumable } from "./history.mjs";

const CLIENTS = Number(process.env.ALIGHT_CLUSTER_CHAOS_CLIENTS ?? 90);
const BROADCASTS = Number(process.env.ALIGHT_CLUSTER_CHAOS_BROADCASTS ?? 1_000);
const skip = !HAVE_REDIS && "redis-server is not installed (scripts/setup)";

/** Redis and three demo nodes on it, stopped after the test. */
async function cluster(t) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "alight-cluster-chaos-"));
  const redis = await startRedis(dir);
  t.after(() => {
    redis.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const session = new Session(t);
  const nodes = [];
  for (const name of ["a", "b", "c"]) {
    const node = await startNode(redis, path.join(dir, "data"), name);
    session.servers.push(node);
    nodes.push(node);
  }
  await Promise.all(nodes.map((node) => untilClustered(node, 2)));
  return nodes;
}

/**
 * A `ws` transport whose every connection goes to `route.next()`'s node (phoenix.js keeps one
 * endpoint URL; this is the load balancer), or nowhere while `route.closed`.
 */
function routedTransport(route) {
  return class RoutedWebSocket extends WebSocket {
    constructor(url, protocols) {
      const node = route.closed ? null : route.next();
      route.visits.push(node?.name ?? null);
      super(url.replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${node ? node.port : 1}`), protocols);
    }
  };
}

/** `POST /api/broadcast` to each node over its own kept-alive connection; resolves with the status. */
function poster(nodes, topic) {
  const agents = nodes.map(() => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  const post = (node, payload) =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ topic, event: "n", payload });
      const req = http.request(
        `${node.httpUrl}/api/broadcast`,
        {
          method: "POST",
          agent: agents[nodes.indexOf(node)],
          headers: {
            authorization: `Bearer ${API_KEY}`,
            "content-type": "application/json",
            "content-length": Buffer.byteLength(body),
          },
        },
        (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode));
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  return { post, close: () => agents.forEach((agent) => agent.destroy()) };
}

test("a client cut from node b rejoins on node c and recovers what it missed", { skip }, async (t) => {
  const nodes = await cluster(t);
  const [a, b, c] = nodes;
  const topic = "room:resume";
  const route = { node: b, closed: false, visits: [], next: () => route.node };
  const socket = new Socket(b.socketUrl, {
    transport: routedTransport(route),
    reconnectAfterMs: () => 50,
    rejoinAfterMs: () => 50,
  });
  t.after(() => disconnect(socket));
  socket.connect();
  const app = resumable(socket, topic);
  await app.joins.nth(1, 10_000);
  const publisher = poster(nodes, topic);
  t.after(() => publisher.close());
  assert.equal(await publisher.post(a, { n: 1 }), 202);
  assert.equal(await publisher.post(c, { n: 2 }), 202);
  await app.numbers.until((ns) => ns.length >= 2, "1 and 2");

  // Cut (TCP dropped, no close frame) and kept away while three are broadcast.
  route.closed = true;
  const cut = new Promise((resolve) => socket.onClose(resolve));
  socket.conn.terminate();
  await deadline(cut, 5000, "the cut to be seen");
  for (const n of [3, 4, 5]) assert.equal(await publisher.post(a, { n }), 202);

  route.node = c;
  route.closed = false;
  const rejoin = await app.joins.nth(2, 10_000);
  assert.equal(rejoin.recovered, true, JSON.stringify(rejoin));
  assert.equal(route.visits.at(-1), "c", `connections went to ${route.visits}`);
  await app.numbers.until((ns) => ns.length >= 5, "1..5");
  assert.equal(await publisher.post(b, { n: 6 }), 202);
  const numbers = await app.numbers.until((ns) => ns.length >= 6, "1..6");
  assert.deepEqual(numbers, [1, 2, 3, 4, 5, 6]);
});

test(`${CLIENTS} clients cut at random and moved between three nodes get all ${BROADCASTS} broadcasts once, in order`, { skip }, async (t) => {
  const nodes = await cluster(t);
  const topic = "room:chaos";
  const clients = [];
  for (let i = 0; i < CLIENTS; i++) {
    // Each connection goes to the next node round the three, starting at a different one.
    let turn = i;
    const route = { closed: false, visits: [], next: () => nodes[turn++ % nodes.length] };
    const socket = new Socket(nodes[0].socketUrl, {
      transport: routedTransport(route),
      reconnectAfterMs: () => 50,
      rejoinAfterMs: () => 50,
      timeout: 10_000,
    });
    socket.connect();
    const app = resumable(socket, topic);
    app.outOfOrder = [];
    app.channel.on("n", ({ n }) => {
      const expected = app.numbers.length; // this one is already recorded
      if (n !== expected) app.outOfOrder.push({ expected, got: n });
    });
    clients.push({ socket, app, route, cuts: 0 });
  }
  t.after(() => Promise.all(clients.map(({ socket }) => disconnect(socket))));
  await Promise.all(clients.map(({ app }) => app.joins.nth(1, 20_000)));

  let cutting = true;
  const timers = new Set();
  const scheduleCut = (client) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!cutting) return;
      const conn = client.socket.conn;
      if (conn && conn.readyState === conn.OPEN) {
        conn.terminate();
        client.cuts++;
      }
      scheduleCut(client);
    }, 200 + Math.random() * 1800);
    timers.add(timer);
  };
  clients.forEach(scheduleCut);
  t.after(() => timers.forEach(clearTimeout));

  // Published round the three nodes' HTTP APIs, one after the other.
  const publisher = poster(nodes, topic);
  try {
    for (let n = 1; n <= BROADCASTS; n++) {
      assert.equal(await publisher.post(nodes[n % nodes.length], { n }), 202);
    }
  } finally {
    publisher.close();
  }
  cutting = false;
  timers.forEach(clearTimeout);

  await deadline(
    Promise.all(clients.map(({ app }) => app.numbers.until((ns) => ns.length >= BROADCASTS, "all", 40_000))),
    45_000,
    "every client to have every broadcast",
  );
  const expected = Array.from({ length: BROADCASTS }, (_, i) => i + 1);
  let rejoins = 0;
  let cuts = 0;
  for (const [i, { app, cuts: cut }] of clients.entries()) {
    assert.deepEqual(app.outOfOrder.slice(0, 3), [], `client ${i}: out of order`);
    assert.deepEqual(app.numbers.items, expected, `client ${i}: not exactly 1..${BROADCASTS}`);
    const later = app.joins.items.slice(1);
    const unrecovered = later.filter((response) => response.recovered !== true);
    assert.deepEqual(unrecovered, [], `client ${i}: a rejoin did not recover`);
    rejoins += later.length;
    cuts += cut;
  }
  assert.ok(cuts >= CLIENTS, `only ${cuts} cuts`);
  assert.ok(rejoins >= CLIENTS, `only ${rejoins} rejoins`);
  t.diagnostic(`${cuts} cuts, ${rejoins} rejoins on another node each, all recovered`);
});
