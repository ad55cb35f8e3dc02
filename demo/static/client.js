// Loads the browser client, the `@alight/client` package that scripts/build-client builds into
// client-wasm/pkg and the demo serves at /pkg. Its browser entry (`index.js`, the package's
// default export condition) instantiates the wasm with top-level await.
//
// When it cannot be loaded (the network dropped, the server is down or was deployed without the
// package), the page says so in words a user can act on; what went wrong, for a developer, goes
// to the console (the server's 404 names the build step).

/** Where the package's browser entry is served. */
const CLIENT_ENTRY = "/pkg/index.js";

/**
 * The client module (`{Socket, Channel, Push, protocolVersion}`), or `null` when it cannot be
 * loaded; `notice` then says so, with a button to try again.
 * @param {HTMLElement} notice
 */
export async function loadClient(notice) {
  try {
    const client = await import(CLIENT_ENTRY);
    notice.hidden = true;
    return client;
  } catch (err) {
    const title = document.createElement("strong");
    title.textContent = "This page could not load all of its parts.";
    const text = document.createTextNode(
      navigator.onLine === false
        ? " You are offline: reconnect, then try again. "
        : " Check your connection and try again; if it keeps happening, the service may be down. ",
    );
    const retry = document.createElement("button");
    retry.type = "button";
    retry.className = "button";
    retry.textContent = "Try again";
    retry.addEventListener("click", () => location.reload());
    notice.replaceChildren(title, text, retry);
    notice.className = "notice error";
    notice.hidden = false;
    console.error(`alight: cannot load the browser client from ${CLIENT_ENTRY}`, err);
    return null;
  }
}
