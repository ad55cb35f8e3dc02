// Backpressure on the WebSocket's bufferedAmount, with a WebSocket class whose buffer the test
// controls (phoenix.js's `transport` option): frames wait in the client while the socket's own
// buffer is over 1 MiB, go out in order once it drains, and a connection that cannot take 16 MiB
// more is given up and reconnected.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Harness, Recorder, settle } from "./helpers.mjs";

/** A WebSocket stand-in: opens when told to, records what is sent, has a settable buffer. */
class FakeWebSocket {
  static instances = new Recorder("fake sockets");

  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0;
    this.bufferedAmount = 0;
    this.sent = new Recorder("sent");
    this.closed = null;
    FakeWebSocket.instances.push(this);
  }

  open() {
    this.readyState = 1;
    this.onopen?.({ type: "open" });
  }

  send(data) {
    this.sent.push(data);
  }

  close(code, reason) {
    this.readyState = 3;
    this.closed = { code, reason };
  }

  /** Delivers a server frame (asynchronously, as a real socket would). */
  receive(data) {
    queueMicrotask(() => this.onmessage?.({ data }));
  }
}

test("frames wait while bufferedAmount is over the threshold and go out in order after", async (t) => {
  const h = new Harness(t);
  const before = FakeWebSocket.instances.length;
  const socket = h.socket("ws://fake/socket", { transport: FakeWebSocket, heartbeatIntervalMs: 3_600_000 });
  socket.connect();
  const ws = await FakeWebSocket.instances.nth(before + 1);
  ws.open();
  const channel = socket.channel("room:bp", {});
  const joined = settle(channel.join(), "join");
  const [joinRef] = JSON.parse(await ws.sent.nth(1));
  ws.receive(JSON.stringify([joinRef, joinRef, "room:bp", "phx_reply", { status: "ok", response: {} }]));
  assert.equal((await joined).status, "ok");

  ws.bufferedAmount = 2 * 1024 * 1024;
  for (const n of [1, 2, 3]) channel.push("n", { n });
  assert.equal(ws.sent.length, 1, "nothing more is handed to a socket whose buffer is full");

  ws.bufferedAmount = 0;
  const sent = await ws.sent.until((items) => items.length === 4, "the queued frames");
  assert.deepEqual(
    sent.slice(1).map((text) => JSON.parse(text)[4].n),
    [1, 2, 3],
  );
});

test("a connection that cannot take 16 MiB more is closed and reconnected", async (t) => {
  const h = new Harness(t);
  const before = FakeWebSocket.instances.length;
  const socket = h.socket("ws://fake/socket", { transport: FakeWebSocket, heartbeatIntervalMs: 3_600_000 });
  socket.connect();
  const ws = await FakeWebSocket.instances.nth(before + 1);
  ws.open();
  await socket.opens.nth(1);
  const channel = socket.channel("room:full", {});
  const joined = settle(channel.join(), "join");
  const [joinRef] = JSON.parse(await ws.sent.nth(1));
  ws.receive(JSON.stringify([joinRef, joinRef, "room:full", "phx_reply", { status: "ok", response: {} }]));
  assert.equal((await joined).status, "ok");

  ws.bufferedAmount = 2 * 1024 * 1024;
  const chunk = "x".repeat(4 * 1024 * 1024);
  for (let i = 0; i < 5; i++) channel.push("big", { chunk }, 200);
  assert.deepEqual(await socket.closes.nth(1), { code: 1000, reason: "send queue full" });
  assert.deepEqual(ws.closed, { code: 1000, reason: "send queue full" });
  const next = await FakeWebSocket.instances.nth(before + 2);
  assert.equal(next.url, "ws://fake/socket/websocket?vsn=2.0.0");
});
