// Loads the browser client, the `@alight/client` package that scripts/build-client builds into
// client-wasm/pkg and the demo serves at /pkg. Its browser entry (`index.js`, the package's
// default export condition) instantiates the wasm with top-level await.

/** Where the package's browser entry is served. */
const CLIENT_ENTRY = "/pkg/index.js";

/**
 * The client module (`{Socket, Channel, Push, protocolVersion}`), or `null` when it is not built;
 * `notice` then says how to build it.
 * @param {HTMLElement} notice
 */
export async function loadClient(notice) {
  try {
    const client = await import(CLIENT_ENTRY);
    notice.hidden = true;
    return client;
  } catch (err) {
    notice.innerHTML =
      "<strong>The browser client is not built.</strong> Run <code>scripts/build-client</code> " +
      "(or start the demo with <code>scripts/demo</code>), then reload this page.";
    notice.className = "notice error";
    notice.hidden = false;
    console.error(`alight: cannot load ${CLIENT_ENTRY}`, err);
    return null;
  }
}
