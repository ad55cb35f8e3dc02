//! The server half of the examples' counter app: a [`TypedChannel`] over
//! [`counter_schema::CounterSchema`], with presence, and the app's axum router with the HTTP API.
//!
//! The runnable programs are beside this crate (`cargo run -p alight-examples --example
//! counter_server`, then `--example counter_client`); its tests (`tests/counter.rs`) run both
//! halves together. The repository README's Rust code blocks compile as this crate's doctests.
//!
//! # Layout
//! - [`Counter`]: the `counter:*` channel: tracks each member's presence on join, adds on
//!   [`CounterIn::Add`], broadcasts [`CounterOut::Changed`].
//! - [`app`]: the Alight endpoint and the axum router (`/socket`, `/api/broadcast`, `/healthz`,
//!   `/metrics`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use alight_server::{Alight, JoinError, Terminate, TypedChannel, TypedContext, TypedReply, axum};
use counter_schema::{CounterIn, CounterOut, CounterSchema, JoinCounter, Member, Total};

/// The `counter:*` channel. One value serves every join; the counters live in it, by topic.
#[derive(Debug, Clone, Default)]
pub struct Counter {
    /// Topic → value. A std mutex: held for an addition, never across an `.await`.
    values: Arc<Mutex<HashMap<String, u64>>>,
}

/// One member's channel.
#[derive(Debug)]
pub struct Joined {
    name: String,
}

impl Counter {
    fn update(&self, topic: &str, change: impl FnOnce(u64) -> u64) -> u64 {
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        let value = values.entry(topic.to_owned()).or_default();
        *value = change(*value);
        *value
    }
}

impl TypedChannel for Counter {
    type Schema = CounterSchema;
    type State = Joined;

    async fn join(
        &self,
        params: JoinCounter,
        ctx: &mut TypedContext<'_, '_, CounterSchema>,
    ) -> Result<(Joined, Total), JoinError> {
        if params.name.is_empty() {
            return Err(JoinError::reason("a name is required"));
        }
        let online_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        ctx.track(&params.name, &Member { online_at })?;
        ctx.push_presence_state();
        let value = self.update(ctx.topic(), |value| value);
        tracing::info!(topic = ctx.topic(), name = %params.name, "member joined");
        Ok((Joined { name: params.name }, Total { value }))
    }

    async fn handle_in(
        &self,
        event: CounterIn,
        joined: &mut Joined,
        ctx: &mut TypedContext<'_, '_, CounterSchema>,
    ) -> TypedReply<Total> {
        let value = match event {
            CounterIn::Add { by } => self.update(ctx.topic(), |value| value.saturating_add(by)),
            CounterIn::Reset => self.update(ctx.topic(), |_| 0),
        };
        let changed = CounterOut::Changed {
            value,
            by: joined.name.clone(),
        };
        match ctx.broadcast(&changed) {
            Ok(()) => TypedReply::Ok(Total { value }),
            Err(error) => TypedReply::Error(error.to_string()),
        }
    }

    async fn terminate(
        &self,
        reason: Terminate,
        joined: Joined,
        ctx: &mut TypedContext<'_, '_, CounterSchema>,
    ) {
        tracing::info!(topic = ctx.topic(), name = %joined.name, ?reason, "member left");
    }
}

/// The endpoint with the counter channel, and the app's router: the socket at `/socket` and the
/// HTTP API guarded by `api_key`.
pub fn app(api_key: &str) -> (Alight, axum::Router) {
    let alight = Alight::builder().typed_channel(Counter::default()).build();
    let router = axum::Router::new()
        .merge(alight.router())
        .merge(alight.api_router(Some(api_key.to_owned())));
    (alight, router)
}

/// The README's examples, compiled as doc tests so they cannot rot.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The Rust client's README (`client-wasm/RUST.md`), compiled the same way.
#[doc = include_str!("../../client-wasm/RUST.md")]
#[cfg(doctest)]
pub struct ClientReadmeDoctests;
