// Broadcasts through phoenix.js: fan-out to many sockets, broadcast_from, and the HTTP API.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  Session,
  apiBroadcast,
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

/** `count` phoenix.js sockets, each joined to `topic`; resolves with `{socket, channel}`s. */
async function joinedSockets(session, topic, count) {
  const sockets = await Promise.all(
    Array.from({ length: count }, () => session.connect(server)),
  );
  return Promise.all(
    sockets.map(async (socket) => {
      const channel = socket.channel(topic, {});
      await join(channel);
      return { socket, channel };
    }),
  );
}

test("broadcast (shout) reaches all 20 sockets, the sender included", async (t) => {
  const session = new Session(t);
  const members = await joinedSockets(session, "room:fanout", 20);
  const shouts = members.map(({ channel }) => record(channel, "shout"));

  const sender = members[7].channel;
  assert.deepEqual(await pushResult(sender, "shout", { from: 7, text: "hello all" }), {
    status: "ok",
    response: {},
  });
  const received = await Promise.all(shouts.map((recorder) => recorder.nth(1)));
  for (const payload of received) assert.deepEqual(payload, { from: 7, text: "hello all" });

  // Each socket got it exactly once, as a V2 broadcast: no join_ref, no ref.
  for (const { socket } of members) {
    const frames = socket.messages.items.filter((m) => m.event === "shout");
    assert.equal(frames.length, 1);
    assert.equal(frames[0].join_ref, null);
    assert.equal(frames[0].ref, null);
    assert.equal(frames[0].topic, "room:fanout");
  }
});

test("the sender receives its own broadcast before the reply to its push, as from Phoenix", async (t) => {
  // A Phoenix channel process broadcasts (fastlaned straight to every transport, its own
  // included) before it sends the reply, and messages between two processes stay in order;
  // phoenix.js therefore runs `on("shout")` callbacks before the push's `receive("ok")`.
  const session = new Session(t);
  const [{ socket, channel }] = await joinedSockets(session, "room:own-order", 1);
  const order = [];
  channel.on("shout", () => order.push("shout"));
  channel.on("pushed", () => order.push("pushed"));
  const from = socket.messages.length;
  for (const [event, expected] of [
    ["shout", ["shout", "reply"]],
    ["push_me", ["pushed", "reply"]],
  ]) {
    order.length = 0;
    const push = channel.push(event, { event });
    await new Promise((resolve) => push.receive("ok", () => resolve(order.push("reply"))));
    const frames = socket.messages.items.slice(from).map((m) => `${m.event}${m.ref ? `(${m.ref})` : ""}`);
    assert.deepEqual([...order], expected, `callback order for ${event}; frames: ${frames.join(", ")}`);
  }
});

test("broadcasts from several senders keep each sender's order at every receiver", async (t) => {
  const session = new Session(t);
  const members = await joinedSockets(session, "room:order", 4);
  const shouts = members.map(({ channel }) => record(channel, "shout"));
  const perSender = 25;
  await Promise.all(
    members.map(async ({ channel }, sender) => {
      for (let seq = 0; seq < perSender; seq++) {
        assert.equal((await pushResult(channel, "shout", { sender, seq })).status, "ok");
      }
    }),
  );
  const total = perSender * members.length;
  for (const recorder of shouts) {
    const items = await recorder.until((items) => items.length >= total, `${total} shouts`);
    assert.equal(items.length, total);
    for (let sender = 0; sender < members.length; sender++) {
      const seqs = items.filter((p) => p.sender === sender).map((p) => p.seq);
      assert.deepEqual(seqs, Array.from({ length: perSender }, (_, i) => i));
    }
  }
});

test("broadcast_from (shout_from) reaches the others but not the sender", async (t) => {
  const session = new Session(t);
  const members = await joinedSockets(session, "room:from", 3);
  const shouts = members.map(({ channel }) => record(channel, "shout"));
  const [sender, ...others] = members;

  assert.deepEqual(await pushResult(sender.channel, "shout_from", { from: "sender" }), {
    status: "ok",
    response: {},
  });
  for (let i = 1; i < members.length; i++) {
    assert.deepEqual(await shouts[i].nth(1), { from: "sender" });
  }
  // Then a plain shout from the same sender: it reaches the sender, and as the sender's
  // deliveries are in order, the shout_from would have arrived first had it been sent.
  assert.equal((await pushResult(sender.channel, "shout", { barrier: true })).status, "ok");
  assert.deepEqual(await shouts[0].nth(1), { barrier: true });
  assert.equal(shouts[0].length, 1);
  for (const { socket } of others) {
    await socket.messages.find((m) => m.event === "shout" && m.payload.barrier);
  }
});

test("POST /api/broadcast with the API key reaches joined channels (202)", async (t) => {
  const session = new Session(t);
  const members = await joinedSockets(session, "room:api", 3);
  const events = members.map(({ channel }) => record(channel, "announcement"));
  const response = await apiBroadcast(server, "room:api", "announcement", { text: "from the API" });
  assert.equal(response.status, 202);
  assert.deepEqual(JSON.parse(response.body), { status: "accepted" });
  for (const recorder of events) {
    assert.deepEqual(await recorder.nth(1), { text: "from the API" });
  }
});

test("POST /api/broadcast without the key or with a wrong key is refused with 401 and sends nothing", async (t) => {
  const session = new Session(t);
  const [{ channel }] = await joinedSockets(session, "room:api-401", 1);
  const events = record(channel, "announcement");

  assert.equal((await apiBroadcast(server, "room:api-401", "announcement", { n: 1 }, null)).status, 401);
  assert.equal(
    (await apiBroadcast(server, "room:api-401", "announcement", { n: 2 }, "wrong-key")).status,
    401,
  );
  // The next authorized broadcast is the first to arrive.
  assert.equal((await apiBroadcast(server, "room:api-401", "announcement", { n: 3 })).status, 202);
  assert.deepEqual(await events.nth(1), { n: 3 });
  assert.equal(events.length, 1);
});
