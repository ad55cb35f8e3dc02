
/** What `init` takes: where the package's `.wasm` is, or its bytes or compiled module. */
export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

/** What `initSync` takes: the `.wasm`'s bytes or compiled module. */
export type SyncInitInput = BufferSource | WebAssembly.Module;

/** Instantiates the `.wasm` synchronously; call it (or `init`) once before using the classes. */
export function initSync(module: { module: SyncInitInput } | SyncInitInput): WebAssembly.Exports;

/**
 * Fetches and instantiates the `.wasm`: by default the one beside this module (bundlers emit it
 * as an asset), else from `module_or_path`. Call it once, and await it, before using the classes.
 */
export default function init(
  module_or_path?: { module_or_path: InitInput | Promise<InitInput> } | InitInput | Promise<InitInput>,
): Promise<WebAssembly.Exports>;
