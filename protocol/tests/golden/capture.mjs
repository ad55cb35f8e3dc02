// Captures golden frames from the official phoenix.js client (the `phoenix` npm package).
//
// Run with: node protocol/tests/golden/capture.mjs          (rewrites the *.json files here)
//      or:  node protocol/tests/golden/capture.mjs --check  (fails if they differ from a fresh capture)
//
// Client-to-server frames are what a real phoenix.js `Socket` hands to its transport: the socket is
// given a fake transport class (the `transport` option) that records every `send`. Server-to-client
// frames are written here the way Phoenix's serializers emit them, fed to the socket to drive it, and
// recorded with what phoenix.js's own `Serializer.decode` makes of them. The file format is described
// in README.md beside this script.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { Serializer, Socket } from "phoenix";

const here = dirname(fileURLToPath(import.meta.url));
// The package's `exports` hide package.json; find it from its main module (priv/static/*.js).
const phoenixMain = createRequire(import.meta.url).resolve("phoenix");
const phoenixVersion = JSON.parse(
  readFileSync(join(dirname(phoenixMain), "..", "..", "package.json"), "utf8"),
).version;

// --- recording --------------------------------------------------------------------------------------

const hex = (buffer) => Buffer.from(buffer).toString("hex");

/** A JSON copy of `value` with every ArrayBuffer replaced by `{binary_hex}`. */
function plain(value) {
  if (value instanceof ArrayBuffer) return { binary_hex: hex(value) };
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

/** The message fields in the order the golden files use; absent fields are null. */
function decoded({ join_ref = null, ref = null, topic, event, payload }) {
  return { join_ref, ref, topic, event, payload: plain(payload) };
}

/** One golden entry for a raw frame (string or ArrayBuffer). */
function entry(name, direction, raw, message) {
  const wire = typeof raw === "string" ? { text: raw } : { binary_hex: hex(raw) };
  return { name, direction, ...wire, decoded: decoded(message) };
}

/**
 * A stand-in for WebSocket that records what phoenix.js sends. It opens when the test says so, and
 * `receive` delivers a server frame as a MessageEvent-like object.
 */
class FakeTransport {
  static last = null;

  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0; // connecting
    this.sent = [];
    FakeTransport.last = this;
  }

  open() {
    this.readyState = 1;
    this.onopen?.();
  }

  send(data) {
    this.sent.push(data);
  }

  receive(data) {
    this.onmessage?.({ data });
  }

  close(code = 1000, reason = "") {
    this.readyState = 3;
    this.onclose?.({ code, reason, wasClean: true });
  }
}

/**
 * Runs `script` against a phoenix.js socket built with `options` and returns the golden entries.
 * `script` gets helpers: `expectSent(name)` records the one frame phoenix.js sent since the last call
 * (with the message object phoenix.js encoded), `serverSends(name, raw)` records a server frame with
 * phoenix.js's decoding of it and delivers it to the socket.
 */
function capture(options, decode, script) {
  const entries = [];
  const encoded = [];
  const encode = options.encode ?? Serializer.encode.bind(Serializer);
  const socket = new Socket("ws://localhost:4000/socket", {
    transport: FakeTransport,
    heartbeatIntervalMs: 3_600_000, // heartbeats are sent by hand below
    timeout: 3_600_000,
    ...options,
    // Same encoder, but keep the message object phoenix.js asked to encode.
    encode: (message, callback) => {
      encoded.push(message);
      return encode(message, callback);
    },
  });
  socket.connect();
  const transport = FakeTransport.last;
  transport.open();

  let seen = 0;
  const expectSent = (name) => {
    const fresh = transport.sent.slice(seen);
    assert.equal(fresh.length, 1, `${name}: expected one frame from phoenix.js, got ${fresh.length}`);
    assert.equal(encoded.length, transport.sent.length, `${name}: every frame comes from encode`);
    entries.push(entry(name, "client_to_server", fresh[0], encoded[seen]));
    seen += 1;
  };
  const serverSends = (name, raw) => {
    decode(raw, (message) => entries.push(entry(name, "server_to_client", raw, message)));
    transport.receive(raw);
  };

  script({ socket, expectSent, serverSends });
  socket.disconnect();
  return { entries, url: transport.url, protocols: transport.protocols };
}

// --- server frames ------------------------------------------------------------------------------

const utf8 = (text) => new TextEncoder().encode(text);
const bytes = (...parts) => {
  const chunks = parts.map((part) =>
    typeof part === "number" ? Uint8Array.of(part) : part instanceof Uint8Array ? part : utf8(part),
  );
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out.buffer;
};
const len = (text) => utf8(text).byteLength;

/** V2 binary server push (kind 0): no ref. */
const binaryPush = (joinRef, topic, event, payload) =>
  bytes(0, len(joinRef), len(topic), len(event), joinRef, topic, event, payload);
/** V2 binary reply (kind 1): the status stands where a push has its event. */
const binaryReply = (joinRef, ref, topic, status, payload) =>
  bytes(1, len(joinRef), len(ref), len(topic), len(status), joinRef, ref, topic, status, payload);
/** V2 binary broadcast (kind 2). */
const binaryBroadcast = (topic, event, payload) =>
  bytes(2, len(topic), len(event), topic, event, payload);

// Phoenix encodes with Jason, which writes the members of a small map in sorted key order.
const v2 = (...fields) => JSON.stringify(fields);
const v2Reply = (joinRef, ref, topic, status, response) =>
  v2(joinRef, ref, topic, "phx_reply", { response, status });
// Phoenix.Socket.V1.JSONSerializer sends topic, event, payload and ref (never join_ref).
const v1 = (topic, event, payload, ref = null) => JSON.stringify({ event, payload, ref, topic });
const v1Reply = (ref, topic, status, response) => v1(topic, "phx_reply", { response, status }, ref);

const v2Decode = Serializer.decode.bind(Serializer);

// --- V2: JSON text frames, and binary frames for ArrayBuffer payloads --------------------------------

const v2Run = capture({ params: { token: "abc" } }, v2Decode, ({ socket, expectSent, serverSends }) => {
  const channel = socket.channel("room:1", { user: "alice", since: 0 });
  channel.join();
  expectSent("join with params");
  const jr = channel.joinRef();
  serverSends("join reply ok", v2Reply(jr, jr, "room:1", "ok", {}));

  channel.push("new_msg", { body: "hello, ünïcödé ✓", n: 1, tags: ["a", "b"], nested: { ok: true } });
  expectSent("push");
  serverSends("push reply ok with response", v2Reply(jr, socket.ref.toString(), "room:1", "ok", { id: 42 }));

  channel.push("bad_msg", {});
  expectSent("push with empty payload");
  serverSends(
    "push reply error",
    v2Reply(jr, socket.ref.toString(), "room:1", "error", { reason: "invalid" }),
  );

  socket.sendHeartbeat();
  expectSent("heartbeat");
  serverSends("heartbeat reply", v2Reply(null, socket.pendingHeartbeatRef, "phoenix", "ok", {}));

  serverSends("server push to one channel", v2(jr, null, "room:1", "new_msg", { body: "hi", from: "bob" }));
  serverSends("broadcast", v2(null, null, "room:1", "user_joined", { user: "carol" }));
  serverSends(
    "presence_state",
    v2(jr, null, "room:1", "presence_state", { alice: { metas: [{ online_at: "1", phx_ref: "F1" }] } }),
  );

  channel.push("upload", bytes(0, 1, 2, 0xfe, 0xff));
  expectSent("binary push");
  serverSends(
    "binary reply",
    binaryReply(jr, socket.ref.toString(), "room:1", "ok", Uint8Array.of(9, 8, 7)),
  );
  serverSends("binary server push", binaryPush(jr, "room:1", "chunk", Uint8Array.of(0, 255, 10)));
  serverSends("binary broadcast", binaryBroadcast("room:1", "frame", Uint8Array.of(1, 2, 3, 4)));
  serverSends("binary reply with empty payload", binaryReply(jr, "99", "room:1", "error", new Uint8Array()));

  channel.leave();
  expectSent("leave");
  serverSends("leave reply", v2Reply(jr, socket.ref.toString(), "room:1", "ok", {}));
  serverSends("phx_close", v2(jr, jr, "room:1", "phx_close", {}));

  const other = socket.channel("nope:1");
  other.join();
  expectSent("join without params");
  const ojr = other.joinRef();
  serverSends(
    "join reply error unmatched topic",
    v2Reply(ojr, ojr, "nope:1", "error", { reason: "unmatched topic" }),
  );
  serverSends("phx_error", v2(ojr, ojr, "nope:1", "phx_error", { reason: "channel_crash" }));
});

const isBinary = (e) => "binary_hex" in e;
const v2Json = v2Run.entries.filter((e) => !isBinary(e));
const v2Binary = v2Run.entries.filter(isBinary);

// --- V1: object frames ------------------------------------------------------------------------------
// phoenix.js 1.8 has no V1 serializer of its own: a V1 client passes `vsn: "1.0.0"` with JSON `encode`
// and `decode` options, as below (the decoder is the one phoenix.js's docs give for `decode`). The
// message objects, their member order and refs are phoenix.js's own.

const v1Options = {
  vsn: "1.0.0",
  encode: (message, callback) => callback(JSON.stringify(message)),
  decode: (raw, callback) => callback(JSON.parse(raw)),
};
const v1Run = capture(v1Options, v1Options.decode, ({ socket, expectSent, serverSends }) => {
  const channel = socket.channel("room:1", { user: "alice" });
  channel.join();
  expectSent("join with params");
  const jr = channel.joinRef();
  serverSends("join reply ok", v1Reply(jr, "room:1", "ok", {}));

  channel.push("new_msg", { body: "hello" });
  expectSent("push");
  serverSends("push reply ok with response", v1Reply(socket.ref.toString(), "room:1", "ok", { id: 42 }));

  socket.sendHeartbeat();
  expectSent("heartbeat");
  serverSends("heartbeat reply", v1Reply(socket.pendingHeartbeatRef, "phoenix", "ok", {}));

  serverSends("broadcast", v1("room:1", "new_msg", { body: "hi" }));

  channel.leave();
  expectSent("leave");
  serverSends("leave reply", v1Reply(socket.ref.toString(), "room:1", "ok", {}));
  serverSends("phx_close", v1("room:1", "phx_close", {}, jr));
});

// --- output -------------------------------------------------------------------------------------

const files = {
  "v2_json.json": v2Json,
  "v2_binary.json": v2Binary,
  "v1_json.json": v1Run.entries,
};
const check = process.argv.includes("--check");
let stale = 0;
for (const [file, entries] of Object.entries(files)) {
  const path = join(here, file);
  const text = `${JSON.stringify(entries, null, 2)}\n`;
  if (check) {
    let current = null;
    try {
      current = readFileSync(path, "utf8");
    } catch {}
    if (current !== text) {
      console.error(`${file}: differs from a fresh capture; rerun without --check`);
      stale += 1;
    }
  } else {
    writeFileSync(path, text);
    console.log(`${file}: ${entries.length} frames`);
  }
}
console.log(`phoenix.js ${phoenixVersion} connects to ${v2Run.url} (V2) and ${v1Run.url} (V1)`);
if (stale > 0) process.exit(1);
