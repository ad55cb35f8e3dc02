// The notifications page: the bell (bell.js), a form that sends a notification through
// POST /api/notifications with the user's login token, and a way into the rooms.

import { Bell } from "./bell.js";
import { loadClient } from "./client.js";
import { USER_ID, startSession, withUser } from "./session.js";

const client = await loadClient(document.getElementById("client"));
if (client) {
  const session = await startSession(client);
  const bell = new Bell(session);
  bell.start();
  setUpSendForm(session);
  setUpRoomForm();
  document.getElementById("app").hidden = false;
}

function setUpSendForm({ userId, token }) {
  const form = document.getElementById("send-form");
  const to = document.getElementById("send-to");
  const title = document.getElementById("send-title-input");
  const body = document.getElementById("send-body");
  const status = document.getElementById("send-status");
  const submit = form.querySelector("button[type=submit]");
  to.value = userId;

  const say = (text, kind = "") => {
    status.textContent = text;
    status.className = `form-status ${kind}`;
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const notification = { user_id: to.value.trim(), title: title.value, body: body.value };
    if (!USER_ID.test(notification.user_id)) {
      say("The user id takes letters, digits, _ and -.", "error");
      return;
    }
    submit.disabled = true;
    say("Sending…");
    try {
      const response = await fetch("/api/notifications", {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify(notification),
      });
      const answer = await response.json().catch(() => ({}));
      if (response.ok) {
        say(`Sent to ${answer.user_id} (#${answer.notification.id}).`, "ok");
        title.value = "";
        body.value = "";
        title.focus();
      } else {
        say(`Not sent: ${answer.error ?? `HTTP ${response.status}`}`, "error");
      }
    } catch (err) {
      say(`Not sent: the server cannot be reached (${err.message}).`, "error");
    } finally {
      submit.disabled = false;
    }
  });
}

function setUpRoomForm() {
  const form = document.getElementById("room-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const name = new FormData(form).get("name").trim();
    location.assign(withUser(`/room?name=${encodeURIComponent(name)}`));
  });
}
