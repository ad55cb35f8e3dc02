//! Channel pushes, and the path every frame takes to the host.
//!
//! A push made while its channel is joined and the connection open is sent at once; otherwise it
//! waits in its channel's buffer and goes out, in order, when the channel is (re)joined. Either
//! way its timeout starts when it is made, as in phoenix.js, and restarts when it is sent from the
//! buffer; a push that times out while buffered is never sent. Each send takes a fresh `ref`
//! (phoenix.js takes one when buffering and another when sending; so does this, to keep the refs
//! equal).
//!
//! Joins and leaves made while the connection is not open wait in the core's send buffer
//! instead, and go out first when it opens, unless they are outdated by then: made for an
//! earlier join of their channel, or for a channel that was left.

use super::{Conn, Core};
use crate::client::host::{CoreEvent, Host, Outgoing, Ref};
use crate::client::{ChannelId, ChannelState, PushError, PushId, Timestamp};

/// A channel push waiting to be sent or answered.
#[derive(Debug)]
pub(super) struct Push<D> {
    pub(super) channel: ChannelId,
    data: D,
    /// µs.
    timeout: u64,
    /// The ref of the latest send (or of the buffering, which takes one too).
    msg_ref: Option<Ref>,
    /// The join_ref it was sent with; its reply must carry it (or none).
    join_ref: Option<Ref>,
    pub(super) deadline: Timestamp,
}

/// A join or leave waiting in the send buffer for the connection to open.
#[derive(Debug)]
pub(super) enum Buffered<P> {
    Join {
        channel: ChannelId,
        join_ref: Ref,
        params: P,
    },
    Leave {
        channel: ChannelId,
        join_ref: Option<Ref>,
        msg_ref: Ref,
    },
}

impl<P> Buffered<P> {
    fn channel(&self) -> ChannelId {
        match self {
            Buffered::Join { channel, .. } | Buffered::Leave { channel, .. } => *channel,
        }
    }

    fn join_ref(&self) -> Option<Ref> {
        match self {
            Buffered::Join { join_ref, .. } => Some(*join_ref),
            Buffered::Leave { join_ref, .. } => *join_ref,
        }
    }
}

impl<H: Host> Core<H> {
    /// Pushes `data` (the event and payload, in the host's form) to the channel, with `timeout`
    /// (µs; default: the channel's).
    ///
    /// Sent at once if the channel is joined and the connection open, else buffered until the
    /// channel is joined. The answer arrives as [`CoreEvent::Reply`] or [`CoreEvent::Timeout`]
    /// for the returned id.
    pub fn push(
        &mut self,
        channel: ChannelId,
        data: H::Push,
        timeout: Option<u64>,
        now: Timestamp,
    ) -> Result<PushId, PushError> {
        let ch = self
            .channels
            .get(&channel)
            .ok_or(PushError::UnknownChannel)?;
        if ch.state == ChannelState::Closed {
            return Err(PushError::NotJoined);
        }
        let timeout = timeout.unwrap_or(ch.timeout);
        let can_push = self.conn == Conn::Open && ch.state == ChannelState::Joined;
        let id = PushId(self.next_id());
        // The deadline is set, with its entry, by `start_push_timeout` below.
        let push = Push {
            channel,
            data,
            timeout,
            msg_ref: None,
            join_ref: None,
            deadline: Timestamp::ZERO,
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
    fn start_push_timeout(&mut self, id: PushId, now: Timestamp) -> Option<Ref> {
        let msg_ref = self.make_ref();
        let push = self.pushes.get_mut(&id)?;
        if let Some(old) = push.msg_ref.replace(msg_ref) {
            self.awaiting_reply.remove(&old);
        }
        let at = now.deadline(push.timeout);
        self.set_push_deadline(id, at);
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
        push.join_ref = ch.join_ref();
        self.awaiting_reply.insert(msg_ref, id);
        // Sent only while open, and only for a channel joined now (`push`, or its join's ok).
        if self.conn == Conn::Open && ch.state == ChannelState::Joined {
            self.host.send(Outgoing::Push {
                push: id,
                channel: push.channel,
                topic: &ch.topic,
                join_ref: push.join_ref,
                msg_ref,
                data: &push.data,
            });
        }
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
        let Some(push) = self.drop_push(id) else {
            return;
        };
        if let Some(msg_ref) = &push.msg_ref {
            self.awaiting_reply.remove(msg_ref);
        }
        if let Some(ch) = self.channels.get_mut(&push.channel) {
            ch.buffer.retain(|buffered| *buffered != id);
        }
        self.host.emit(CoreEvent::Timeout {
            push: id,
            channel: push.channel,
        });
    }

    /// A reply that is not a join's: the push sent with its ref gets it, if the topic and
    /// join_ref agree. The push's channel need not be joined any more: a reply to a push sent
    /// before a leave still reaches it (phoenix.js drops it and times the push out instead).
    pub(super) fn on_push_reply(
        &mut self,
        topic: &H::Topic,
        join_ref: Option<Ref>,
        msg_ref: Ref,
        ok: bool,
        msg: H::Message,
    ) {
        let Some(&id) = self.awaiting_reply.get(&msg_ref) else {
            return;
        };
        let Some(push) = self.pushes.get(&id) else {
            return;
        };
        let topic_matches = self
            .channels
            .get(&push.channel)
            .is_some_and(|c| c.topic == *topic);
        let join_matches = join_ref.is_none_or(|r| Some(r) == push.join_ref);
        if !(topic_matches && join_matches) {
            return;
        }
        self.awaiting_reply.remove(&msg_ref);
        let channel = push.channel;
        self.drop_push(id);
        self.host.emit(CoreEvent::Reply {
            push: id,
            channel,
            ok,
            msg,
        });
    }

    // --- the way to the host (phoenix.js `socket.push`, `send`, `flushSendBuffer`) ------------

    /// Sends a join or leave now if the connection is open, else keeps it for when it opens.
    pub(super) fn socket_push(&mut self, frame: Buffered<H::Params>) {
        if self.conn == Conn::Open {
            self.send_now(&frame);
        } else {
            // Outdated frames stay outdated (refs are never reused), so they can go now rather
            // than at the flush; this bounds the buffer by the number of channels.
            let channels = &self.channels;
            self.send_buffer
                .retain(|b| !is_outdated(channels, b.channel(), b.join_ref()));
            self.send_buffer.push(frame);
        }
    }

    /// Hands a join or leave to the host, unless it is outdated. A leave is sent even for a
    /// channel already closed or removed: the server must still hear it (its topic is gone with
    /// a removed channel, and then so is the frame).
    fn send_now(&mut self, frame: &Buffered<H::Params>) {
        match frame {
            Buffered::Join {
                channel,
                join_ref,
                params,
            } => {
                if is_outdated(&self.channels, *channel, Some(*join_ref)) {
                    return;
                }
                if let Some(ch) = self.channels.get(channel) {
                    self.host.send(Outgoing::Join {
                        channel: *channel,
                        topic: &ch.topic,
                        params,
                        join_ref: *join_ref,
                    });
                }
            }
            Buffered::Leave {
                channel,
                join_ref,
                msg_ref,
            } => {
                if let Some(ch) = self.channels.get(channel) {
                    self.host.send(Outgoing::Leave {
                        channel: *channel,
                        topic: &ch.topic,
                        join_ref: *join_ref,
                        msg_ref: *msg_ref,
                    });
                }
            }
        }
    }

    /// The connection opened: what waited goes out in order.
    pub(super) fn flush_send_buffer(&mut self) {
        for frame in std::mem::take(&mut self.send_buffer) {
            if !is_outdated(&self.channels, frame.channel(), frame.join_ref()) {
                self.send_now(&frame);
            }
        }
    }
}

/// Whether a frame of `channel` carrying `join_ref` was made for an earlier join of its channel,
/// or for a channel that has since been closed or removed (phoenix.js `isOutdated`).
fn is_outdated<H: Host>(
    channels: &crate::client::map::VecMap<ChannelId, super::channel::Channel<H>>,
    channel: ChannelId,
    join_ref: Option<Ref>,
) -> bool {
    match channels.get(&channel) {
        None => true,
        Some(ch) => join_ref != ch.join_ref() || ch.state == ChannelState::Closed,
    }
}
