// Toasts: short-lived cards in the `#toasts` live region (aria-live="polite"), so a screen reader
// announces each one as it is added. They leave after a while, but not while hovered or focused.

/** How long a toast stays, in ms (the clock stops while it is hovered or focused). */
const TOAST_MS = 8000;
/** The most toasts shown at once; a new one pushes the oldest out. */
const MAX_TOASTS = 4;

const BELL_ICON =
  '<svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true" focusable="false" fill="none" ' +
  'stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">' +
  '<path d="M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9"/><path d="M13.73 21a2 2 0 0 1-3.46 0"/></svg>';

/**
 * Shows a toast.
 * @param {{title: string, body?: string, note?: string, label?: string, id?: number, onOpen?: () => void}} toast
 *   `note` is a short line shown above the title; `label` is announced before it ("New
 *   notification" by default, unless there is a note); `onOpen` makes the text a button that
 *   calls it. `id` names the notification, for `dismissToasts`.
 */
export function showToast({ title, body = "", note, label = note ?? "New notification", id, onOpen }) {
  const region = document.getElementById("toasts");
  while (region.children.length >= MAX_TOASTS) region.firstElementChild.remove();

  const item = document.createElement("li");
  item.className = "toast";
  if (id !== undefined) item.dataset.id = String(id);

  const icon = document.createElement("span");
  icon.className = "toast-icon";
  icon.innerHTML = BELL_ICON;

  const text = document.createElement(onOpen ? "button" : "div");
  text.className = "toast-text";
  if (onOpen) {
    text.type = "button";
    text.addEventListener("click", () => {
      item.remove();
      onOpen();
    });
  }
  const hidden = document.createElement("span");
  hidden.className = "visually-hidden";
  hidden.textContent = `${label}: `;
  if (note) {
    const visible = document.createElement("span");
    visible.className = "toast-note";
    visible.setAttribute("aria-hidden", "true");
    visible.textContent = note;
    text.append(visible);
  }
  const heading = document.createElement("span");
  heading.className = "toast-title";
  heading.textContent = title;
  text.append(hidden, heading);
  if (body) {
    const detail = document.createElement("span");
    detail.className = "toast-body";
    detail.textContent = body;
    text.append(detail);
  }

  const close = document.createElement("button");
  close.type = "button";
  close.className = "toast-close";
  close.setAttribute("aria-label", "Dismiss");
  close.textContent = "×";
  close.addEventListener("click", () => item.remove());

  item.append(icon, text, close);
  region.append(item);

  // The countdown pauses while the pointer or focus is on the toast.
  let remaining = TOAST_MS;
  let started = 0;
  let timer = null;
  const resume = () => {
    if (timer !== null || !item.isConnected) return;
    started = performance.now();
    timer = setTimeout(() => item.remove(), remaining);
  };
  const pause = () => {
    if (timer === null) return;
    clearTimeout(timer);
    timer = null;
    remaining -= performance.now() - started;
  };
  item.addEventListener("pointerenter", pause);
  item.addEventListener("pointerleave", () => {
    if (!item.contains(document.activeElement)) resume();
  });
  item.addEventListener("focusin", pause);
  item.addEventListener("focusout", (event) => {
    if (!item.contains(event.relatedTarget) && !item.matches(":hover")) resume();
  });
  resume();
  return item;
}

/** Removes the toasts of notifications `ids`, or of every notification when `ids` is "all". */
export function dismissToasts(ids) {
  for (const toast of document.querySelectorAll("#toasts .toast[data-id]")) {
    if (ids === "all" || ids.includes(Number(toast.dataset.id))) toast.remove();
  }
}
