// The chaos test of topic history, CI-sized: 200 clients on one history topic, half stock
// phoenix.js (resuming through a params function, as its users write it) and half @alight/client
// (resuming by itself), each of whose connections is cut (TCP dropped, no close frame) at random
// every 0.2-2 s, while a publisher sends 5,000 numbered broadcasts through `POST /api/broadcast`.
// Every client must end with exactly 1..5,000 in order, and every one of its rejoins must have
// said `recovered: true`.
//
// Needs the built package (`scripts/build-client`; ALIGHT_CLIENT_PKG names another folder).
// The bench runs the same at 1,000 clients and 20,000 broadcasts.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";

import { Socket } from "phoenix";

import { API_KEY, REPO_ROOT, Recorder, Session, WebSocket, deadline, disconnect } from "./helpers.mjs";
import { resumable } from "./history.mjs";

const PKG = process.env.ALIGHT_CLIENT_PKG ?? path.join(REPO_ROOT, "client-wasm", "pkg");
if (!existsSync(path.join(PKG, "node.js"))) {
  throw new Error(`no @alight/client package in ${PKG}: run scripts/build-client first`);
}
const Alight = await import(pathToFileURL(path.join(PKG, "node.js")).href);

/** A `ws` class that remembers its latest connection in `holder.conn`, for cutting it. */
function remembered(holder) {
  return class extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      holder.conn = this;
    }
  };
}

/**
 * An @alight/client socket on `topic` with nothing but the channel: the package resumes by
 * itself. `joins` records every ok join response, as `resumable` does for phoenix.js, and
 * `recoveries` every `onRecover`.
 */
function alightClient(url, topic) {
  const holder = { conn: null };
  const socket = new Alight.Socket(url, {
    transport: remembered(holder),
    reconnectAfterMs: () => 50,
    rejoinAfterMs: () => 50,
    timeout: 10_000,
  });
  socket.connect();
  const channel = socket.channel(topic, {});
  const numbers = new Recorder(`${topic} n`);
  const joins = new Recorder(`${topic} joins`);
  const recoveries = [];
  channel.on("n", ({ n }) => numbers.push(n));
  channel.onRecover(({ recovered }) => recoveries.push(recovered));
  channel.join().receive("ok", (response) => joins.push(response));
  return { socket, holder, app: { channel, numbers, joins, recoveries } };
}

// The CI size; `ALIGHT_CHAOS_CLIENTS` and `ALIGHT_CHAOS_BROADCASTS` change it (the bench
// runs 1,000 clients and 20,000 broadcasts).
const CLIENTS = Number(process.env.ALIGHT_CHAOS_CLIENTS ?? 200);
const BROADCASTS = Number(process.env.ALIGHT_CHAOS_BROADCASTS ?? 5_000);
const TOPIC = "history:chaos";

/** `POST /api/broadcast` over one kept-alive connection; resolves with the status. */
function poster(server) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const post = (payload) =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ topic: TOPIC, event: "n", payload });
      const req = http.request(
        `${server.httpUrl}/api/broadcast`,
        {
          method: "POST",
          agent,
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
  return { post, close: () => agent.destroy() };
}

test(`${CLIENTS} clients cut at random every 0.2-2 s each get all ${BROADCASTS} broadcasts once, in order`, async (t) => {
  const session = new Session(t);
  const server = await session.server();
  const clients = [];
  for (let i = 0; i < CLIENTS; i++) {
    if (i % 2 === 1) {
      const { socket, holder, app } = alightClient(server.socketUrl, TOPIC);
      app.outOfOrder = [];
      app.channel.on("n", ({ n }) => {
        const expected = app.numbers.length; // this one is already recorded
        if (n !== expected) app.outOfOrder.push({ expected, got: n });
      });
      clients.push({ kind: "@alight/client", socket, app, cuts: 0, conn: () => holder.conn });
      continue;
    }
    // Plain phoenix.js sockets: the session's recorders of every message would cost more than
    // the clients themselves.
    const socket = new Socket(server.socketUrl, {
      transport: WebSocket,
      reconnectAfterMs: () => 50,
      rejoinAfterMs: () => 50,
      timeout: 10_000,
    });
    socket.connect();
    const app = resumable(socket, TOPIC);
    // Checked on arrival, so that a failure names the first broadcast out of place.
    app.outOfOrder = [];
    app.channel.on("n", ({ n }) => {
      const expected = app.numbers.length; // this one is already recorded
      if (n !== expected) app.outOfOrder.push({ expected, got: n });
    });
    clients.push({ kind: "phoenix.js", socket, app, cuts: 0, conn: () => socket.conn });
  }
  t.after(() => Promise.all(clients.map(({ socket }) => disconnect(socket))));
  await Promise.all(clients.map(({ app }) => app.joins.nth(1, 20_000)));

  // Each client's connection is cut at a random moment 0.2-2 s after the last cut, while open.
  let cutting = true;
  const timers = new Set();
  const scheduleCut = (client) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!cutting) return;
      const conn = client.conn();
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

  const publisher = poster(server);
  try {
    for (let n = 1; n <= BROADCASTS; n++) {
      assert.equal(await publisher.post({ n }), 202);
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
  const byKind = {};
  for (const [i, { kind, app, cuts: cut }] of clients.entries()) {
    const who = `client ${i} (${kind})`;
    assert.deepEqual(app.outOfOrder.slice(0, 3), [], `${who}: out of order`);
    assert.deepEqual(app.numbers.items, expected, `${who}: not exactly 1..${BROADCASTS}`);
    const later = app.joins.items.slice(1);
    const unrecovered = later.filter((response) => response.recovered !== true);
    assert.deepEqual(unrecovered, [], `${who}: a rejoin did not recover`);
    if (app.recoveries) {
      // What the package told the application: one recovered: true per rejoin.
      assert.deepEqual(app.recoveries, later.map(() => true), `${who}: onRecover`);
    }
    rejoins += later.length;
    cuts += cut;
    byKind[kind] = (byKind[kind] ?? 0) + later.length;
  }
  // The test means something only if connections were cut and clients rejoined, many times.
  assert.ok(cuts >= CLIENTS, `only ${cuts} cuts`);
  assert.ok(rejoins >= CLIENTS, `only ${rejoins} rejoins`);
  for (const [kind, count] of Object.entries(byKind)) {
    assert.ok(count >= CLIENTS / 2, `only ${count} rejoins of ${kind} clients`);
  }
  t.diagnostic(`${cuts} cuts, ${rejoins} rejoins (${JSON.stringify(byKind)}), all recovered`);
});
