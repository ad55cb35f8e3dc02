// The package as npm installs it: its entries, exported names, and TypeScript declarations that
// match the classes at runtime.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { test } from "node:test";

import * as client from "@alight/client";

const require = createRequire(import.meta.url);
const packageDir = path.dirname(require.resolve("@alight/client/package.json"));
const manifest = JSON.parse(readFileSync(path.join(packageDir, "package.json"), "utf8"));

test("the package is @alight/client and exports phoenix.js's names", () => {
  assert.equal(manifest.name, "@alight/client");
  assert.deepEqual(Object.keys(client).sort(), [
    "Channel",
    "Presence",
    "Push",
    "Socket",
    "protocolVersion",
  ]);
  assert.equal(client.protocolVersion(), "2.0.0");
});

test("every file the exports map names is in the package", () => {
  const targets = [];
  const walk = (value) => {
    if (typeof value === "string") targets.push(value);
    else if (value && typeof value === "object") Object.values(value).forEach(walk);
  };
  walk(manifest.exports);
  walk([manifest.main, manifest.module, manifest.types]);
  for (const target of targets) {
    assert.doesNotThrow(() => readFileSync(path.join(packageDir, target)), target);
  }
});

test("the bundler/browser entry is the same API on the web build", async () => {
  // index.js instantiates with `fetch(new URL(...))`, which Node cannot do for file: URLs, so
  // this checks the module it re-exports from instead, initialized by hand.
  const web = await import("@alight/client/web");
  const wasm = readFileSync(path.join(packageDir, "alight_client_bg.wasm"));
  web.initSync({ module: wasm });
  assert.equal(typeof web.Socket, "function");
  assert.equal(web.protocolVersion(), "2.0.0");
  const index = readFileSync(path.join(packageDir, "index.js"), "utf8");
  assert.match(index, /await init\(\)/);
  assert.match(index, /export \{ Socket, Channel, Push, Presence, protocolVersion \} from "\.\/web\.js"/);
  assert.equal(web.Presence, client.Presence);
});

/** The members a class declares in the .d.ts: methods, getters/readonly properties. */
function declaredMembers(dts, className) {
  const start = dts.search(new RegExp(`export class ${className}[ <]`));
  assert.notEqual(start, -1, `class ${className} is declared`);
  const end = dts.indexOf("\n}", start);
  const body = dts.slice(start, end);
  const members = new Set();
  for (const line of body.split("\n")) {
    const m = /^\s+(?:readonly |private )?([A-Za-z_]\w*)\s*[<(:?]/.exec(line);
    if (m && m[1] !== "constructor") members.add(m[1]);
  }
  return members;
}

/** The members a class has at runtime (prototype), without wasm-bindgen's internals. */
function runtimeMembers(cls) {
  return new Set(
    Object.getOwnPropertyNames(cls.prototype).filter(
      (name) => name !== "constructor" && !name.startsWith("__"),
    ),
  );
}

test("the .d.ts declares exactly what the classes have", () => {
  const dts = readFileSync(path.join(packageDir, "web.d.ts"), "utf8");
  for (const name of ["Socket", "Channel", "Push", "Presence"]) {
    assert.deepEqual(
      [...declaredMembers(dts, name)].sort(),
      [...runtimeMembers(client[name])].sort(),
      `${name}: declared vs runtime members`,
    );
  }
  // Real types where they are known: nothing is `any` in what we wrote.
  const ours = dts
    .slice(dts.indexOf("export type Payload"), dts.indexOf("export type InitInput"))
    .replace(/\/\*[\s\S]*?\*\//g, "");
  assert.doesNotMatch(ours, /\bany\b/);
  // The main entry's declarations are the same API without wasm-bindgen's init functions.
  for (const entry of ["index.d.ts", "node.d.ts"]) {
    const declared = readFileSync(path.join(packageDir, entry), "utf8");
    for (const name of ["Socket", "Channel", "Push", "Presence"]) {
      assert.deepEqual(declaredMembers(declared, name), declaredMembers(dts, name), `${entry} ${name}`);
    }
    assert.match(declared, /export interface SocketOptions/);
    assert.doesNotMatch(declared, /InitInput|WebAssembly/);
  }
});

test("a socket without a WebSocket class says what to do", () => {
  const saved = globalThis.WebSocket;
  delete globalThis.WebSocket;
  try {
    const socket = new client.Socket("ws://127.0.0.1:1/socket");
    assert.throws(() => socket.connect(), /globalThis\.WebSocket = \(await import\("ws"\)\)\.WebSocket/);
    assert.equal(socket.connectionState(), "closed");
  } finally {
    if (saved) globalThis.WebSocket = saved;
  }
});

test("option and argument errors are thrown where they are made", () => {
  assert.throws(() => new client.Socket("ws://x/socket", { vsn: "3.0.0" }), RangeError);
  // V2 only, as phoenix.js 1.8: the V1 serializer is not in the package.
  assert.throws(
    () => new client.Socket("ws://x/socket", { vsn: "1.0.0" }),
    (error) => error instanceof RangeError && /`1\.0\.0`: this build speaks vsn=2\.0\.0 \(V2\) only/.test(error.message),
  );
  const socket = new client.Socket("ws://127.0.0.1:1/socket");
  const channel = socket.channel("room:1");
  assert.equal(channel.topic, "room:1");
  assert.equal(channel.state, "closed");
  assert.throws(() => channel.push("x", {}), /before joining/);
  const cyclic = {};
  cyclic.self = cyclic;
  assert.throws(() => socket.channel("room:2", cyclic), TypeError);
  // A params function is called at join, so that is where what it returns is checked.
  assert.throws(() => socket.channel("room:3", () => 1n).join(), TypeError);
  // A binary frame has one length byte for the topic and one for the event.
  const long = socket.channel("t".repeat(256), new ArrayBuffer(1));
  assert.throws(() => long.join(), /cannot be sent on a topic or as an event longer than 255 bytes/);
  const joining = socket.channel("room:4");
  joining.join();
  assert.throws(() => joining.push("e".repeat(256), new ArrayBuffer(1)), /longer than 255 bytes/);
  assert.throws(() => joining.join(), /tried to join multiple times/);
  // A channel its socket removed is gone for good.
  socket.remove(joining);
  assert.throws(() => joining.push("x", {}), /removed from its socket; make a new one/);
  assert.throws(() => joining.join(), /removed from its socket/);
  // Leaving a channel that never joined answers ok at once, as phoenix.js does offline.
  let left = null;
  channel.leave().receive("ok", (response) => (left = response));
  assert.deepEqual(left, {});
});
