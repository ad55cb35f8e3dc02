//! The Phoenix Channels wire protocol, as Alight speaks it: frames, serializers and typed schemas.
//!
//! This crate is sans-IO: it owns no sockets, spawns no tasks and reads no clock. The server and the
//! client (native and wasm) both compile against it, so both ends of the wire agree on one schema.
//!
//! # Layout
//! - `frame`: the message model, [`Frame`] (`join_ref`, `ref`, `topic`, event or reply, payload)
//!   and its [`Payload`]; the reserved events are in [`event`].
//! - `serializer`: [`Serializer`], the three wire formats Phoenix defines (V2 JSON arrays, V2 binary frames, V1 JSON
//!   objects), chosen by the `vsn` connect parameter, encoding and decoding in both directions.
//! - `json`: [`RawJson`], a JSON value kept as validated text (every JSON payload is one), and
//!   the small scanner that validates JSON and reads the few strings a frame needs.
//! - `wire`: encoded messages as shared, cheaply clonable bytes ([`Wire`]), and [`SharedBroadcast`],
//!   a broadcast encoded at most once per serializer however many subscribers receive it.
//! - `error`: the typed errors of decoding and encoding ([`DecodeError`], [`EncodeError`], [`VsnError`]).
//!
//! Every type of the private modules (`frame`, `serializer`, `json`, `wire`, `error`) has one
//! path, at this crate's root.
//! - [`schema`]: typed schemas, an application's events per topic family declared once as Rust types
//!   that the server, the Rust/wasm client and (with the `ts` feature) TypeScript all share; its
//!   types ([`schema::Schema`], [`schema::Events`], ...) have this one path, not re-exported here.
//! - [`client`]: the client as a deterministic sans-IO state machine, [`client::Session`], with
//!   phoenix.js's socket, channel, push and timer semantics; the browser (wasm), native apps and the
//!   load generator all drive it.
//! - [`presence`]: phoenix.js's `Presence` sans-IO: the `presence_state`/`presence_diff` payloads,
//!   `syncState`/`syncDiff`, and [`presence::PresenceSync`], which queues diffs until the state of
//!   the current join arrives.
//!
//! # Example
//! ```
//! use alight_protocol::{Direction, Frame, Serializer};
//!
//! let serializer = Serializer::from_vsn(Some("2.0.0"))?;
//! let frame = serializer.decode_text(Direction::ToServer, r#"["3","3","room:lobby","phx_join",{}]"#)?;
//! assert_eq!(frame.topic, "room:lobby");
//! assert_eq!(frame.event(), "phx_join");
//!
//! let reply = Frame::reply(&frame, "ok", alight_protocol::Payload::empty());
//! let wire = serializer.encode(Direction::ToClient, &reply)?;
//! assert_eq!(
//!     wire.as_text(),
//!     Some(r#"["3","3","room:lobby","phx_reply",{"status":"ok","response":{}}]"#)
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub mod client;
mod error;
pub mod event;
mod frame;
mod json;
pub mod presence;
pub mod schema;
mod serializer;
mod wire;

pub use error::{DecodeError, EncodeError, Field, VsnError};
pub use frame::{Body, BodyRef, Frame, FrameRef, Payload, PayloadRef};
pub use json::{JsonError, JsonErrorKind, RawJson};
pub use serializer::{Direction, Serializer};
pub use wire::{SharedBroadcast, SharedText, Wire};
