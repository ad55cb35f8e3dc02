// `new Socket(endPoint, opts)`: the options read from the object as phoenix.js reads them.
// socket.js hands what this returns to the wasm core (src/browser/mod.rs `create` and `step`).
//
// The core's backoff is a schedule of delays, which cannot call into JavaScript, so a
// `reconnectAfterMs`/`rejoinAfterMs` function is sampled once, when the socket is made: tries 1
// to SAMPLED_TRIES become steps and the next one the delay of every later try. A function of the
// tries alone, as phoenix.js's documentation shows them, behaves exactly the same.

/** How many tries of a backoff function are sampled. */
const SAMPLED_TRIES = 32;

/** A number option: missing, zero or not a number is undefined (the default). */
const positive = (value) => (typeof value === "number" && value > 0 ? value : undefined);

/** `tries => ms` at tries 1 to SAMPLED_TRIES + 1; `setTimeout` takes what is not positive as 0. */
function sample(backoff) {
  if (typeof backoff !== "function") return undefined;
  const delays = [];
  for (let tries = 1; tries <= SAMPLED_TRIES + 1; tries++) delays.push(positive(backoff(tries)) ?? 0);
  return delays;
}

/**
 * `[timeout, heartbeatIntervalMs, reconnectAfterMs, rejoinAfterMs, jitter, logger, params,
 * authToken, transport, heartbeatTimeoutMs]`, each undefined when not given: the delays as numbers of ms, the backoffs
 * as sampled delays, `logger` a function or `true` for `debug`, `params` `{}` when falsy.
 */
export function readOptions(opts) {
  const get = (name) => (typeof opts === "object" && opts !== null ? opts[name] : undefined);
  const timeout = positive(get("timeout"));
  const heartbeat = positive(get("heartbeatIntervalMs"));
  const reconnect = sample(get("reconnectAfterMs"));
  const rejoin = sample(get("rejoinAfterMs"));
  const jitter = get("jitter");
  const vsn = get("vsn");
  // V2 only, as phoenix.js 1.8: `2.0` and `2.0.<digits>`, as the protocol's
  // `Serializer::from_vsn` reads versions; anything else (`"1.0.0"` too) throws here, in the
  // constructor, rather than failing at connect.
  if (typeof vsn === "string" && !/^2\.0(\.\d+)?$/.test(vsn)) {
    throw new RangeError(`unsupported protocol version \`${vsn}\`: this build speaks vsn=2.0.0 (V2) only`);
  }
  const logger = get("logger");
  const log = typeof logger === "function" ? logger : get("debug") ? true : undefined;
  const params = get("params");
  const authToken = get("authToken");
  const transport = get("transport");
  return [
    timeout,
    heartbeat,
    reconnect,
    rejoin,
    typeof jitter === "number" ? jitter : undefined,
    log,
    params || {},
    authToken || undefined,
    typeof transport === "function" ? transport : undefined,
    positive(get("heartbeatTimeoutMs")),
  ];
}
