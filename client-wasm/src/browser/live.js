// `LiveCollection`: the rows of a shape served over a channel (the server's `shape:<table>`,
// alight_sync::channel), by key, kept live: the snapshot, then every committed change, and across
// reconnects only the changes missed.
//
// | from the server | here |
// |---|---|
// | join reply `{handle, offset, position, schema?, messages, more}` | a snapshot's first chunk: rows are gathered aside and `more` is pushed until `more: false`; then they replace `rows` (event `snapshot`) |
// | a rejoin's reply with `recovered: true` | its messages (and its `more` chunks') are the changes missed (event `changes`, `recovered: true`) |
// | a rejoin's reply with `recovered: false` | a fresh snapshot, as above, which replaces the rows |
// | `changes` `{offset, position, messages}` | applied (event `changes`); one at or before the offset held is a duplicate, dropped |
// | `refetch`, a `must-refetch` message, a failed `more` | the channel is left and a new one joined for a fresh snapshot; `rows` stay until it replaces them |
// | join refused | event `error` with the server's response; `ready` rejects with it |
//
// Every rejoin (after a reconnect or a crash on the server) sends where the rows stand, through
// the channel's params function: `since`, the last position of a reply, a `more` reply or a
// broadcast; `since: null` after a snapshot cut short, which asks for a fresh one.
// Messages are Electric's (`{key, value, headers: {operation}}`); an `update` carries the key and
// the changed columns (`replica: "default"`) or every column (`"full"`), merged into the row held,
// and a `delete` the key, so a change's `value` is always the whole row.
//
// Plain JavaScript, as presence.js is: rows are JavaScript values from `JSON.parse` that the
// application reads as they are. scripts/build-client joins it into web.js after the other
// modules (one gzip stream, and `callBack` of callbacks.js shared); the package's entry
// `@alight/client/live` re-exports it from there, and a bundler leaves it out of an app that does
// not import it. It works with the socket it is given.

/** An offset `<n>_<m>` as its number, to order them (offsets are decimal). */
const offsetNumber = parseInt;

/**
 * `row`'s text values typed by the reply's `schema` (`{column: {type}}`, as Electric's
 * `electric-schema` header), as @electric-sql/client's default parser does, but for `int8`, which
 * is a number here as in the Rust row types. Without a schema the values stay text.
 */
function typedRow(schema, row) {
  for (const column in row) {
    const type = schema?.[column]?.type;
    const text = row[column];
    if (type && typeof text === "string") {
      row[column] =
        type === "bool"
          ? text === "true" || text === "t"
          : /^(int|float|numeric)/.test(type)
            ? Number(text)
            : /^json/.test(type)
              ? JSON.parse(text)
              : text;
    }
  }
  return row;
}

/**
 * Applies Electric `messages` to `rows`: the changes made, or null when one asks for a refetch.
 */
function apply(rows, messages, schema) {
  const changes = [];
  for (const { key, value, headers = {} } of messages) {
    if (headers.control === "must-refetch") return null;
    const operation = headers.operation;
    if (!operation) continue;
    const old = rows.get(key);
    const row = { ...(operation !== "insert" && old), ...typedRow(schema, value) };
    if (operation === "delete") rows.delete(key);
    else rows.set(key, row);
    changes.push({ operation, key, value: row, old });
  }
  return changes;
}

// The state lives in the constructor's closure rather than in private fields: a minifier renames
// locals, not `#fields`.
export class LiveCollection {
  /**
   * Joins `shape:<table>` on `socket` with `request` (`where`, `params`, `columns`, `replica`),
   * and keeps its rows in `rows` by key.
   */
  constructor(socket, table, request = {}) {
    const callbacks = new Set();
    /**
     * Where the rows held stand, once a snapshot is complete: `{offset, since}`, `since` the last
     * position, which every rejoin sends to resume.
     */
    let at = null;
    /** Counts joins and restarts; an answer to an older one's `more` is dropped. */
    let generation = 0;
    /** Whether `rows` hold a snapshot (they keep it while the next one loads). */
    let held = false;
    /** The column types of the shape, from the latest reply that had them. */
    let schema;
    let settle;

    // One that throws is reported as uncaught, and the others still run (callbacks.js).
    const emit = (event) => {
      for (const callback of callbacks) callBack(callback, event);
    };

    const joined = (reply) => {
      const mine = ++generation;
      const recovered = reply.recovered;
      schema = reply.schema || schema;
      const rows = recovered ? this.rows : new Map();
      at = null;
      const failed = () => mine === generation && restart();
      const chunk = (part) => {
        if (mine !== generation) return;
        const changes = apply(rows, part.messages, schema);
        if (!changes) return restart();
        if (recovered) emit({ type: "changes", changes, rows, recovered });
        if (part.more) {
          this.channel.push("more", {}).receive("ok", chunk).receive("error", failed).receive("timeout", failed);
          return;
        }
        at = { offset: part.offset, since: part.position };
        if (recovered) return;
        this.rows = rows;
        held = true;
        settle[0](rows);
        emit({ type: "snapshot", rows });
      };
      chunk(reply);
    };

    const changed = (payload) => {
      // The server sends a subscriber only its own shape's changes.
      if (!at || offsetNumber(payload.offset) <= offsetNumber(at.offset)) return;
      at.offset = payload.offset;
      at.since = payload.position;
      const changes = apply(this.rows, payload.messages, schema);
      if (!changes) return restart();
      if (changes.length) emit({ type: "changes", changes, rows: this.rows, recovered: false });
    };

    /** Joins a new channel (leaving the one before): a snapshot, or a resume on every rejoin. */
    const open = () => {
      this.channel?.leave();
      generation++;
      // `since: null` asks for a fresh snapshot, whatever position the channel holds.
      const channel = socket.channel(`shape:${table}`, () => ({ ...request, since: at ? at.since : null }));
      /** The channel underneath (a new one after each restart). */
      this.channel = channel;
      const current = (f) => (payload) => channel === this.channel && f(payload);
      channel.on("changes", current(changed));
      channel.on("refetch", current(restart));
      channel
        .join()
        .receive("ok", current(joined))
        .receive(
          "error",
          current((response) => {
            settle[1](response);
            emit({ type: "error", response });
          }),
        );
    };

    /** Starts over with a fresh snapshot. */
    const restart = () => {
      at = null;
      open();
    };

    /** The rows by key: replaced by a snapshot, changed in place by changes. */
    this.rows = new Map();
    /** Resolves with `rows` once the first snapshot is complete; rejects if the join is refused. */
    this.ready = new Promise((resolve, reject) => (settle = [resolve, reject]));
    this.ready.catch(() => {});

    /**
     * Calls `callback` with each event: `snapshot` (at once if one is held), then `changes`, and
     * `error`. Returns a function that unsubscribes.
     */
    this.subscribe = (callback) => {
      callbacks.add(callback);
      if (held) callback({ type: "snapshot", rows: this.rows });
      return () => callbacks.delete(callback);
    };

    /** Leaves the channel; no more events. */
    this.close = () => {
      callbacks.clear();
      this.channel?.leave();
      this.channel = null;
    };

    open();
  }
}
