// Compiled (never run) by types.test.mjs: the package's declarations accept phoenix.js-style code,
// type what they know, and make unknown payloads be narrowed.
import { Channel, Presence, Push, Socket, protocolVersion } from "@alight/client";
import type {
  CloseInfo,
  Message,
  PresenceEntry,
  PresenceState,
  Recovery,
  Refused,
  SocketOptions,
  WebSocketClass,
} from "@alight/client";

declare const WS: new (url: string, protocols?: string | string[]) => { send(data: string): void };
const transport: WebSocketClass = WS;

const opts: SocketOptions = {
  params: async () => ({ token: "abc" }),
  authToken: () => "token",
  heartbeatIntervalMs: 30000,
  heartbeatTimeoutMs: 10000,
  reconnectAfterMs: (tries) => [10, 50][tries - 1] ?? 5000,
  rejoinAfterMs: (tries) => 1000 * tries,
  timeout: 10000,
  logger: (kind, msg, data) => void [kind, msg, data],
  vsn: "2.0.0",
  transport,
  jitter: 0,
};
const socket = new Socket("ws://localhost:4000/socket", opts);
socket.connect();
const ref: string = socket.onOpen(() => {});
socket.onClose((event: CloseInfo) => event.code);
socket.onError((error) => void error);
socket.onMessage((message: Message) => message.topic);
socket.off([ref]);

const channel: Channel = socket.channel("room:1", { a: 1 });
const binding: number = channel.on("shout", (payload: { body: string }) => payload.body.length);
channel.on<{ n: number }>("count", ({ n }) => n + 1);
channel.off("shout", binding);
channel.onClose((reason) => void reason);
const push: Push = channel
  .join()
  .receive("ok", (response: { user: string | null }) => response.user)
  .receive("timeout", () => {});
channel.push("ping", new ArrayBuffer(3), 1000).receive<{ id: number }>("ok", ({ id }) => id);
channel.push("ping", { nested: [1, "two", null] });
channel.leave();
const state: "closed" | "errored" | "joined" | "joining" | "leaving" = channel.state;
const joinRef: string | undefined = channel.joinRef();
socket.disconnect(() => {}, 1000, "bye");
socket.disconnect(1000);
const version: string = protocolVersion();
const connection: "connecting" | "open" | "closing" | "closed" = socket.connectionState();
void [push, state, joinRef, version, connection];

// @ts-expect-error: a payload of unknown shape must be narrowed before use
channel.on("x", (payload) => payload.body);
// @ts-expect-error: options are checked
new Socket("/socket", { heartbeatIntervalMs: "30s" });

// Presence, as phoenix.js's.
const presence = new Presence<{ phx_ref: string; name: string }>(channel, { events: { state: "s", diff: "d" } });
presence.onJoin((key: string, current, joined) => void [key, current?.metas.length, joined.metas[0].name]);
presence.onLeave((key, current, left) => void [key, current.metas.length, left.metas]);
presence.onSync(() => {});
const entries: PresenceEntry<{ phx_ref: string; name: string }>[] = presence.list();
const names: string[] = presence.list((key, { metas }) => `${key}:${metas[0].name}`);
const pending: boolean = presence.inPendingSyncState();
let presState: PresenceState = {};
presState = Presence.syncState(presState, { u1: { metas: [{ phx_ref: "1" }] } });
presState = Presence.syncDiff(presState, { joins: {}, leaves: {} }, null, (key) => void key);
const keys: string[] = Presence.list(presState, (key) => key);
void [entries, names, pending, keys];

// Resume and refusals.
const history: Channel = socket.channel("history:1", {});
const last: string | undefined = history.position();
history.onRecover((info: Recovery) => {
  const recovered: boolean = info.recovered;
  void [recovered, last];
});
history.on("n", (payload, position) => void [payload, position?.length]);
socket.onError((error) => {
  if (typeof error === "object" && error !== null && "code" in error) {
    const refused = error as Refused;
    const code: number = refused.code;
    const reason: string = refused.reason;
    void [code, reason];
  }
});
