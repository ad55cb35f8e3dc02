// Who is on a channel's topic, from the server's `presence_state` and `presence_diff` pushes, with
// phoenix.js `Presence` semantics: a key has one meta per channel that tracks it (a user in two
// tabs has two), metas are told apart by `phx_ref`, and a key leaves when its last meta does.

/**
 * The presence list of one channel. `onSync` runs after each state or diff with the list.
 */
export class PresenceList {
  /**
   * @param {any} channel an `@alight/client` Channel (before it joins)
   * @param {(list: {key: string, metas: object[]}[]) => void} onSync
   */
  constructor(channel, onSync) {
    /** @type {Map<string, object[]>} key → metas */
    this.state = new Map();
    this.onSync = onSync;
    // Each (re)join pushes a fresh `presence_state`, which replaces what was held: entries that
    // left while this client was away simply are not in it. The server reads the state as it
    // writes it, so a diff that arrives first is already contained in it.
    channel.on("presence_state", (state) => {
      this.state = new Map(Object.entries(state).map(([key, { metas }]) => [key, [...metas]]));
      this.sync();
    });
    channel.on("presence_diff", ({ joins = {}, leaves = {} }) => {
      for (const [key, { metas }] of Object.entries(joins)) {
        const current = this.state.get(key) ?? [];
        const known = new Set(current.map((meta) => meta.phx_ref));
        this.state.set(key, [...current, ...metas.filter((meta) => !known.has(meta.phx_ref))]);
      }
      for (const [key, { metas }] of Object.entries(leaves)) {
        const leaving = new Set(metas.map((meta) => meta.phx_ref));
        const rest = (this.state.get(key) ?? []).filter((meta) => !leaving.has(meta.phx_ref));
        if (rest.length === 0) this.state.delete(key);
        else this.state.set(key, rest);
      }
      this.sync();
    });
  }

  /** Everyone present, sorted by key. */
  list() {
    return [...this.state]
      .map(([key, metas]) => ({ key, metas }))
      .sort((a, b) => a.key.localeCompare(b.key));
  }

  sync() {
    this.onSync(this.list());
  }
}
