// The notification bell: the user's notifications as a shape over the socket
// (`shape:notifications`, contract in sync/src/channel.rs), an unread badge, a dropdown newest
// first with mark read / mark all read / delete, and a toast for each new notification.
//
// The rows come from the database through the shape: whoever writes them (this page, another tab,
// the API, the `sqlite3` shell), every tab applies the same changes and stays in step. Commands
// go to the user's `notifications:<user_id>` channel (contract in demo/schema/src/lib.rs); this
// file never changes a row on its own, it waits for the shape to say so. After a disconnect the
// shape resumes from the last position seen (`since`): the reply brings what changed meanwhile,
// or, when the server cannot resume (it restarted), a fresh snapshot that replaces the rows.

import { reasonOf } from "./session.js";
import { dismissToasts, showToast } from "./toasts.js";

/** How many notifications the dropdown shows (the newest). */
const MAX_SHOWN = 100;
/** On catching up after a disconnect, at most this many get a toast of their own. */
const MAX_CATCH_UP_TOASTS = 3;

/** A shape row (Electric's values: integers arrive as numbers) as a notification. */
function notificationOf(row) {
  return {
    id: Number(row.id),
    title: row.title ?? "",
    body: row.body ?? "",
    sender: row.sender ?? "",
    inserted_at: Number(row.inserted_at),
    read: row.read_at !== null && row.read_at !== undefined,
  };
}

/**
 * What this tab knows of the user's notifications: the shape's rows by id, no DOM.
 *
 * `apply` takes Electric's change messages (`insert`, `update` with the changed columns,
 * `delete`) in order and says what changed, so the bell can toast new ones and drop the toasts
 * of rows read or deleted.
 */
export class Inbox {
  constructor() {
    /** @type {Map<number, Record<string, unknown>>} the rows, by id */
    this.rows = new Map();
  }

  /** The notifications held, newest first. */
  list() {
    return [...this.rows.values()].map(notificationOf).sort((a, b) => b.id - a.id);
  }

  get unread() {
    let unread = 0;
    for (const row of this.rows.values()) if (row.read_at === null || row.read_at === undefined) unread += 1;
    return unread;
  }

  /** The greatest id held (`undefined` when empty). */
  get lastId() {
    let last;
    for (const id of this.rows.keys()) if (last === undefined || id > last) last = id;
    return last;
  }

  /**
   * Applies change messages in order; returns `{added, gone}`: the notifications inserted, and
   * the ids read or deleted.
   */
  apply(messages) {
    const added = [];
    const gone = [];
    for (const message of messages) {
      if (!message.value || !message.headers?.operation) continue;
      const id = Number(message.value.id);
      switch (message.headers.operation) {
        case "insert":
          this.rows.set(id, { ...message.value });
          added.push(notificationOf(message.value));
          break;
        case "update": {
          const row = this.rows.get(id);
          if (!row) break;
          const wasUnread = row.read_at === null || row.read_at === undefined;
          Object.assign(row, message.value);
          if (wasUnread && row.read_at !== null && row.read_at !== undefined) gone.push(id);
          break;
        }
        case "delete":
          if (this.rows.delete(id)) gone.push(id);
          break;
      }
    }
    return { added, gone };
  }

  /** Replaces every row with a fresh snapshot's; returns what is new since the rows held. */
  replace(messages) {
    const before = this.lastId;
    const held = new Set(this.rows.keys());
    this.rows.clear();
    const { added } = this.apply(messages);
    const gone = [...held].filter((id) => !this.rows.has(id) || notificationOf(this.rows.get(id)).read);
    return {
      added: added.filter((n) => !held.has(n.id) && (before === undefined || n.id > before)),
      gone,
    };
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

/** The bell in the top bar, over the user's `shape:notifications`. */
export class Bell {
  /**
   * @param {{socket: any, userId: string, connection: import("./session.js").ConnectionIndicator}} session
   */
  constructor({ socket, userId, connection }) {
    this.inbox = new Inbox();
    this.socket = socket;
    this.userId = userId;
    this.status = connection.channel("notifications");
    this.joinedOnce = false;
    /** The last shape position this tab is complete up to: sent as `since` on a rejoin. */
    this.position = undefined;
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
      const button = event.target.closest("button[data-action]");
      if (!button) return;
      const id = Number(button.closest("li").dataset.id);
      this.push(button.dataset.action, { id });
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

  /** Joins the shape and the command channel; both rejoin by themselves after reconnects. */
  start() {
    this.commands = this.socket.channel(`notifications:${this.userId}`, {});
    this.commands.join().receive("error", (response) => this.say(`Cannot update: ${reasonOf(response)}`));
    this.joinShape();
  }

  joinShape() {
    // A params function: every (re)join sends the position reached, so the server sends only
    // what changed since (`recovered: true`) or says it cannot (`recovered: false`, a snapshot).
    const channel = this.socket.channel("shape:notifications", () =>
      this.position === undefined ? {} : { since: this.position },
    );
    this.shape = channel;
    channel.on("changes", (changes) => {
      if (channel !== this.shape) return;
      this.position = changes.position;
      this.changed(this.inbox.apply(changes.messages), null);
    });
    channel.on("refetch", () => {
      // The server dropped this shape's log: join again; the reply brings a fresh snapshot.
      if (channel !== this.shape) return;
      channel.leave();
      this.joinShape();
    });
    channel.onError(() => {
      this.root.dataset.shape = "syncing";
      this.status.joining();
    });
    channel
      .join()
      .receive("ok", (reply) => {
        this.refusedReason = undefined;
        this.joined(channel, reply);
      })
      .receive("error", (response) => {
        // Shown in the dropdown instead of "No notifications yet", which would not be true.
        this.refusedReason = reasonOf(response);
        this.status.refused(this.refusedReason);
        this.render();
      })
      .receive("timeout", () => this.status.joining());
  }

  /** A join reply: the first chunk; pulls the rest with `more`, then applies it all at once. */
  async joined(channel, reply) {
    const catchUp = this.joinedOnce;
    const fresh = reply.recovered !== true;
    const messages = [...reply.messages];
    let last = reply;
    try {
      while (last.more) {
        last = await new Promise((resolve, reject) =>
          channel
            .push("more", {})
            .receive("ok", resolve)
            .receive("error", (response) => reject(new Error(reasonOf(response))))
            .receive("timeout", () => reject(new Error("no answer"))),
        );
        messages.push(...last.messages);
      }
    } catch {
      // The snapshot broke off: start over (without a position to resume from).
      this.position = undefined;
      channel.leave();
      this.joinShape();
      return;
    }
    if (channel !== this.shape) return;
    this.position = last.position;
    this.joinedOnce = true;
    this.status.joined();
    // Tests (and styles) can tell the rows are in and changes apply.
    this.root.dataset.shape = "live";
    const change = fresh ? this.inbox.replace(messages) : this.inbox.apply(messages);
    this.changed(change, catchUp ? "While you were offline" : undefined);
  }

  /**
   * Renders after `added`/`gone`; toasts the unread ones added. `note`: `null` for live changes,
   * a text for a catch-up (grouped past a few), `undefined` for the first snapshot (no toasts).
   */
  changed({ added, gone }, note) {
    this.render();
    if (gone.length > 0) dismissToasts(gone);
    if (note === undefined) return;
    const unread = added.filter((n) => !n.read);
    if (note === null) {
      for (const notification of unread) this.toast(notification);
    } else {
      this.toastCatchUp(unread, note);
    }
  }

  push(event, payload) {
    this.say("");
    this.commands
      .push(event, payload)
      .receive("error", (response) => this.say(`Could not update: ${reasonOf(response)}`))
      .receive("timeout", () => this.say("Could not update: no answer from the server. Try again."));
  }

  toast(notification, note) {
    showToast({
      id: notification.id,
      title: notification.title,
      body: notification.body,
      note: note ?? (notification.sender ? `From ${notification.sender}` : undefined),
      onOpen: () => this.toggle(true),
    });
  }

  toastCatchUp(fresh, note) {
    const shown = fresh.slice(-MAX_CATCH_UP_TOASTS);
    if (fresh.length > shown.length) {
      showToast({
        title: `${fresh.length} new notifications`,
        note,
        onOpen: () => this.toggle(true),
      });
    }
    for (const notification of shown) this.toast(notification, note);
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
    const items = this.inbox
      .list()
      .slice(0, MAX_SHOWN)
      .map((notification) => this.item(notification, now));
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
    if (notification.sender) {
      const from = document.createElement("p");
      from.className = "inbox-item-body inbox-item-sender";
      from.textContent = `From ${notification.sender}`;
      text.append(from);
    }
    const time = document.createElement("time");
    time.dateTime = new Date(notification.inserted_at).toISOString();
    time.title = ABSOLUTE.format(notification.inserted_at);
    time.textContent = relativeTime(notification.inserted_at, now);
    text.append(time);

    li.append(dot, text);
    const actions = document.createElement("div");
    actions.className = "inbox-actions";
    if (!notification.read) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "mark-read";
      button.dataset.action = "mark_read";
      button.textContent = "Mark read";
      button.setAttribute("aria-label", `Mark “${notification.title}” as read`);
      actions.append(button);
    }
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "delete-notification";
    remove.dataset.action = "delete";
    remove.textContent = "Delete";
    remove.setAttribute("aria-label", `Delete “${notification.title}”`);
    actions.append(remove);
    li.append(actions);
    return li;
  }
}
