// The package's wasm module (src/browser/mod.rs): loading it, its imports (the calls its core
// makes to its host, handed to the driver whose core is running), and making a socket's core,
// whose handle socket.js passes to the module's functions. Only numbers cross, so there is no
// glue: `init` and `initSync` take what
// wasm-bindgen's took (`{ module_or_path }`, `{ module }`), which the package's entries and
// README name.

/** The module's exports, once instantiated. */
let wasm;

/** The driver whose core is running (socket.js sets it around every call into the core). */
let currentDriver;

/** Makes `driver` the one the core's calls go to; returns the previous one. */
function setDriver(driver) {
  const previous = currentDriver;
  currentDriver = driver;
  return previous;
}

/** The module's imports (mod.rs): `a.s` send, `a.e` emit, `a.c` close. */
const imports = {
  a: {
    s: (...args) => currentDriver.send(...args),
    e: (...args) => currentDriver.emit(...args),
    c: (...args) => currentDriver.close(...args),
  },
};

/** Instantiates the module from its bytes or a compiled `WebAssembly.Module`, synchronously. */
export function initSync(options) {
  if (wasm) return wasm;
  let module = options?.module ?? options;
  if (!(module instanceof WebAssembly.Module)) module = new WebAssembly.Module(module);
  wasm = new WebAssembly.Instance(module, imports).exports;
  return wasm;
}

/**
 * Fetches and instantiates the module: by default the `.wasm` beside this file (bundlers see
 * the `new URL(..., import.meta.url)` and emit it as an asset); or from a URL, a `Request`, a
 * `Response`, bytes or a `WebAssembly.Module`, or a promise of one.
 */
export default async function init(options) {
  if (wasm) return wasm;
  let input = await (options?.module_or_path ?? options ?? new URL("alight_client_bg.wasm", import.meta.url));
  if (typeof input === "string" || input instanceof URL || (typeof Request === "function" && input instanceof Request)) {
    input = await fetch(input);
  }
  let result;
  if (typeof Response === "function" && input instanceof Response) {
    const bytes = input.clone();
    try {
      result = await WebAssembly.instantiateStreaming(input, imports);
    } catch {
      // A server that does not send `application/wasm`.
      result = await WebAssembly.instantiate(await bytes.arrayBuffer(), imports);
    }
  } else {
    result = await WebAssembly.instantiate(input, imports);
  }
  wasm ??= (result.instance ?? result).exports;
  return wasm;
}

/** Frees a socket's core once its driver is collected. */
const cores = new FinalizationRegistry((handle) => wasm.free(handle));

/**
 * A new core in the module (the reconnect and rejoin delays given one by one first), freed with
 * `owner`; returns its handle, which every other function of the module takes first.
 */
function createCore(timeout, heartbeat, heartbeatTimeout, reconnect, rejoin, jitter, seed, owner) {
  for (const ms of reconnect) wasm.step(0, ms);
  for (const ms of rejoin) wasm.step(1, ms);
  const handle = wasm.create(timeout, heartbeat, heartbeatTimeout, jitter, seed);
  cores.register(owner, handle);
  return handle;
}
