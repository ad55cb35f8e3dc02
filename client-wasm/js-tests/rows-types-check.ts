// Compiled by live.test.mjs with `tsc --noEmit --strict` beside the generated row types it
// imports, which the test writes into generated/: demo-rows.d.ts is the demo's checked-in
// demo/static/rows.d.ts, items-rows.d.ts what `sync-server --emit-ts` prints
// (alight_sync::typescript_rows both). LiveCollections of generated row types, used as the README
// shows; the `@ts-expect-error` lines must fail to compile.

import { Socket } from "@alight/client";
import { LiveCollection } from "@alight/client/live";
import type { LiveEvent } from "@alight/client/live";
import type { NotificationsRow } from "./generated/demo-rows.js";
import type { ItemsRow, Json, KindsRow } from "./generated/items-rows.js";

declare function show(...values: unknown[]): void;

const socket = new Socket("ws://127.0.0.1:4000/socket", { params: { token: "alice" } });

// The demo's bell: the user's notifications.
const notifications = new LiveCollection<NotificationsRow>(socket, "notifications");
notifications.subscribe((event: LiveEvent<NotificationsRow>) => {
  if (event.type !== "snapshot") return;
  for (const n of event.rows.values()) {
    const id: number = n.id;
    const title: string = n.title;
    const readAt: number | null = n.read_at;
    show(id, title, n.sender, new Date(n.inserted_at), readAt === null ? "unread" : new Date(readAt));
  }
});
const unread: number = [...notifications.rows.values()].filter((n) => n.read_at === null).length;
const newest: NotificationsRow | undefined = [...notifications.rows.values()].sort((a, b) => b.id - a.id)[0];

// @ts-expect-error: no such column (a typo of `title`)
notifications.rows.get("k")?.titel;
// @ts-expect-error: read_at is null while unread
const readAt: number = newest!.read_at;
// @ts-expect-error: id is a number
const id: string = newest!.id;

// Only the readable columns: `secret` is not one of `items`'.
const items = new LiveCollection<ItemsRow>(socket, "items", { where: "done = $1", params: ["false"] });
const done: boolean[] = [...items.rows.values()].map((item) => item.done);
// @ts-expect-error: not readable, so not in the row type
items.rows.get("k")?.secret;

// A shape of some columns: those fields of the row type.
type Title = Pick<ItemsRow, "id" | "title">;
const titles = new LiveCollection<Title>(socket, "items", { columns: ["id", "title"] });
// @ts-expect-error: not among the columns asked for
titles.rows.get("k")?.owner;

// Every kind of declared type.
const kinds = new LiveCollection<KindsRow>(socket, "kinds");
kinds.subscribe((event) => {
  if (event.type !== "changes") return;
  for (const { value } of event.changes) {
    const count: number = value.count;
    const big: number | null = value.big;
    const flag: boolean | null = value.flag;
    const doc: Json | null = value.doc;
    const amount: string | null = value.amount;
    show(count, big, flag, doc, amount, value.data?.length, value.label?.toUpperCase());
    // @ts-expect-error: a JSON value needs narrowing before use
    value.doc.tags;
  }
});

export { done, unread, readAt, id };
