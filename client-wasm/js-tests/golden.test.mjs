// Byte for byte against phoenix.js, through the JS API: the calls protocol/tests/golden/capture.mjs
// made on the official client, made here on @alight/client connected to a `ws` server that records
// every frame and answers with the golden server frames. Each frame the client sends must be the
// one phoenix.js sent (protocol/tests/golden/v2_json.json, v2_binary.json).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";

import { Harness, REPO_ROOT, Recorder, settle } from "./helpers.mjs";

const goldenDir = path.join(REPO_ROOT, "protocol", "tests", "golden");
const golden = new Map(
  ["v2_json.json", "v2_binary.json"]
    .flatMap((file) => JSON.parse(readFileSync(path.join(goldenDir, file), "utf8")))
    .map((entry) => [entry.name, entry]),
);

const fromHex = (hex) => Uint8Array.from(Buffer.from(hex, "hex")).buffer;
const toHex = (buffer) => Buffer.from(buffer).toString("hex");

/** The payload phoenix.js was given for the frame `name` (as the Rust golden test does). */
function payloadOf(name) {
  const { payload } = golden.get(name).decoded;
  return payload && typeof payload.binary_hex === "string" ? fromHex(payload.binary_hex) : payload;
}

test("the JS API sends exactly phoenix.js's frames for the same calls", async (t) => {
  const h = new Harness(t);
  const server = await h.wsServer();
  // As capture.mjs, but the heartbeat cannot be sent by hand here: it comes after one interval,
  // which is long enough for the join and the two pushes before it (a few local round trips).
  const socket = h.socket(server.socketUrl, {
    params: { token: "abc" },
    heartbeatIntervalMs: 1000,
    timeout: 3_600_000,
  });
  socket.connect();
  const conn = await server.connections.nth(1);
  assert.equal(conn.url, "/socket/websocket?token=abc&vsn=2.0.0");

  const unchecked = new Set(
    [...golden.values()].filter((e) => e.direction === "client_to_server").map((e) => e.name),
  );
  let seen = 0;
  const expectSent = async (name) => {
    const expected = golden.get(name);
    const got = await conn.frames.nth(++seen);
    if (expected.text !== undefined) {
      assert.equal(typeof got, "string", `${name}: a text frame`);
      assert.equal(got, expected.text, name);
    } else {
      assert.ok(got instanceof ArrayBuffer || Buffer.isBuffer(got), `${name}: a binary frame`);
      assert.equal(toHex(got), expected.binary_hex, name);
    }
    unchecked.delete(name);
  };
  const serverSends = (name) => {
    const frame = golden.get(name);
    assert.equal(frame.direction, "server_to_client", name);
    conn.ws.send(frame.text ?? Buffer.from(frame.binary_hex, "hex"), { binary: !frame.text });
  };

  const channel = socket.channel("room:1", payloadOf("join with params"));
  const joined = settle(channel.join(), "join");
  await expectSent("join with params");
  serverSends("join reply ok");
  assert.equal((await joined).status, "ok");

  const first = settle(channel.push("new_msg", payloadOf("push")), "push");
  await expectSent("push");
  serverSends("push reply ok with response");
  assert.deepEqual(await first, { status: "ok", response: { id: 42 } });

  const second = settle(channel.push("bad_msg", payloadOf("push with empty payload")), "bad_msg");
  await expectSent("push with empty payload");
  serverSends("push reply error");
  assert.deepEqual(await second, { status: "error", response: { reason: "invalid" } });

  await expectSent("heartbeat");
  serverSends("heartbeat reply");

  const events = ["new_msg", "user_joined", "presence_state", "chunk", "frame"];
  const seenEvents = new Recorder("channel events");
  for (const event of events) channel.on(event, () => seenEvents.push(event));
  serverSends("server push to one channel");
  serverSends("broadcast");
  serverSends("presence_state");

  const upload = settle(channel.push("upload", payloadOf("binary push")), "binary push");
  await expectSent("binary push");
  serverSends("binary reply");
  const { status, response } = await upload;
  assert.equal(status, "ok");
  assert.equal(toHex(response), "090807");
  serverSends("binary server push");
  serverSends("binary broadcast");
  serverSends("binary reply with empty payload");
  // Everything the server sent reached the channel before it leaves.
  assert.deepEqual(await seenEvents.until((e) => e.length === events.length), events);

  channel.leave();
  await expectSent("leave");
  serverSends("leave reply");
  serverSends("phx_close");

  const other = socket.channel("nope:1");
  const refused = settle(other.join(), "join of nope:1");
  await expectSent("join without params");
  serverSends("join reply error unmatched topic");
  assert.deepEqual(await refused, { status: "error", response: { reason: "unmatched topic" } });
  socket.disconnect();

  assert.deepEqual([...unchecked], [], "every frame phoenix.js sent was checked");
  assert.equal(conn.frames.length, seen, "and nothing else was sent");
});
