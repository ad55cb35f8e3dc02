// The examples' typed counter app (examples/) with a client no one here wrote: stock phoenix.js and
// its `Presence` join the typed `counter:*` channel beside the Rust example client, a separate
// process using the shared schema's types and its presence view. Both see the same members, the
// Rust client's 100 typed pushes reach phoenix.js as `changed` broadcasts, and its leave is a
// presence leave for phoenix.js. Needs `cargo build -p alight-examples --examples`.
//
// Every wait resolves on an event (a line the Rust client prints, a phoenix.js callback) under a
// deadline.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, test } from "node:test";

import { Presence } from "phoenix";

import { binary, spawnServer } from "../support/process.mjs";
import { Recorder, Session, deadline, join } from "./helpers.mjs";

const EXAMPLE_HINT = "cargo build -p alight-examples --examples";
const WAIT_MS = 15000;

let server;
before(async () => {
  const served = await spawnServer({
    bin: binary("ALIGHT_COUNTER_SERVER", "examples/counter_server", EXAMPLE_HINT),
    args: [],
    env: { ALIGHT_ADDR: "127.0.0.1:0", RUST_LOG: "warn" },
    ready: /counter server on http:\/\/127\.0\.0\.1:(\d+)/,
    stop: "SIGTERM",
  });
  server = {
    ...served,
    stop: () => served.stop(),
    socketUrl: `ws://127.0.0.1:${served.port}/socket`,
  };
});
after(() => server?.stop());

/** Runs the Rust example client as `name`; `lines` records what it prints, `exited` its end. */
function rustClient(name) {
  const bin = binary("ALIGHT_COUNTER_CLIENT", "examples/counter_client", EXAMPLE_HINT);
  const child = spawn(bin, [name], {
    env: { ...process.env, ALIGHT_URL: server.socketUrl },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines = new Recorder(`${name}'s output`);
  let pending = "";
  let stderr = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk) => {
    pending += chunk;
    const complete = pending.split("\n");
    pending = complete.pop();
    for (const line of complete) lines.push(line);
  });
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => {
    if (stderr.length < 64 * 1024) stderr += chunk;
  });
  const exited = new Promise((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal, stderr })),
  );
  const kill = () => child.kill("SIGKILL");
  process.once("exit", kill);
  exited.then(() => process.removeListener("exit", kill));
  return { child, lines, exited };
}

test("phoenix.js Presence and the Rust client's presence view agree on a typed channel", async (t) => {
  const session = new Session(t);
  const socket = await session.connect(server);
  const channel = socket.channel("counter:lobby", { name: "js" });
  const presence = new Presence(channel);
  const syncs = new Recorder("phoenix.js presence syncs");
  presence.onSync(() => syncs.push(presence.list((key) => key).sort()));
  const changed = new Recorder("changed broadcasts");
  channel.on("changed", (payload) => changed.push(payload));
  const reply = await join(channel);
  assert.equal(typeof reply.value, "number", "the join reply is the schema's Total");
  await syncs.until((all) => JSON.stringify(all.at(-1)) === '["js"]', "js alone");

  const rust = rustClient("rusty");
  t.after(() => rust.child.kill("SIGKILL"));
  // The Rust client prints its presence view's list once its own entry arrived.
  await rust.lines.until(
    (lines) => lines.includes("online: js, rusty"),
    "the Rust client to list js and rusty",
    WAIT_MS,
  );
  await syncs.until(
    (all) => JSON.stringify(all.at(-1)) === '["js","rusty"]',
    "phoenix.js to list js and rusty",
    WAIT_MS,
  );

  // 100 typed pushes from Rust reach phoenix.js as the schema's `changed` events, in order.
  await changed.until((items) => items.length >= 100, "100 changed broadcasts", WAIT_MS);
  const values = changed.items.slice(0, 100).map((item) => item.value);
  assert.deepEqual(values, Array.from({ length: 100 }, (_, i) => reply.value + i + 1));
  assert.ok(changed.items.slice(0, 100).every((item) => item.by === "rusty"));

  // The Rust client leaves and exits; phoenix.js sees the leave.
  const { code, stderr } = await deadline(rust.exited, WAIT_MS, "the Rust client to exit");
  assert.equal(code, 0, stderr);
  assert.ok(rust.lines.items.includes("left"));
  await syncs.until((all) => JSON.stringify(all.at(-1)) === '["js"]', "rusty to leave", WAIT_MS);
});
