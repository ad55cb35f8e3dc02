//! What a [`Core`](super::Core) asks of its host, and what the host hands it.
//!
//! The core decides; the host does I/O and owns the wire format. Refs, channel and push ids are
//! integers inside the core; topics, join params, push contents and what arrives for the
//! application are the host's types, which the core only stores, compares and hands back:
//!
//! | host | `Topic` | `Params`, `Push` | `Message` | frames |
//! |---|---|---|---|---|
//! | [`Session`](super::Session) (native, tests) | `String` | [`Payload`](crate::Payload), `(event, Payload)` | `(event or status, Payload)` | the protocol's serializers |
//! | the browser package | a number per topic | `()`: JavaScript keeps them by channel and push id | `()`: the frame stays in JavaScript | `JSON.stringify` / `JSON.parse` |
//!
//! The core calls the host from inside its own methods. A host must not call back into the core
//! from there: it queues what it hears and acts on it once the core's call has returned (the
//! browser package queues user callbacks; [`Session`](super::Session) queues frames, actions and
//! events for its `poll_*` methods).

use std::fmt::Debug;

use super::{ChannelId, ChannelState, PushId, StateCause};

/// A wire ref (`join_ref` or `ref`) as the core counts them: the frame carries it in decimal.
/// The first one issued is 1.
pub type Ref = u64;

/// The ref of an incoming frame whose ref slot holds something this session never issues (not a
/// decimal number, or one with leading zeros): it matches no join, push or heartbeat, yet it is
/// not absent (an absent `join_ref` makes a frame a broadcast).
pub const FOREIGN_REF: Ref = u64::MAX;

/// The I/O and the types of one [`Core`](super::Core).
pub trait Host: Sized {
    /// A topic as the host names it; the core compares topics to route frames.
    type Topic: PartialEq + Debug;
    /// A channel's join params, sent with every join and rejoin.
    type Params: Clone + Debug;
    /// What a push carries (its event and payload), kept until it is sent.
    type Push: Debug;
    /// What an incoming frame carries for the application: handed back with the event it
    /// causes, once for each channel it reaches.
    type Message: Clone + Debug;

    /// Send this frame on the current transport, after those sent before. Only called while the
    /// transport is open.
    fn send(&mut self, frame: Outgoing<'_, Self>);

    /// Tell the application (queue it: the core is still running).
    fn emit(&mut self, event: CoreEvent<Self::Message>);

    /// Open a transport, evaluating the connect params and token afresh, and report it with
    /// `handle_open`, or `handle_error`/`handle_close`.
    fn connect(&mut self);

    /// Close the current transport with this code (`None`: the transport's default) and stop
    /// reporting anything about it: the core has already let go of it. Frames sent before go
    /// out first when `reason` is [`CloseReason::Disconnect`]; otherwise the connection is
    /// presumed dead and they may be dropped.
    fn close(&mut self, code: Option<u16>, reason: CloseReason);
}

/// Why the core closes a transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The application called `disconnect`.
    Disconnect,
    /// A heartbeat got no reply by the next one (phoenix.js's reason text: `heartbeat timeout`).
    HeartbeatTimeout,
    /// The page was shown again while a connection attempt was pending: it is abandoned for a
    /// fresh one.
    Visibility,
    /// The network went away (the browser's `offline` event): the connection is presumed dead.
    Offline,
}

/// A frame for the host to encode and send.
#[derive(Debug)]
pub enum Outgoing<'a, H: Host> {
    /// `[join_ref, join_ref, topic, "phx_join", params]`.
    Join {
        /// The channel joining.
        channel: ChannelId,
        /// Its topic.
        topic: &'a H::Topic,
        /// The params, as they were when the join was made.
        params: &'a H::Params,
        /// The join's ref, also its `ref`.
        join_ref: Ref,
    },
    /// `[join_ref, ref, topic, "phx_leave", {}]`.
    Leave {
        /// The channel leaving.
        channel: ChannelId,
        /// Its topic.
        topic: &'a H::Topic,
        /// The join it leaves (`None` when no join was sent).
        join_ref: Option<Ref>,
        /// The leave's ref.
        msg_ref: Ref,
    },
    /// `[join_ref, ref, topic, event, payload]`.
    Push {
        /// The push.
        push: PushId,
        /// Its channel.
        channel: ChannelId,
        /// The channel's topic.
        topic: &'a H::Topic,
        /// The channel's current join.
        join_ref: Option<Ref>,
        /// This send's ref.
        msg_ref: Ref,
        /// The event and payload, as given to `push`.
        data: &'a H::Push,
    },
    /// `[null, ref, "phoenix", "heartbeat", {}]`.
    Heartbeat {
        /// The heartbeat's ref.
        msg_ref: Ref,
    },
}

/// A frame the host received and decoded.
#[derive(Debug)]
pub struct Incoming<T, M> {
    /// `None` when absent or empty; [`FOREIGN_REF`] when not one of ours.
    pub join_ref: Option<Ref>,
    /// As `join_ref`.
    pub msg_ref: Option<Ref>,
    /// The topic; the host may pass a value no channel has for topics it does not know.
    pub topic: T,
    /// What it is.
    pub body: InBody<M>,
}

/// What an incoming frame is, by its event.
#[derive(Debug)]
pub enum InBody<M> {
    /// `phx_reply`; `ok` when its status is `"ok"`.
    Reply {
        /// The status is `ok`.
        ok: bool,
        /// The status and response, for the application.
        msg: M,
    },
    /// `phx_error`: the channel process crashed.
    Error(M),
    /// `phx_close`: the server ended the channel.
    Close(M),
    /// Any other event, for the application.
    Event(M),
}

/// What the application should hear about, as a [`Core`](super::Core) reports it: the
/// session's [`Event`](super::Event) with the host's messages.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CoreEvent<M> {
    /// The transport opened.
    Open,
    /// The transport closed, or the core closed it; every `connect` ends in exactly one.
    Close {
        /// The code the transport reported or the core closed it with.
        code: Option<u16>,
    },
    /// The transport reported an error.
    Error,
    /// The server refused the connection with this close code (4001 unauthorized, 4003
    /// forbidden) and the core stopped reconnecting until `connect`; the `Close` follows.
    Refused {
        /// The close code.
        code: u16,
    },
    /// The server answered a join or push.
    Reply {
        /// The join or push.
        push: PushId,
        /// Its channel.
        channel: ChannelId,
        /// The status is `ok`.
        ok: bool,
        /// The reply's message.
        msg: M,
    },
    /// A leave, acknowledged at once (`ok` with `{}`, as phoenix.js answers it).
    Left {
        /// The leave.
        push: PushId,
        /// Its channel.
        channel: ChannelId,
    },
    /// A join or push got no reply in time.
    Timeout {
        /// The join or push.
        push: PushId,
        /// Its channel.
        channel: ChannelId,
    },
    /// The server pushed or broadcast an event to the channel.
    Message {
        /// The channel.
        channel: ChannelId,
        /// The frame's message.
        msg: M,
    },
    /// A channel changed state.
    ChannelState {
        /// The channel.
        channel: ChannelId,
        /// Its new state.
        state: ChannelState,
        /// Why.
        cause: StateCause<M>,
    },
}
