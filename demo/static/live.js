// The live table: the signed-in user's notifications as an Electric shape, read with the stock
// `@electric-sql/client` (served by the demo at /vendor/electric-client.mjs), rendered in place.
// The user comes from `?user=<id>` (default "alice"); the demo's login needs no password.

import { Shape, ShapeStream } from "/vendor/electric-client.mjs";
import { withUser } from "./session.js";

const params = new URLSearchParams(location.search);
const user = params.get("user") || "alice";
const rowsEl = document.getElementById("rows");
const stateEl = document.getElementById("sync-state");
document.getElementById("who").textContent = user;
for (const link of document.querySelectorAll("a[data-keep-user]")) {
  link.href = withUser(link.getAttribute("href"));
}
const chip = document.getElementById("user-chip");
chip.querySelector(".user-name").textContent = user;
chip.querySelector(".avatar").textContent = user.slice(0, 1).toUpperCase();
chip.hidden = false;

async function login() {
  const response = await fetch("/api/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ user_id: user }),
  });
  if (!response.ok) throw new Error(`login failed: ${response.status}`);
  return (await response.json()).token;
}

/** Renders `rows` by key, keeping unchanged rows' elements and marking changed ones. */
function render(rows, previous) {
  const sorted = [...rows].sort((a, b) => a.id - b.id);
  const next = new Map();
  for (const row of sorted) {
    const key = String(row.id);
    const text = JSON.stringify(row);
    let tr = previous.get(key)?.tr;
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset.id = key;
    }
    if (previous.get(key)?.text !== text) {
      tr.replaceChildren(
        ...[row.id, row.sender ?? "", row.title, new Date(Number(row.inserted_at)).toLocaleString(), row.read_at ? "read" : "unread"].map(
          (value) => {
            const td = document.createElement("td");
            td.textContent = String(value);
            return td;
          },
        ),
      );
      tr.dataset.read = row.read_at ? "true" : "false";
      tr.classList.add("changed");
      setTimeout(() => tr.classList.remove("changed"), 1200);
    }
    rowsEl.appendChild(tr);
    next.set(key, { tr, text });
  }
  for (const [key, { tr }] of previous) if (!next.has(key)) tr.remove();
  return next;
}

async function main() {
  const token = await login();
  const stream = new ShapeStream({
    url: `${location.origin}/v1/shape`,
    params: { table: "notifications" },
    headers: { Authorization: `Bearer ${token}` },
  });
  const shape = new Shape(stream);
  let shown = new Map();
  shape.subscribe(({ rows }) => {
    shown = render(rows, shown);
    stateEl.dataset.state = "live";
    stateEl.textContent = `live · ${rows.length} rows`;
  });
  shown = render(await shape.rows, shown);
  stateEl.dataset.state = "live";
  stateEl.textContent = `live · ${shape.currentRows.length} rows`;

  document.getElementById("add").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = document.getElementById("add-title");
    await fetch("/api/notifications", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ user_id: user, title: input.value, body: "" }),
    });
    input.value = "";
  });
}

main().catch((err) => {
  stateEl.dataset.state = "error";
  stateEl.textContent = `error: ${err.message}`;
});
