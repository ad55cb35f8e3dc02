// What the history tests share: the resuming app written the way a phoenix.js user would, and a
// transport whose reconnects can be held back while broadcasts are published.

import { Recorder, WebSocket } from "./helpers.mjs";

/**
 * A `ws` transport with a gate: while `gate.closed`, connection attempts go to a port nobody
 * listens on and fail at once, so phoenix.js keeps retrying by itself until the gate opens.
 */
export function gatedTransport(gate) {
  return class GatedWebSocket extends WebSocket {
    constructor(url, protocols) {
      super(gate.closed ? url.replace(/:\d+\//, ":1/") : url, protocols);
    }
  };
}

/**
 * The resuming app: joins `topic` with `{since: last}` once it has a position, keeps the `ref` of
 * every `n` broadcast as `last`, and takes the join reply's position when it did not recover
 * (fresh, or reloaded).
 */
export function resumable(socket, topic) {
  const app = { last: undefined };
  const channel = socket.channel(topic, () => (app.last === undefined ? {} : { since: app.last }));
  const numbers = new Recorder(`${topic} n`);
  const joins = new Recorder(`${topic} joins`);
  channel.on("n", (payload, ref) => {
    numbers.push(payload.n);
    app.last = ref;
  });
  channel.join().receive("ok", (response) => {
    if (response.recovered !== true) app.last = response.position;
    joins.push(response);
  });
  return Object.assign(app, { channel, numbers, joins });
}

