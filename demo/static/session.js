// Who the user is (the `?user=` query parameter, else the last id picked in this browser), their
// login token from POST /api/login, the socket that carries it, and the connection indicator.

/** Where the last user id picked is remembered (per browser profile, so shared by its tabs). */
const STORAGE_KEY = "alight-demo-user";
/** The user ids the server accepts (`alight_demo_schema::is_valid_user_id`). */
export const USER_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** Reconnect delays in ms, by attempt: quick at first, then every 3 s (phoenix.js goes to 5 s). */
const RECONNECT_MS = [100, 250, 500, 1000, 2000];

/** The user id from `?user=`, else the stored one, if valid. */
export function currentUser() {
  const fromUrl = new URL(location.href).searchParams.get("user");
  if (fromUrl !== null) return USER_ID.test(fromUrl) ? fromUrl : null;
  let stored = null;
  try {
    stored = localStorage.getItem(STORAGE_KEY);
  } catch {
    // Storage can be disabled; the login form still works for this page.
  }
  return stored !== null && USER_ID.test(stored) ? stored : null;
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
      try {
        localStorage.setItem(STORAGE_KEY, userId);
      } catch {
        // Not remembered; this page still goes on as the user.
      }
      section.hidden = true;
      resolve(userId);
    });
  });
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
  let userId = currentUser();
  let token = null;
  while (token === null) {
    userId ??= await askForUser();
    try {
      token = await fetchToken(userId);
    } catch (err) {
      const error = document.getElementById("login-error");
      error.textContent = `Cannot log in as ${userId}: ${err.message}`;
      error.hidden = false;
      userId = null;
    }
  }
  document.getElementById("login-error").hidden = true;
  for (const name of document.querySelectorAll(".user-name")) name.textContent = userId;
  const chip = document.getElementById("user-chip");
  chip.querySelector(".avatar").textContent = userId.slice(0, 1).toUpperCase();
  chip.hidden = false;
  document.getElementById("logout").addEventListener("click", switchUser);

  const socket = new client.Socket("/socket", {
    authToken: token,
    reconnectAfterMs: (tries) => RECONNECT_MS[tries - 1] ?? 3000,
  });
  const connection = new ConnectionIndicator(document.getElementById("connection"), socket);
  socket.connect();
  return { userId, token, socket, connection };
}

const CONNECTION_TEXT = {
  connecting: "Connecting…",
  online: "Online",
  reconnecting: "Reconnecting…",
  error: "Not connected",
};

/**
 * The indicator in the top bar: "online" once the socket is open and every channel the page
 * registered with `channel()` is joined; "reconnecting" whenever that stops being true after it
 * was online; "error" when a join is refused. Its `data-state` attribute names the state.
 */
export class ConnectionIndicator {
  constructor(element, socket) {
    this.element = element;
    this.open = false;
    this.wasOnline = false;
    /** @type {Map<string, {state: "joining" | "joined" | "refused", reason?: string}>} */
    this.channels = new Map();
    element.hidden = false;
    socket.onOpen(() => {
      this.open = true;
      this.render();
    });
    socket.onClose(() => {
      this.open = false;
      for (const channel of this.channels.values()) {
        if (channel.state === "joined") channel.state = "joining";
      }
      this.render();
    });
    this.render();
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
    const channels = [...this.channels.values()];
    const refused = channels.find((channel) => channel.state === "refused");
    let state;
    if (refused) {
      state = "error";
    } else if (this.open && channels.every((channel) => channel.state === "joined")) {
      state = "online";
      this.wasOnline = true;
    } else {
      state = this.wasOnline ? "reconnecting" : "connecting";
    }
    const title = refused ? `A channel was refused: ${refused.reason}` : "";
    if (this.element.dataset.state === state && this.element.title === title) return;
    this.element.dataset.state = state;
    this.element.title = title;
    this.element.querySelector(".connection-text").textContent = CONNECTION_TEXT[state];
  }
}

/** The `reason` of an error reply, or the reply itself as text. */
export function reasonOf(response) {
  if (response && typeof response === "object" && typeof response.reason === "string") {
    return response.reason;
  }
  return JSON.stringify(response);
}
