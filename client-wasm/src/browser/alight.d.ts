/**
 * What a join, push or channel carries: any value `JSON.stringify` accepts (objects use their
 * `toJSON`), or an `ArrayBuffer`, which travels as a binary frame. A missing payload is `{}`.
 */
export type Payload = object | string | number | boolean | null;

/** Connect params: sent in the query string, nested objects as `key[sub]=value`. */
export type Params = { [key: string]: unknown };

/** A value, or a function returning it or a promise of it, evaluated on every connect. */
export type Lazy<T> = T | (() => T | PromiseLike<T>);

/** The status of a reply (`"ok"`, `"error"`, or what the server chose), or `"timeout"`. */
export type ReplyStatus = "ok" | "error" | "timeout" | (string & {});

/** `socket.connectionState()`. `"closing"` is phoenix.js's and never reported here. */
export type ConnectionState = "connecting" | "open" | "closing" | "closed";

/** `channel.state`. `"leaving"` is phoenix.js's and never reported here. */
export type ChannelState = "closed" | "errored" | "joined" | "joining" | "leaving";

/** A frame as phoenix.js decodes it; a reply has event `phx_reply` and payload `{status, response}`. */
export interface Message<P = unknown> {
  join_ref: string | null;
  ref: string | null;
  topic: string;
  event: string;
  payload: P;
}

/** What `onClose` callbacks get: the transport's `CloseEvent`, or an object like it. */
export interface CloseInfo {
  code: number;
  reason: string;
  wasClean: boolean;
}

/**
 * What `onError` callbacks get when the server refuses the connection (close code 4001
 * `unauthorized`, twice in a row, or 4003 `forbidden`): the socket stopped reconnecting until
 * `connect()` is called again.
 */
export interface Refused {
  code: number;
  reason: string;
}

/** A WebSocket class: the browser's, or a compatible one such as the `ws` package's. */
export type WebSocketClass = new (url: string, protocols?: string[]) => object;

export interface SocketOptions {
  /** Connect params (query string), or a function returning them, possibly async; called on every connect. */
  params?: Lazy<Params>;
  /**
   * A token sent as the `base64url.bearer.phx.<token>` subprotocol (Phoenix's `:auth_token`), or a
   * function returning it, possibly async; called on every connect. Latin-1 only, as `btoa`.
   * A function whose token is a JWT with `exp` is also called before the token expires, and the
   * new token is sent to the server on every joined channel (`access_token`), without reconnecting.
   */
  authToken?: Lazy<string | null | undefined>;
  /** Heartbeat interval. Default 30000. */
  heartbeatIntervalMs?: number;
  /** How long a heartbeat may go unanswered before the connection is closed and reconnected. Default: the interval. */
  heartbeatTimeoutMs?: number;
  /**
   * Delay before reconnect number `tries` (from 1). Default: 10, 50, 100, 150, 200, 250, 500,
   * 1000, 2000 ms, then 5000. Sampled for tries 1 to 33 when the socket is made.
   */
  reconnectAfterMs?: (tries: number) => number;
  /** Delay before rejoin number `tries` (from 1). Default: 1000, 2000, 5000 ms, then 10000. Sampled as above. */
  rejoinAfterMs?: (tries: number) => number;
  /** Default timeout of joins and pushes, in ms. Default 10000. */
  timeout?: number;
  /** Called with `("transport" | "push" | "receive" | "channel", message, data)`. */
  logger?: (kind: string, msg: string, data?: unknown) => void;
  /** Log to `console.log` when there is no `logger`. */
  debug?: boolean;
  /** The serializer: `"2.0.0"` (`"2.0"` and `"2.0.x"` are the same), the only one, as in phoenix.js 1.8; any other value, `"1.0.0"` too, makes the constructor throw a `RangeError`. */
  vsn?: string;
  /** The WebSocket class; default: the global `WebSocket` at each connect. */
  transport?: WebSocketClass;
  /** Not in phoenix.js: each reconnect and rejoin delay is scaled by a random factor in `[1 - jitter, 1 + jitter)`. Default 0.2; 0 for the exact schedule. */
  jitter?: number;
}

/** A connection to a Phoenix (or Alight) endpoint, with its channels. */
export class Socket {
  free(): void;
  /**
   * `endPoint`: `"ws://host/socket"`, `"wss://host/socket"`, or `"/socket"` (this page's host).
   * The client connects to `${endPoint}/websocket?${params}&vsn=2.0.0`.
   */
  constructor(endPoint: string, opts?: SocketOptions);
  /** Connects, unless connected or connecting. Throws if there is no WebSocket class. */
  connect(params?: Params): void;
  /** Disconnects and stops reconnecting; `callback` runs once the socket let go of the connection. */
  disconnect(callback?: () => void, code?: number, reason?: string): void;
  disconnect(code?: number, reason?: string): void;
  /** Calls `callback` whenever the connection opens. Returns a ref for `off`. */
  onOpen(callback: () => void): string;
  /** Calls `callback` whenever the connection closes (going offline too: code 1006, reason `"offline"`). Returns a ref for `off`. */
  onClose(callback: (event: CloseInfo) => void): string;
  /**
   * Calls `callback` on every transport error, failed connect (a params or token function threw),
   * or refusal by the server (a `Refused`). Returns a ref for `off`.
   */
  onError(callback: (error: Refused | unknown) => void): string;
  /** Calls `callback` with every frame received. Returns a ref for `off`. */
  onMessage(callback: (message: Message) => void): string;
  /** Removes the `onOpen`/`onClose`/`onError`/`onMessage` callbacks with these refs. */
  off(refs: string[]): void;
  /**
   * A channel for `topic`; `params` go with every join. A function is called before every join and
   * rejoin, and what it returns then is sent (an exception from it is thrown by `join()`, and
   * reported as uncaught on a rejoin, which then sends the params it returned last).
   */
  channel(topic: string, params?: Payload | (() => Payload)): Channel;
  /** Forgets `channel` without telling the server; `leave()` it first. */
  remove(channel: Channel): void;
  connectionState(): ConnectionState;
  isConnected(): boolean;
  hasLogger(): boolean;
  log(kind: string, msg: string, data?: unknown): void;
}

/** What `onRecover` callbacks get: whether a rejoin got every broadcast missed since `position()`. */
export interface Recovery {
  recovered: boolean;
}

/** A channel of a socket: one topic, joined with its params. */
export class Channel {
  private constructor();
  free(): void;
  readonly topic: string;
  readonly state: ChannelState;
  /** The ref of the current join, if one was sent. */
  joinRef(): string | undefined;
  /**
   * Joins, with `timeout` ms for this and every rejoin (and as the default of pushes). The push
   * answers every (re)join: `ok` with the join's reply, `error` when refused, `timeout`.
   * Throws if the channel is joined or joining already.
   */
  join(timeout?: number): Push;
  /**
   * Calls `callback` for every `event` the channel receives. `ref` is the broadcast's position
   * on a history topic, else null. Returns a ref for `off`.
   */
  on<P = unknown>(event: string, callback: (payload: P, ref: string | null, joinRef: string | null) => void): number;
  /**
   * The channel's last position on a history topic (the server's `"<epoch>-<offset>"`): from its
   * join reply, then from every broadcast. Undefined until a join reply carries one.
   */
  position(): string | undefined;
  /**
   * Calls `callback` after every (re)join reply of a history topic that says whether it resumed:
   * the channel rejoins with `since: position()` by itself and drops broadcasts it had; with
   * `recovered: false` the server could not replay what was missed, so reload the state.
   */
  onRecover(callback: (info: Recovery) => void): void;
  /** Removes the callbacks for `event`, or only the one with `ref`. */
  off(event: string, ref?: number): void;
  /** Calls `callback` when the channel closes: left (`"leave"`), or closed by the server. */
  onClose(callback: (reason: unknown) => void): number;
  /** Calls `callback` when the channel errors (crashed on the server, connection lost); it rejoins by itself. */
  onError(callback: (reason: unknown) => void): number;
  /**
   * Pushes `event` with `payload`, with `timeout` ms (default: the join's). Waits in the channel
   * until it is joined. Throws if the channel is not joined or joining.
   */
  push(event: string, payload?: Payload, timeout?: number): Push;
  /** Leaves: sends `phx_leave` if connected and closes the channel at once; answers `ok`. */
  leave(timeout?: number): Push;
}

/** A join, push or leave, for its answer. */
export class Push {
  private constructor();
  free(): void;
  /**
   * Calls `callback` with the response when the answer has `status` (at once if it came
   * already); `"timeout"` gets `{}`. Returns the push, for chaining.
   */
  receive<R = unknown>(status: ReplyStatus, callback: (response: R) => void): Push;
}

/** One tracked presence of a key: the server's `phx_ref` (and `phx_ref_prev` on an update), and the meta it tracked. */
export interface PresenceMeta {
  phx_ref: string;
  phx_ref_prev?: string;
  [field: string]: unknown;
}

/** Every meta of one key (one per tab or device). */
export interface PresenceEntry<M extends PresenceMeta = PresenceMeta> {
  metas: M[];
}

/** Presences by key: the payload of `presence_state`, and what a `Presence` keeps. */
export type PresenceState<M extends PresenceMeta = PresenceMeta> = Record<string, PresenceEntry<M>>;

/** The payload of `presence_diff`. */
export interface PresenceDiff<M extends PresenceMeta = PresenceMeta> {
  joins: PresenceState<M>;
  leaves: PresenceState<M>;
}

/** `onJoin`: `current` is the key's presence before the join, if it had one. */
export type PresenceOnJoin<M extends PresenceMeta = PresenceMeta> = (
  key: string,
  current: PresenceEntry<M> | undefined,
  newPres: PresenceEntry<M>,
) => void;

/** `onLeave`: `current` is the key's presence after the leave (no metas: the key is gone). */
export type PresenceOnLeave<M extends PresenceMeta = PresenceMeta> = (
  key: string,
  current: PresenceEntry<M>,
  leftPres: PresenceEntry<M>,
) => void;

export interface PresenceOptions {
  /** The channel events carrying the state and the diffs. Default `{state: "presence_state", diff: "presence_diff"}`. */
  events?: { state: string; diff: string };
}

/** phoenix.js's `Presence`: the presence list of a channel's topic, kept in sync. */
export class Presence<M extends PresenceMeta = PresenceMeta> {
  /** Follows `channel`'s presence; diffs wait until the state of the channel's current join came. */
  constructor(channel: Channel, opts?: PresenceOptions);
  onJoin(callback: PresenceOnJoin<M>): void;
  onLeave(callback: PresenceOnLeave<M>): void;
  /** Called after each state or diff is applied. */
  onSync(callback: () => void): void;
  /** Every key's presence, or what `chooser` makes of each. */
  list(): PresenceEntry<M>[];
  list<T>(chooser: (key: string, presence: PresenceEntry<M>) => T): T[];
  /** Whether diffs are queued: no state has come for the channel's current join yet. */
  inPendingSyncState(): boolean;
  /** The joins and leaves that turn `currentState` into `newState`, applied; returns the new state. */
  static syncState<M extends PresenceMeta = PresenceMeta>(currentState: PresenceState<M>, newState: PresenceState<M>, onJoin?: PresenceOnJoin<M> | null, onLeave?: PresenceOnLeave<M> | null): PresenceState<M>;
  /** Applies a diff (joins, then leaves, by `phx_ref`); returns the new state. */
  static syncDiff<M extends PresenceMeta = PresenceMeta>(state: PresenceState<M>, diff: PresenceDiff<M>, onJoin?: PresenceOnJoin<M> | null, onLeave?: PresenceOnLeave<M> | null): PresenceState<M>;
  static list<M extends PresenceMeta = PresenceMeta>(presences: PresenceState<M>): PresenceEntry<M>[];
  static list<T, M extends PresenceMeta = PresenceMeta>(presences: PresenceState<M>, chooser: (key: string, presence: PresenceEntry<M>) => T): T[];
}

/** The serializer version this client speaks by default: `"2.0.0"`. */
export function protocolVersion(): string;

// --- LiveCollection: a shape's rows over a channel ---
// The types of `@alight/client/live` (live.d.ts declares the class there), exported here too so
// that code which only passes rows and events around needs no import of the entry.

/**
 * What a live collection asks for, as Electric's shape request: rows `where` a condition (a
 * comparison of a column with `$1`-style `params` or a literal, `IN`, `IS NULL`, `AND`/`OR`/`NOT`),
 * only some `columns`, and `replica: "full"` for updates with every column.
 */
export interface ShapeRequest {
  where?: string;
  params?: (string | number | boolean)[] | { [n: string]: string | number | boolean };
  columns?: string[] | string;
  replica?: "default" | "full";
}

/** A refused shape join: `reason` is `"unauthorized"`, `"forbidden"`, `"bad_request"` or `"unavailable"`. */
export interface ShapeRefusal {
  reason: "unauthorized" | "forbidden" | "bad_request" | "unavailable" | (string & {});
  message?: string;
}

/** One change to a live collection's rows. */
export interface LiveChange<Row> {
  operation: "insert" | "update" | "delete";
  /** The row's key: Electric's `"main"."<table>"/"<primary key>"`. */
  key: string;
  /** The whole row after the change; for a delete, the row as it was. */
  value: Row;
  /** The row before the change, when one was held. */
  old: Row | undefined;
}

/**
 * What `subscribe` callbacks get: a `snapshot` (replace every row you show), `changes` in commit
 * order (`recovered: true` for the ones missed while disconnected, sent on a rejoin that resumed),
 * or the join's refusal.
 */
export type LiveEvent<Row> =
  | { type: "snapshot"; rows: ReadonlyMap<string, Row> }
  | { type: "changes"; changes: LiveChange<Row>[]; rows: ReadonlyMap<string, Row>; recovered: boolean }
  | { type: "error"; response: ShapeRefusal };

