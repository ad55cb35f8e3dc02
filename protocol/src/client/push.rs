//! Channel pushes, and the path every frame takes to the wire.
//!
//! A push made while its channel is joined and the connection open is sent at once; otherwise it
//! waits in its channel's buffer and goes out, in order, when the channel is (re)joined. Either
//! way its timeout starts when it is made, as in phoenix.js, and restarts when it is sent from the
//! buffer; a push that times out while buffered is never sent. Each send takes a fresh `ref`
//! (phoenix.js takes one when buffering and another when sending; so does this, to keep the refs
//! equal).
//!
//! Joins, leaves and heartbeats made while the connection is not open wait in the session's send
//! buffer instead, and go out first when it opens, unless they are outdated by then: made for an
//! earlier join of their channel, or for a channel that was left.

use std::cmp::Reverse;
use std::time::Duration;

use bytes::Bytes;

use super::session::{Conn, Session, decimal};
use super::{ChannelId, ChannelState, Event, PushError, PushId, Timestamp};
use crate::{Direction, EncodeError, Frame, Payload, Serializer, event};

/// A channel push waiting to be sent or answered.
#[derive(Debug)]
pub(super) struct Push {
    pub(super) channel: ChannelId,
    event: String,
    payload: Payload,
    timeout: Duration,
    /// The ref of the latest send (or of the buffering, which takes one too).
    msg_ref: Option<String>,
    /// The join_ref it was sent with; its reply must carry it (or none).
    join_ref: Option<String>,
    pub(super) deadline: Timestamp,
}

/// A frame waiting in the session's send buffer for the connection to open.
#[derive(Debug)]
pub(super) struct Outgoing {
    frame: Frame,
    channel: Option<ChannelId>,
}

impl Session {
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
        let ch = self
            .channels
            .get(&channel)
            .ok_or(PushError::UnknownChannel)?;
        if ch.state == ChannelState::Closed {
            return Err(PushError::NotJoined);
        }
        check_encodable(self.config.serializer, &ch.topic, &event, &payload)
            .map_err(PushError::Encode)?;
        let timeout = timeout.unwrap_or(ch.timeout);
        let can_push = self.conn == Conn::Open && ch.state == ChannelState::Joined;
        let id = PushId(self.next_id());
        let push = Push {
            channel,
            event,
            payload,
            timeout,
            msg_ref: None,
            join_ref: None,
            deadline: now + timeout,
        };
        self.pushes.insert(id, push);
        if can_push {
            self.send_push(id, now);
        } else {
            self.start_push_timeout(id, now);
            if let Some(ch) = self.channels.get_mut(&channel) {
                ch.buffer.push(id);
            }
        }
        Ok(id)
    }

    /// Takes a fresh ref and restarts the timeout (phoenix.js `Push.startTimeout`).
    fn start_push_timeout(&mut self, id: PushId, now: Timestamp) -> Option<String> {
        let msg_ref = self.make_ref();
        let push = self.pushes.get_mut(&id)?;
        if let Some(old) = push.msg_ref.replace(msg_ref.clone()) {
            self.awaiting_reply.remove(&old);
        }
        push.deadline = now + push.timeout;
        self.push_deadlines.push(Reverse((push.deadline, id)));
        self.prune_push_deadlines();
        Some(msg_ref)
    }

    fn send_push(&mut self, id: PushId, now: Timestamp) {
        let Some(msg_ref) = self.start_push_timeout(id, now) else {
            return;
        };
        let Some(push) = self.pushes.get_mut(&id) else {
            return;
        };
        let Some(ch) = self.channels.get(&push.channel) else {
            return;
        };
        push.join_ref = ch.join_ref().map(str::to_owned);
        let frame = Frame::message(
            push.join_ref.clone(),
            Some(msg_ref.clone()),
            ch.topic.clone(),
            push.event.clone(),
            push.payload.clone(),
        );
        let channel = push.channel;
        self.awaiting_reply.insert(msg_ref, id);
        self.socket_push(frame, Some(channel));
    }

    /// The channel was joined: its buffered pushes go out in order, but those that timed out
    /// while waiting were already answered with a timeout and are gone.
    pub(super) fn flush_channel_buffer(&mut self, channel: ChannelId, now: Timestamp) {
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        for id in std::mem::take(&mut ch.buffer) {
            self.send_push(id, now);
        }
    }

    pub(super) fn fire_push_timeout(&mut self, id: PushId) {
        let Some(push) = self.pushes.remove(&id) else {
            return;
        };
        self.prune_push_deadlines();
        if let Some(msg_ref) = &push.msg_ref {
            self.awaiting_reply.remove(msg_ref);
        }
        if let Some(ch) = self.channels.get_mut(&push.channel) {
            ch.buffer.retain(|buffered| *buffered != id);
        }
        self.events.push_back(Event::Timeout {
            push: id,
            channel: push.channel,
        });
    }

    /// A reply that is not a join's: the push sent with its ref gets it, if the topic and
    /// join_ref agree. The push's channel need not be joined any more: a reply to a push sent
    /// before a leave still reaches it (phoenix.js drops it and times the push out instead).
    pub(super) fn on_push_reply(&mut self, reply: super::session::Reply<'_>) {
        let Some(&id) = self.awaiting_reply.get(reply.msg_ref) else {
            return;
        };
        let Some(push) = self.pushes.get(&id) else {
            return;
        };
        let topic_matches = self
            .channels
            .get(&push.channel)
            .is_some_and(|c| c.topic == reply.topic);
        let join_matches = reply
            .join_ref
            .is_none_or(|r| Some(r) == push.join_ref.as_deref());
        if !(topic_matches && join_matches) {
            return;
        }
        self.awaiting_reply.remove(reply.msg_ref);
        let channel = push.channel;
        self.pushes.remove(&id);
        self.prune_push_deadlines();
        self.events.push_back(Event::Reply {
            push: id,
            channel,
            status: reply.status,
            response: reply.response,
        });
    }

    // --- the way to the wire (phoenix.js `socket.push`, `send`, `flushSendBuffer`) -------------

    /// Sends `frame` now if the connection is open, else keeps it for when it opens.
    pub(super) fn socket_push(&mut self, frame: Frame, channel: Option<ChannelId>) {
        if self.conn == Conn::Open {
            self.send_now(frame, channel);
        } else {
            // Outdated frames stay outdated (refs are never reused), so they can go now rather
            // than at the flush; this bounds the buffer by the number of channels.
            let channels = &self.channels;
            self.send_buffer
                .retain(|o| !is_outdated(channels, &o.frame, o.channel));
            self.send_buffer.push(Outgoing { frame, channel });
        }
    }

    /// Encodes `frame` into the transmit queue, unless it is outdated. A leave is sent even for a
    /// channel already closed or removed: the server must still hear it.
    fn send_now(&mut self, frame: Frame, channel: Option<ChannelId>) {
        if frame.event() != event::LEAVE && is_outdated(&self.channels, &frame, channel) {
            return;
        }
        // `join` and `push` checked their payloads with `check_encodable`; heartbeats and leaves
        // carry `{}`. A frame failing anyway is not sent, and its push times out, which the
        // application hears about.
        if let Ok(wire) = self.config.serializer.encode(Direction::ToServer, &frame) {
            self.transmits.push_back(wire);
        }
    }

    /// The connection opened: what waited goes out in order.
    pub(super) fn flush_send_buffer(&mut self) {
        for Outgoing { frame, channel } in std::mem::take(&mut self.send_buffer) {
            if !is_outdated(&self.channels, &frame, channel) {
                self.send_now(frame, channel);
            }
        }
    }
}

/// Whether `frame` was made for an earlier join of its channel, or for a channel that has since
/// been closed or removed (phoenix.js `isOutdated`).
fn is_outdated(
    channels: &super::map::VecMap<ChannelId, super::channel::Channel>,
    frame: &Frame,
    channel: Option<ChannelId>,
) -> bool {
    let Some(channel) = channel else {
        return false;
    };
    match channels.get(&channel) {
        None => true,
        Some(ch) => frame.join_ref.as_deref() != ch.join_ref() || ch.state == ChannelState::Closed,
    }
}

/// Checks that a frame with this topic, event and payload can be encoded, before a join or push
/// is accepted: binary payloads need V2, and a binary frame gives the topic and event one length
/// byte each. Refs are decimal numbers, far below that limit. JSON always encodes.
pub(super) fn check_encodable(
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
