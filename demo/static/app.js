// Loads the browser client from /pkg (built by scripts/build-client) and says what it found.
const status = document.getElementById("client");

try {
  const client = await import("/pkg/alight_client.js");
  await client.default();
  status.textContent = `Browser client loaded; it speaks Phoenix protocol ${client.protocolVersion()}.`;
  status.className = "ok";
} catch (err) {
  status.innerHTML =
    "The browser client is not built. Run <code>scripts/build-client</code> " +
    "(or start the demo with <code>scripts/demo</code>), then reload.";
  status.className = "error";
  console.error("alight: cannot load /pkg/alight_client.js", err);
}
