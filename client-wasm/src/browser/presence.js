// `Presence`: who is on a channel's topic, kept from the server's `presence_state` and
// `presence_diff` events, with phoenix.js's API (same names, callbacks, arguments and order).
//
// Plain JavaScript rather than Rust compiled to wasm: presence state is JavaScript values from
// `JSON.parse`, which a Rust class would have to parse again (with the JSON code the package
// otherwise does without), and it would hand out copies in key order where applications expect
// the server's objects in its order.
//
// The state is a map from key to `{metas: [...]}`; metas are told apart by their `phx_ref`. Maps
// indexed by server-chosen keys have no prototype, so keys such as "__proto__" are ordinary keys.

const ignore = () => {};

/** A prototype-less copy of `obj`'s own keys (`obj` itself when it already has no prototype). */
function table(obj) {
  if (Object.getPrototypeOf(obj) === null) return obj;
  const out = Object.create(null);
  for (const key of Object.getOwnPropertyNames(obj)) out[key] = obj[key];
  return out;
}

/** A deep copy of JSON data. */
function deepCopy(value) {
  return JSON.parse(JSON.stringify(value));
}

/** Calls `visit(key, value)` for each own key, in insertion order, collecting the results. */
function eachEntry(obj, visit) {
  return Object.getOwnPropertyNames(obj).map((key) => visit(key, obj[key]));
}

/** The metas of `presence` whose `phx_ref` is not among `refs`' metas. */
function metasNotIn(presence, refs) {
  const known = new Set(refs.metas.map((meta) => meta.phx_ref));
  return presence.metas.filter((meta) => !known.has(meta.phx_ref));
}

export class Presence {
  #channel;
  #onJoin = ignore;
  #onLeave = ignore;
  #onSync = ignore;
  /** The channel join whose `presence_state` the state reflects (null before the first). */
  #syncedJoinRef = null;
  /** Diffs that arrived before the state of the current join. */
  #waiting = [];

  /**
   * Follows `channel`'s presence. `opts.events` renames the two events
   * (default `{state: "presence_state", diff: "presence_diff"}`).
   */
  constructor(channel, opts = {}) {
    const events = opts.events || { state: "presence_state", diff: "presence_diff" };
    this.#channel = channel;
    this.state = Object.create(null);
    channel.on(events.state, (fullState) => this.#receiveState(fullState));
    channel.on(events.diff, (diff) => this.#receiveDiff(diff));
  }

  #receiveState(fullState) {
    this.#syncedJoinRef = this.#channel.joinRef();
    let state = Presence.syncState(this.state, fullState, this.#onJoin, this.#onLeave);
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const diff of waiting) {
      state = Presence.syncDiff(state, diff, this.#onJoin, this.#onLeave);
    }
    this.state = state;
    this.#onSync();
  }

  #receiveDiff(diff) {
    if (this.inPendingSyncState()) {
      this.#waiting.push(diff);
      return;
    }
    this.state = Presence.syncDiff(this.state, diff, this.#onJoin, this.#onLeave);
    this.#onSync();
  }

  /** `callback(key, current, newPresence)` for each key that gains metas. */
  onJoin(callback) {
    this.#onJoin = callback;
  }

  /** `callback(key, current, leftPresence)` for each key that loses metas. */
  onLeave(callback) {
    this.#onLeave = callback;
  }

  /** `callback()` after each state or diff has been applied. */
  onSync(callback) {
    this.#onSync = callback;
  }

  /** `chooser(key, presence)` for each key (the presences themselves by default). */
  list(chooser) {
    return Presence.list(this.state, chooser);
  }

  /** Whether diffs are being held: the channel's current join has not had its state yet. */
  inPendingSyncState() {
    return !this.#syncedJoinRef || this.#syncedJoinRef !== this.#channel.joinRef();
  }

  /**
   * Moves `currentState` to `newState`, reporting what changed as joins and leaves (by
   * `phx_ref`) through `syncDiff`; returns the new state.
   */
  static syncState(currentState, newState, onJoin, onLeave) {
    const state = table(deepCopy(currentState));
    const target = table(newState);
    const joins = Object.create(null);
    const leaves = Object.create(null);

    for (const key of Object.getOwnPropertyNames(state)) {
      if (!target[key]) leaves[key] = state[key];
    }
    for (const key of Object.getOwnPropertyNames(target)) {
      const next = target[key];
      const now = state[key];
      if (!now) {
        joins[key] = next;
        continue;
      }
      const gained = metasNotIn(next, now);
      const lost = metasNotIn(now, next);
      if (gained.length > 0) {
        joins[key] = next;
        next.metas = gained;
      }
      if (lost.length > 0) {
        leaves[key] = deepCopy(now);
        leaves[key].metas = lost;
      }
    }
    return Presence.syncDiff(state, { joins, leaves }, onJoin, onLeave);
  }

  /**
   * Applies a diff: every join first (its metas after the key's existing ones), then every leave
   * (a key whose last meta leaves is removed). Returns the state, updated in place.
   */
  static syncDiff(state, diff, onJoin, onLeave) {
    const joined = onJoin || ignore;
    const left = onLeave || ignore;
    const current = table(state);
    const { joins, leaves } = deepCopy(diff);

    for (const key of Object.getOwnPropertyNames(joins)) {
      const arriving = joins[key];
      const before = current[key];
      const merged = deepCopy(arriving);
      if (before) merged.metas.unshift(...metasNotIn(before, merged));
      current[key] = merged;
      joined(key, before, arriving);
    }
    for (const key of Object.getOwnPropertyNames(leaves)) {
      const before = current[key];
      if (!before) continue;
      const leaving = leaves[key];
      before.metas = metasNotIn(before, leaving);
      left(key, before, leaving);
      if (before.metas.length === 0) delete current[key];
    }
    return current;
  }

  /** `chooser(key, presence)` for each key of `presences` (the presences by default). */
  static list(presences, chooser) {
    const pick = chooser || ((key, presence) => presence);
    return eachEntry(presences, pick);
  }
}
