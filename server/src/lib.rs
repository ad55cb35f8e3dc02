//! Alight's server: Phoenix Channels on axum.
//!
//! Mount [`Alight::router`] into an axum app and any Phoenix client — the official `phoenix` npm
//! package included — connects, joins topics, pushes events with replies and receives broadcasts.
//!
//! # Layout
//! Layers only look down: wire bytes (`alight-protocol`) under the fan-out (`registry`, `pubsub`,
//! `presence`), under the channel runtime, under the socket driver that runs it, under the
//! endpoint. Modules are private; what a user needs is re-exported here, one path per type.
//! - `endpoint`: [`Alight`] and its [`AlightBuilder`], the WebSocket upgrade (vsn, auth token,
//!   connect callback, connection limit) and [`Alight::serve`] with graceful shutdown.
//! - `api`: publishing from outside a channel ([`Alight::broadcast`],
//!   [`Alight::broadcast_and_wait`], [`Alight::disconnect`]) and its HTTP routes,
//!   `POST /api/broadcast`, `GET /healthz`, `GET /metrics` ([`Alight::api_router`]).
//! - `serve`: HTTP/1 on a listener with header and body timeouts, a limit on connections not
//!   upgraded, the peer address per request, and a drain bounded by the shutdown timeout.
//! - `state`: what the endpoint hands every connection (config, registry, PubSub, presence,
//!   metrics, routes, shutdown).
//! - `connection`: one task per socket: its `driver` (select loop, reads, encoding, writes,
//!   close) runs its `runtime` (the joined channels and their callbacks, which never touch the
//!   socket).
//! - `backpressure`: how a socket that broadcasts is paced by the fan-out it causes.
//! - `channel`: the [`Channel`] trait applications implement, its [`Context`] and results;
//!   `typed`: channels written against a protocol `Schema` ([`TypedChannel`]); `router`: topic
//!   patterns (`room:*`) to channels.
//! - `pubsub`: the [`PubSub`] seam (broadcast, direct push, disconnect) that a multi-node adapter
//!   implements; `broadcast`: the [`Broadcast`] it carries; `registry`: this node's subscriptions
//!   and the fan-out into bounded per-socket queues ([`Registry`]), and [`LocalPubSub`].
//! - `history`: topic families that keep their broadcasts ([`History`]): positions in the `ref`
//!   slot, `since` on join, the [`HistoryStore`] trait and [`InMemoryHistory`].
//! - `presence`: [`Presence`]: tracking per channel, `presence_state`/`presence_diff` batched per
//!   topic, on a mergeable per-node replica that multi-node adapters replicate.
//! - `socket`: what the connect callback sees ([`ConnectInfo`]) and returns ([`Connected`]);
//!   `refusal`: how a refused connection is told ([`Refusal`], a close code a browser can read).
//! - `jwt`: [`JwtAuth`]: JWT connect auth, expiry for the life of the socket, in-band refresh.
//! - `origin`: [`CheckOrigin`], which browser pages may open a socket.
//! - `config`: [`Config`] and its [`Limits`]; [`close_code`]: the close codes the server sends.
//! - `memory`: returning freed memory to the system after a wave of closes (opt-in).
//! - `metrics`: the Prometheus counters.
//!
//! docs/ARCHITECTURE.md follows a broadcast and a join through these layers.
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

mod api;
mod backpressure;
mod broadcast;
mod channel;
pub mod close_code;
mod config;
mod connection;
mod endpoint;
mod history;
mod jwt;
mod memory;
mod metrics;
mod origin;
mod presence;
mod pubsub;
mod refusal;
mod registry;
mod router;
mod serve;
mod socket;
mod state;
mod typed;

pub use api::bearer_token;
pub use broadcast::Broadcast;
pub use channel::{Channel, Context, HandleIn, JoinError, Outgoing, Terminate};
pub use config::{Config, Limits};
pub use endpoint::{Alight, AlightBuilder};
pub use history::{
    Delivery, Epoch, History, HistoryError, HistoryStore, InMemoryHistory, Lost, MAX_POSITION_LEN,
    Outcome, Position, PositionError, Recovery, StoreFuture,
};
pub use jwt::{Claims, JwtAuth, JwtError};
pub use origin::CheckOrigin;
pub use presence::{
    CausalContext, DIFF_EVENT, Dot, Entry, NodeId, PRESENCE_SHARDS, Presence, ReplicaState,
    STATE_EVENT, ShardState, TrackError,
};
pub use pubsub::{BroadcastError, PubSub};
pub use refusal::Refusal;
pub use registry::{ConnId, LocalPubSub, Registry};
pub use socket::{ConnectError, ConnectInfo, Connected, Socket};
pub use typed::{Typed, TypedChannel, TypedContext, TypedReply};

/// The README's examples, compiled as doc tests so they cannot rot.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
