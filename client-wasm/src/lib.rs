//! Alight's browser client, compiled to WebAssembly and exposed to JavaScript through wasm-bindgen.
//!
//! This is a skeleton: it builds for `wasm32-unknown-unknown` and natively, and exports one function
//! so the packaging pipeline (`scripts/build-client`: cargo, `wasm-bindgen --target web`,
//! `wasm-opt -Oz`) is exercised end to end. The client core (socket, channels, presence, reconnect)
//! lands in a later issue, on top of the sans-IO `alight-protocol` crate.
//!
//! # Layout
//! - [`protocol_version`]: the Phoenix serializer version this client speaks (`protocolVersion` in JS).
#![warn(missing_docs)]

use wasm_bindgen::prelude::wasm_bindgen;

/// The Phoenix Channels serializer version this client speaks, as sent in the `vsn` query parameter.
///
/// Alight speaks the V2 serializer (array frames, plus binary frames for `ArrayBuffer` payloads).
#[wasm_bindgen(js_name = protocolVersion)]
pub fn protocol_version() -> String {
    "2.0.0".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speaks_v2() {
        assert_eq!(protocol_version(), "2.0.0");
    }
}
