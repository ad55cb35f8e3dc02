//! Typed channels: a [`Channel`] written against a protocol [`Schema`].
//!
//! The schema fixes the join params and reply, the events a client may push, the reply to them and
//! the events the server sends. A [`TypedChannel`] receives decoded values and can only push the
//! schema's `Out` events, so a mismatch with the client is a compile error. Payloads that do not
//! decode are answered with an error reply that says why; the channel never sees them.
//!
//! ```
//! use alight_protocol::schema::{Schema, SerdeEvents};
//! use alight_server::{TypedChannel, TypedContext, TypedReply};
//! use alight_server::{Alight, JoinError};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! #[serde(tag = "event", content = "payload", rename_all = "snake_case")]
//! enum CounterIn { Add { by: u64 } }
//! impl SerdeEvents for CounterIn {}
//!
//! #[derive(Serialize, Deserialize)]
//! #[serde(tag = "event", content = "payload", rename_all = "snake_case")]
//! enum CounterOut { Total { value: u64 } }
//! impl SerdeEvents for CounterOut {}
//!
//! struct CounterSchema;
//! impl Schema for CounterSchema {
//!     const TOPIC: &'static str = "counter:*";
//!     type JoinParams = ();
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
//!     async fn join(&self, _: (), _: &mut TypedContext<'_, '_, CounterSchema>) -> Result<(u64, u64), JoinError> {
//!         Ok((0, 0))
//!     }
//!
//!     async fn handle_in(&self, event: CounterIn, total: &mut u64, ctx: &mut TypedContext<'_, '_, CounterSchema>) -> TypedReply<u64> {
//!         let CounterIn::Add { by } = event;
//!         *total += by;
//!         ctx.broadcast(&CounterOut::Total { value: *total });
//!         TypedReply::Ok(*total)
//!     }
//! }
//!
//! let alight = Alight::builder().typed_channel(Counter).build();
//! # let _ = alight;
//! ```

use std::future::Future;
use std::marker::PhantomData;

use alight_protocol::Payload;
use alight_protocol::schema::{Events, Schema, SchemaError};
use tracing::warn;

use crate::channel::{Channel, Context, HandleIn, JoinError, Terminate, reason_payload};

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

/// [`Context`] restricted to a schema's `Out` events.
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

    /// The untyped context (topic, socket, PubSub).
    pub fn untyped(&mut self) -> &mut Context<'a> {
        self.inner
    }

    /// The channel's topic.
    pub fn topic(&self) -> &str {
        self.inner.topic()
    }

    /// Pushes an event to this client.
    pub fn push(&mut self, event: &S::Out) {
        match event.to_parts() {
            Ok((name, payload)) => self.inner.push(name, payload),
            Err(err) => warn!(error = %err, "typed push not encoded"),
        }
    }

    /// Broadcasts an event to every subscriber of this topic.
    pub fn broadcast(&mut self, event: &S::Out) {
        match event.to_parts() {
            Ok((name, payload)) => self.inner.broadcast(name, payload),
            Err(err) => warn!(error = %err, "typed broadcast not encoded"),
        }
    }

    /// Broadcasts an event to every subscriber of this topic but this socket.
    pub fn broadcast_from(&mut self, event: &S::Out) {
        match event.to_parts() {
            Ok((name, payload)) => self.inner.broadcast_from(name, payload),
            Err(err) => warn!(error = %err, "typed broadcast not encoded"),
        }
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

fn invalid(err: &SchemaError) -> Payload {
    reason_payload(&format!("invalid payload: {err}"))
}

fn encode<T: serde::Serialize>(value: &T) -> Payload {
    Payload::json(value).unwrap_or_else(|err| {
        warn!(error = %err, "typed reply not encoded");
        Payload::empty()
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
                .map_err(|err| JoinError::reason(&format!("invalid join params: {err}")))?,
            Err(err) => return Err(JoinError::reason(&format!("invalid join params: {err}"))),
        };
        let (state, reply) = self.0.join(params, &mut TypedContext::new(ctx)).await?;
        Ok((state, encode(&reply)))
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
            Err(err) => return HandleIn::error(invalid(&err)),
        };
        match self
            .0
            .handle_in(event, state, &mut TypedContext::new(ctx))
            .await
        {
            TypedReply::Ok(reply) => HandleIn::ok(encode(&reply)),
            TypedReply::Error(reason) => HandleIn::error_reason(&reason),
            TypedReply::NoReply => HandleIn::NoReply,
            TypedReply::Stop(reply) => HandleIn::Stop {
                reply: reply.map(|r| ("ok".to_owned(), encode(&r))),
            },
        }
    }

    async fn terminate(&self, reason: Terminate, state: C::State, ctx: &mut Context<'_>) {
        self.0
            .terminate(reason, state, &mut TypedContext::new(ctx))
            .await;
    }
}
