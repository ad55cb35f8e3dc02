// Who the user is (the `?user=` query parameter, else the last id picked in this browser), their
// login token from POST /api/login, the socket that carries it, and the connection indicator,
// which also tells the user when the server refused the sign-in (close code 4001/4003, see
// server/src/close_code.rs), when a channel was refused, and when the browser is offline.

/** Where the last user id picked is remembered (per browser profile, so shared by its tabs). */
const STORAGE_KEY = "alight-demo-user";
/** The user ids the server accepts (`alight_demo_schema::is_valid_user_id`). */
export const USER_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** Reconnect delays in ms, by attempt: quick at first, then every 3 s (phoenix.js goes to 5 s). */
const RECONNECT_MS = [100, 250, 500, 1000, 2000];
/**
 * Heartbeats: one every 10 s, and a connection whose heartbeat is not answered within 5 s counts
 * as lost (the client's defaults, 30 s each, leave a dead connection "online" for up to a minute).
 */
const HEARTBEAT_INTERVAL_MS = 10000;
const HEARTBEAT_TIMEOUT_MS = 5000;
/** Close codes of a refused sign-in (server/src/close_code.rs). */
const UNAUTHORIZED = 4001;
const FORBIDDEN = 4003;

/** Remembers `userId` as this browser's user (for its other tabs and the next visit). */
function remember(userId) {
  try {
    localStorage.setItem(STORAGE_KEY, userId);
  } catch {
    // Storage can be disabled; this page still goes on as the user.
  }
}

/**
 * The user: `{userId}` from `?user=` (remembered, like a login), else the stored one;
 * `{userId: null, invalid}` when `?user=` is not a valid id, `{userId: null}` when there is none.
 */
export function currentUser() {
  const fromUrl = new URL(location.href).searchParams.get("user");
  if (fromUrl !== null) {
    if (!USER_ID.test(fromUrl)) return { userId: null, invalid: fromUrl };
    remember(fromUrl);
    return { userId: fromUrl };
  }
  let stored = null;
  try {
    stored = localStorage.getItem(STORAGE_KEY);
  } catch {
    // Storage can be disabled; the login form still works for this page.
  }
  return { userId: stored !== null && USER_ID.test(stored) ? stored : null };
}

/** `path` with this page's `?user=` carried over, if it has one. */
export function withUser(path) {
  const url = new URL(path, location.href);
  const user = new URL(location.href).searchParams.get("user");
  if (user !== null) url.searchParams.set("user", user);
  return url.pathname + url.search;
}

/** Points every `a[data-keep-user]` at the same page for the same user. */
function keepUserInLinks() {
  for (const link of document.querySelectorAll("a[data-keep-user]")) {
    link.href = withUser(link.getAttribute("href"));
  }
}

/** `POST /api/login` → the token; throws an `Error` with the server's reason. */
async function fetchToken(userId) {
  const response = await fetch("/api/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ user_id: userId }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error ?? `login failed (HTTP ${response.status})`);
  return body.token;
}

/** Shows the login form; resolves with the id picked (and remembers it). */
function askForUser() {
  const section = document.getElementById("login");
  const form = document.getElementById("login-form");
  const input = document.getElementById("login-user");
  section.hidden = false;
  input.focus();
  return new Promise((resolve) => {
    form.addEventListener("submit", function onSubmit(event) {
      event.preventDefault();
      const userId = input.value.trim();
      if (!USER_ID.test(userId)) return;
      form.removeEventListener("submit", onSubmit);
      remember(userId);
      // The address names the user from now on, so a reload or a copied link stays signed in.
      const url = new URL(location.href);
      if (url.searchParams.has("user")) {
        url.searchParams.set("user", userId);
        history.replaceState(null, "", url.pathname + url.search);
      }
      section.hidden = true;
      resolve(userId);
    });
  });
}

/** Says on the login form why it is shown, or hides the message (`text` empty). */
function loginError(text) {
  const error = document.getElementById("login-error");
  error.textContent = text;
  error.hidden = text === "";
}

/** Forgets the user and goes back to the login form. */
function switchUser() {
  try {
    localStorage.removeItem(STORAGE_KEY);
  } catch {
    // Nothing was stored.
  }
  const url = new URL(location.href);
  url.searchParams.delete("user");
  location.assign(url.pathname + url.search);
}

/**
 * Logs in (asking for a user id if there is none), fills in the user chip, and opens a socket
 * with the token. Resolves with `{userId, token, socket, connection}`.
 * @param {{Socket: any}} client the loaded `@alight/client` module
 */
export async function startSession(client) {
  keepUserInLinks();
  let { userId, invalid } = currentUser();
  if (invalid !== undefined) {
    document.getElementById("login-user").value = invalid;
    loginError(
      `“${invalid}” in the address is not a user id: use letters, digits, _ and - (up to 64).`,
    );
  }
  let token = null;
  while (token === null) {
    userId ??= await askForUser();
    try {
      token = await fetchToken(userId);
    } catch (err) {
      loginError(`Cannot log in as ${userId}: ${err.message}`);
      userId = null;
    }
  }
  loginError("");
  for (const name of document.querySelectorAll(".user-name")) name.textContent = userId;
  const chip = document.getElementById("user-chip");
  chip.querySelector(".avatar").textContent = userId.slice(0, 1).toUpperCase();
  chip.hidden = false;
  document.getElementById("logout").addEventListener("click", switchUser);

  const socket = new client.Socket("/socket", {
    authToken: token,
    reconnectAfterMs: (tries) => RECONNECT_MS[tries - 1] ?? 3000,
    heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
    heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS,
  });
  const connection = new ConnectionIndicator(
    document.getElementById("connection"),
    document.getElementById("session-notice"),
    socket,
  );
  socket.connect();
  return { userId, token, socket, connection };
}

const CONNECTION_TEXT = {
  connecting: "Connecting…",
  online: "Online",
  reconnecting: "Reconnecting…",
  offline: "Offline",
  refused: "Signed out",
  error: "Not connected",
};

/**
 * The indicator in the top bar, and the notice under it that says what went wrong in words.
 *
 * | `data-state` | when | notice |
 * |---|---|---|
 * | `connecting` | before the first time online | |
 * | `online` | the socket is open and every channel the page registered with `channel()` is joined | |
 * | `reconnecting` | that stopped being true after it was online | |
 * | `offline` | the browser says it has no network (`offline` event), at once | "You are offline…" |
 * | `refused` | the server closed the socket with 4001/4003: the sign-in is not valid | "Your session is no longer valid…" |
 * | `error` | a channel's join was refused | the channel and the server's reason |
 */
export class ConnectionIndicator {
  /**
   * @param {HTMLElement} element the indicator
   * @param {HTMLElement} notice where problems are spelled out (a `role="alert"` element)
   * @param {any} socket an `@alight/client` Socket, before it connects
   */
  constructor(element, notice, socket) {
    this.element = element;
    this.notice = notice;
    this.socket = socket;
    this.open = false;
    this.wasOnline = false;
    this.offline = globalThis.navigator?.onLine === false;
    /** @type {{code: number, reason: string} | null} */
    this.refusal = null;
    /** @type {Map<string, {state: "joining" | "joined" | "refused", reason?: string}>} */
    this.channels = new Map();
    element.hidden = false;
    socket.onOpen(() => {
      this.open = true;
      this.render();
    });
    socket.onClose((event) => {
      this.open = false;
      for (const channel of this.channels.values()) {
        if (channel.state === "joined") channel.state = "joining";
      }
      if (event?.code === UNAUTHORIZED || event?.code === FORBIDDEN) this.refused(event);
      this.render();
    });
    // The client reports a refusal it gave up on through onError too, as `{code, reason}`.
    socket.onError((error) => {
      if (error?.code === UNAUTHORIZED || error?.code === FORBIDDEN) {
        this.refused(error);
        this.render();
      }
    });
    // The browser knows at once when the network is gone; the socket may take a heartbeat.
    globalThis.addEventListener?.("offline", () => {
      this.offline = true;
      this.render();
    });
    globalThis.addEventListener?.("online", () => {
      this.offline = false;
      this.render();
    });
    this.render();
  }

  /** The server refused the sign-in: stop retrying with a token it will refuse again. */
  refused({ code, reason }) {
    if (this.refusal) return;
    this.refusal = { code, reason };
    this.socket.disconnect();
  }

  /** Registers a channel the page needs, `name` being how the indicator calls it. */
  channel(name) {
    this.channels.set(name, { state: "joining" });
    this.render();
    const set = (state, reason) => {
      this.channels.set(name, { state, reason });
      this.render();
    };
    return {
      joined: () => set("joined"),
      joining: () => set("joining"),
      refused: (reason) => set("refused", reason),
    };
  }

  render() {
    const channels = [...this.channels];
    const refused = channels.filter(([, channel]) => channel.state === "refused");
    let state;
    if (this.refusal) {
      state = "refused";
    } else if (this.offline) {
      state = "offline";
    } else if (refused.length > 0) {
      state = "error";
    } else if (this.open && channels.every(([, channel]) => channel.state === "joined")) {
      state = "online";
      this.wasOnline = true;
    } else {
      state = this.wasOnline ? "reconnecting" : "connecting";
    }
    this.renderNotice(state, refused);
    if (this.element.dataset.state === state) return;
    this.element.dataset.state = state;
    this.element.querySelector(".connection-text").textContent = CONNECTION_TEXT[state];
  }

  /** Spells out what the indicator's state means for the user, if anything went wrong. */
  renderNotice(state, refused) {
    const parts = [];
    if (state === "refused") {
      const why =
        this.refusal.code === FORBIDDEN
          ? "This account may not connect"
          : "Your session is no longer valid";
      parts.push(strong(`${why}.`), " Log in again to continue. ", this.logInAgainButton());
    } else if (state === "offline") {
      parts.push(
        strong("You are offline."),
        " Changes will show again once your connection is back.",
      );
    } else if (state === "error") {
      for (const [name, { reason }] of refused) {
        parts.push(strong(`Cannot open ${name}:`), ` ${describeRefusal(reason)} `);
      }
    }
    const key = JSON.stringify([state, refused]);
    if (this.notice.dataset.key === key) return;
    this.notice.dataset.key = key;
    this.notice.replaceChildren(...parts);
    this.notice.dataset.kind = state;
    this.notice.hidden = parts.length === 0;
  }

  logInAgainButton() {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button primary";
    button.textContent = "Log in again";
    // A fresh page load logs in again (the demo's login is password-less) with a new token.
    button.addEventListener("click", () => location.reload());
    return button;
  }
}

function strong(text) {
  const node = document.createElement("strong");
  node.textContent = text;
  return node;
}

/** A join refusal's reason in words a user understands. */
function describeRefusal(reason) {
  if (reason === "unauthorized") return "you are not allowed to see it with this sign-in (unauthorized).";
  return `the server refused it (${reason}).`;
}

/** The `reason` of an error reply, or the reply itself as text. */
export function reasonOf(response) {
  if (response && typeof response === "object" && typeof response.reason === "string") {
    return response.reason;
  }
  return JSON.stringify(response);
}
