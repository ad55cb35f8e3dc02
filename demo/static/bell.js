// The notification bell: the user's `notifications:<user_id>` channel (contract in
// demo/schema/src/lib.rs), an unread badge, a dropdown newest first with mark read / mark all
// read, and a toast for each new notification.
//
// Every tab of the user joins the same topic. The server broadcasts `notification` and `read` to
// all of them, the tab that marked something read included, so every tab applies the same events
// and stays in step; this file never changes read state on its own.
//
// The tab also follows the user's notifications as an Electric shape (`GET /v1/shape`, with the
// stock `@electric-sql/client`), so rows written by anyone else (the `sqlite3` shell, another
// service) show up too: a live insert, read mark or delete from the shape is applied to the same
// inbox, which drops what the channel already delivered (by id).

import { reasonOf } from "./session.js";
import { dismissToasts, showToast } from "./toasts.js";

/** How many notifications a tab holds (the dropdown shows them all). */
const MAX_HELD = 100;
/** On catching up after a disconnect, at most this many get a toast of their own. */
const MAX_CATCH_UP_TOASTS = 3;

/**
 * What this tab knows of the user's notifications: plain state, no DOM.
 *
 * `lastSeenId` is the greatest id seen, which every (re)join sends as `last_seen_id`. A join
 * reply's `latest` and `missed` are merged by id (they may repeat what the tab holds, and `latest`
 * carries the current read state); a `gap` reply replaces everything.
 */
export class Inbox {
  constructor() {
    /** @type {Map<number, {id: number, title: string, body: string, inserted_at: number, read: boolean}>} */
    this.byId = new Map();
    this.unread = 0;
    /** @type {number | undefined} */
    this.lastSeenId = undefined;
  }

  /** The notifications held, newest first. */
  list() {
    return [...this.byId.values()].sort((a, b) => b.id - a.id);
  }

  /**
   * Applies a join reply; returns the notifications it brought that are newer than any this tab
   * held (on a rejoin: those that arrived while it was away), oldest first.
   */
  joined({ unread, latest = [], missed = [], gap = false }) {
    const before = this.lastSeenId;
    const held = new Set(this.byId.keys());
    if (gap) this.byId.clear();
    const fresh = new Map();
    for (const notification of [...latest, ...missed]) {
      if (!held.has(notification.id) && (before === undefined || notification.id > before)) {
        fresh.set(notification.id, notification);
      }
      this.put(notification);
    }
    this.unread = unread;
    this.trim();
    return [...fresh.values()].sort((a, b) => a.id - b.id);
  }

  /** Applies a `notification` event; returns whether it was new to this tab. */
  added(notification) {
    if (this.byId.has(notification.id)) return false;
    this.put(notification);
    if (!notification.read) this.unread += 1;
    this.trim();
    return true;
  }

  /** Applies a read mark seen in the shape; returns whether it changed anything. */
  markedRead(id) {
    const notification = this.byId.get(id);
    if (!notification || notification.read) return false;
    notification.read = true;
    this.unread = Math.max(0, this.unread - 1);
    return true;
  }

  /** Applies a delete seen in the shape; returns whether it changed anything. */
  removed(id) {
    const notification = this.byId.get(id);
    if (!notification) return false;
    this.byId.delete(id);
    if (!notification.read) this.unread = Math.max(0, this.unread - 1);
    return true;
  }

  /** Applies a `read` event (`{ids, unread}` or `{all: true, unread}`). */
  read({ ids = [], all = false, unread }) {
    if (all) {
      for (const notification of this.byId.values()) notification.read = true;
    } else {
      for (const id of ids) {
        const notification = this.byId.get(id);
        if (notification) notification.read = true;
      }
    }
    this.unread = unread;
  }

  put(notification) {
    this.byId.set(notification.id, { ...notification });
    if (this.lastSeenId === undefined || notification.id > this.lastSeenId) {
      this.lastSeenId = notification.id;
    }
  }

  trim() {
    if (this.byId.size <= MAX_HELD) return;
    for (const { id } of this.list().slice(MAX_HELD)) this.byId.delete(id);
  }
}

const RELATIVE = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const ABSOLUTE = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** "just now", "5 minutes ago", "yesterday", … */
function relativeTime(ms, now = Date.now()) {
  const seconds = Math.round((ms - now) / 1000);
  if (Math.abs(seconds) < 45) return "just now";
  for (const [unit, size] of [
    ["day", 86400],
    ["hour", 3600],
    ["minute", 60],
  ]) {
    if (Math.abs(seconds) >= size) return RELATIVE.format(Math.round(seconds / size), unit);
  }
  return RELATIVE.format(seconds, "second");
}

/** The bell in the top bar, over one `notifications:<user_id>` channel. */
export class Bell {
  /**
   * @param {{socket: any, userId: string, connection: import("./session.js").ConnectionIndicator}} session
   */
  constructor({ socket, userId, token, connection }) {
    this.inbox = new Inbox();
    this.token = token;
    this.socket = socket;
    this.userId = userId;
    this.status = connection.channel("notifications");
    this.joinedOnce = false;
    this.baseTitle = document.title;

    this.root = document.getElementById("bell");
    this.button = document.getElementById("bell-button");
    this.badge = document.getElementById("badge");
    this.panel = document.getElementById("inbox");
    this.heading = document.getElementById("inbox-title");
    this.list = document.getElementById("inbox-list");
    this.empty = document.getElementById("inbox-empty");
    this.message = document.getElementById("inbox-status");
    this.markAll = document.getElementById("mark-all");

    this.button.addEventListener("click", () => this.toggle());
    this.markAll.addEventListener("click", () => this.push("mark_all_read", {}));
    this.list.addEventListener("click", (event) => {
      const button = event.target.closest("button.mark-read");
      if (button) this.push("mark_read", { id: Number(button.closest("li").dataset.id) });
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !this.panel.hidden) {
        this.toggle(false);
        this.button.focus();
      }
    });
    document.addEventListener("pointerdown", (event) => {
      if (!this.panel.hidden && !this.root.contains(event.target)) this.toggle(false);
    });
    // Keep "5 minutes ago" true while the dropdown is open.
    setInterval(() => {
      if (!this.panel.hidden) this.renderList();
    }, 30000);
    this.root.hidden = false;
    this.render();
  }

  /** Joins the channel; it rejoins by itself after errors and reconnects. */
  start() {
    // A params function, so that a rejoin sends the last id seen when it is made (phoenix.js
    // calls it on every join), and the reply's `missed` holds exactly what this tab lacks.
    // Should a client evaluate it only once, nothing is lost either: `latest` is merged too.
    const params = () =>
      this.inbox.lastSeenId === undefined ? {} : { last_seen_id: this.inbox.lastSeenId };
    const channel = this.socket.channel(`notifications:${this.userId}`, params);
    this.channel = channel;
    channel.on("notification", (notification) => {
      if (!this.inbox.added(notification)) return;
      this.render();
      if (!notification.read) this.toast(notification);
    });
    channel.on("read", (read) => {
      this.inbox.read(read);
      this.render();
      // A toast of something read (here or in another tab) has nothing left to say.
      dismissToasts(read.all ? "all" : (read.ids ?? []));
    });
    channel.onError(() => this.status.joining());
    channel
      .join()
      .receive("ok", (reply) => {
        this.refusedReason = undefined;
        const fresh = this.inbox.joined(reply);
        const catchUp = this.joinedOnce;
        this.joinedOnce = true;
        this.status.joined();
        this.render();
        if (catchUp) this.toastCatchUp(fresh.filter((notification) => !notification.read));
      })
      .receive("error", (response) => {
        // Shown in the dropdown instead of "No notifications yet", which would not be true.
        this.refusedReason = reasonOf(response);
        this.status.refused(this.refusedReason);
        this.render();
      })
      .receive("timeout", () => this.status.joining());
  }

  /**
   * Follows the user's notifications as an Electric shape and applies its live changes (not its
   * snapshot: the channel's join reply holds that) to the inbox. Without the client script the
   * bell works from the channel alone.
   */
  async followShape() {
    let electric;
    try {
      electric = await import("/vendor/electric-client.mjs");
    } catch {
      return;
    }
    const stream = new electric.ShapeStream({
      url: `${location.origin}/v1/shape`,
      params: { table: "notifications", replica: "full" },
      headers: { Authorization: `Bearer ${this.token}` },
      // A refused token (401/403) stops the shape: the page says "log in again" already; the
      // bell goes on from the channel. Without a handler the client throws it, uncaught.
      onError: (error) => {
        this.root.dataset.shape = "stopped";
        console.warn("alight: the notifications shape stopped", error);
      },
    });
    let live = false;
    stream.subscribe((messages) => {
      let changed = false;
      for (const message of messages) {
        const control = message.headers?.control;
        if (control === "up-to-date") {
          live = true;
          this.root.dataset.shape = "live";
        }
        if (control === "must-refetch") {
          live = false;
          this.root.dataset.shape = "syncing";
        }
        if (!live || !("key" in message)) continue;
        const row = message.value;
        const id = Number(row.id);
        switch (message.headers.operation) {
          case "insert": {
            const notification = {
              id,
              title: row.title,
              body: row.body,
              inserted_at: Number(row.inserted_at),
              read: row.read_at !== null,
            };
            if (this.inbox.added(notification)) {
              changed = true;
              if (!notification.read) this.toast(notification);
            }
            break;
          }
          case "update":
            if (row.read_at !== null && this.inbox.markedRead(id)) {
              changed = true;
              dismissToasts([id]);
            }
            break;
          case "delete":
            if (this.inbox.removed(id)) {
              changed = true;
              dismissToasts([id]);
            }
            break;
        }
      }
      if (changed) this.render();
    });
  }

  push(event, payload) {
    this.say("");
    this.channel
      .push(event, payload)
      .receive("error", (response) => this.say(`Could not update: ${reasonOf(response)}`))
      .receive("timeout", () => this.say("Could not update: no answer from the server. Try again."));
  }

  toast(notification, note) {
    showToast({
      id: notification.id,
      title: notification.title,
      body: notification.body,
      note,
      onOpen: () => this.toggle(true),
    });
  }

  toastCatchUp(fresh) {
    const shown = fresh.slice(-MAX_CATCH_UP_TOASTS);
    if (fresh.length > shown.length) {
      showToast({
        title: `${fresh.length} new notifications`,
        note: "While you were offline",
        onOpen: () => this.toggle(true),
      });
    }
    for (const notification of shown) this.toast(notification, "While you were offline");
  }

  toggle(open = this.panel.hidden) {
    this.panel.hidden = !open;
    this.button.setAttribute("aria-expanded", String(open));
    if (open) {
      this.renderList();
      this.heading.focus();
    }
  }

  say(text) {
    this.message.textContent = text;
    this.message.hidden = text === "";
  }

  render() {
    const { unread } = this.inbox;
    this.badge.hidden = unread === 0;
    this.badge.textContent = unread > 99 ? "99+" : String(unread);
    this.button.setAttribute(
      "aria-label",
      unread === 0 ? "Notifications, none unread" : `Notifications, ${unread} unread`,
    );
    this.markAll.disabled = unread === 0;
    document.title = unread === 0 ? this.baseTitle : `(${unread}) ${this.baseTitle}`;
    this.renderList();
  }

  renderList() {
    // Re-rendering replaces the items: keep focus on the same notification if it had it.
    const focusedId = this.list.contains(document.activeElement)
      ? document.activeElement.closest("li")?.dataset.id
      : undefined;
    const now = Date.now();
    const items = this.inbox.list().map((notification) => this.item(notification, now));
    this.list.replaceChildren(...items);
    this.empty.textContent =
      this.refusedReason !== undefined
        ? `Cannot show your notifications: ${this.refusedReason}.`
        : this.joinedOnce
          ? "No notifications yet."
          : "Loading…";
    this.empty.hidden = items.length > 0;
    if (focusedId !== undefined) {
      const item = this.list.querySelector(`li[data-id="${focusedId}"]`);
      const target = item?.querySelector("button") ?? item ?? this.heading;
      target.focus();
    }
  }

  item(notification, now) {
    const li = document.createElement("li");
    li.className = notification.read ? "inbox-item" : "inbox-item unread";
    li.dataset.id = String(notification.id);
    li.tabIndex = -1;

    const dot = document.createElement("span");
    dot.className = "unread-dot";
    dot.setAttribute("aria-hidden", "true");

    const text = document.createElement("div");
    text.className = "inbox-text";
    const title = document.createElement("p");
    title.className = "inbox-item-title";
    if (!notification.read) {
      const hidden = document.createElement("span");
      hidden.className = "visually-hidden";
      hidden.textContent = "Unread: ";
      title.append(hidden);
    }
    title.append(notification.title);
    text.append(title);
    if (notification.body) {
      const body = document.createElement("p");
      body.className = "inbox-item-body";
      body.textContent = notification.body;
      text.append(body);
    }
    const time = document.createElement("time");
    time.dateTime = new Date(notification.inserted_at).toISOString();
    time.title = ABSOLUTE.format(notification.inserted_at);
    time.textContent = relativeTime(notification.inserted_at, now);
    text.append(time);

    li.append(dot, text);
    if (!notification.read) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "mark-read";
      button.textContent = "Mark read";
      button.setAttribute("aria-label", `Mark “${notification.title}” as read`);
      li.append(button);
    }
    return li;
  }
}
