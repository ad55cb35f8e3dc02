//! Typed channels: a [`Channel`] written against a protocol [`Schema`].
//!
//! The schema fixes the join params and reply, the events a client may push, the reply to them and
//! the events the server sends. A [`TypedChannel`] receives decoded values and can only push the
//! schema's `Out` events, so a mismatch with the client is a compile error. Payloads that do not
//! decode are answered with an error reply that says why; the channel never sees them.
//!
//! ```
//! use alight_protocol::schema::Schema;
//! use alight_server::{Alight, JoinError, TypedChannel, TypedContext, TypedReply};
//! use serde::{Deserialize, Serialize};
//!
//! alight_protocol::events! {
//!     #[derive(Serialize, Deserialize)]
//!     #[serde(rename_all = "snake_case")]
//!     enum CounterIn { Add { by: u64 } }
//! }
//!
//! alight_protocol::events! {
//!     #[derive(Serialize, Deserialize)]
//!     #[serde(rename_all = "snake_case")]
//!     enum CounterOut { Total { value: u64 } }
//! }
//!
//! #[derive(Serialize, Deserialize)]
//! struct JoinCounter { user: String }
//!
//! struct CounterSchema;
//! impl Schema for CounterSchema {
//!     const TOPIC: &'static str = "counter:*";
//!     type JoinParams = JoinCounter;
//!     type JoinReply = u64;
//!     type In = CounterIn;
//!     type Reply = u64;
//!     type Out = CounterOut;
//! }
//!
//! struct Counter;
//! impl TypedChannel for Counter {
//!     type Schema = CounterSchema;
//!     type State = u64;
//!
//!     async fn join(&self, params: JoinCounter, ctx: &mut TypedContext<'_, '_, CounterSchema>) -> Result<(u64, u64), JoinError> {
//!         // Presence as on any channel: phoenix.js's `Presence` and the Rust client's
//!         // presence view read it; typed event streams leave it out.
//!         ctx.track(&params.user, &serde_json::json!({ "online_at": 0 }))?;
//!         ctx.push_presence_state();
//!         Ok((0, 0))
//!     }
//!
//!     async fn handle_in(&self, event: CounterIn, total: &mut u64, ctx: &mut TypedContext<'_, '_, CounterSchema>) -> TypedReply<u64> {
//!         let CounterIn::Add { by } = event;
//!         *total += by;
//!         match ctx.broadcast(&CounterOut::Total { value: *total }) {
//!             Ok(()) => TypedReply::Ok(*total),
//!             Err(error) => TypedReply::Error(error.to_string()),
//!         }
//!     }
//! }
//!
//! let alight = Alight::builder().typed_channel(Counter).build();
//! # let _ = alight;
//! ```
//!
//! The reply type is the schema's: answering a push with anything but `Schema::Reply` does not
//! compile.
//! ```compile_fail,E0308
//! # use alight_protocol::schema::Schema;
//! # use alight_server::{JoinError, TypedChannel, TypedContext, TypedReply};
//! # use serde::{Deserialize, Serialize};
//! # alight_protocol::events! {
//! #     #[derive(Serialize, Deserialize)]
//! #     enum CounterIn { Add { by: u64 } }
//! # }
//! # alight_protocol::events! {
//! #     #[derive(Serialize, Deserialize)]
//! #     enum CounterOut { Total { value: u64 } }
//! # }
//! # struct CounterSchema;
//! # impl Schema for CounterSchema {
//! #     const TOPIC: &'static str = "counter:*";
//! #     type JoinParams = ();
//! #     type JoinReply = ();
//! #     type In = CounterIn;
//! #     type Reply = u64;
//! #     type Out = CounterOut;
//! # }
//! struct Counter;
//! impl TypedChannel for Counter {
//!     type Schema = CounterSchema;
//!     type State = u64;
//! #   async fn join(&self, _: (), _: &mut TypedContext<'_, '_, CounterSchema>) -> Result<(u64, ()), JoinError> {
//! #       Ok((0, ()))
//! #   }
//!     async fn handle_in(&self, _: CounterIn, total: &mut u64, _: &mut TypedContext<'_, '_, CounterSchema>) -> TypedReply<u64> {
//!         TypedReply::Ok(format!("{total}")) // a String where the schema says u64
//!     }
//! }
//! ```
//!
//! Nor does broadcasting an event of the client's direction:
//! ```compile_fail,E0308
//! # use alight_protocol::schema::Schema;
//! # use alight_server::TypedContext;
//! # use serde::{Deserialize, Serialize};
//! # alight_protocol::events! {
//! #     #[derive(Serialize, Deserialize)]
//! #     enum CounterIn { Add { by: u64 } }
//! # }
//! # alight_protocol::events! {
//! #     #[derive(Serialize, Deserialize)]
//! #     enum CounterOut { Total { value: u64 } }
//! # }
//! # struct CounterSchema;
//! # impl Schema for CounterSchema {
//! #     const TOPIC: &'static str = "counter:*";
//! #     type JoinParams = ();
//! #     type JoinReply = ();
//! #     type In = CounterIn;
//! #     type Reply = u64;
//! #     type Out = CounterOut;
//! # }
//! fn echo(ctx: &mut TypedContext<'_, '_, CounterSchema>) {
//!     let _ = ctx.broadcast(&CounterIn::Add { by: 1 });
//! }
//! ```

use std::future::Future;
use std::marker::PhantomData;

use alight_protocol::Payload;
use alight_protocol::presence::PresenceState;
use alight_protocol::schema::{Events, Schema, SchemaError};
use tracing::error;

use crate::channel::{Channel, Context, HandleIn, JoinError, Terminate, reason_payload};
use crate::presence::TrackError;

/// What a typed `handle_in` answers.
#[derive(Debug, Clone)]
pub enum TypedReply<R> {
    /// Reply `ok` with this response.
    Ok(R),
    /// Reply `error` with `{"reason": …}`.
    Error(String),
    /// Send no reply.
    NoReply,
    /// Reply `ok` (if given) and close the channel.
    Stop(Option<R>),
}

/// [`Context`] restricted to a schema's `Out` events, with the channel's presence.
pub struct TypedContext<'c, 'a, S> {
    inner: &'c mut Context<'a>,
    schema: PhantomData<fn() -> S>,
}

impl<S> std::fmt::Debug for TypedContext<'_, '_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<'c, 'a, S: Schema> TypedContext<'c, 'a, S> {
    fn new(inner: &'c mut Context<'a>) -> Self {
        TypedContext {
            inner,
            schema: PhantomData,
        }
    }

    /// The untyped context (socket, PubSub, presence on other topics).
    pub fn untyped(&mut self) -> &mut Context<'a> {
        self.inner
    }

    /// The channel's topic.
    pub fn topic(&self) -> &str {
        self.inner.topic()
    }

    /// Pushes an event to this client. `Err` if the event cannot be encoded (nothing is sent).
    pub fn push(&mut self, event: &S::Out) -> Result<(), SchemaError> {
        let (name, payload) = event.to_parts()?;
        self.inner.push(name, payload);
        Ok(())
    }

    /// Broadcasts an event to every subscriber of this topic. `Err` if the event cannot be
    /// encoded (nothing is sent). See [`Context::broadcast`].
    pub fn broadcast(&mut self, event: &S::Out) -> Result<(), SchemaError> {
        let (name, payload) = event.to_parts()?;
        self.inner.broadcast(name, payload);
        Ok(())
    }

    /// Broadcasts an event to every subscriber of this topic but this socket. `Err` if the
    /// event cannot be encoded (nothing is sent).
    pub fn broadcast_from(&mut self, event: &S::Out) -> Result<(), SchemaError> {
        let (name, payload) = event.to_parts()?;
        self.inner.broadcast_from(name, payload);
        Ok(())
    }

    /// Tracks `key` with `meta` on this channel's topic; returns its `phx_ref`. See
    /// [`Context::track`]. Typed clients read presence from their presence view, never from
    /// their `Out` events.
    pub fn track<M: serde::Serialize + ?Sized>(
        &mut self,
        key: &str,
        meta: &M,
    ) -> Result<String, TrackError> {
        self.inner.track(key, meta)
    }

    /// Replaces the meta of `key` on this channel's topic. See [`Context::update`].
    pub fn update<M: serde::Serialize + ?Sized>(
        &mut self,
        key: &str,
        meta: &M,
    ) -> Result<String, TrackError> {
        self.inner.update(key, meta)
    }

    /// Stops tracking `key` on this channel's topic. See [`Context::untrack`].
    pub fn untrack(&mut self, key: &str) -> bool {
        self.inner.untrack(key)
    }

    /// Pushes `presence_state` to this client, once per join, typically right after
    /// [`track`](Self::track) in `join`. See [`Context::push_presence_state`].
    pub fn push_presence_state(&mut self) {
        self.inner.push_presence_state();
    }

    /// Everyone on this channel's topic. See [`Context::presence_list`].
    pub fn presence_list(&self) -> PresenceState {
        self.inner.presence_list()
    }
}

/// A channel over a [`Schema`]; register it with
/// [`AlightBuilder::typed_channel`](crate::AlightBuilder::typed_channel).
pub trait TypedChannel: Send + Sync + 'static {
    /// The schema of the topic family (its `TOPIC` is the route pattern).
    type Schema: Schema;
    /// State of one joined channel.
    type State: Send + 'static;

    /// Accepts a join with `(state, reply)` or refuses it.
    fn join(
        &self,
        params: <Self::Schema as Schema>::JoinParams,
        ctx: &mut TypedContext<'_, '_, Self::Schema>,
    ) -> impl Future<Output = Result<(Self::State, <Self::Schema as Schema>::JoinReply), JoinError>> + Send;

    /// Handles a decoded client event.
    fn handle_in(
        &self,
        event: <Self::Schema as Schema>::In,
        state: &mut Self::State,
        ctx: &mut TypedContext<'_, '_, Self::Schema>,
    ) -> impl Future<Output = TypedReply<<Self::Schema as Schema>::Reply>> + Send;

    /// Runs once when the channel ends.
    fn terminate(
        &self,
        reason: Terminate,
        state: Self::State,
        ctx: &mut TypedContext<'_, '_, Self::Schema>,
    ) -> impl Future<Output = ()> + Send {
        let _ = (reason, state, ctx);
        std::future::ready(())
    }
}

/// Adapts a [`TypedChannel`] to [`Channel`].
#[derive(Debug)]
pub struct Typed<C>(pub C);

/// The longest reason an error reply carries: serde's messages quote the offending value, and a
/// client's payload may be as large as a frame.
const MAX_REASON_LEN: usize = 256;

/// `text` cut to at most `max` bytes at a character boundary, marked with `…` when cut.
fn bounded(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// The reason of an error reply to a payload that does not decode: what the schema expected and
/// what serde found (which field, which type, where), bounded.
pub(crate) fn invalid_reason(what: &str, err: &(dyn std::error::Error + 'static)) -> String {
    let mut reason = format!("{what}: {err}");
    let mut source = err.source();
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    bounded(reason, MAX_REASON_LEN)
}

/// The reply's payload, or (a bug in the app's types) an error reply that says so.
fn encode<T: serde::Serialize>(value: &T, what: &str) -> Result<Payload, Payload> {
    Payload::json(value).map_err(|err| {
        error!(error = %err, "{what} not encoded");
        reason_payload(&format!("server error: the {what} could not be encoded"))
    })
}

impl<C> Channel for Typed<C>
where
    C: TypedChannel,
    <C::Schema as Schema>::JoinParams: Send,
    <C::Schema as Schema>::JoinReply: Send,
    <C::Schema as Schema>::In: Send,
    <C::Schema as Schema>::Reply: Send,
{
    type State = C::State;

    async fn join(
        &self,
        params: Payload,
        ctx: &mut Context<'_>,
    ) -> Result<(C::State, Payload), JoinError> {
        // phoenix.js joins with `{}` by default; a schema with `()` params accepts it.
        let params = match params.deserialize::<<C::Schema as Schema>::JoinParams>() {
            Ok(params) => params,
            Err(_) if params.as_json() == Some("{}") => serde_json::from_str("null")
                .map_err(|err| JoinError::reason(&invalid_reason("invalid join params", &err)))?,
            Err(err) => {
                return Err(JoinError::reason(&invalid_reason(
                    "invalid join params",
                    &err,
                )));
            }
        };
        let (state, reply) = self.0.join(params, &mut TypedContext::new(ctx)).await?;
        match encode(&reply, "join reply") {
            Ok(reply) => Ok((state, reply)),
            Err(response) => Err(JoinError::with_response(response)),
        }
    }

    async fn handle_in(
        &self,
        event: &str,
        payload: Payload,
        state: &mut C::State,
        ctx: &mut Context<'_>,
    ) -> HandleIn {
        let event = match <C::Schema as Schema>::In::from_parts(event, &payload) {
            Ok(event) => event,
            Err(err) => {
                return HandleIn::error_reason(&invalid_reason("invalid payload", &err));
            }
        };
        match self
            .0
            .handle_in(event, state, &mut TypedContext::new(ctx))
            .await
        {
            TypedReply::Ok(reply) => match encode(&reply, "reply") {
                Ok(response) => HandleIn::ok(response),
                Err(response) => HandleIn::error(response),
            },
            TypedReply::Error(reason) => HandleIn::error_reason(&reason),
            TypedReply::NoReply => HandleIn::NoReply,
            TypedReply::Stop(reply) => HandleIn::Stop {
                reply: reply.map(|r| match encode(&r, "reply") {
                    Ok(response) => ("ok".to_owned(), response),
                    Err(response) => ("error".to_owned(), response),
                }),
            },
        }
    }

    async fn terminate(&self, reason: Terminate, state: C::State, ctx: &mut Context<'_>) {
        self.0
            .terminate(reason, state, &mut TypedContext::new(ctx))
            .await;
    }
}
