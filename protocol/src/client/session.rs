//! The session: the [`Core`] with a host that speaks the protocol's serializers and queues what
//! the core asks for, for a driver to take with `poll_*` (native Rust, the load generator,
//! tests). The browser package runs the same core with a host in JavaScript.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;

use super::host::{CloseReason, CoreEvent, FOREIGN_REF, Host, InBody, Incoming, Outgoing, Ref};
use super::map::VecMap;
use super::resume::Resume;
use super::time::micros;
use super::{
    Action, ChannelId, ChannelState, ClientConfig, ConnectionState, Core, CoreConfig, Event,
    JoinError, LeaveError, PushError, PushId, Timestamp,
};
use crate::{Body, DecodeError, Direction, EncodeError, Frame, Payload, Serializer, Wire, event};

/// A Phoenix Channels client as a state machine: feed it user intents, transport events and the
/// time; take frames to send, actions for the driver, events for the application.
///
/// See the [module documentation](super) for the driving loop and an example.
#[derive(Debug)]
pub struct Session {
    core: Core<Wired>,
    config: ClientConfig,
}

/// The host of a [`Session`]: encodes frames with the configured serializer and queues them,
/// with the actions and events, for the `poll_*` methods.
#[derive(Debug)]
struct Wired {
    serializer: Serializer,
    transmits: VecDeque<Wire>,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    /// Each channel's join push and its resume state (`resume.rs`), kept from `join` until the
    /// channel is removed.
    joins: VecMap<ChannelId, (PushId, Resume)>,
}

impl Host for Wired {
    type Topic = String;
    type Params = Payload;
    /// The event and payload.
    type Push = (String, Payload);
    /// The event (or a reply's status), the payload (or its response), and an event's ref slot
    /// when it is not one of the session's refs (a history position).
    type Message = (String, Payload, Option<String>);

    fn send(&mut self, frame: Outgoing<'_, Self>) {
        let frame = match frame {
            Outgoing::Join {
                channel,
                topic,
                params,
                join_ref,
            } => Frame::message(
                Some(decimal(join_ref)),
                Some(decimal(join_ref)),
                topic.clone(),
                event::JOIN,
                self.joins
                    .get(&channel)
                    .and_then(|(_, resume)| resume.join_params(params))
                    .unwrap_or_else(|| params.clone()),
            ),
            Outgoing::Leave {
                topic,
                join_ref,
                msg_ref,
                ..
            } => Frame::message(
                join_ref.map(decimal),
                Some(decimal(msg_ref)),
                topic.clone(),
                event::LEAVE,
                Payload::empty(),
            ),
            Outgoing::Push {
                topic,
                join_ref,
                msg_ref,
                data: (event, payload),
                ..
            } => Frame::message(
                join_ref.map(decimal),
                Some(decimal(msg_ref)),
                topic.clone(),
                event.clone(),
                payload.clone(),
            ),
            Outgoing::Heartbeat { msg_ref } => Frame::message(
                None,
                Some(decimal(msg_ref)),
                event::PHOENIX_TOPIC,
                event::HEARTBEAT,
                Payload::empty(),
            ),
        };
        // `join` and `push` checked their payloads with `check_encodable`; heartbeats and leaves
        // carry `{}`. A frame failing anyway is not sent, and its push times out, which the
        // application hears about.
        if let Ok(wire) = self.serializer.encode(Direction::ToServer, &frame) {
            self.transmits.push_back(wire);
        }
    }

    fn emit(&mut self, event: CoreEvent<Self::Message>) {
        let event = match event {
            CoreEvent::Open => Event::Open,
            CoreEvent::Close { code } => Event::Close { code },
            CoreEvent::Error => Event::Error,
            CoreEvent::Refused { code } => Event::Refused { code },
            CoreEvent::Reply {
                push,
                channel,
                ok,
                msg: (status, response, _),
            } => {
                let recovered = match self.joins.get_mut(&channel) {
                    Some((join, resume)) if ok && *join == push => resume.joined(&response),
                    _ => None,
                };
                self.events.push_back(Event::Reply {
                    push,
                    channel,
                    status,
                    response,
                });
                match recovered {
                    Some(recovered) => Event::Recovered { channel, recovered },
                    None => return,
                }
            }
            CoreEvent::Left { push, channel } => Event::Reply {
                push,
                channel,
                status: event::STATUS_OK.to_owned(),
                response: Payload::empty(),
            },
            CoreEvent::Timeout { push, channel } => Event::Timeout { push, channel },
            CoreEvent::Message {
                channel,
                msg: (event, payload, position),
            } => {
                let fresh = self
                    .joins
                    .get_mut(&channel)
                    .is_none_or(|(_, resume)| resume.fresh(position.as_deref()));
                if !fresh {
                    return;
                }
                Event::Message {
                    channel,
                    event,
                    payload,
                    position,
                }
            }
            CoreEvent::ChannelState {
                channel,
                state,
                cause,
            } => Event::ChannelState {
                channel,
                state,
                cause: cause.map(|(_, payload, _)| payload),
            },
        };
        self.events.push_back(event);
    }

    fn connect(&mut self) {
        self.actions.push_back(Action::Connect);
    }

    fn close(&mut self, code: Option<u16>, reason: CloseReason) {
        // A user's disconnect keeps the frames not yet taken, so that a last leave still goes
        // out; otherwise the connection is presumed dead.
        if reason != CloseReason::Disconnect {
            self.transmits.clear();
        }
        let reason = match reason {
            CloseReason::HeartbeatTimeout => "heartbeat timeout".to_owned(),
            CloseReason::Offline => "offline".to_owned(),
            _ => String::new(),
        };
        self.actions.push_back(Action::Close { code, reason });
    }
}

impl Session {
    /// A session that is not connected; call [`connect`](Self::connect) to start.
    pub fn new(config: ClientConfig) -> Self {
        let host = Wired {
            serializer: config.serializer,
            transmits: VecDeque::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            joins: VecMap::default(),
        };
        Session {
            core: Core::new(CoreConfig::from(&config), host),
            config,
        }
    }

    /// The configuration the session was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    // --- user intents -------------------------------------------------------------------------

    /// Connects: emits [`Action::Connect`]. Does nothing while a connection is open, opening, or
    /// scheduled to reconnect (phoenix.js keeps the connection it has).
    pub fn connect(&mut self, now: Timestamp) {
        self.core.connect(now);
    }

    /// Disconnects for good: closes the transport ([`Action::Close`] with `code`, `None` for the
    /// transport's default) and stops reconnecting until [`connect`](Self::connect) is called.
    ///
    /// Joined channels become errored and rejoin when the session connects again; frames already
    /// in `poll_transmit` (a last push or leave) are still to be sent before the close.
    pub fn disconnect(&mut self, now: Timestamp, code: Option<u16>) {
        self.core.disconnect(now, code);
    }

    /// The page became visible (`true`) or hidden (`false`).
    ///
    /// Browsers throttle timers in hidden tabs, so a connection lost meanwhile may be waiting out a
    /// long backoff, or a reconnect came due while hidden and waits for this: when the page is shown
    /// again and the session should be connected but is not, it reconnects at once with a fresh
    /// backoff, abandoning a connection attempt that is still pending (phoenix.js
    /// `handleVisibilityChange`).
    pub fn handle_visibility(&mut self, visible: bool, now: Timestamp) {
        self.core.handle_visibility(visible, now);
    }

    /// The network went down (`false`) or came back (`true`): offline closes the transport at
    /// once ([`Action::Close`], then [`Event::Close`] with 1006) and holds reconnects; online
    /// reconnects at once if the session should be connected.
    pub fn handle_online(&mut self, online: bool, now: Timestamp) {
        self.core.handle_online(online, now);
    }

    /// A channel for `topic`, joined with `params` (sent with every join and rejoin). Nothing is
    /// sent until [`join`](Self::join).
    pub fn channel(&mut self, topic: impl Into<String>, params: Payload) -> ChannelId {
        self.core.channel(topic.into(), params)
    }

    /// Joins the channel, with `timeout` (default: the config's) for this and every rejoin, and as
    /// the channel's default push timeout.
    ///
    /// The join is sent at once if the connection is open, else when it opens. Its answer arrives
    /// as [`Event::Reply`] (or [`Event::Timeout`]) for the returned id, and again for every rejoin;
    /// the channel's state changes arrive as [`Event::ChannelState`].
    pub fn join(
        &mut self,
        channel: ChannelId,
        timeout: Option<Duration>,
        now: Timestamp,
    ) -> Result<PushId, JoinError> {
        if self.core.channel_state(channel) == Some(ChannelState::Closed) {
            self.check_join_params(channel, None)?;
        }
        let push = self.core.join(channel, timeout.map(micros), now)?;
        let joins = &mut self.core.host_mut().joins;
        match joins.get_mut(&channel) {
            Some((join, _)) => *join = push,
            None => {
                joins.insert(channel, (push, Resume::default()));
            }
        }
        Ok(push)
    }

    /// The channel's last position in its topic's history: from its join reply, then from
    /// every broadcast; `None` until a join reply carries one (a topic without history).
    ///
    /// The session resumes by itself: every later join of the channel carries
    /// `since: <position>` (merged into its params, when they are a JSON object), broadcasts at
    /// or before it are dropped, and each rejoin reply that says whether it resumed is followed
    /// by [`Event::Recovered`].
    pub fn position(&self, channel: ChannelId) -> Option<&str> {
        self.core.host().joins.get(&channel)?.1.position()
    }

    /// Replaces the params the channel's next join and every later rejoin carry; a join already
    /// out keeps the params it was sent with.
    ///
    /// phoenix.js takes channel params as a function and calls it at each join; a driver does
    /// the same by calling it and setting the result here before every input that may send a
    /// join ([`join`](Self::join), [`handle_open`](Self::handle_open),
    /// [`handle_timeout`](Self::handle_timeout)).
    pub fn set_channel_params(
        &mut self,
        channel: ChannelId,
        params: Payload,
    ) -> Result<(), JoinError> {
        self.check_join_params(channel, Some(&params))?;
        self.core.set_channel_params(channel, params)
    }

    /// Whether [`handle_timeout`](Self::handle_timeout) at `now` rejoins the channel: it is
    /// errored, the connection is open and its rejoin timer is due. (On
    /// [`handle_open`](Self::handle_open) every errored channel rejoins.) A driver that refreshes
    /// join params before each join asks this, to call no params function for nothing.
    pub fn rejoin_due(&self, channel: ChannelId, now: Timestamp) -> bool {
        self.core.rejoin_due(channel, now)
    }

    /// Leaves the channel: sends `phx_leave` if the connection is open, and closes the channel at
    /// once, as phoenix.js does. The returned id is answered right away with an `ok`
    /// [`Event::Reply`] (phoenix.js acknowledges a leave locally); nothing more arrives for the
    /// channel, but replies to pushes sent before the leave are still delivered.
    pub fn leave(&mut self, channel: ChannelId, now: Timestamp) -> Result<PushId, LeaveError> {
        self.core.leave(channel, now)
    }

    /// Forgets a channel without telling the server (phoenix.js `socket.remove`); [`leave`]
    /// first to end it on the server too. Its pending pushes are dropped without events.
    /// Returns whether the channel existed.
    ///
    /// [`leave`]: Self::leave
    pub fn remove_channel(&mut self, channel: ChannelId) -> bool {
        self.core.host_mut().joins.remove(&channel);
        self.core.remove_channel(channel)
    }

    /// Pushes `event` with `payload` to the channel, with `timeout` (default: the channel's).
    ///
    /// Sent at once if the channel is joined and the connection open, else buffered until the
    /// channel is joined. The answer arrives as [`Event::Reply`] or [`Event::Timeout`] for the
    /// returned id. A binary payload goes out as a V2 binary frame.
    pub fn push(
        &mut self,
        channel: ChannelId,
        event: impl Into<String>,
        payload: Payload,
        timeout: Option<Duration>,
        now: Timestamp,
    ) -> Result<PushId, PushError> {
        let event = event.into();
        let topic = match self.core.channel_state(channel) {
            None => return Err(PushError::UnknownChannel),
            Some(ChannelState::Closed) => return Err(PushError::NotJoined),
            Some(_) => self.core.channel_topic(channel),
        };
        if let Some(topic) = topic {
            check_encodable(self.config.serializer, topic, &event, &payload)
                .map_err(PushError::Encode)?;
        }
        self.core
            .push(channel, (event, payload), timeout.map(micros), now)
    }

    // --- transport events ---------------------------------------------------------------------

    /// The transport opened: sends what was buffered, starts heartbeats, rejoins errored channels.
    pub fn handle_open(&mut self, now: Timestamp) {
        self.core.handle_open(now);
    }

    /// The transport closed (`code` as reported, if any): errors the channels and schedules a
    /// reconnect. Every close the session did not ask for is reconnected, whatever its code (as
    /// phoenix.js 1.8 does, since servers and proxies close with 1000 too).
    pub fn handle_close(&mut self, now: Timestamp, code: Option<u16>) {
        if matches!(
            self.core.connection_state(),
            ConnectionState::Connecting | ConnectionState::Open
        ) {
            // Frames not yet taken were meant for this transport; they cannot be sent any more.
            self.core.host_mut().transmits.clear();
        }
        self.core.handle_close(now, code);
    }

    /// The transport reported an error: errors the channels. The transport's close, which
    /// normally follows, schedules the reconnect.
    pub fn handle_error(&mut self, now: Timestamp) {
        self.core.handle_error(now);
    }

    /// A text message arrived. A message that does not decode is dropped and its error returned,
    /// for the driver to log; the session is unaffected.
    pub fn handle_text(&mut self, now: Timestamp, text: &str) -> Result<(), DecodeError> {
        if !self.core.is_connected() {
            return Ok(());
        }
        let frame = self
            .config
            .serializer
            .decode_text(Direction::ToClient, text)?;
        self.handle_frame(now, frame);
        Ok(())
    }

    /// A binary message arrived (V2 only). Errors as for [`handle_text`](Self::handle_text).
    pub fn handle_binary(&mut self, now: Timestamp, data: Bytes) -> Result<(), DecodeError> {
        if !self.core.is_connected() {
            return Ok(());
        }
        let frame = self
            .config
            .serializer
            .decode_binary(Direction::ToClient, data)?;
        self.handle_frame(now, frame);
        Ok(())
    }

    /// A message arrived that the driver has already decoded (with the configured serializer,
    /// [`Direction::ToClient`]): what [`handle_text`](Self::handle_text) and
    /// [`handle_binary`](Self::handle_binary) do after decoding, for a driver that also shows
    /// the frame (to a logger) and decodes it once. Ignored unless the connection is open.
    pub fn handle_frame(&mut self, now: Timestamp, frame: Frame) {
        let Frame {
            join_ref,
            msg_ref,
            topic,
            body,
        } = frame;
        let msg_ref_number = msg_ref.as_deref().and_then(parse_ref);
        let body = match body {
            Body::Reply { status, response } => InBody::Reply {
                ok: status == event::STATUS_OK,
                msg: (status, response, None),
            },
            Body::Event { event, payload } => match event.as_str() {
                event::ERROR => InBody::Error((event, payload, None)),
                event::CLOSE => InBody::Close((event, payload, None)),
                // A ref that is none of the session's: a history position, or garbage that
                // `Resume` reads as no position.
                _ => InBody::Event((
                    event,
                    payload,
                    msg_ref.filter(|_| msg_ref_number == Some(FOREIGN_REF)),
                )),
            },
        };
        let incoming = Incoming {
            join_ref: join_ref.as_deref().and_then(parse_ref),
            msg_ref: msg_ref_number,
            topic,
            body,
        };
        self.core.handle_frame(now, incoming);
    }

    /// Fires every deadline at or before `now`, earliest first. Call it when
    /// [`poll_timeout`](Self::poll_timeout) comes due; calling it early or twice is harmless.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.core.handle_timeout(now);
    }

    // --- outputs ------------------------------------------------------------------------------

    /// The next message to send on the current transport, in order.
    pub fn poll_transmit(&mut self) -> Option<Wire> {
        self.core.host_mut().transmits.pop_front()
    }

    /// The next thing the driver must do with the transport.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.core.host_mut().actions.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.core.host_mut().events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next: the earliest deadline, if any.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.core.poll_timeout()
    }

    /// The state of the connection.
    pub fn connection_state(&self) -> ConnectionState {
        self.core.connection_state()
    }

    /// Whether the transport is open.
    pub fn is_connected(&self) -> bool {
        self.core.is_connected()
    }

    /// The channel's state, or `None` if it was removed.
    pub fn channel_state(&self, channel: ChannelId) -> Option<ChannelState> {
        self.core.channel_state(channel)
    }

    /// The channel's topic, or `None` if it was removed.
    pub fn channel_topic(&self, channel: ChannelId) -> Option<&str> {
        self.core.channel_topic(channel).map(String::as_str)
    }

    /// The `join_ref` of the channel's current join, if one is out or accepted.
    pub fn join_ref(&self, channel: ChannelId) -> Option<String> {
        self.core.join_ref(channel).map(decimal)
    }

    // --- internals ----------------------------------------------------------------------------

    /// Checks that the channel's join (with `params`, or its own) can be encoded.
    fn check_join_params(
        &self,
        channel: ChannelId,
        params: Option<&Payload>,
    ) -> Result<(), JoinError> {
        let topic = self
            .core
            .channel_topic(channel)
            .ok_or(JoinError::UnknownChannel)?;
        let params = match params {
            Some(params) => params,
            None => self
                .core
                .channel_params(channel)
                .ok_or(JoinError::UnknownChannel)?,
        };
        check_encodable(self.config.serializer, topic, event::JOIN, params)
            .map_err(JoinError::Encode)
    }
}

/// A ref slot's value as the core counts refs: `None` when empty, [`FOREIGN_REF`] when it is not
/// the decimal form of a ref (as [`decimal`] writes them: no sign, no leading zeros).
fn parse_ref(text: &str) -> Option<Ref> {
    if text.is_empty() {
        return None;
    }
    let canonical =
        text.bytes().all(|b| b.is_ascii_digit()) && !(text.len() > 1 && text.starts_with('0'));
    Some(
        canonical
            .then(|| text.parse::<Ref>().ok())
            .flatten()
            .unwrap_or(FOREIGN_REF),
    )
}

/// `n` in decimal, as `n.to_string()` writes it.
pub(super) fn decimal(n: u64) -> String {
    n.to_string()
}

/// Checks that a frame with this topic, event and payload can be encoded, before a join or push
/// is accepted: binary payloads need V2, and a binary frame gives the topic and event one length
/// byte each. Refs are decimal numbers, far below that limit. JSON always encodes.
fn check_encodable(
    serializer: Serializer,
    topic: &str,
    event: &str,
    payload: &Payload,
) -> Result<(), EncodeError> {
    if !matches!(payload, Payload::Binary(_)) {
        return Ok(());
    }
    let probe = Frame::message(
        Some(decimal(u64::MAX)),
        Some(decimal(u64::MAX)),
        topic,
        event,
        Payload::Binary(Bytes::new()),
    );
    serializer.encode(Direction::ToServer, &probe).map(drop)
}

#[cfg(test)]
mod tests {
    use super::{FOREIGN_REF, decimal, parse_ref};

    #[test]
    fn refs_read_back_as_written_and_nothing_else_matches_one() {
        for n in [0, 1, 9, 10, 4_294_967_296, u64::MAX - 1] {
            assert_eq!(parse_ref(&decimal(n)), Some(n));
        }
        assert_eq!(parse_ref(""), None);
        for foreign in ["01", "+1", "-1", "1.0", "abc", " 1", "18446744073709551616"] {
            assert_eq!(parse_ref(foreign), Some(FOREIGN_REF), "{foreign}");
        }
    }
}
