// The page's `visibilitychange` listener, in plain JavaScript: `document` and its events are a
// handful of property reads and calls, each an import of the module when made from Rust.

/**
 * Calls `listener(visible)` whenever the page is shown or hidden, and returns the function that
 * stops it; `undefined` where there is no `document` (Node, workers).
 */
export function watchVisibility(listener) {
  const document = globalThis.document;
  if (typeof document !== "object" || document === null) return undefined;
  const changed = () => listener(!document.hidden);
  document.addEventListener("visibilitychange", changed);
  return () => document.removeEventListener("visibilitychange", changed);
}
