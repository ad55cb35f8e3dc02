// The V1 serializer (`vsn=1.0.0`): JSON objects `{topic, event, payload, ref, join_ref}`.
// Phoenix's V1 serializer sends `topic`, `event`, `payload` and `ref` to clients, never `join_ref`.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  Recorder,
  Session,
  apiBroadcast,
  deadline,
  join,
  pushResult,
  record,
  startServer,
} from "./helpers.mjs";

let server;
before(async () => {
  server = await startServer();
});
after(() => server.stop());

/** phoenix.js options for V1: object frames both ways; every raw frame received is recorded. */
function v1Options(raw) {
  return {
    vsn: "1.0.0",
    encode: (msg, callback) =>
      callback(
        JSON.stringify({
          topic: msg.topic,
          event: msg.event,
          payload: msg.payload,
          ref: msg.ref,
          join_ref: msg.join_ref,
        }),
      ),
    decode: (data, callback) => {
      raw.push(data);
      const { topic, event, payload, ref, join_ref } = JSON.parse(data);
      return callback({ topic, event, payload, ref, join_ref });
    },
  };
}

test("V1 with phoenix.js: join, push replies, broadcast and heartbeat", async (t) => {
  const session = new Session(t);
  const raw = new Recorder("raw V1 frames");
  const socket = await session.connect(server, { ...v1Options(raw), heartbeatIntervalMs: 100 });
  assert.match(socket.conn.url, /[?&]vsn=1\.0\.0$/);
  const other = await session.connect(server, v1Options(new Recorder("other's frames")));

  const channel = socket.channel("room:v1", {});
  assert.deepEqual(await join(channel), { user: null });
  const joinRef = channel.joinRef();
  assert.deepEqual(JSON.parse(raw.last), {
    topic: "room:v1",
    event: "phx_reply",
    payload: { status: "ok", response: { user: null } },
    ref: joinRef,
  });
  const otherChannel = other.channel("room:v1", {});
  await join(otherChannel);

  assert.deepEqual(await pushResult(channel, "ping", { v: 1 }), { status: "ok", response: { v: 1 } });
  assert.deepEqual(await pushResult(channel, "fail", {}), {
    status: "error",
    response: { reason: "failed" },
  });

  const shouts = record(channel, "shout");
  const otherShouts = record(otherChannel, "shout");
  assert.equal((await pushResult(otherChannel, "shout", { hi: "v1" })).status, "ok");
  assert.deepEqual(await shouts.nth(1), { hi: "v1" });
  assert.deepEqual(await otherShouts.nth(1), { hi: "v1" });
  const broadcast = await raw.find((text) => JSON.parse(text).event === "shout");
  assert.deepEqual(JSON.parse(broadcast), {
    topic: "room:v1",
    event: "shout",
    payload: { hi: "v1" },
    ref: null,
  });

  const news = record(channel, "news");
  assert.equal((await apiBroadcast(server, "room:v1", "news", { api: true })).status, 202);
  assert.deepEqual(await news.nth(1), { api: true });

  const heartbeat = await raw.find((text) => JSON.parse(text).topic === "phoenix");
  // (Phoenix encodes a map, so the members come in no particular order.)
  assert.deepEqual(Object.keys(JSON.parse(heartbeat)).sort(), ["event", "payload", "ref", "topic"]);
  assert.deepEqual(JSON.parse(heartbeat).payload, { status: "ok", response: {} });

  // Every frame the server sent is an object without join_ref, as Phoenix's V1 serializer sends.
  for (const text of raw.items) {
    const frame = JSON.parse(text);
    assert.ok(!Array.isArray(frame) && typeof frame === "object", text);
    assert.ok(!("join_ref" in frame), `no join_ref in ${text}`);
  }
});

test("V1 from a raw client without join_ref, as pre-1.3 phoenix.js sent", async (t) => {
  const session = new Session(t);
  const ws = await session.rawSocket(server.websocketUrl("1.0.0"));
  const frames = new Recorder("raw V1 frames");
  ws.on("message", (data, isBinary) => {
    assert.equal(isBinary, false);
    frames.push(JSON.parse(Buffer.from(data).toString("utf8")));
  });
  const send = (frame) => ws.send(JSON.stringify(frame));

  send({ topic: "room:v1-raw", event: "phx_join", payload: {}, ref: "1" });
  assert.deepEqual(await frames.nth(1), {
    topic: "room:v1-raw",
    event: "phx_reply",
    payload: { status: "ok", response: { user: null } },
    ref: "1",
  });
  send({ topic: "room:v1-raw", event: "ping", payload: { a: [1, 2] }, ref: "2" });
  assert.deepEqual(await frames.nth(2), {
    topic: "room:v1-raw",
    event: "phx_reply",
    payload: { status: "ok", response: { a: [1, 2] } },
    ref: "2",
  });
  send({ topic: "room:v1-raw", event: "shout", payload: { b: true }, ref: "3" });
  // The sender gets the broadcast and the reply (their order is checked in broadcast.test.mjs).
  const pair = (await frames.until((items) => items.length >= 4, "broadcast and reply")).slice(2, 4);
  assert.deepEqual(
    pair.sort((a, b) => a.event.localeCompare(b.event)),
    [
      {
        topic: "room:v1-raw",
        event: "phx_reply",
        payload: { status: "ok", response: {} },
        ref: "3",
      },
      { topic: "room:v1-raw", event: "shout", payload: { b: true }, ref: null },
    ],
  );

  send({ topic: "phoenix", event: "heartbeat", payload: {}, ref: "4" });
  assert.deepEqual(await frames.nth(5), {
    topic: "phoenix",
    event: "phx_reply",
    payload: { status: "ok", response: {} },
    ref: "4",
  });

  send({ topic: "room:v1-raw", event: "phx_leave", payload: {}, ref: "5" });
  const [leaveReply, close] = (await frames.until((items) => items.length >= 7, "leave reply and close")).slice(5);
  assert.deepEqual(leaveReply, {
    topic: "room:v1-raw",
    event: "phx_reply",
    payload: { status: "ok", response: {} },
    ref: "5",
  });
  assert.deepEqual([close.topic, close.event, close.payload], ["room:v1-raw", "phx_close", {}]);

  const closed = new Promise((resolve) => ws.once("close", resolve));
  ws.close(1000);
  await deadline(closed, 5000, "the raw socket to close");
});
