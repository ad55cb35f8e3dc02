// What a connection attempt reads from the page and the params, as phoenix.js does: plain
// JavaScript, because it is all property reads and string building on JS values (in Rust, a
// kilobyte of the module for a few imports each).

/**
 * phoenix.js `Ajax.serialize(params)`: `key=value` pairs of the own enumerable properties, nested
 * objects as `parent[key]=value`, every key and value through `encodeURIComponent`.
 */
export function serialize(params, parent) {
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
export function resolveEndpoint(endpoint) {
  const location = globalThis.location;
  if (endpoint[0] !== "/" || typeof location !== "object" || location === null) return endpoint;
  const field = (name) => (typeof location[name] === "string" ? location[name] : "");
  const scheme = field("protocol").startsWith("https") ? "wss" : "ws";
  return endpoint[1] === "/" ? `${scheme}:${endpoint}` : `${scheme}://${field("host")}${endpoint}`;
}
