//! Alight's end-to-end test support: a fixture server with the channels every test suite drives,
//! and a small native client that speaks raw frames.
//!
//! # Layout
//! - [`fixture`]: the channels (`room:*`, `private:*`) and [`fixture::start`], which serves them on
//!   `127.0.0.1:0` and stops when its handle drops.
//! - [`client`]: [`client::TestClient`], a tokio-tungstenite client that sends and awaits frames.
//! - [`shapes`]: [`shapes::ShapeServer`], `shape:items` over channels on a scratch SQLite file.
//! - `src/bin/conformance-server.rs`: the fixture as a process, for the phoenix.js suite under
//!   `tests/node/`.
//! - `tests/*.rs`: Rust integration tests over real sockets.

pub mod client;
pub mod fixture;
pub mod shapes;
