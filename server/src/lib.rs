//! Alight's server: Phoenix Channels on axum.
//!
//! Mount [`Alight::router`] into an axum app and any Phoenix client — the official `phoenix` npm
//! package included — connects, joins topics, pushes events with replies and receives broadcasts.
//!
//! # Layout
//! Layers only look down: wire bytes live in `alight-protocol`, below the connection driver, below
//! the channel runtime, below the endpoint.
//! - [`endpoint`]: [`Alight`] and its builder, the WebSocket upgrade (vsn, auth token, connect
//!   callback, connection limit) and [`Alight::serve`] with graceful shutdown.
//! - `connection`: one task per socket: decode, dispatch to channels, write replies and broadcasts;
//!   `pacing` and `held`: how a connection that broadcasts keeps pace with its subscribers (it
//!   stops reading past a window of queued broadcasts; its reply waits for the fan-out).
//! - [`channel`]: the [`Channel`] trait applications implement, its [`Context`] and results;
//!   [`typed`]: channels written against a protocol `Schema`.
//! - `router`: topic patterns (`room:*`) to channels.
//! - [`registry`]: local subscriptions and the fan-out into bounded per-socket queues.
//! - [`pubsub`]: the [`PubSub`] trait (broadcast, direct push, disconnect) and [`LocalPubSub`].
//! - [`history`]: topic families that keep their broadcasts ([`History`]): positions on the
//!   wire, `since` on join, the [`HistoryStore`] trait and its in-memory store.
//! - [`presence`]: [`Presence`]: tracking per channel, `presence_state`/`presence_diff` batched
//!   per topic, on a mergeable per-node replica that multi-node adapters replicate.
//! - [`socket`]: what the connect callback sees ([`ConnectInfo`]) and returns ([`Connected`]).
//! - [`config`]: [`Config`] and its [`Limits`]; [`close_code`]: the close codes the server sends.
//! - `memory`: freed memory returned to the system after a wave of connections closes.
//! - [`api`]: `POST /api/broadcast`, `GET /healthz`, `GET /metrics`.
//!
//! # Example
//! ```no_run
//! use alight_server::{Alight, Channel, Context, HandleIn, JoinError};
//! use alight_protocol::Payload;
//!
//! struct Room;
//! impl Channel for Room {
//!     type State = ();
//!     async fn join(&self, _: Payload, _: &mut Context<'_>) -> Result<((), Payload), JoinError> {
//!         Ok(((), Payload::empty()))
//!     }
//!     async fn handle_in(&self, _: &str, payload: Payload, _: &mut (), ctx: &mut Context<'_>) -> HandleIn {
//!         ctx.broadcast("shout", payload);
//!         HandleIn::ok(Payload::empty())
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let alight = Alight::builder().channel("room:*", Room).build();
//!     let app = axum::Router::new()
//!         .merge(alight.router())
//!         .merge(alight.api_router(Some("api-key".into())));
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:4000").await?;
//!     alight.serve(listener, app, async { let _ = tokio::signal::ctrl_c().await; }).await
//! }
//! ```
#![warn(missing_docs)]

pub mod api;
pub mod channel;
pub mod close_code;
pub mod config;
mod connection;
pub mod endpoint;
mod gate;
mod held;
pub mod history;
mod memory;
mod metrics;
mod pacing;
pub mod presence;
pub mod pubsub;
pub mod registry;
mod router;
pub mod socket;
pub mod typed;

pub use alight_protocol::Payload;
pub use channel::{Channel, Context, HandleIn, JoinError, Outgoing, Terminate};
pub use config::{Config, Limits};
pub use endpoint::{Alight, AlightBuilder};
pub use history::{History, HistoryStore, InMemoryHistory};
pub use presence::{Presence, TrackError};
pub use pubsub::{LocalPubSub, PubSub};
pub use registry::{ConnId, Registry};
pub use socket::{ConnectError, ConnectInfo, Connected, Socket};

/// The README's examples, compiled as doc tests so they cannot rot.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
