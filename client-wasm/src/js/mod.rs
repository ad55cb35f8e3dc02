//! The JavaScript API: phoenix.js's `Socket`, `Channel` and `Push`, with camelCase names and
//! phoenix.js's signatures, so that moving from phoenix.js is a change of import. They are plain
//! JavaScript classes over the one class the module exports, `Client`.
//!
//! # Layout
//! - [`client`]: `Client`, a socket's session and driver behind a few coarse methods.
//! - `api.js`: `Socket` and `Channel`, phoenix.js's, over a `Client` (the socket's) and its
//!   channels' numbers; `scripts/build-client` appends it, with `options.js`, to the glue.
//! - [`callbacks`]: `Push` and the callback lists, JavaScript classes (`callbacks.js`); a
//!   channel's list keeps its pushes in flight, which the module makes and answers through it.
//! - [`options`]: the options object, read as phoenix.js does (`options.js`), made into the
//!   session's configuration.
//! - [`registry`]: the callbacks, and the dispatch of what the driver reports to them.
//! - [`payload`]: JS values to and from wire payloads.
//! - `presence.js`: `Presence`, phoenix.js's, in plain JavaScript (the file says why); it is
//!   not compiled in: `scripts/build-client` ships it beside the wasm and exports it from every
//!   entry, and `alight.d.ts` declares it.
//!
//! The TypeScript declarations of the classes are written by hand in `alight.d.ts` (generics
//! for payloads and replies, overloads for `disconnect`), appended to the generated `.d.ts`;
//! `Client` is `skip_typescript`, and web.js does not export it. `js-tests/api.test.mjs` checks
//! that every declared member exists at runtime and the other way round.

pub(crate) mod callbacks;
pub(crate) mod client;
pub(crate) mod options;
pub(crate) mod payload;
pub(crate) mod registry;

use wasm_bindgen::prelude::*;

pub use callbacks::{Callbacks, Push};
pub use client::Client;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = include_str!("alight.d.ts");

/// The Phoenix Channels serializer version this client speaks by default (`protocolVersion()`).
#[wasm_bindgen(js_name = protocolVersion, skip_typescript, skip_jsdoc)]
pub fn protocol_version() -> JsValue {
    JsValue::from_str(crate::PROTOCOL_VERSION)
}
