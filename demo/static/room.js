// The room page, `/room?name=<room>`: the `room:<room>` channel (contract in demo/src/room.rs),
// joined with `{name: <user id>}` so the room's presence lists this tab. Chat messages are `shout`
// broadcasts `{user, body, sent_at}`, which every member receives, the sender included; they are
// not stored. The bell works here as on the notifications page.

import { Bell } from "./bell.js";
import { loadClient } from "./client.js";
import { PresenceList } from "./presence.js";
import { reasonOf, startSession, withUser } from "./session.js";

/** Room names this page opens (the topic takes anything; these read well in a URL). */
const ROOM_NAME = /^[A-Za-z0-9_-]{1,40}$/;
/** How close to the bottom (px) the log must be scrolled to follow new messages. */
const FOLLOW_SLACK_PX = 48;

const TIME = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });

const requested = new URL(location.href).searchParams.get("name") ?? "lobby";
const room = ROOM_NAME.test(requested) ? requested : "lobby";

const client = await loadClient(document.getElementById("client"));
if (client) {
  const session = await startSession(client);
  if (room !== requested) sayInvalidRoom(requested);
  document.title = `#${room} · Alight`;
  const bell = new Bell(session);
  bell.start();
  setUpRoomForm();
  joinRoom(session);
  document.getElementById("app").hidden = false;
}

function joinRoom({ socket, userId, connection }) {
  document.getElementById("room-title").textContent = room;
  const input = document.getElementById("chat-input");
  input.placeholder = `Message #${room}`;
  const status = connection.channel(`#${room}`);
  const membersStatus = document.getElementById("members-status");
  const members = document.getElementById("members");

  const channel = socket.channel(`room:${room}`, { name: userId });
  new PresenceList(channel, (list) => renderMembers(list, userId));
  channel.on("shout", (message) => addMessage(message, userId));
  channel.onError(() => {
    status.joining();
    members.classList.add("stale");
    membersStatus.textContent = "Reconnecting: this list may be out of date.";
  });
  const error = document.getElementById("chat-status");
  channel
    .join()
    .receive("ok", () => {
      status.joined();
      members.classList.remove("stale");
      membersStatus.textContent = "";
      // A "Not sent" from before is stale once the room is back: the user can send again.
      error.hidden = true;
    })
    .receive("error", (response) => {
      status.refused(reasonOf(response));
      membersStatus.textContent = `Could not join: ${reasonOf(response)}`;
    })
    .receive("timeout", () => status.joining());

  const form = document.getElementById("chat-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = input.value.trim();
    if (!body) return;
    error.hidden = true;
    channel
      .push("shout", { user: userId, body, sent_at: Date.now() })
      .receive("ok", () => {
        if (input.value.trim() === body) input.value = "";
      })
      .receive("error", (response) => {
        error.textContent = `Not sent: ${reasonOf(response)}`;
        error.hidden = false;
      })
      .receive("timeout", () => {
        error.textContent = "Not sent: no answer from the server. Try again.";
        error.hidden = false;
      });
  });
}

/** An element with a class and text. */
function element(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A round initial for `name`, its hue derived from the name so each person keeps a colour. */
function avatar(name) {
  const node = element("span", "avatar", name.slice(0, 1).toUpperCase());
  node.setAttribute("aria-hidden", "true");
  let hash = 0;
  for (const char of name) hash = (hash * 31 + char.codePointAt(0)) >>> 0;
  node.style.setProperty("--hue", String(hash % 360));
  return node;
}

function addMessage(message, me) {
  const log = document.getElementById("messages");
  const following = log.scrollHeight - log.scrollTop - log.clientHeight < FOLLOW_SLACK_PX;
  const user = typeof message?.user === "string" ? message.user : "someone";
  const body = typeof message?.body === "string" ? message.body : JSON.stringify(message);
  const sentAt = Number.isFinite(message?.sent_at) ? message.sent_at : Date.now();

  const item = element("li", user === me ? "message mine" : "message");
  const meta = element("div", "message-meta");
  meta.append(element("span", "message-author", user === me ? `${user} (you)` : user));
  const time = element("time", "message-time", TIME.format(sentAt));
  time.dateTime = new Date(sentAt).toISOString();
  meta.append(time);
  const content = element("div", "message-content");
  content.append(meta, element("p", "message-body", body));
  item.append(avatar(user), content);
  log.append(item);
  document.getElementById("messages-empty").hidden = true;
  if (following || user === me) log.scrollTop = log.scrollHeight;
}

function renderMembers(list, me) {
  const members = document.getElementById("members");
  document.getElementById("members-count").textContent = String(list.length);
  members.replaceChildren(
    ...list.map(({ key, metas }) => {
      const item = element("li", "member");
      item.dataset.name = key;
      const name = element("span", "member-name", key);
      item.append(avatar(key), name);
      if (key === me) item.append(element("span", "tag", "you"));
      if (metas.length > 1) item.append(element("span", "member-tabs", `${metas.length} tabs`));
      return item;
    }),
  );
}

/** Says that `name` from the address is not a room name, and that the lobby is shown instead. */
function sayInvalidRoom(name) {
  const notice = document.getElementById("room-notice");
  notice.textContent =
    `“${name}” is not a room name (letters, digits, _ and -, up to 40), so this is #lobby. ` +
    "Pick another room with the box above.";
  notice.hidden = false;
  // The address names the room shown, so a reload or a shared link opens it.
  const url = new URL(location.href);
  url.searchParams.set("name", "lobby");
  history.replaceState(null, "", url.pathname + url.search);
}

function setUpRoomForm() {
  const form = document.getElementById("room-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const name = new FormData(form).get("name").trim();
    location.assign(withUser(`/room?name=${encodeURIComponent(name)}`));
  });
}
