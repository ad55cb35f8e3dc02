//! The session: the connection's life (connect, open, close, reconnect, heartbeats), the timers,
//! and the entry points a driver calls. Channels and pushes are in `channel.rs` and `push.rs`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use bytes::Bytes;

use super::backoff::Jitter;
use super::channel::Channel;
use super::map::VecMap;
use super::push::{Outgoing, Push};
use super::{Action, ChannelId, ClientConfig, ConnectionState, Event, PushId, Timestamp};
use crate::{Body, DecodeError, Direction, Frame, Payload, Wire, event};

/// A Phoenix Channels client as a state machine: feed it user intents, transport events and the
/// time; take frames to send, actions for the driver, events for the application.
///
/// See the [module documentation](super) for the driving loop and an example.
#[derive(Debug)]
pub struct Session {
    pub(super) config: ClientConfig,
    pub(super) jitter: Jitter,
    /// The last wire `ref` handed out (phoenix.js `socket.ref`); refs are its decimal successors.
    last_ref: u64,
    /// Source of `ChannelId`s and `PushId`s.
    last_id: u64,
    pub(super) conn: Conn,
    /// The user wants a connection: set by `connect`, cleared by `disconnect` (phoenix.js
    /// `!closeWasClean`). Lost connections are re-established only while it is set.
    wants_connection: bool,
    /// The page is hidden: a reconnect that comes due waits for it to be shown again.
    hidden: bool,
    /// Reconnect attempts since the last open (phoenix.js `reconnectTimer.tries`).
    reconnect_tries: u32,
    heartbeat: Heartbeat,
    /// Frames made while the connection was not open, sent in order when it opens (phoenix.js
    /// `socket.sendBuffer`): joins and leaves. Channel pushes wait in their channel instead.
    pub(super) send_buffer: Vec<Outgoing>,
    pub(super) channels: VecMap<ChannelId, Channel>,
    /// Channel pushes not yet answered, buffered or sent.
    pub(super) pushes: VecMap<PushId, Push>,
    /// The pushes' deadlines, earliest on top, so that `poll_timeout` need not look at every push.
    /// Entries of pushes since answered or restarted are left in place, but never on top: every
    /// change to `pushes` calls [`prune_push_deadlines`](Self::prune_push_deadlines).
    pub(super) push_deadlines: BinaryHeap<Reverse<(Timestamp, PushId)>>,
    /// The `ref` each sent push went out with, for routing its reply.
    pub(super) awaiting_reply: VecMap<String, PushId>,
    pub(super) transmits: VecDeque<Wire>,
    actions: VecDeque<Action>,
    pub(super) events: VecDeque<Event>,
}

/// The connection as the session sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Conn {
    /// No transport and none scheduled.
    Closed,
    /// Waiting for the reconnect backoff to elapse.
    Reconnecting { at: Timestamp },
    /// `Action::Connect` emitted; `on_visibility` when that was because the page was shown again
    /// (a second visibility signal while it connects must not start yet another one).
    Connecting { on_visibility: bool },
    /// Open.
    Open,
}

/// Heartbeats: the next one to send, or the one waiting for its reply.
#[derive(Debug)]
enum Heartbeat {
    Off,
    Next(Timestamp),
    Pending {
        msg_ref: String,
        deadline: Timestamp,
    },
}

/// Every kind of deadline; the derived order breaks ties between deadlines at the same instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Heartbeat,
    Reconnect,
    Rejoin(ChannelId),
    Join(ChannelId),
    Push(PushId),
}

impl Session {
    /// A session that is not connected; call [`connect`](Self::connect) to start.
    pub fn new(config: ClientConfig) -> Self {
        Session {
            jitter: Jitter::new(config.seed),
            config,
            last_ref: 0,
            last_id: 0,
            conn: Conn::Closed,
            wants_connection: false,
            hidden: false,
            reconnect_tries: 0,
            heartbeat: Heartbeat::Off,
            send_buffer: Vec::new(),
            channels: VecMap::default(),
            pushes: VecMap::default(),
            push_deadlines: BinaryHeap::new(),
            awaiting_reply: VecMap::default(),
            transmits: VecDeque::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
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
        let _ = now;
        if self.conn == Conn::Closed {
            self.transport_connect(false);
        }
    }

    /// Disconnects for good: closes the transport ([`Action::Close`] with `code`, `None` for the
    /// transport's default) and stops reconnecting until [`connect`](Self::connect) is called.
    ///
    /// Joined channels become errored and rejoin when the session connects again; frames already
    /// in `poll_transmit` (a last push or leave) are still to be sent before the close.
    pub fn disconnect(&mut self, now: Timestamp, code: Option<u16>) {
        let _ = now;
        self.wants_connection = false;
        self.reconnect_tries = 0;
        match self.conn {
            Conn::Open | Conn::Connecting { .. } => self.teardown(code, String::new(), false),
            Conn::Reconnecting { .. } => self.conn = Conn::Closed,
            Conn::Closed => {}
        }
    }

    /// The page became visible (`true`) or hidden (`false`).
    ///
    /// Browsers throttle timers in hidden tabs, so a connection lost meanwhile may be waiting out a
    /// long backoff, or a reconnect came due while hidden and waits for this: when the page is shown
    /// again and the session should be connected but is not, it reconnects at once with a fresh
    /// backoff, abandoning a connection attempt that is still pending (phoenix.js
    /// `handleVisibilityChange`).
    pub fn handle_visibility(&mut self, visible: bool, now: Timestamp) {
        let _ = now;
        if !visible {
            self.hidden = true;
            if let Conn::Connecting { on_visibility } = &mut self.conn {
                *on_visibility = false;
            }
            return;
        }
        self.hidden = false;
        if !self.wants_connection {
            return;
        }
        match self.conn {
            Conn::Open
            | Conn::Connecting {
                on_visibility: true,
            } => {}
            Conn::Connecting {
                on_visibility: false,
            } => {
                self.reconnect_tries = 0;
                self.teardown(None, String::new(), true);
                self.transport_connect(true);
            }
            Conn::Closed | Conn::Reconnecting { .. } => {
                self.reconnect_tries = 0;
                self.transport_connect(true);
            }
        }
    }

    // --- transport events ---------------------------------------------------------------------

    /// The transport opened: sends what was buffered, starts heartbeats, rejoins errored channels.
    pub fn handle_open(&mut self, now: Timestamp) {
        if !matches!(self.conn, Conn::Connecting { .. }) {
            return;
        }
        self.conn = Conn::Open;
        self.flush_send_buffer();
        self.reconnect_tries = 0;
        self.reset_heartbeat(now);
        self.events.push_back(Event::Open);
        let ids: Vec<ChannelId> = self.channels.keys().copied().collect();
        for id in ids {
            self.on_socket_open(id, now);
        }
    }

    /// The transport closed (`code` as reported, if any): errors the channels and schedules a
    /// reconnect. Every close the session did not ask for is reconnected, whatever its code (as
    /// phoenix.js 1.8 does, since servers and proxies close with 1000 too).
    pub fn handle_close(&mut self, now: Timestamp, code: Option<u16>) {
        if !matches!(self.conn, Conn::Connecting { .. } | Conn::Open) {
            return;
        }
        self.heartbeat = Heartbeat::Off;
        // Frames not yet taken were meant for this transport; they cannot be sent any more.
        self.transmits.clear();
        self.error_channels();
        self.conn = Conn::Closed;
        if self.wants_connection {
            self.schedule_reconnect(now);
        }
        self.events.push_back(Event::Close { code });
    }

    /// The transport reported an error: errors the channels. The transport's close, which
    /// normally follows, schedules the reconnect.
    pub fn handle_error(&mut self, now: Timestamp) {
        let _ = now;
        if !matches!(self.conn, Conn::Connecting { .. } | Conn::Open) {
            return;
        }
        self.events.push_back(Event::Error);
        self.error_channels();
    }

    /// A text message arrived. A message that does not decode is dropped and its error returned,
    /// for the driver to log; the session is unaffected.
    pub fn handle_text(&mut self, now: Timestamp, text: &str) -> Result<(), DecodeError> {
        if self.conn != Conn::Open {
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
        if self.conn != Conn::Open {
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
        if self.conn != Conn::Open {
            return;
        }
        let answers_heartbeat = match (&self.heartbeat, frame.msg_ref.as_deref()) {
            (Heartbeat::Pending { msg_ref, .. }, Some(got)) => msg_ref == got,
            _ => false,
        };
        if answers_heartbeat {
            self.reset_heartbeat(now);
        }
        let Frame {
            join_ref,
            msg_ref,
            topic,
            body,
        } = frame;
        let join_ref = join_ref.filter(|r| !r.is_empty());
        match body {
            Body::Reply { status, response } => {
                if let Some(msg_ref) = msg_ref.filter(|r| !r.is_empty()) {
                    let reply = Reply {
                        topic: &topic,
                        join_ref: join_ref.as_deref(),
                        msg_ref: &msg_ref,
                        status,
                        response,
                    };
                    self.route_reply(reply, now);
                }
            }
            Body::Event { event, payload } => {
                self.route_event(&topic, join_ref.as_deref(), event, payload, now);
            }
        }
    }

    /// Fires every deadline at or before `now`, earliest first. Call it when
    /// [`poll_timeout`](Self::poll_timeout) comes due; calling it early or twice is harmless.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        // Sorted by insertion rather than with `sort_unstable`, whose code was 5 KB of the
        // browser package: the socket timers are a handful, and the push deadlines come off
        // the heap in order, so each lands at or near the end.
        let mut due: Vec<(Timestamp, Timer)> = Vec::new();
        let mut insert = |item: (Timestamp, Timer)| {
            let at = due.partition_point(|earlier| *earlier <= item);
            due.insert(at, item);
        };
        for item in self.timers().filter(|(at, _)| *at <= now) {
            insert(item);
        }
        // Due push deadlines leave the heap here: each is fired below, or is outdated and then
        // the push has no deadline any more, or a later one with its own entry.
        while let Some(&Reverse((at, id))) = self.push_deadlines.peek() {
            if at > now {
                break;
            }
            self.push_deadlines.pop();
            insert((at, Timer::Push(id)));
        }
        for (at, timer) in due {
            // An earlier timer may have cancelled or moved this one.
            if self.deadline(timer) == Some(at) {
                self.fire(timer, now);
            }
        }
    }

    // --- outputs ------------------------------------------------------------------------------

    /// The next message to send on the current transport, in order.
    pub fn poll_transmit(&mut self) -> Option<Wire> {
        self.transmits.pop_front()
    }

    /// The next thing the driver must do with the transport.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next: the earliest deadline, if any.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let push = self.push_deadlines.peek().map(|Reverse((at, _))| *at);
        self.timers().map(|(at, _)| at).chain(push).min()
    }

    /// The state of the connection.
    pub fn connection_state(&self) -> ConnectionState {
        match self.conn {
            Conn::Closed => ConnectionState::Closed,
            Conn::Reconnecting { .. } => ConnectionState::Reconnecting,
            Conn::Connecting { .. } => ConnectionState::Connecting,
            Conn::Open => ConnectionState::Open,
        }
    }

    /// Whether the transport is open.
    pub fn is_connected(&self) -> bool {
        self.conn == Conn::Open
    }

    // --- internals ----------------------------------------------------------------------------

    /// The next wire `ref` (phoenix.js `makeRef`).
    pub(super) fn make_ref(&mut self) -> String {
        self.last_ref = self.last_ref.wrapping_add(1);
        decimal(self.last_ref)
    }

    /// The next channel or push id.
    pub(super) fn next_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    fn transport_connect(&mut self, on_visibility: bool) {
        self.wants_connection = true;
        self.conn = Conn::Connecting { on_visibility };
        self.actions.push_back(Action::Connect);
    }

    /// Lets go of the current transport: asks the driver to close it, errors the channels if it
    /// was open, and reports the close. `drop_queued` discards frames not yet taken (the
    /// connection is presumed dead); a user's disconnect keeps them so a last leave still goes out.
    fn teardown(&mut self, code: Option<u16>, reason: String, drop_queued: bool) {
        let was_open = self.conn == Conn::Open;
        self.heartbeat = Heartbeat::Off;
        if drop_queued {
            self.transmits.clear();
        }
        self.actions.push_back(Action::Close { code, reason });
        self.conn = Conn::Closed;
        if was_open {
            self.error_channels();
        }
        self.events.push_back(Event::Close { code });
    }

    fn schedule_reconnect(&mut self, now: Timestamp) {
        let base = self
            .config
            .reconnect_after
            .delay(self.reconnect_tries.saturating_add(1));
        let delay = self.jitter.apply(base, self.config.jitter);
        self.conn = Conn::Reconnecting { at: now + delay };
    }

    fn reset_heartbeat(&mut self, now: Timestamp) {
        self.heartbeat = match self.config.heartbeat_interval {
            Some(interval) => Heartbeat::Next(now + interval),
            None => Heartbeat::Off,
        };
    }

    fn send_heartbeat(&mut self, now: Timestamp) {
        let Some(interval) = self.config.heartbeat_interval else {
            self.heartbeat = Heartbeat::Off;
            return;
        };
        if self.conn != Conn::Open {
            self.heartbeat = Heartbeat::Off;
            return;
        }
        let msg_ref = self.make_ref();
        let frame = Frame::message(
            None,
            Some(msg_ref.clone()),
            event::PHOENIX_TOPIC,
            event::HEARTBEAT,
            Payload::empty(),
        );
        self.socket_push(frame, None);
        self.heartbeat = Heartbeat::Pending {
            msg_ref,
            deadline: now + interval,
        };
    }

    /// A heartbeat got no reply by the next tick: the connection is presumed dead.
    fn heartbeat_timeout(&mut self, now: Timestamp) {
        self.teardown(Some(1000), "heartbeat timeout".to_owned(), true);
        self.schedule_reconnect(now);
    }

    fn fire_reconnect(&mut self) {
        self.reconnect_tries = self.reconnect_tries.saturating_add(1);
        if self.hidden {
            // Wait for `handle_visibility(true)`; `wants_connection` stays set.
            self.conn = Conn::Closed;
        } else {
            self.transport_connect(false);
        }
    }

    /// The timers but the pushes' (those are in `push_deadlines`).
    fn timers(&self) -> impl Iterator<Item = (Timestamp, Timer)> + '_ {
        let heartbeat = match &self.heartbeat {
            Heartbeat::Off => None,
            Heartbeat::Next(at) => Some((*at, Timer::Heartbeat)),
            Heartbeat::Pending { deadline, .. } => Some((*deadline, Timer::Heartbeat)),
        };
        let reconnect = match self.conn {
            Conn::Reconnecting { at } => Some((at, Timer::Reconnect)),
            _ => None,
        };
        let channels = self.channels.iter().flat_map(|(id, channel)| {
            let rejoin = channel.rejoin.at.map(|at| (at, Timer::Rejoin(*id)));
            let join = channel.join_deadline().map(|at| (at, Timer::Join(*id)));
            rejoin.into_iter().chain(join)
        });
        heartbeat.into_iter().chain(reconnect).chain(channels)
    }

    /// Drops the outdated entries from the top of `push_deadlines` (and rebuilds it when outdated
    /// entries make up most of it), so that its top is the earliest push deadline.
    pub(super) fn prune_push_deadlines(&mut self) {
        if self.push_deadlines.len() > 2 * self.pushes.len() + 32 {
            self.push_deadlines = self
                .pushes
                .iter()
                .map(|(id, push)| Reverse((push.deadline, *id)))
                .collect();
            return;
        }
        while let Some(&Reverse((at, id))) = self.push_deadlines.peek() {
            if self.pushes.get(&id).is_some_and(|p| p.deadline == at) {
                break;
            }
            self.push_deadlines.pop();
        }
    }

    fn deadline(&self, timer: Timer) -> Option<Timestamp> {
        match timer {
            Timer::Heartbeat => match &self.heartbeat {
                Heartbeat::Off => None,
                Heartbeat::Next(at) => Some(*at),
                Heartbeat::Pending { deadline, .. } => Some(*deadline),
            },
            Timer::Reconnect => match self.conn {
                Conn::Reconnecting { at } => Some(at),
                _ => None,
            },
            Timer::Rejoin(id) => self.channels.get(&id).and_then(|c| c.rejoin.at),
            Timer::Join(id) => self.channels.get(&id).and_then(Channel::join_deadline),
            Timer::Push(id) => self.pushes.get(&id).map(|p| p.deadline),
        }
    }

    fn fire(&mut self, timer: Timer, now: Timestamp) {
        match timer {
            Timer::Heartbeat => match self.heartbeat {
                Heartbeat::Off => {}
                Heartbeat::Next(_) => self.send_heartbeat(now),
                Heartbeat::Pending { .. } => self.heartbeat_timeout(now),
            },
            Timer::Reconnect => self.fire_reconnect(),
            Timer::Rejoin(id) => self.fire_rejoin(id, now),
            Timer::Join(id) => self.fire_join_timeout(id, now),
            Timer::Push(id) => self.fire_push_timeout(id),
        }
    }
}

/// `n` in decimal, as `n.to_string()` writes it: by hand, since `to_string` goes through
/// `core::fmt`, which the browser module then carries for the refs alone.
pub(super) fn decimal(mut n: u64) -> String {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        // `n % 10` is below 10: the cast keeps every bit.
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    digits[start..].iter().copied().map(char::from).collect()
}

/// A reply on its way to the join or push it answers.
#[derive(Debug)]
pub(super) struct Reply<'a> {
    pub(super) topic: &'a str,
    pub(super) join_ref: Option<&'a str>,
    pub(super) msg_ref: &'a str,
    pub(super) status: String,
    pub(super) response: Payload,
}

#[cfg(test)]
mod tests {
    use super::decimal;

    #[test]
    fn decimal_writes_what_to_string_writes() {
        for n in (0..=1000).chain([4_294_967_296, u64::MAX - 1, u64::MAX]) {
            assert_eq!(decimal(n), n.to_string());
        }
    }
}
