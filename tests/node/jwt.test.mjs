// JWT connect auth with phoenix.js: the token as a `params` function (re-evaluated on every
// reconnect) or as `authToken`, expiry closing the socket with 4001, and the in-band refresh
// (`access_token` on a joined channel, as Supabase realtime-js sends it).

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, test } from "node:test";

import { Session, join, pushResult, startServer } from "./helpers.mjs";

const SECRET = "node test secret, thirty-two b!!";

/** An HS256 JWT for `sub`, expiring `expIn` seconds from now, allowing `channels`. */
function sign(sub, expIn, channels) {
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const exp = Math.floor(Date.now() / 1000) + expIn;
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, exp, channels })}`;
  const signature = createHmac("sha256", SECRET).update(body).digest("base64url");
  return `${body}.${signature}`;
}

let server;
before(async () => {
  server = await startServer({ args: ["--jwt-secret", SECRET] });
});
after(() => server.stop());

test("a token in a params function connects, and the channels claim limits joins", async (t) => {
  const session = new Session(t);
  const socket = await session.connect(server, {
    params: () => ({ token: sign("ann", 60, ["room:*"]) }),
  });
  assert.deepEqual(await join(socket.channel("room:jwt", {})), { user: "ann" });
  const refused = socket.channel("private:jwt", {});
  const answer = await new Promise((resolve) => {
    refused.join().receive("error", resolve).receive("ok", resolve);
  });
  assert.deepEqual(answer, { reason: "unauthorized" });
});

test("authToken carries the JWT too", async (t) => {
  const session = new Session(t);
  const socket = await session.connect(server, { authToken: sign("bob", 60, ["room:*"]) });
  assert.deepEqual(await join(socket.channel("room:jwt", {})), { user: "bob" });
});

test("an expired token closes the socket with 4001; the params function gives the reconnect a fresh one", async (t) => {
  const session = new Session(t);
  let issued = 0;
  const socket = await session.connect(server, {
    // The first token lives two seconds, the next ones a minute.
    params: () => ({ token: sign("ann", issued++ === 0 ? 2 : 60, ["room:*"]) }),
  });
  await join(socket.channel("room:expiry", {}));
  const closed = await socket.closes.nth(1, 10_000);
  assert.equal(closed.code, 4001);
  await socket.opens.nth(2);
  assert.equal(issued, 2);
});

test("access_token refreshes in band: the socket outlives the first token, and revoked channels close", async (t) => {
  const session = new Session(t);
  const first = sign("ann", 2, ["room:*", "presence:*"]);
  const refreshed = await session.connect(server, { params: { token: first } });
  const stale = await session.connect(server, { params: { token: first } });
  const room = refreshed.channel("room:refresh", {});
  const presence = refreshed.channel("presence:refresh", {});
  await join(room);
  await join(presence);
  let presenceClosed = false;
  presence.onClose(() => {
    presenceClosed = true;
  });

  const bad = await pushResult(room, "access_token", { access_token: "nope" });
  assert.equal(bad.status, "error");
  const good = await pushResult(room, "access_token", {
    access_token: sign("ann", 60, ["room:*"]),
  });
  assert.equal(good.status, "ok");

  // The socket that did not refresh is closed when the first token expires...
  const closed = await stale.closes.nth(1, 10_000);
  assert.equal(closed.code, 4001);
  // ...while the refreshed one still answers, without its revoked channel.
  const ping = await pushResult(room, "ping", { after: "expiry" });
  assert.deepEqual(ping, { status: "ok", response: { after: "expiry" } });
  assert.equal(refreshed.closes.length, 0);
  assert.equal(presenceClosed, true);
});
