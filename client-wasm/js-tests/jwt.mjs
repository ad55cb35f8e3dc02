// HS256 JWTs for the fixture server started with `--jwt-secret SECRET` (as tests/node/jwt.test.mjs
// makes them).

import { createHmac } from "node:crypto";

export const SECRET = "js client test secret, 32 bytes!";

/** A token for `sub` expiring `expIn` seconds from now, allowing `channels`. */
export function sign(sub, expIn, channels = ["room:*"]) {
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const exp = Math.floor(Date.now() / 1000) + expIn;
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, exp, channels })}`;
  return `${body}.${createHmac("sha256", SECRET).update(body).digest("base64url")}`;
}
