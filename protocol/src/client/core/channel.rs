//! Channels: joining, rejoining, leaving, and what the server sends them.
//!
//! A channel follows phoenix.js's `Channel`: `closed` until joined, `joining` while its join push
//! is out, `joined` on an ok reply, `errored` when the join fails or times out, the channel
//! crashes or the connection is lost, and from there it rejoins: at once when the connection
//! reopens, or after the rejoin backoff while it stays open.
//!
//! | server frame | channel |
//! |---|---|
//! | join reply `ok` | joined; buffered pushes go out in order |
//! | join reply, any other status | errored; rejoin after the backoff |
//! | no join reply in time | `phx_leave` for that join, errored, rejoin after the backoff |
//! | `phx_error` | errored; rejoin after the backoff |
//! | `phx_close` | closed |
//! | any other event | [`CoreEvent::Message`] |
//!
//! A frame whose `join_ref` names an earlier join of the channel is dropped: it belongs to a
//! channel process the server has already replaced.

use super::push::Buffered;
use super::{Conn, Core, Routed};
use crate::client::host::{CoreEvent, Host, Ref};
use crate::client::{
    ChannelId, ChannelState, JoinError, LeaveError, PushId, StateCause, Timestamp,
};

/// One channel of a core.
#[derive(Debug)]
pub(super) struct Channel<H: Host> {
    pub(super) topic: H::Topic,
    pub(super) params: H::Params,
    pub(super) state: ChannelState,
    /// Timeout of the join, and the default of pushes (set by `join`, as in phoenix.js), µs.
    pub(super) timeout: u64,
    /// Set by the first `join`; the same join push is resent on every rejoin.
    join: Option<JoinPush>,
    pub(super) rejoin: Retry,
    /// Pushes waiting for the channel to be joined, in order (phoenix.js `pushBuffer`).
    pub(super) buffer: Vec<PushId>,
}

/// The channel's join push (phoenix.js `joinPush`). Its `ref` is the channel's `join_ref`.
#[derive(Debug)]
struct JoinPush {
    id: PushId,
    /// The ref of the latest join sent; `None` once that join was abandoned (phoenix.js resets the
    /// push), so that nothing from it is accepted any more.
    join_ref: Option<Ref>,
    deadline: Option<Timestamp>,
}

/// A retry timer with its attempt count (phoenix.js `Timer`).
#[derive(Debug, Default)]
pub(super) struct Retry {
    pub(super) tries: u32,
    pub(super) at: Option<Timestamp>,
}

impl<H: Host> Channel<H> {
    pub(super) fn join_ref(&self) -> Option<Ref> {
        self.join.as_ref().and_then(|j| j.join_ref)
    }

    pub(super) fn join_deadline(&self) -> Option<Timestamp> {
        self.join.as_ref().and_then(|j| j.deadline)
    }

    /// Whether a frame for `topic` carrying `join_ref` is for this channel (phoenix.js `isMember`):
    /// a frame without a join_ref (a broadcast) is for every channel of its topic.
    fn is_member(&self, topic: &H::Topic, join_ref: Option<Ref>) -> bool {
        self.state != ChannelState::Closed
            && self.topic == *topic
            && join_ref.is_none_or(|r| Some(r) == self.join_ref())
    }

    /// Abandons the current join (phoenix.js `joinPush.reset()`).
    fn reset_join(&mut self) {
        if let Some(join) = &mut self.join {
            join.join_ref = None;
            join.deadline = None;
        }
    }

    fn cancel_join_timeout(&mut self) {
        if let Some(join) = &mut self.join {
            join.deadline = None;
        }
    }
}

impl<H: Host> Core<H> {
    /// A channel for `topic`, joined with `params` (sent with every join and rejoin). Nothing is
    /// sent until [`join`](Self::join).
    pub fn channel(&mut self, topic: H::Topic, params: H::Params) -> ChannelId {
        // phoenix.js's channel registers two socket callbacks here, each taking a ref; taking
        // them too keeps every later ref, and so every frame, byte for byte what phoenix.js sends
        // for the same calls.
        self.make_ref();
        self.make_ref();
        let id = ChannelId(self.next_id());
        let channel = Channel {
            topic,
            params,
            state: ChannelState::Closed,
            timeout: self.config.timeout,
            join: None,
            rejoin: Retry::default(),
            buffer: Vec::new(),
        };
        self.channels.insert(id, channel);
        id
    }

    /// Joins the channel, with `timeout` (µs; default: the config's) for this and every rejoin, and as
    /// the channel's default push timeout. Sent at once if the connection is open, else when it
    /// opens; answered by [`CoreEvent::Reply`] (or [`CoreEvent::Timeout`]) for the returned id,
    /// again for every rejoin.
    pub fn join(
        &mut self,
        channel: ChannelId,
        timeout: Option<u64>,
        now: Timestamp,
    ) -> Result<PushId, JoinError> {
        let state = self
            .channel_state(channel)
            .ok_or(JoinError::UnknownChannel)?;
        if state != ChannelState::Closed {
            return Err(JoinError::AlreadyJoined);
        }
        let id = PushId(self.next_id());
        if let Some(ch) = self.channels.get_mut(&channel) {
            if let Some(timeout) = timeout {
                ch.timeout = timeout;
            }
            ch.join = Some(JoinPush {
                id,
                join_ref: None,
                deadline: None,
            });
        }
        self.rejoin(channel, StateCause::Join, now);
        Ok(id)
    }

    /// Replaces the params the channel's next join and every later rejoin carry; a join already
    /// made keeps the params it was made with.
    pub fn set_channel_params(
        &mut self,
        channel: ChannelId,
        params: H::Params,
    ) -> Result<(), JoinError> {
        let ch = self
            .channels
            .get_mut(&channel)
            .ok_or(JoinError::UnknownChannel)?;
        ch.params = params;
        Ok(())
    }

    /// Whether [`handle_timeout`](Self::handle_timeout) at `now` rejoins the channel: it is
    /// errored, the connection is open and its rejoin timer is due. (On
    /// [`handle_open`](Self::handle_open) every errored channel rejoins.)
    pub fn rejoin_due(&self, channel: ChannelId, now: Timestamp) -> bool {
        self.conn == Conn::Open
            && self.channels.get(&channel).is_some_and(|ch| {
                ch.state == ChannelState::Errored && ch.rejoin.at.is_some_and(|at| at <= now)
            })
    }

    /// Leaves the channel: sends `phx_leave` if the connection is open, and closes the channel at
    /// once, as phoenix.js does; the returned id is acknowledged at once ([`CoreEvent::Left`]).
    /// Replies to pushes sent before the leave are still delivered.
    pub fn leave(&mut self, channel: ChannelId, now: Timestamp) -> Result<PushId, LeaveError> {
        let _ = now;
        let state = self
            .channel_state(channel)
            .ok_or(LeaveError::UnknownChannel)?;
        if state == ChannelState::Closed {
            return Err(LeaveError::NotJoined);
        }
        let id = PushId(self.next_id());
        self.leave_channel(channel, StateCause::Leave);
        self.host.emit(CoreEvent::Left { push: id, channel });
        Ok(id)
    }

    /// Forgets a channel without telling the server (phoenix.js `socket.remove`); its pending
    /// pushes are dropped without events. Returns whether the channel existed.
    pub fn remove_channel(&mut self, channel: ChannelId) -> bool {
        if self.channels.remove(&channel).is_none() {
            return false;
        }
        self.pushes.retain(|_, push| push.channel != channel);
        let pushes = &self.pushes;
        self.push_deadlines
            .retain(|(_, id)| pushes.contains_key(id));
        self.awaiting_reply.retain(|_, id| pushes.contains_key(id));
        true
    }

    /// The channel's state, or `None` if it was removed.
    pub fn channel_state(&self, channel: ChannelId) -> Option<ChannelState> {
        self.channels.get(&channel).map(|c| c.state)
    }

    /// The channel's topic, or `None` if it was removed.
    pub fn channel_topic(&self, channel: ChannelId) -> Option<&H::Topic> {
        self.channels.get(&channel).map(|c| &c.topic)
    }

    /// The channel's join params, or `None` if it was removed.
    pub fn channel_params(&self, channel: ChannelId) -> Option<&H::Params> {
        self.channels.get(&channel).map(|c| &c.params)
    }

    /// The ref of the channel's current join, if one is out or accepted.
    pub fn join_ref(&self, channel: ChannelId) -> Option<Ref> {
        self.channels.get(&channel).and_then(Channel::join_ref)
    }

    // --- internals ----------------------------------------------------------------------------

    fn set_state(
        &mut self,
        channel: ChannelId,
        state: ChannelState,
        cause: StateCause<H::Message>,
    ) {
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        if ch.state != state {
            ch.state = state;
            self.host.emit(CoreEvent::ChannelState {
                channel,
                state,
                cause,
            });
        }
    }

    /// Sends the join again with a fresh ref (phoenix.js `rejoin`), first leaving any other
    /// channel of the same topic that is joined or joining (phoenix.js `leaveOpenTopic`).
    fn rejoin(&mut self, channel: ChannelId, cause: StateCause<H::Message>, now: Timestamp) {
        if !self.channels.contains_key(&channel) {
            return;
        }
        let mut i = 0;
        while let Some((id, c)) = self.channels.at(i) {
            i += 1;
            let duplicate = id != channel
                && matches!(c.state, ChannelState::Joined | ChannelState::Joining)
                && self
                    .channels
                    .get(&channel)
                    .is_some_and(|ch| ch.topic == c.topic);
            if duplicate {
                self.leave_channel(id, StateCause::Replaced);
            }
        }
        let join_ref = self.make_ref();
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        let Some(join) = &mut ch.join else { return };
        join.join_ref = Some(join_ref);
        join.deadline = Some(now.deadline(ch.timeout));
        let params = ch.params.clone();
        self.set_state(channel, ChannelState::Joining, cause);
        self.socket_push(Buffered::Join {
            channel,
            join_ref,
            params,
        });
    }

    /// Sends `phx_leave` for the current join and closes the channel (phoenix.js `leave`, whose
    /// leave push is acknowledged locally at once).
    fn leave_channel(&mut self, channel: ChannelId, cause: StateCause<H::Message>) {
        let msg_ref = self.make_ref();
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        ch.rejoin = Retry::default();
        ch.cancel_join_timeout();
        let join_ref = ch.join_ref();
        self.socket_push(Buffered::Leave {
            channel,
            join_ref,
            msg_ref,
        });
        self.set_state(channel, ChannelState::Closed, cause);
    }

    fn schedule_rejoin(&mut self, channel: ChannelId, now: Timestamp) {
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        let base = self
            .config
            .rejoin_after
            .delay(ch.rejoin.tries.saturating_add(1));
        ch.rejoin.at = Some(now.deadline(self.jitter.apply(base, self.config.jitter)));
    }

    /// The connection stopped being open: every joined or joining channel errors, to rejoin when
    /// it reopens (phoenix.js `triggerChanError`); no rejoin timer runs while it is down.
    pub(super) fn error_channels(&mut self) {
        let mut i = 0;
        while let Some((id, _)) = self.channels.at(i) {
            i += 1;
            let Some(ch) = self.channels.get_mut(&id) else {
                continue;
            };
            ch.rejoin = Retry::default();
            match ch.state {
                ChannelState::Joining => ch.reset_join(),
                ChannelState::Joined => {}
                ChannelState::Closed | ChannelState::Errored => continue,
            }
            self.set_state(id, ChannelState::Errored, StateCause::ConnectionLost);
        }
    }

    /// The connection opened: errored channels rejoin (phoenix.js channel `onOpen` callback).
    pub(super) fn on_socket_open(&mut self, channel: ChannelId, now: Timestamp) {
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        ch.rejoin = Retry::default();
        if ch.state == ChannelState::Errored {
            self.rejoin(channel, StateCause::Rejoin, now);
        }
    }

    pub(super) fn fire_rejoin(&mut self, channel: ChannelId, now: Timestamp) {
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        ch.rejoin.at = None;
        ch.rejoin.tries = ch.rejoin.tries.saturating_add(1);
        if self.conn == Conn::Open && ch.state == ChannelState::Errored {
            self.rejoin(channel, StateCause::Rejoin, now);
        }
    }

    /// The join got no reply in time: tell the server to drop it, error, and rejoin later.
    pub(super) fn fire_join_timeout(&mut self, channel: ChannelId, now: Timestamp) {
        let msg_ref = self.make_ref();
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        let Some(join) = &mut ch.join else { return };
        join.deadline = None;
        let push = join.id;
        let join_ref = join.join_ref;
        self.socket_push(Buffered::Leave {
            channel,
            join_ref,
            msg_ref,
        });
        if let Some(ch) = self.channels.get_mut(&channel) {
            ch.reset_join();
        }
        self.set_state(channel, ChannelState::Errored, StateCause::JoinTimeout);
        if self.conn == Conn::Open {
            self.schedule_rejoin(channel, now);
        }
        self.host.emit(CoreEvent::Timeout { push, channel });
    }

    /// Routes a reply to the join or push it answers, by `ref`.
    pub(super) fn route_reply(
        &mut self,
        topic: &H::Topic,
        join_ref: Option<Ref>,
        msg_ref: Ref,
        ok: bool,
        msg: H::Message,
        now: Timestamp,
    ) {
        let joining = self
            .channels
            .iter()
            .find(|(_, c)| {
                c.state == ChannelState::Joining
                    && c.topic == *topic
                    && c.join_ref() == Some(msg_ref)
                    && join_ref.is_none_or(|r| r == msg_ref)
            })
            .map(|(id, _)| *id);
        match joining {
            Some(channel) => self.on_join_reply(channel, ok, msg, now),
            None => self.on_push_reply(topic, join_ref, msg_ref, ok, msg),
        }
    }

    fn on_join_reply(&mut self, channel: ChannelId, ok: bool, msg: H::Message, now: Timestamp) {
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        ch.cancel_join_timeout();
        let Some(push) = ch.join.as_ref().map(|j| j.id) else {
            return;
        };
        if ok {
            ch.rejoin = Retry::default();
            self.unauthorized = false;
            self.set_state(channel, ChannelState::Joined, StateCause::JoinOk);
            self.flush_channel_buffer(channel, now);
        } else {
            // Any status but ok refuses the join (phoenix.js would stay joining forever on a
            // status other than ok or error).
            self.set_state(channel, ChannelState::Errored, StateCause::JoinRefused);
            if self.conn == Conn::Open {
                self.schedule_rejoin(channel, now);
            }
        }
        self.host.emit(CoreEvent::Reply {
            push,
            channel,
            ok,
            msg,
        });
    }

    /// Routes an event to every channel it is for.
    pub(super) fn route_event(
        &mut self,
        topic: &H::Topic,
        join_ref: Option<Ref>,
        routed: Routed,
        msg: H::Message,
        now: Timestamp,
    ) {
        let mut i = 0;
        while let Some((channel, c)) = self.channels.at(i) {
            i += 1;
            if !c.is_member(topic, join_ref) {
                continue;
            }
            let msg = msg.clone();
            match routed {
                Routed::Error => self.on_server_error(channel, msg, now),
                Routed::Close => self.on_server_close(channel, msg),
                Routed::Message => self.host.emit(CoreEvent::Message { channel, msg }),
            }
        }
    }

    /// `phx_error`: the channel process crashed; rejoin after the backoff.
    fn on_server_error(&mut self, channel: ChannelId, msg: H::Message, now: Timestamp) {
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        if ch.state == ChannelState::Joining {
            ch.reset_join();
        }
        self.set_state(channel, ChannelState::Errored, StateCause::ServerError(msg));
        if self.conn == Conn::Open {
            self.schedule_rejoin(channel, now);
        }
    }

    /// `phx_close`: the server ended the channel (after a leave, or a duplicate join elsewhere).
    fn on_server_close(&mut self, channel: ChannelId, msg: H::Message) {
        let Some(ch) = self.channels.get_mut(&channel) else {
            return;
        };
        ch.rejoin = Retry::default();
        ch.cancel_join_timeout();
        self.set_state(channel, ChannelState::Closed, StateCause::ServerClose(msg));
    }
}
