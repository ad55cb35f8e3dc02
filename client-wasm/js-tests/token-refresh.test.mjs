// Issue #18: an `authToken` function whose token is a JWT with `exp` is called again before the
// token expires, and the new token goes to the server in band (`access_token` on each joined
// channel, server/src/jwt.rs): the socket outlives its first token without reconnecting.
// Against the fixture server with JWT auth.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Harness, Recorder, join } from "./helpers.mjs";
import { SECRET, sign } from "./jwt.mjs";

test("an authToken function is refreshed before expiry, in band, without reconnecting", async (t) => {
  const h = new Harness(t);
  const server = await h.server({ args: ["--jwt-secret", SECRET] });
  const tokens = new Recorder("tokens");
  const pushes = new Recorder("access_token pushes");
  const socket = h.socket(server.socketUrl, {
    // Each token lives three seconds (two to three, with `exp` in whole seconds).
    authToken: async () => {
      const token = sign("ann", 3);
      tokens.push(token);
      return token;
    },
    logger: (kind, msg) => {
      if (kind === "push" && msg.includes("access_token")) pushes.push(msg);
    },
  });
  socket.connect();
  const room = socket.channel("room:refresh", {});
  const lobby = socket.channel("room:refresh-2", {});
  assert.deepEqual(await join(room), { user: "ann" });
  await join(lobby);
  const errors = new Recorder("channel errors");
  room.onError((reason) => errors.push(reason));

  // The third token is asked for after the first has expired: had the second not reached the
  // server, it would have closed the socket with 4001 by then.
  await tokens.nth(3, 10_000);
  assert.deepEqual(socket.closes.items, [], "the socket was never closed");
  assert.equal(socket.opens.length, 1, "no reconnect");
  assert.deepEqual(errors.items, []);
  // Both joined channels carried each refresh.
  assert.ok(pushes.length >= 4, `${pushes.length} access_token pushes`);
  assert.equal(pushes.items.filter((msg) => msg.startsWith("room:refresh-2 ")).length >= 2, true);
  assert.equal(room.state, "joined");
});
