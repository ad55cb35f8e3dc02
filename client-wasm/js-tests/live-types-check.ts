// Compiled by live.test.mjs with `tsc --noEmit --strict`: a LiveCollection of a row type, used as
// the README shows; the `@ts-expect-error` lines must fail to compile.

import { Socket } from "@alight/client";
import { LiveCollection } from "@alight/client/live";
import type { LiveChange, LiveEvent, ShapeRefusal } from "@alight/client/live";

declare function show(...values: unknown[]): void;

/** The row type, as the Rust struct's `Tsify` declaration gives it. */
type Item = { id: number; owner: string; title: string; done: boolean };

const socket = new Socket("ws://127.0.0.1:4000/socket", { params: { token: "alice" } });
const items = new LiveCollection<Item>(socket, "items", { where: "done = $1", params: ["false"], replica: "full" });

const titles: string[] = [...items.rows.values()].map((item) => item.title);
const first: Item | undefined = items.rows.get('"main"."items"/"1"');

items.subscribe((event: LiveEvent<Item>) => {
  switch (event.type) {
    case "snapshot":
      for (const item of event.rows.values()) show(item.id, item.done);
      break;
    case "changes": {
      const recovered: boolean = event.recovered;
      for (const change of event.changes as LiveChange<Item>[]) {
        const before: Item | undefined = change.old;
        if (change.operation === "delete") show("gone", change.value.id, before, recovered);
      }
      break;
    }
    case "error": {
      const refusal: ShapeRefusal = event.response;
      show(refusal.reason, refusal.message);
      break;
    }
  }
});

items.ready.then((rows) => rows.size).catch((refusal: ShapeRefusal) => refusal.reason);
const unsubscribe: () => void = items.subscribe(() => {});
unsubscribe();
items.channel?.leave();
items.close();

// @ts-expect-error: rows are read-only; changes come from the server
items.rows.set("k", { id: 1, owner: "a", title: "t", done: false });
// @ts-expect-error: a row has the row type's fields only
items.rows.get("k")?.secret;
// @ts-expect-error: replica is "default" or "full"
new LiveCollection<Item>(socket, "items", { replica: "partial" });

export { titles, first };
