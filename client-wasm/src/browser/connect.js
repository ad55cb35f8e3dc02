// What a connection attempt reads from the page and the params, and the arguments of its
// `new WebSocket(...)`, as phoenix.js makes them: plain JavaScript, because it is all property
// reads and string building on JS values. `alight_client::connect` is the same for the native
// client, and its tests and these (js-tests/connection.test.mjs) check the same bytes.

/** What `onClose` callbacks get for a close the session made (the transport's own closes give
 * the `CloseEvent`). */
export function closeEvent(code, reason) {
  return { code, reason, wasClean: true };
}

/** The `exp` claim (seconds since the epoch) of a JWT, or undefined for anything else. */
export function tokenExpiry(token) {
  try {
    const exp = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).exp;
    return typeof exp === "number" ? exp : undefined;
  } catch {}
}

/** The prefix of the subprotocol that carries the auth token. */
const AUTH_TOKEN_PREFIX = "base64url.bearer.phx.";

/**
 * A connection attempt's arguments: phoenix.js's `closure(value)()` of the params and the token
 * (functions are called, anything else taken as it is), awaited if either is a promise; then
 * `opened(websocketArgs(endpoint, params, token), token)`, or `failed(error)` if a function threw, a
 * promise rejected or the token cannot be sent. At once when neither is a promise (the
 * WebSocket is made during `connect()`, as phoenix.js makes it); returns whether it waits.
 */
export function prepare(endpoint, params, token, opened, failed) {
  const finish = (values) => {
    let args;
    try {
      args = websocketArgs(endpoint, values[0], values[1]);
    } catch (error) {
      return failed(error);
    }
    opened(args, values[1]);
  };
  const thenable = (value) =>
    typeof value === "object" && value !== null && typeof value.then === "function";
  let values;
  let waits;
  // Nothing thrown here may reach the module, which would unwind without cleaning up: a
  // function, a getter or a proxy that throws fails the attempt.
  try {
    values = [params, token].map((value) => (typeof value === "function" ? value() : value));
    waits = values.some(thenable);
  } catch (error) {
    failed(error);
    return false;
  }
  if (!waits) {
    finish(values);
    return false;
  }
  Promise.all(values).then(finish, failed);
  return true;
}

/**
 * `[url]`, or `[url, protocols]` with a token: phoenix.js's `endPointURL()`, the endpoint
 * resolved against `location`, then `/websocket`, the params as a query string and `vsn=2.0.0`
 * (the package speaks V2 only); and `["phoenix", "base64url.bearer.phx." + btoa(token)]` without
 * the padding, where `token` is neither undefined nor null. Throws for a token with a character
 * above U+00FF, which `btoa` (and so Phoenix) cannot take.
 */
export function websocketArgs(endpoint, params, token) {
  let url = `${resolveEndpoint(endpoint)}/websocket`;
  for (const part of [serialize(params), "vsn=2.0.0"]) {
    if (part) url += (url.includes("?") ? "&" : "?") + part;
  }
  if (token === undefined || token === null) return [url];
  token = String(token);
  const wide = /[^\0-\xff]/.exec(token);
  if (wide) {
    throw new Error(
      `the auth token has a character above U+00FF at index ${wide.index}; btoa, and so Phoenix, accepts only Latin-1`,
    );
  }
  return [url, ["phoenix", AUTH_TOKEN_PREFIX + btoa(token).replace(/=/g, "")]];
}

/**
 * phoenix.js `Ajax.serialize(params)`: `key=value` pairs of the own enumerable properties, nested
 * objects as `parent[key]=value`, every key and value through `encodeURIComponent`.
 */
function serialize(params, parent) {
  if (typeof params !== "object" || params === null) return "";
  const parts = [];
  for (const key of Object.keys(params)) {
    const value = params[key];
    const name = parent === undefined ? key : `${parent}[${key}]`;
    // `typeof null` is "object" too: serialized as nothing, as phoenix.js does.
    parts.push(
      typeof value === "object"
        ? serialize(value, name)
        : `${encodeURIComponent(name)}=${encodeURIComponent(String(value))}`,
    );
  }
  return parts.join("&");
}

/**
 * phoenix.js `endPointURL()`: a path (`/socket`) or protocol-relative URL (`//host/socket`) is
 * resolved against `location`, with `wss` on https pages.
 */
function resolveEndpoint(endpoint) {
  const location = globalThis.location;
  if (endpoint[0] !== "/" || typeof location !== "object" || location === null) return endpoint;
  const field = (name) => (typeof location[name] === "string" ? location[name] : "");
  const scheme = field("protocol").startsWith("https") ? "wss" : "ws";
  return endpoint[1] === "/" ? `${scheme}:${endpoint}` : `${scheme}://${field("host")}${endpoint}`;
}
