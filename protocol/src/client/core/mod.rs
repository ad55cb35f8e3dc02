//! The core: phoenix.js's `Socket`, `Channel`, `Push` and `Timer` as a state machine over a
//! [`Host`], which does the I/O and owns the wire format (`host.rs` says what each side keeps).
//! This file has the connection's life (connect, open, close, reconnect, heartbeats), the timers
//! and the entry points; channels and pushes are in `channel.rs` and `push.rs`.
//!
//! Refs and ids are integers, and nothing here formats, parses or allocates strings, so the
//! browser package carries only the decisions; the native [`Session`](super::Session) is this
//! core with a host that speaks the protocol's serializers.
//!
//! Close codes that refuse the socket are decided here, in `handle_close`:
//!
//! | close code | what the core does |
//! |---|---|
//! | 4003 (forbidden) | stops reconnecting until `connect`: [`CoreEvent::Refused`], then the close |
//! | 4001 (unauthorized, token expired) | reconnects at once (the host evaluates the token afresh); a second 4001 before a channel joined or a heartbeat was answered refuses, as 4003 |
//! | any other | reconnects after the backoff |
//!
//! Going offline ([`handle_online`](Core::handle_online)) closes the transport at once and holds
//! reconnects until online, as a hidden page holds them until shown.
//!
//! Resuming a history channel (its last position, `since` on every rejoin, dropping what it had)
//! is the hosts': positions are strings on the wire, which the core never sees, and the browser
//! package keeps them in JavaScript beside the payloads at less cost than a round trip through
//! the core. [`Session`](super::Session)'s host does the same for native clients.

mod channel;
mod push;

use super::backoff::Jitter;
use super::host::{CloseReason, CoreEvent, Host, InBody, Incoming, Outgoing, Ref};
use super::map::VecMap;
use super::{ChannelId, ConnectionState, CoreConfig, PushId, Timestamp};
use channel::Channel;
use push::{Buffered, Push};

/// A Phoenix Channels client as a state machine: feed it user intents, transport events and the
/// time; it calls its [`Host`] to send frames, open and close transports and tell the
/// application. [`poll_timeout`](Self::poll_timeout) says when to call
/// [`handle_timeout`](Self::handle_timeout).
///
/// The semantics are those documented on the [module](super).
#[derive(Debug)]
pub struct Core<H: Host> {
    host: H,
    config: CoreConfig,
    jitter: Jitter,
    /// The last wire `ref` handed out (phoenix.js `socket.ref`).
    last_ref: Ref,
    /// Source of `ChannelId`s and `PushId`s.
    last_id: u64,
    conn: Conn,
    /// The user wants a connection: set by `connect`, cleared by `disconnect` (phoenix.js
    /// `!closeWasClean`). Lost connections are re-established only while it is set.
    wants_connection: bool,
    /// The page is hidden: a reconnect that comes due waits for it to be shown again.
    hidden: bool,
    /// The network is down (`handle_online(false)`): reconnects wait for it to come back.
    offline: bool,
    /// A 4001 close was answered with an immediate reconnect; another before the connection
    /// proved itself (a channel joined, a heartbeat answered) refuses.
    unauthorized: bool,
    /// Reconnect attempts since the last open (phoenix.js `reconnectTimer.tries`).
    reconnect_tries: u32,
    heartbeat: Heartbeat,
    /// Joins and leaves made while the connection was not open, sent in order when it opens
    /// (phoenix.js `socket.sendBuffer`). Channel pushes wait in their channel instead.
    send_buffer: Vec<Buffered<H::Params>>,
    channels: VecMap<ChannelId, Channel<H>>,
    /// Channel pushes not yet answered, buffered or sent.
    pushes: VecMap<PushId, Push<H::Push>>,
    /// `(deadline, id)` of every push in `pushes`, in order, so that `poll_timeout` need not
    /// look at every push. Kept exact: entries are added and removed with their pushes
    /// ([`set_push_deadline`](Self::set_push_deadline), [`drop_push`](Self::drop_push)). A sorted
    /// `Vec`: pushes are mostly added with the latest deadline (at its end) and time out or are
    /// answered in order (near its start).
    push_deadlines: Vec<(Timestamp, PushId)>,
    /// The `ref` each sent push went out with, for routing its reply.
    awaiting_reply: VecMap<Ref, PushId>,
}

/// The connection as the core sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conn {
    /// No transport and none scheduled.
    Closed,
    /// Waiting for the reconnect backoff to elapse.
    Reconnecting { at: Timestamp },
    /// The host was asked to connect; `on_visibility` when that was because the page was shown
    /// again (a second visibility signal while it connects must not start yet another one).
    Connecting { on_visibility: bool },
    /// Open.
    Open,
}

/// Heartbeats: the next one to send, or the one waiting for its reply.
#[derive(Debug)]
enum Heartbeat {
    Off,
    Next(Timestamp),
    Pending { msg_ref: Ref, deadline: Timestamp },
}

/// Every kind of deadline, in the order that breaks ties between deadlines at the same instant
/// (by channel or push id within a kind).
#[derive(Debug, Clone, Copy)]
enum Timer {
    Heartbeat,
    Reconnect,
    Rejoin(ChannelId),
    Join(ChannelId),
    Push(PushId),
}

impl<H: Host> Core<H> {
    /// A core that is not connected; call [`connect`](Self::connect) to start.
    pub fn new(config: CoreConfig, host: H) -> Self {
        Core {
            host,
            jitter: Jitter::new(config.seed),
            config,
            last_ref: 0,
            last_id: 0,
            conn: Conn::Closed,
            wants_connection: false,
            hidden: false,
            offline: false,
            unauthorized: false,
            reconnect_tries: 0,
            heartbeat: Heartbeat::Off,
            send_buffer: Vec::new(),
            channels: VecMap::default(),
            pushes: VecMap::default(),
            push_deadlines: Vec::new(),
            awaiting_reply: VecMap::default(),
        }
    }

    /// The host.
    pub fn host(&self) -> &H {
        &self.host
    }

    /// The host, to take what it queued.
    pub fn host_mut(&mut self) -> &mut H {
        &mut self.host
    }

    // --- user intents -------------------------------------------------------------------------

    /// Connects: asks the host to connect. Does nothing while a connection is open, opening, or
    /// scheduled to reconnect (phoenix.js keeps the connection it has).
    pub fn connect(&mut self, now: Timestamp) {
        let _ = now;
        if self.conn == Conn::Closed {
            self.unauthorized = false;
            self.transport_connect(false);
        }
    }

    /// Disconnects for good: closes the transport with `code` and stops reconnecting until
    /// [`connect`](Self::connect). Joined channels become errored and rejoin on the next connect.
    pub fn disconnect(&mut self, now: Timestamp, code: Option<u16>) {
        let _ = now;
        self.wants_connection = false;
        self.reconnect_tries = 0;
        match self.conn {
            Conn::Open | Conn::Connecting { .. } => {
                self.teardown(code, code, CloseReason::Disconnect)
            }
            Conn::Reconnecting { .. } => self.conn = Conn::Closed,
            Conn::Closed => {}
        }
    }

    /// The page became visible (`true`) or hidden (`false`): when it is shown again and the
    /// session should be connected but is not, it reconnects at once with a fresh backoff,
    /// abandoning a connection attempt that is still pending (phoenix.js
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
        if !self.wants_connection || self.offline {
            return;
        }
        match self.conn {
            // A connection that slept with the page may be dead: a heartbeat finds out now
            // rather than at the next tick.
            Conn::Open => {
                if let Heartbeat::Next(_) = self.heartbeat {
                    self.send_heartbeat(now);
                }
            }
            Conn::Connecting {
                on_visibility: true,
            } => {}
            Conn::Connecting {
                on_visibility: false,
            } => {
                self.reconnect_tries = 0;
                self.teardown(None, None, CloseReason::Visibility);
                self.transport_connect(true);
            }
            Conn::Closed | Conn::Reconnecting { .. } => {
                self.reconnect_tries = 0;
                self.transport_connect(true);
            }
        }
    }

    /// The network went down (`false`, the browser's `offline` event) or came back (`true`,
    /// `online`): offline closes the transport at once (reported as a close with 1006) and
    /// holds reconnects; online reconnects at once with a fresh backoff if the session should
    /// be connected.
    pub fn handle_online(&mut self, online: bool, now: Timestamp) {
        let _ = now;
        self.offline = !online;
        if !online {
            match self.conn {
                Conn::Open | Conn::Connecting { .. } => {
                    self.teardown(None, Some(1006), CloseReason::Offline)
                }
                Conn::Reconnecting { .. } => self.conn = Conn::Closed,
                Conn::Closed => {}
            }
        } else if self.wants_connection && !self.transport_active() {
            self.reconnect_tries = 0;
            self.transport_connect(false);
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
        self.host.emit(CoreEvent::Open);
        let mut i = 0;
        while let Some((id, _)) = self.channels.at(i) {
            i += 1;
            self.on_socket_open(id, now);
        }
    }

    /// The transport closed (`code` as reported, if any): errors the channels and schedules a
    /// reconnect. Every close the core did not ask for is reconnected, whatever its code (as
    /// phoenix.js 1.8 does, since servers and proxies close with 1000 too), but for the refusals
    /// of the module-doc table.
    pub fn handle_close(&mut self, now: Timestamp, code: Option<u16>) {
        if !self.transport_active() {
            return;
        }
        self.heartbeat = Heartbeat::Off;
        self.error_channels();
        self.conn = Conn::Closed;
        match code {
            Some(refusal @ (UNAUTHORIZED | FORBIDDEN))
                if refusal == FORBIDDEN || std::mem::replace(&mut self.unauthorized, true) =>
            {
                self.wants_connection = false;
                self.reconnect_tries = 0;
                self.host.emit(CoreEvent::Refused { code: refusal });
            }
            // At once, with the token the host evaluates afresh.
            Some(UNAUTHORIZED) if self.wants_connection => {
                self.conn = Conn::Reconnecting { at: now };
            }
            _ if self.wants_connection => self.schedule_reconnect(now),
            _ => {}
        }
        self.host.emit(CoreEvent::Close { code });
    }

    /// The transport reported an error: errors the channels. The transport's close, which
    /// normally follows, schedules the reconnect.
    pub fn handle_error(&mut self, now: Timestamp) {
        let _ = now;
        if !self.transport_active() {
            return;
        }
        self.host.emit(CoreEvent::Error);
        self.error_channels();
    }

    /// A frame arrived and was decoded by the host. Ignored unless the connection is open.
    pub fn handle_frame(&mut self, now: Timestamp, frame: Incoming<H::Topic, H::Message>) {
        if self.conn != Conn::Open {
            return;
        }
        if let (Heartbeat::Pending { msg_ref, .. }, Some(got)) = (&self.heartbeat, frame.msg_ref)
            && *msg_ref == got
        {
            self.unauthorized = false;
            self.reset_heartbeat(now);
        }
        let Incoming {
            join_ref,
            msg_ref,
            topic,
            body,
        } = frame;
        match body {
            InBody::Reply { ok, msg } => {
                if let Some(msg_ref) = msg_ref {
                    self.route_reply(&topic, join_ref, msg_ref, ok, msg, now);
                }
            }
            InBody::Error(msg) => self.route_event(&topic, join_ref, Routed::Error, msg, now),
            InBody::Close(msg) => self.route_event(&topic, join_ref, Routed::Close, msg, now),
            InBody::Event(msg) => self.route_event(&topic, join_ref, Routed::Message, msg, now),
        }
    }

    /// Fires every deadline at or before `now`, earliest first. Call it when
    /// [`poll_timeout`](Self::poll_timeout) comes due; calling it early or twice is harmless.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        // One at a time, the earliest looked up afresh: a timer may cancel or move another.
        // Each that fires is cleared or set again later than `now` (`Timestamp::deadline`),
        // so the loop ends.
        while let Some((at, timer)) = self.next_timer()
            && at <= now
        {
            self.fire(timer, now);
        }
    }

    // --- state --------------------------------------------------------------------------------

    /// When to call [`handle_timeout`](Self::handle_timeout) next: the earliest deadline, if any.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.next_timer().map(|(at, _)| at)
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

    /// A transport is open or opening: its events count.
    fn transport_active(&self) -> bool {
        matches!(self.conn, Conn::Connecting { .. } | Conn::Open)
    }

    /// The next wire `ref` (phoenix.js `makeRef`).
    fn make_ref(&mut self) -> Ref {
        self.last_ref = self.last_ref.wrapping_add(1);
        self.last_ref
    }

    /// The next channel or push id.
    fn next_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    fn transport_connect(&mut self, on_visibility: bool) {
        self.wants_connection = true;
        self.conn = Conn::Connecting { on_visibility };
        self.host.connect();
    }

    /// Lets go of the current transport: asks the host to close it with `code`, errors the
    /// channels if it was open, and reports the close with `reported`.
    fn teardown(&mut self, code: Option<u16>, reported: Option<u16>, reason: CloseReason) {
        let was_open = self.conn == Conn::Open;
        self.heartbeat = Heartbeat::Off;
        self.host.close(code, reason);
        self.conn = Conn::Closed;
        if was_open {
            self.error_channels();
        }
        self.host.emit(CoreEvent::Close { code: reported });
    }

    fn schedule_reconnect(&mut self, now: Timestamp) {
        let base = self
            .config
            .reconnect_after
            .delay(self.reconnect_tries.saturating_add(1));
        let delay = self.jitter.apply(base, self.config.jitter);
        self.conn = Conn::Reconnecting {
            at: now.deadline(delay),
        };
    }

    fn reset_heartbeat(&mut self, now: Timestamp) {
        self.heartbeat = match self.config.heartbeat_interval {
            Some(interval) => Heartbeat::Next(now.deadline(interval)),
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
        self.host.send(Outgoing::Heartbeat { msg_ref });
        self.heartbeat = Heartbeat::Pending {
            msg_ref,
            deadline: now.deadline(self.config.heartbeat_timeout.unwrap_or(interval)),
        };
    }

    /// A heartbeat got no reply by the next tick: the connection is presumed dead.
    fn heartbeat_timeout(&mut self, now: Timestamp) {
        self.teardown(Some(1000), Some(1000), CloseReason::HeartbeatTimeout);
        self.schedule_reconnect(now);
    }

    fn fire_reconnect(&mut self) {
        self.reconnect_tries = self.reconnect_tries.saturating_add(1);
        if self.hidden || self.offline {
            // Wait for `handle_visibility(true)` or `handle_online(true)`; `wants_connection`
            // stays set.
            self.conn = Conn::Closed;
        } else {
            self.transport_connect(false);
        }
    }

    /// The earliest deadline, and its timer. Of deadlines at the same instant, the first in
    /// `Timer`'s order: the visits below follow it. Plain loops: iterator adapters chained over
    /// the channels are many times this code in the browser package.
    fn next_timer(&self) -> Option<(Timestamp, Timer)> {
        let mut next: Option<(Timestamp, Timer)> = None;
        let mut offer = |at: Timestamp, timer: Timer| {
            if next.is_none_or(|(earliest, _)| at < earliest) {
                next = Some((at, timer));
            }
        };
        match self.heartbeat {
            Heartbeat::Off => {}
            Heartbeat::Next(at) | Heartbeat::Pending { deadline: at, .. } => {
                offer(at, Timer::Heartbeat)
            }
        }
        if let Conn::Reconnecting { at } = self.conn {
            offer(at, Timer::Reconnect);
        }
        for (id, channel) in self.channels.iter() {
            if let Some(at) = channel.rejoin.at {
                offer(at, Timer::Rejoin(*id));
            }
        }
        for (id, channel) in self.channels.iter() {
            if let Some(at) = channel.join_deadline() {
                offer(at, Timer::Join(*id));
            }
        }
        if let Some(&(at, id)) = self.push_deadlines.first() {
            offer(at, Timer::Push(id));
        }
        next
    }

    /// Sets the deadline of push `id` (in `pushes`), replacing its entry in `push_deadlines`.
    fn set_push_deadline(&mut self, id: PushId, at: Timestamp) {
        let Some(push) = self.pushes.get_mut(&id) else {
            return;
        };
        let old = (push.deadline, id);
        push.deadline = at;
        if let Ok(i) = self.push_deadlines.binary_search(&old) {
            self.push_deadlines.remove(i);
        }
        let i = self.push_deadlines.partition_point(|e| *e < (at, id));
        self.push_deadlines.insert(i, (at, id));
    }

    /// Removes push `id` with its deadline; returns it.
    fn drop_push(&mut self, id: PushId) -> Option<push::Push<H::Push>> {
        let push = self.pushes.remove(&id)?;
        if let Ok(i) = self.push_deadlines.binary_search(&(push.deadline, id)) {
            self.push_deadlines.remove(i);
        }
        Some(push)
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

/// The close code of a server that refuses the credentials (missing, invalid or expired).
const UNAUTHORIZED: u16 = 4001;
/// The close code of a server that refuses a valid identity.
const FORBIDDEN: u16 = 4003;

/// What an event frame does to the channels it reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Routed {
    Error,
    Close,
    Message,
}
