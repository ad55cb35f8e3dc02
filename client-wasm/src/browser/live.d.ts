// `@alight/client/live`: `LiveCollection` (in web.js, beside the main entry's classes; a bundler
// leaves it out of apps that do not import it). Its types are declared in the main entry
// (alight.d.ts).

import type { Channel, LiveEvent, ShapeRequest, Socket } from "./index.js";

export type { LiveChange, LiveEvent, ShapeRefusal, ShapeRequest } from "./index.js";

/**
 * The rows of a shape (`shape:<table>` on an Alight server with `alight_sync`), by key, kept live
 * across reconnects. `Row` is the type of a row's selected columns; the server generates one per
 * syncable table with `alight_sync::typescript_rows` (`ItemsRow` for `items`; see the README).
 *
 * ```ts
 * type Item = { id: number; owner: string; title: string; done: boolean };
 * const items = new LiveCollection<Item>(socket, "items", { where: "done = false" });
 * items.subscribe((event) => {
 *   if (event.type === "snapshot") render([...event.rows.values()]);
 *   if (event.type === "changes") for (const c of event.changes) show(c.operation, c.value);
 * });
 * ```
 */
export class LiveCollection<Row extends object = Record<string, unknown>> {
  /** Joins `shape:<table>` on `socket` (connected or not) with `request`. */
  constructor(socket: Socket, table: string, request?: ShapeRequest);
  /** The rows by key: replaced by each snapshot, changed in place by changes. */
  readonly rows: ReadonlyMap<string, Row>;
  /** Resolves with the rows once the first snapshot is complete; rejects with the join's refusal. */
  readonly ready: Promise<ReadonlyMap<string, Row>>;
  /** The channel underneath; a new one after a refetch, `null` once closed. */
  readonly channel: Channel | null;
  /**
   * Calls `callback` with each event, starting with a `snapshot` at once if one is held.
   * Returns a function that unsubscribes.
   */
  subscribe(callback: (event: LiveEvent<Row>) => void): () => void;
  /** Leaves the channel; no more events. */
  close(): void;
}
