//! The state the handles and the driver share: the [`Session`] and what routes its events to
//! futures and streams.
//!
//! # Locking
//! Everything here sits behind one `std::sync::Mutex` ([`Shared::state`]). Every holder
//! (a handle's method, the driver's `handle_*`, a handle's `Drop`) takes it for a few
//! microseconds of bookkeeping, never across an `.await`, so a blocking mutex is right: no task
//! ever waits on it for long, it works the same on a multi-threaded tokio runtime and on
//! single-threaded wasm, and it needs no runtime. After each call into the session, and before the
//! lock is released, [`State::dispatch`] drains the session's events, so a reply reaches its
//! future however the call was made. Per-subscriber queues have their own mutex (see
//! `stream.rs`), taken under this one but never the other way round.
//!
//! The driver is woken through [`Shared::wake`], a separate small mutex, after the state lock is
//! released.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use alight_protocol::Payload;
use alight_protocol::client::{
    self, ChannelId, ChannelState, ClientConfig, Event, PushId, Session, StateCause, Timestamp,
};
use futures_channel::oneshot;

use super::channel::{Message, Recovery, StateChange};
use super::error::{Cause, ClientJoinError, LeaveError, PushError, SocketError};
use super::socket::{SocketEvent, SocketOptions};
use super::stream::{Hub, Subscription};

/// Locks `mutex`, recovering from poisoning: a panic elsewhere must not take every handle down,
/// and each critical section leaves the state consistent between session calls.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The clock of a socket: the time since an origin the driver picks (see
/// [`Timestamp`]). Called under the state lock, so it must be cheap and must not lock anything.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// What handles and the driver share.
pub(crate) struct Shared {
    /// The session and the routing tables; see the module docs.
    state: Mutex<State>,
    /// Read under the state lock by whoever calls the session.
    clock: Clock,
    /// Set by handles (after releasing the state lock), taken by the driver.
    wake: Mutex<Wake>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

/// The driver's wake-up: `notified` is set by every user intent, which may have queued frames,
/// actions or moved the next deadline.
#[derive(Debug, Default)]
struct Wake {
    notified: bool,
    waker: Option<Waker>,
}

/// Identifies a channel handle's entry (stable across the session channels it goes through).
pub(crate) type EntryKey = u64;

/// The session and the routing of its events.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) session: Session,
    options: SocketOptions,
    /// One entry per channel handle (clones share it); removed when its last handle drops.
    entries: BTreeMap<EntryKey, Entry>,
    /// The entry of each live session channel.
    by_session: BTreeMap<ChannelId, EntryKey>,
    /// Joins and pushes waiting for their answer.
    pending: BTreeMap<PushId, Pending>,
    socket_events: Hub<SocketEvent>,
    /// The cause the driver gave with `handle_error`, attached to the session's `Event::Error`.
    error_cause: Option<Cause>,
    /// Every user handle is gone: the driver closes the transport and stops.
    pub(crate) shutdown: bool,
    /// The driver is gone: nothing will ever be sent or answered again.
    driver_gone: bool,
    last_key: EntryKey,
}

/// A channel handle's view of its session channel.
#[derive(Debug)]
struct Entry {
    topic: String,
    params: Payload,
    /// The session channel; `None` before the first join and after a failed one (which removes
    /// it from the session so that it stops rejoining).
    channel: Option<ChannelId>,
    messages: Hub<Message>,
    states: Hub<StateChange>,
    recoveries: Hub<Recovery>,
}

/// A join or push waiting for its answer; the sender is dropped (its future resolves `Closed`) if
/// the answer can never come.
#[derive(Debug)]
enum Pending {
    Join {
        channel: ChannelId,
        reply: oneshot::Sender<Result<Payload, ClientJoinError>>,
    },
    Push {
        channel: ChannelId,
        reply: oneshot::Sender<Result<Payload, PushError>>,
    },
}

impl Pending {
    fn channel(&self) -> ChannelId {
        match self {
            Pending::Join { channel, .. } | Pending::Push { channel, .. } => *channel,
        }
    }
}

impl Shared {
    pub(crate) fn new(config: ClientConfig, options: SocketOptions, clock: Clock) -> Self {
        Shared {
            state: Mutex::new(State {
                session: Session::new(config),
                options,
                entries: BTreeMap::new(),
                by_session: BTreeMap::new(),
                pending: BTreeMap::new(),
                socket_events: Hub::default(),
                error_cause: None,
                shutdown: false,
                driver_gone: false,
                last_key: 0,
            }),
            clock,
            wake: Mutex::new(Wake::default()),
        }
    }

    pub(crate) fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// Runs a user intent: `f` gets the state and the time, the session's events are dispatched,
    /// and the driver is woken to send what `f` queued.
    pub(crate) fn user<R>(&self, f: impl FnOnce(&mut State, Timestamp) -> R) -> R {
        let result = self.call(f);
        self.wake();
        result
    }

    /// As [`user`](Self::user), without waking the driver: for the driver's own inputs (it
    /// drains the session's output itself next) and for calls that queue nothing.
    pub(crate) fn call<R>(&self, f: impl FnOnce(&mut State, Timestamp) -> R) -> R {
        let mut state = lock(&self.state);
        let now = self.now();
        let result = f(&mut state, now);
        state.dispatch();
        result
    }

    /// Reads the state without calling the session.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&lock(&self.state))
    }

    fn wake(&self) {
        let waker = {
            let mut wake = lock(&self.wake);
            wake.notified = true;
            wake.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Ready once a user intent happened since the last ready poll.
    pub(crate) fn poll_woken(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut wake = lock(&self.wake);
        if std::mem::take(&mut wake.notified) {
            Poll::Ready(())
        } else {
            wake.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

impl State {
    // --- socket --------------------------------------------------------------------------------

    pub(crate) fn subscribe_socket(
        &mut self,
        capacity: Option<usize>,
    ) -> Subscription<SocketEvent> {
        let capacity = capacity.unwrap_or(self.options.event_capacity);
        self.socket_events.subscribe(capacity)
    }

    /// The last user handle dropped: disconnect, and tell the driver to stop.
    pub(crate) fn shut_down(&mut self, now: Timestamp) {
        self.shutdown = true;
        self.session.disconnect(now, Some(1000));
    }

    /// The driver is gone: fail everything that waits, end every stream.
    pub(crate) fn driver_dropped(&mut self) {
        self.driver_gone = true;
        // Dropping the senders resolves the futures with `Closed`.
        self.pending.clear();
        self.socket_events.close();
        for entry in self.entries.values_mut() {
            entry.messages.close();
            entry.states.close();
            entry.recoveries.close();
        }
    }

    pub(crate) fn set_error_cause(&mut self, cause: Option<Cause>) {
        self.error_cause = cause;
    }

    pub(crate) fn report(&mut self, error: SocketError) {
        self.socket_events.publish(SocketEvent::Error(error));
    }

    // --- channels ------------------------------------------------------------------------------

    pub(crate) fn add_entry(&mut self, topic: String, params: Payload) -> EntryKey {
        self.last_key += 1;
        let key = self.last_key;
        let entry = Entry {
            topic,
            params,
            channel: None,
            messages: Hub::default(),
            states: Hub::default(),
            recoveries: Hub::default(),
        };
        self.entries.insert(key, entry);
        key
    }

    /// The last handle of a channel dropped: leave it if it is joined, and forget it.
    pub(crate) fn remove_entry(&mut self, key: EntryKey, now: Timestamp) {
        let Some(channel) = self.entries.get(&key).and_then(|e| e.channel) else {
            self.entries.remove(&key);
            return;
        };
        if self.session.channel_state(channel) != Some(ChannelState::Closed) {
            // Refused only for a closed channel, which needs no leave.
            let _ = self.session.leave(channel, now);
        }
        self.dispatch();
        self.forget_session_channel(channel);
        self.entries.remove(&key);
    }

    pub(crate) fn channel_state(&self, key: EntryKey) -> ChannelState {
        self.entries
            .get(&key)
            .and_then(|e| e.channel)
            .and_then(|c| self.session.channel_state(c))
            .unwrap_or(ChannelState::Closed)
    }

    pub(crate) fn subscribe_messages(
        &mut self,
        key: EntryKey,
        capacity: Option<usize>,
    ) -> Option<Subscription<Message>> {
        let capacity = capacity.unwrap_or(self.options.event_capacity);
        let entry = self.entries.get_mut(&key)?;
        Some(entry.messages.subscribe(capacity))
    }

    pub(crate) fn subscribe_recoveries(
        &mut self,
        key: EntryKey,
        capacity: Option<usize>,
    ) -> Option<Subscription<Recovery>> {
        let capacity = capacity.unwrap_or(self.options.event_capacity);
        let entry = self.entries.get_mut(&key)?;
        Some(entry.recoveries.subscribe(capacity))
    }

    pub(crate) fn position(&self, key: EntryKey) -> Option<String> {
        let channel = self.entries.get(&key)?.channel?;
        self.session.position(channel).map(str::to_owned)
    }

    pub(crate) fn subscribe_states(
        &mut self,
        key: EntryKey,
        capacity: Option<usize>,
    ) -> Option<Subscription<StateChange>> {
        let capacity = capacity.unwrap_or(self.options.event_capacity);
        let entry = self.entries.get_mut(&key)?;
        Some(entry.states.subscribe(capacity))
    }

    /// Joins the entry's channel, with `params` replacing its params if given. Creates the
    /// session channel if the entry has none, or if its params changed while it was closed.
    pub(crate) fn join(
        &mut self,
        key: EntryKey,
        params: Option<Payload>,
        timeout: Option<Duration>,
        now: Timestamp,
    ) -> Result<oneshot::Receiver<Result<Payload, ClientJoinError>>, ClientJoinError> {
        if self.driver_gone || self.shutdown {
            return Err(ClientJoinError::Closed);
        }
        let Some(entry) = self.entries.get_mut(&key) else {
            return Err(ClientJoinError::Closed);
        };
        if let Some(channel) = entry.channel {
            let state = self.session.channel_state(channel);
            if state != Some(ChannelState::Closed) {
                return Err(ClientJoinError::Rejected(client::JoinError::AlreadyJoined));
            }
        }
        let stale = params.as_ref().is_some_and(|p| *p != entry.params);
        if let Some(params) = params {
            entry.params = params;
        }
        let existing = entry.channel;
        let channel = match existing {
            Some(channel) if !stale => channel,
            _ => {
                if let Some(old) = existing {
                    self.forget_session_channel(old);
                }
                let Some(entry) = self.entries.get_mut(&key) else {
                    return Err(ClientJoinError::Closed);
                };
                let channel = self
                    .session
                    .channel(entry.topic.clone(), entry.params.clone());
                entry.channel = Some(channel);
                self.by_session.insert(channel, key);
                channel
            }
        };
        let push = self
            .session
            .join(channel, timeout, now)
            .map_err(ClientJoinError::Rejected)?;
        let (reply, receiver) = oneshot::channel();
        self.pending.insert(push, Pending::Join { channel, reply });
        Ok(receiver)
    }

    pub(crate) fn push(
        &mut self,
        key: EntryKey,
        event: String,
        payload: Payload,
        timeout: Option<Duration>,
        now: Timestamp,
    ) -> Result<oneshot::Receiver<Result<Payload, PushError>>, PushError> {
        if self.driver_gone || self.shutdown {
            return Err(PushError::Closed);
        }
        let Some(channel) = self.entries.get(&key).and_then(|e| e.channel) else {
            return Err(PushError::Rejected(client::PushError::NotJoined));
        };
        let push = self
            .session
            .push(channel, event, payload, timeout, now)
            .map_err(PushError::Rejected)?;
        let (reply, receiver) = oneshot::channel();
        self.pending.insert(push, Pending::Push { channel, reply });
        Ok(receiver)
    }

    pub(crate) fn leave(&mut self, key: EntryKey, now: Timestamp) -> Result<(), LeaveError> {
        if self.driver_gone {
            return Err(LeaveError::Closed);
        }
        let Some(channel) = self.entries.get(&key).and_then(|e| e.channel) else {
            return Err(LeaveError::NotJoined);
        };
        // The session acknowledges a leave at once (its reply event needs no routing).
        self.session
            .leave(channel, now)
            .map(drop)
            .map_err(|_| LeaveError::NotJoined)
    }

    // --- events --------------------------------------------------------------------------------

    /// Routes every event the session has queued: replies and timeouts to their futures, messages
    /// and state changes to their channel's subscribers, the rest to the socket's.
    pub(crate) fn dispatch(&mut self) {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Open => self.socket_events.publish(SocketEvent::Open),
                Event::Close { code } => self.socket_events.publish(SocketEvent::Close { code }),
                Event::Error => {
                    let error = match self.error_cause.take() {
                        Some(cause) => SocketError::Transport(cause),
                        None => SocketError::Unknown,
                    };
                    self.socket_events.publish(SocketEvent::Error(error));
                }
                Event::Reply {
                    push,
                    channel,
                    status,
                    response,
                } => self.on_reply(push, channel, status, response),
                Event::Timeout { push, channel } => self.on_timeout(push, channel),
                Event::Message {
                    channel,
                    event,
                    payload,
                    position,
                } => {
                    if let Some(entry) = self.entry_of(channel) {
                        entry.messages.publish(Message {
                            event,
                            payload,
                            position,
                        });
                    }
                }
                Event::Recovered { channel, recovered } => {
                    if let Some(entry) = self.entry_of(channel) {
                        entry.recoveries.publish(Recovery { recovered });
                    }
                }
                Event::Refused { code } => self
                    .socket_events
                    .publish(SocketEvent::Error(SocketError::Refused { code })),
                Event::ChannelState {
                    channel,
                    state,
                    cause,
                } => self.on_state(channel, state, cause),
                // Events added to the session later are not routed until this knows them.
                _ => {}
            }
        }
        // A cause given with an error the session ignored must not stick to a later one.
        self.error_cause = None;
    }

    fn entry_of(&mut self, channel: ChannelId) -> Option<&mut Entry> {
        let key = self.by_session.get(&channel)?;
        self.entries.get_mut(key)
    }

    fn on_reply(&mut self, push: PushId, channel: ChannelId, status: String, response: Payload) {
        let ok = status == alight_protocol::event::STATUS_OK;
        match self.pending.remove(&push) {
            Some(Pending::Join { reply, .. }) if ok => {
                let _ = reply.send(Ok(response));
            }
            Some(Pending::Join { reply, .. }) => {
                let _ = reply.send(Err(ClientJoinError::Refused { status, response }));
                self.close_failed_join(channel, StateCause::JoinRefused);
            }
            Some(Pending::Push { reply, .. }) if ok => {
                let _ = reply.send(Ok(response));
            }
            Some(Pending::Push { reply, .. }) => {
                let _ = reply.send(Err(PushError::Reply { status, response }));
            }
            // A rejoin's reply (its state change was published), or a leave's acknowledgement.
            None => {}
        }
    }

    fn on_timeout(&mut self, push: PushId, channel: ChannelId) {
        match self.pending.remove(&push) {
            Some(Pending::Join { reply, .. }) => {
                let _ = reply.send(Err(ClientJoinError::Timeout));
                self.close_failed_join(channel, StateCause::JoinTimeout);
            }
            Some(Pending::Push { reply, .. }) => {
                let _ = reply.send(Err(PushError::Timeout));
            }
            None => {}
        }
    }

    fn on_state(&mut self, channel: ChannelId, state: ChannelState, cause: StateCause) {
        if state == ChannelState::Closed {
            // A join still waiting will never be answered: the channel was left, replaced or
            // closed by the server.
            let join = self.pending.iter().find_map(|(id, p)| match p {
                Pending::Join { channel: c, .. } if *c == channel => Some(*id),
                _ => None,
            });
            if let Some(Pending::Join { reply, .. }) = join.and_then(|id| self.pending.remove(&id))
            {
                let _ = reply.send(Err(ClientJoinError::Closed));
            }
        }
        if let Some(entry) = self.entry_of(channel) {
            entry.states.publish(StateChange { state, cause });
        }
    }

    /// A first join failed: the channel stops there (the session would rejoin it forever), so it
    /// is removed from the session; the entry stays, to be joined again.
    fn close_failed_join(&mut self, channel: ChannelId, cause: StateCause) {
        let key = self.by_session.get(&channel).copied();
        self.forget_session_channel(channel);
        if let Some(entry) = key.and_then(|k| self.entries.get_mut(&k)) {
            entry.states.publish(StateChange {
                state: ChannelState::Closed,
                cause,
            });
        }
    }

    /// Removes a session channel and fails what still waits on it.
    fn forget_session_channel(&mut self, channel: ChannelId) {
        self.session.remove_channel(channel);
        // The session drops the channel's pending pushes without events; so do their futures.
        self.pending.retain(|_, p| p.channel() != channel);
        let key = self.by_session.remove(&channel);
        if let Some(entry) = key.and_then(|k| self.entries.get_mut(&k))
            && entry.channel == Some(channel)
        {
            entry.channel = None;
        }
    }
}
