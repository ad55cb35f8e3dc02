//! Alight's load generator, and the baselines it measures Alight against.
//!
//! One generator drives every server through the same scenarios over loopback: Alight's demo
//! (`room:*`), a bare axum fan-out server, socketioxide and Node's socket.io. `bench/run` builds
//! everything, runs the [`suite`] with the server and the generator pinned to separate cores, and
//! writes the [`report`] into `bench/README.md`.
//!
//! # Layout
//! Layers only look down: wire text under the connection, under the scenarios, under the suite.
//! - [`wire`]: client-side framing behind one [`wire::Codec`]: Phoenix V2 JSON and socket.io v4
//!   over engine.io, encoders plus scanners that read replies and events without a JSON tree.
//! - [`conn`]: one client connection ([`conn::Client`]): TCP from a chosen source address, the
//!   WebSocket and protocol handshakes, join, leave, await a reply, close.
//! - [`net`]: client source addresses across 127.0.0.2…, the open-file budget, `/proc` readings.
//! - [`stats`]: the clock of latency stamps, histograms and rates.
//! - [`scenario`]: `idle`, `fanout`, `echo`, `churn`, and `presence` (Alight's presence with
//!   thousands of members in one room, run on its own by `bench/run --presence`); each a bounded
//!   run returning an [`scenario::Outcome`] of named figures and notes.
//!   `catchup` and `retain` measure Alight's topic history (a mass resume after missed
//!   broadcasts, and server memory per retained broadcast), run by hand against `alight-demo`;
//!   `shapes` follows a shape of `alight-demo` while rows are committed into its SQLite file,
//!   also run by hand.
//! - [`suite`]: every server through every case, a fresh pinned server process per case.
//! - [`machine`]: the machine, the placement and the versions, read for the report's header.
//! - [`report`]: results as a markdown table with ratios to the bare baseline (presence runs: a
//!   column per case), written between markers in the README.
//! - [`servers`]: the baselines in Rust, [`servers::bare`] and [`servers::socketio`], each also a
//!   binary (`bench-bare`, `bench-socketioxide`).
//! - [`cli`]: the `alight-bench` command line.

pub mod cli;
pub mod conn;
pub mod machine;
pub mod net;
pub mod report;
pub mod scenario;
pub mod servers;
pub mod stats;
pub mod suite;
pub mod wire;
