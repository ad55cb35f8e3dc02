// Three demo processes on one Redis (`--redis`), driven by phoenix.js: a broadcast from a channel
// on one node and one from the HTTP API of another reach every member on every node once,
// presence spans the nodes, and a node killed with SIGKILL has its members leave everywhere
// within the down period (5 s by default).
//
// Needs `redis-server` (scripts/setup installs it; without it the test is skipped) and
// `cargo build -p alight-demo`.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";

import { Presence } from "phoenix";

import { deadline } from "../support/process.mjs";
import { API_KEY, HAVE_REDIS, startNode, startRedis, untilClustered } from "./cluster.mjs";
import { Session, httpPost, join, pushResult, record } from "./helpers.mjs";

/** The names a phoenix.js Presence on `channel` lists, recorded at every sync. */
function presenceNames(channel) {
  const presence = new Presence(channel);
  const syncs = [];
  const waiters = new Set();
  presence.onSync(() => {
    const names = presence.list((name) => name).sort();
    syncs.push(names);
    for (const waiter of [...waiters]) waiter(names);
  });
  return {
    until(expected, ms = 5000) {
      const wanted = JSON.stringify([...expected].sort());
      const current = syncs.at(-1);
      if (current && JSON.stringify(current) === wanted) return Promise.resolve();
      let waiter;
      const met = new Promise((resolve) => {
        waiter = (names) => {
          if (JSON.stringify(names) === wanted) resolve();
        };
        waiters.add(waiter);
      });
      return deadline(met, ms, () => `presence ${wanted}, last ${JSON.stringify(syncs.at(-1))}`).finally(
        () => waiters.delete(waiter),
      );
    },
  };
}

test("three demo nodes on one Redis behave as one service", { skip: !HAVE_REDIS && "redis-server is not installed (scripts/setup)" }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "alight-cluster-test-"));
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

  // One member per node, each tracked under its node's name.
  const members = [];
  for (const node of nodes) {
    const socket = await session.connect(node);
    const channel = socket.channel("room:cluster", { name: `member-${node.name}` });
    const shouts = record(channel, "shout");
    const presence = presenceNames(channel);
    await join(channel);
    members.push({ node, channel, shouts, presence });
  }
  const everyone = nodes.map((node) => `member-${node.name}`);
  await Promise.all(members.map((member) => member.presence.until(everyone)));

  // From a channel on node a, and from the HTTP API of node c.
  const reply = await pushResult(members[0].channel, "shout", { n: 1 });
  assert.equal(reply.status, "ok");
  const { status } = await httpPost(
    `${nodes[2].httpUrl}/api/broadcast`,
    { topic: "room:cluster", event: "shout", payload: { n: 2 } },
    { authorization: `Bearer ${API_KEY}` },
  );
  assert.equal(status, 202);
  for (const member of members) {
    await member.shouts.until((items) => items.some((item) => item.n === 2), "n = 2");
    await member.shouts.until((items) => items.some((item) => item.n === 1), "n = 1");
  }
  // A last one from node b, after which nothing could still be on its way twice.
  await pushResult(members[1].channel, "shout", { n: 3 });
  for (const member of members) {
    const items = await member.shouts.until((items) => items.some((item) => item.n === 3), "n = 3");
    assert.deepEqual(
      items.map((item) => item.n).sort(),
      [1, 2, 3],
      `member on ${member.node.name} got each broadcast once`,
    );
  }

  // Node b is killed: its member leaves on a and c within the down period.
  const b = nodes[1];
  b.child.kill("SIGKILL");
  await b.exited;
  const survivors = ["member-a", "member-c"];
  await Promise.all([members[0], members[2]].map((member) => member.presence.until(survivors, 8000)));
});
