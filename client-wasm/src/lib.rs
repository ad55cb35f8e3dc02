//! Alight's client: a Phoenix Channels client on the sans-IO [`alight_protocol::client::Session`].
//!
//! In the browser (and Node), the npm package `@alight/client` is the protocol's client core
//! compiled to WebAssembly under phoenix.js's `Socket`, `Channel`, `Push` and `Presence`, in
//! JavaScript, with the same names, signatures and semantics, so that moving from phoenix.js is a
//! change of import. `scripts/build-client` builds the package; `client-wasm/README.md` is its
//! README.
//!
//! # Layout
//! - [`connect`]: what a connection attempt sends before the first frame (the WebSocket URL, the
//!   auth token subprotocol), for the native client; the browser package makes the same in
//!   JavaScript (`browser/connect.js`).
//! - [`rust_api`]: the Rust API (native apps, Leptos/Dioxus/Yew), runtime-agnostic:
//!   [`rust_api::ClientSocket`], [`rust_api::ClientChannel`] and [`rust_api::TypedClientChannel`], with futures for
//!   replies and bounded streams for events, over a session that a driver feeds through
//!   [`rust_api::Driver`].
//! - `native` (feature `native`): the tokio + tokio-tungstenite driver of the Rust API,
//!   `native::Builder`.
//! - `browser` (wasm32, feature `browser`): the npm package's wasm, the protocol's sans-IO
//!   [`Core`](alight_protocol::client::Core) behind exports of numbers, with its host in
//!   JavaScript; the package's JavaScript (`src/browser/*.js`: loading the wasm, the WebSocket,
//!   timers, frames, callbacks and phoenix.js's classes) and TypeScript declarations sit beside
//!   it. `scripts/build-client` builds it.
//!
//! Everything browser-specific is behind `cfg(all(target_arch = "wasm32", feature =
//! "browser"))`, so the crate builds natively, and for apps that use the Rust API in the browser,
//! without it.
#![warn(missing_docs)]

pub mod connect;
#[cfg(feature = "native")]
pub mod native;
pub mod rust_api;

#[cfg(all(target_arch = "wasm32", feature = "browser"))]
mod browser;

/// The browser package's allocator: free lists of power-of-two blocks, a few hundred bytes of code
/// for the few sizes a socket's core allocates (`browser/alloc.rs` says why not talc or
/// dlmalloc). Only in the package: a library does not choose the allocator of the apps that use
/// it.
#[cfg(all(
    target_arch = "wasm32",
    feature = "browser",
    not(target_feature = "atomics")
))]
#[global_allocator]
static ALLOCATOR: browser::alloc::SizeClasses = browser::alloc::SizeClasses::new();

/// The Phoenix Channels serializer version this client speaks by default, as sent in the `vsn`
/// query parameter (`protocolVersion()` in JS).
///
/// That is the V2 serializer: array frames, plus binary frames for `ArrayBuffer` payloads.
pub const PROTOCOL_VERSION: &str = "2.0.0";

#[cfg(test)]
mod tests {
    use alight_protocol::Serializer;

    #[test]
    fn speaks_v2_by_default() {
        assert_eq!(super::PROTOCOL_VERSION, Serializer::V2.vsn());
        assert_eq!(
            alight_protocol::client::ClientConfig::default().serializer,
            Serializer::V2
        );
    }
}
