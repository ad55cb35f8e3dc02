//! Presence: who is on a topic, kept in sync on every client with `presence_state` and
//! `presence_diff`, in the shapes phoenix.js's `Presence` consumes.
//!
//! A channel tracks its user with [`Context::track`](crate::Context::track), changes the meta
//! with [`Context::update`](crate::Context::update) and stops with
//! [`Context::untrack`](crate::Context::untrack). A tracked entry belongs to the channel that
//! tracked it: when that channel ends (leave, stop, crash, rejoin, socket closed, shutdown) its
//! entries leave on their own. One key tracked by several channels (a user in two tabs) has one
//! meta per channel, and leaves the list when the last one goes.
//!
//! ```
//! use alight_server::{Channel, Context, HandleIn, JoinError};
//! use alight_protocol::Payload;
//! use serde_json::json;
//!
//! struct Room;
//! impl Channel for Room {
//!     type State = ();
//!     async fn join(&self, params: Payload, ctx: &mut Context<'_>) -> Result<((), Payload), JoinError> {
//!         let user: String = params.deserialize().map_err(|_| JoinError::reason("who are you?"))?;
//!         ctx.track(&user, &json!({"online_at": 1_700_000_000}))
//!             .map_err(|_| JoinError::reason("already here"))?;
//!         ctx.push_presence_state();
//!         Ok(((), Payload::empty()))
//!     }
//!     async fn handle_in(&self, _: &str, _: Payload, _: &mut (), _: &mut Context<'_>) -> HandleIn {
//!         HandleIn::NoReply
//!     }
//! }
//! ```
//!
//! # What clients receive
//! Changes go out as `presence_diff` broadcasts on the topic, through the same encode-once fan-out
//! as any broadcast. They are batched per topic: the first change of a quiet topic opens a window
//! ([`Limits::presence_batch_window`](crate::Limits::presence_batch_window), 50 ms by default) and
//! everything that happens in it goes out as one diff, so N members joining a topic together cost
//! each subscriber one message, not N. An entry that joins and leaves inside one window unseen is
//! never sent at all; see `batch` for why every client still converges.
//!
//! [`Context::push_presence_state`](crate::Context::push_presence_state) queues a
//! `presence_state` for the channel's own client, read when the push is written, after the join
//! has subscribed the socket. It is the list **as of the topic's last diff**: what every
//! subscriber already holds, so the same frame serves every joiner until the next diff and is
//! rendered and encoded once ([`Presence::joiner_state`]). Changes still pending in the open
//! window, the joiner's own track included, are not in it: they reach the joiner in the next
//! diff, at most one window later. (Rendering ten thousand members takes about 15 ms; rendered
//! per joiner, ten thousand joiners cost minutes of CPU.) The frame is in broadcast form,
//! `[null, null, topic, "presence_state", state]`: phoenix.js (`Channel.isMember`) and
//! `alight_protocol`'s client take a message without a join_ref as meant for the channel of its
//! topic, and its `Presence` adopts a state whatever join_ref it came with. The one rendering is
//! kept until the topic's next diff, and only for a topic with members.
//!
//! A joiner subscribed before the state was read, so it receives every diff taken after that
//! state; it may also receive again a diff the state already contains (taken before, dispatched
//! after it subscribed), which changes nothing: clients apply joins and leaves by `phx_ref`.
//! [`Presence::state_payload`] still lists everything, pending changes included, for an
//! application that pushes its own state.
//!
//! # Replication, and what happens when a node disappears
//! The state is a CRDT (see `replica`): each node holds a replica per shard, in which only the
//! node that tracked an entry removes it, and replicas merge by causal context, so deltas and whole
//! states can be exchanged in any order, repeatedly, and every node ends with the same entries.
//! Each node turns what merges change into `presence_diff`s for its own subscribers (diffs are
//! delivered locally, never through the cluster PubSub, as Phoenix's Tracker does). Topics map to
//! shards by a fixed hash, so shard `i` on one node merges with shard `i` on the others.
//!
//! A multi-node adapter drives [`Presence::take_deltas`], [`Presence::states`] and
//! [`Presence::merge`], and reports membership: when a node stops answering,
//! [`Presence::node_down`] hides its entries (clients receive leaves for them) without forgetting
//! them; if it comes back, [`Presence::node_up`] lists them again (joins). A node that stays away
//! is dropped with [`Presence::forget_node`]: its entries and dots are removed, and a stale state
//! still carrying them is ignored. Phoenix's defaults are 30 s to down and 20 min to forget. A
//! restarted node has a new [`NodeId`], so its new entries never collide with its old ones. In one
//! process none of this happens, and the list is simply what is tracked.

mod batch;
mod render;
mod replica;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::Duration;

use alight_protocol::presence::PresenceState;
use alight_protocol::{Payload, SharedBroadcast};

use crate::broadcast::Broadcast;
use tracing::warn;

use crate::registry::ConnId;
use batch::{Diff, TopicBatch};
pub(crate) use render::meta_text;
use replica::Replica;
pub use replica::{CausalContext, Dot, Entry, NodeId, ReplicaState};

/// The event of the state push.
pub const STATE_EVENT: &str = "presence_state";
/// The event of diff broadcasts.
pub const DIFF_EVENT: &str = "presence_diff";

/// Number of presence shards. Fixed across nodes: shard `i` merges with shard `i`.
pub const PRESENCE_SHARDS: usize = 16;

/// Why a track, update or untrack was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrackError {
    /// This channel already tracks the key on the topic; change its meta with `update`.
    #[error("this channel already tracks the key on this topic; use update to change its meta")]
    AlreadyTracked,
    /// This channel does not track the key on the topic; `track` it first.
    #[error("this channel does not track the key on this topic; track it first")]
    NotTracked,
    /// The meta must serialize to a JSON object (it gets `phx_ref` added).
    #[error("presence meta must be a JSON object")]
    MetaNotObject,
    /// The meta did not serialize.
    #[error("presence meta did not serialize")]
    Meta(#[source] serde_json::Error),
    /// The channel is ending (tracking from `terminate`): there is nothing left to own the entry.
    #[error("the channel is ending and cannot track presence")]
    ChannelEnding,
    /// The key is longer than [`Limits::max_presence_key_len`](crate::Limits::max_presence_key_len).
    #[error("presence key over {max} bytes")]
    KeyTooLong {
        /// The limit in force.
        max: usize,
    },
    /// The meta's JSON is larger than
    /// [`Limits::max_presence_meta_size`](crate::Limits::max_presence_meta_size).
    #[error("presence meta over {max} bytes")]
    MetaTooLarge {
        /// The limit in force.
        max: usize,
    },
}

/// One shard's replication payload: its index and a state or delta.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ShardState {
    /// The shard, `0..PRESENCE_SHARDS`.
    pub shard: usize,
    /// Entries and causal context.
    pub state: ReplicaState,
}

/// The channel that owns tracked entries: a connection and the topic of its channel there. A
/// socket has at most one channel per topic, and a rejoin removes the old channel's entries before
/// the new join runs, so this names one channel instance (one join) for as long as it owns entries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owner<'a> {
    pub(crate) conn: ConnId,
    pub(crate) channel: &'a str,
}

/// What one channel tracks.
#[derive(Debug)]
struct Tracked {
    topic: Arc<str>,
    key: Arc<str>,
    dot: Dot,
}

/// Per connection, per channel topic: what that channel tracks.
type Owners = HashMap<ConnId, HashMap<Box<str>, Vec<Tracked>>>;

/// Where diffs go: the local registry in an endpoint, a recorder in tests.
type DeliverDiff = dyn Fn(Arc<Broadcast>) + Send + Sync;

/// When a topic's pending changes are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlushMode {
    /// At once, on the task that made the change.
    Immediate,
    /// This long after the first pending change, from a timer task.
    After(Duration),
    /// Only by [`Presence::flush`] (tests).
    #[cfg(test)]
    Manual,
}

/// The diffs of one topic on their way out.
#[derive(Debug, Default)]
struct TopicFlow {
    batch: TopicBatch,
    /// A timer will flush this topic.
    scheduled: bool,
    /// Diffs taken from the batch, not yet dispatched, oldest first.
    outbox: VecDeque<Diff>,
    /// A task is dispatching the outbox; others only append to it.
    draining: bool,
}

impl TopicFlow {
    fn is_idle(&self) -> bool {
        self.batch.is_empty() && !self.scheduled && self.outbox.is_empty() && !self.draining
    }
}

/// A topic's `presence_state` as of its last diff, rendered and encoded once for its joiners.
/// Shared so that it is rendered outside the shard lock and filled by whichever joiner gets there
/// first.
type SharedState = Arc<OnceLock<Arc<SharedBroadcast>>>;

/// One shard: the replica of the topics that hash here and their diff flows.
#[derive(Debug)]
struct Shard {
    replica: Replica,
    flows: HashMap<Arc<str>, TopicFlow>,
    /// Per topic with members, its joiners' state since its last diff; dropped when a diff is
    /// taken (what it shows is then out of date), so at most one rendering per topic is kept.
    states: HashMap<Arc<str>, SharedState>,
}

/// What a change asks of the caller once the shard lock is released.
#[must_use]
enum Followup {
    Nothing,
    /// The topic's first pending change: start its window.
    Schedule(Arc<str>),
}

struct Inner {
    node: NodeId,
    mode: FlushMode,
    /// Topic shards. Locked by connection tasks (track, untrack, list), timer tasks (flush) and
    /// the replication API; never held across an await, never while taking an `owners` lock.
    shards: Box<[Mutex<Shard>]>,
    /// Per connection (`conn % PRESENCE_SHARDS`): channel topic → what that channel tracks. Only the
    /// connection's own task changes its entries; a shard lock may be taken while holding one.
    owners: Box<[Mutex<Owners>]>,
    deliver: Box<DeliverDiff>,
}

/// This node's presence: tracking, listing, diff batching and replication. Cheap to clone.
///
/// Get it from [`Alight::presence`](crate::Alight::presence); channels use it through
/// [`Context`](crate::Context).
#[derive(Clone)]
pub struct Presence {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presence")
            .field("node", &self.inner.node)
            .field("mode", &self.inner.mode)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// FNV-1a: a hash every node computes the same way, unlike `RandomState`.
fn shard_of(topic: &str) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in topic.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % PRESENCE_SHARDS as u64) as usize
}

/// A node id no other process will pick: std's per-process random hasher keys.
fn random_node() -> NodeId {
    use std::hash::{BuildHasher, RandomState};
    NodeId(RandomState::new().hash_one(std::process::id()))
}

impl Presence {
    /// Presence whose diffs go to `deliver`, sent `window` after a topic's first pending change
    /// (at once if zero).
    pub(crate) fn new(
        window: Duration,
        deliver: impl Fn(Arc<Broadcast>) + Send + Sync + 'static,
    ) -> Self {
        let mode = if window.is_zero() {
            FlushMode::Immediate
        } else {
            FlushMode::After(window)
        };
        Presence::with_mode(random_node(), mode, Box::new(deliver))
    }

    fn with_mode(node: NodeId, mode: FlushMode, deliver: Box<DeliverDiff>) -> Self {
        Presence {
            inner: Arc::new(Inner {
                node,
                mode,
                shards: (0..PRESENCE_SHARDS)
                    .map(|_| {
                        Mutex::new(Shard {
                            replica: Replica::new(node),
                            flows: HashMap::new(),
                            states: HashMap::new(),
                        })
                    })
                    .collect(),
                owners: (0..PRESENCE_SHARDS).map(|_| Mutex::default()).collect(),
                deliver,
            }),
        }
    }

    /// This node's id in a presence cluster.
    pub fn node(&self) -> NodeId {
        self.inner.node
    }

    /// Everyone on `topic`: `{key: {metas: [{...meta, phx_ref}]}}`, keys in order.
    pub fn list(&self, topic: &str) -> PresenceState {
        self.state_payload(topic)
            .deserialize()
            .expect("a rendered presence state parses as one")
    }

    /// The `presence_state` payload of `topic`, as sent to a client.
    ///
    /// Listing marks the topic's pending changes as seen, so that an entry listed here and
    /// untracked before the next diff is sent as a leave rather than dropped.
    pub fn state_payload(&self, topic: &str) -> Payload {
        let list = {
            let mut shard = self.shard(topic);
            if let Some(flow) = shard.flows.get_mut(topic) {
                flow.batch.observe();
            }
            shard.replica.list(topic)
        };
        render::state(&list)
    }

    /// The `presence_state` a joiner of `topic` is sent: the list as of the topic's last diff, in
    /// broadcast form (`join_ref` null), shared by every joiner until the next diff.
    ///
    /// Pending changes are not in it and are not marked as seen: they reach the joiner, who
    /// subscribed before asking, in the next diff. See the module documentation.
    pub fn joiner_state(&self, topic: &str) -> Arc<SharedBroadcast> {
        let (cell, listing) = {
            let mut shard = self.shard(topic);
            if let Some(frame) = shard.states.get(topic).and_then(|cell| cell.get()) {
                return frame.clone();
            }
            let listing = shard.listing_as_sent(topic);
            if listing.is_empty() {
                // Nothing to share, and nothing would drop the entry of a topic without members.
                drop(shard);
                return Arc::new(SharedBroadcast::new(
                    topic,
                    STATE_EVENT,
                    render::state(&listing),
                ));
            }
            let cell = match shard.states.get(topic) {
                Some(cell) => cell.clone(),
                None => shard.states.entry(topic.into()).or_default().clone(),
            };
            (cell, listing)
        };
        // Rendered outside the lock. Joiners racing here may each render; the first one's is kept
        // (all render the same list: the cell is dropped, not reused, when a diff is taken).
        let frame = Arc::new(SharedBroadcast::new(
            topic,
            STATE_EVENT,
            render::state(&listing),
        ));
        cell.get_or_init(|| frame).clone()
    }

    /// Sends `topic`'s pending changes now instead of at the end of its window.
    pub fn flush(&self, topic: &str) {
        flush(&self.inner, topic);
    }

    /// Sends every topic's pending changes now.
    pub fn flush_all(&self) {
        for index in 0..PRESENCE_SHARDS {
            let topics: Vec<Arc<str>> = {
                let shard = lock(&self.inner.shards[index]);
                (shard.flows.iter())
                    .filter(|(_, flow)| !flow.batch.is_empty())
                    .map(|(topic, _)| topic.clone())
                    .collect()
            };
            for topic in topics {
                flush(&self.inner, &topic);
            }
        }
    }

    fn shard(&self, topic: &str) -> MutexGuard<'_, Shard> {
        lock(&self.inner.shards[shard_of(topic)])
    }

    fn owners(&self, conn: ConnId) -> MutexGuard<'_, Owners> {
        lock(&self.inner.owners[(conn % PRESENCE_SHARDS as u64) as usize])
    }

    /// Tracks `key` on `topic` for `owner` with `meta`; returns its `phx_ref`.
    pub(crate) fn track(
        &self,
        owner: Owner<'_>,
        topic: &str,
        key: &str,
        meta: Arc<str>,
    ) -> Result<String, TrackError> {
        let mut owners = self.owners(owner.conn);
        let channels = owners.entry(owner.conn).or_default();
        let tracked = channels.get(owner.channel).map_or(&[][..], Vec::as_slice);
        if tracked.iter().any(|t| &*t.topic == topic && &*t.key == key) {
            return Err(TrackError::AlreadyTracked);
        }
        let topic: Arc<str> = topic.into();
        let key: Arc<str> = key.into();
        let entry = Entry {
            topic: topic.clone(),
            key: key.clone(),
            meta,
            prev: None,
        };
        let (dot, followup) = {
            let mut shard = self.shard(&topic);
            let dot = shard.replica.add(entry.clone());
            (dot, shard.pend(&topic, |batch| batch.join(dot, entry)))
        };
        let new = Tracked { topic, key, dot };
        match channels.get_mut(owner.channel) {
            Some(tracked) => tracked.push(new),
            None => {
                channels.insert(owner.channel.into(), vec![new]);
            }
        }
        drop(owners);
        self.follow(followup);
        Ok(render::phx_ref(dot))
    }

    /// Replaces the meta of `key` on `topic` tracked by `owner`; returns the new `phx_ref`.
    pub(crate) fn update(
        &self,
        owner: Owner<'_>,
        topic: &str,
        key: &str,
        meta: Arc<str>,
    ) -> Result<String, TrackError> {
        let mut owners = self.owners(owner.conn);
        let tracked = owners
            .get_mut(&owner.conn)
            .and_then(|channels| channels.get_mut(owner.channel))
            .and_then(|tracked| {
                tracked
                    .iter_mut()
                    .find(|t| &*t.topic == topic && &*t.key == key)
            })
            .ok_or(TrackError::NotTracked)?;
        let (dot, followup) = {
            let mut shard = self.shard(topic);
            let old_dot = tracked.dot;
            let old = shard.replica.remove(old_dot);
            let mut entry = Entry {
                topic: tracked.topic.clone(),
                key: tracked.key.clone(),
                meta,
                prev: Some(old_dot),
            };
            let mut cancelled = false;
            let followup = match &old {
                Some(old) => shard.pend(&entry.topic, |batch| {
                    cancelled = batch.leave(old_dot, old.clone());
                }),
                None => Followup::Nothing,
            };
            // An old meta no client ever saw is not what this one replaces for them.
            if cancelled {
                entry.prev = old.and_then(|old| old.prev);
            }
            let dot = shard.replica.add(entry.clone());
            let topic = entry.topic.clone();
            let later = shard.pend(&topic, |batch| batch.join(dot, entry));
            (dot, followup.or(later))
        };
        tracked.dot = dot;
        drop(owners);
        self.follow(followup);
        Ok(render::phx_ref(dot))
    }

    /// Stops tracking `key` on `topic` for `owner`; returns whether it was tracked.
    pub(crate) fn untrack(&self, owner: Owner<'_>, topic: &str, key: &str) -> bool {
        let mut owners = self.owners(owner.conn);
        let Some(channels) = owners.get_mut(&owner.conn) else {
            return false;
        };
        let Some(tracked) = channels.get_mut(owner.channel) else {
            return false;
        };
        let Some(index) = tracked
            .iter()
            .position(|t| &*t.topic == topic && &*t.key == key)
        else {
            return false;
        };
        let gone = tracked.swap_remove(index);
        if tracked.is_empty() {
            channels.remove(owner.channel);
            if channels.is_empty() {
                owners.remove(&owner.conn);
            }
        }
        let followup = self.remove(&gone);
        drop(owners);
        self.follow(followup);
        true
    }

    /// Untracks everything `owner` tracks: its channel ended.
    pub(crate) fn untrack_owner(&self, owner: Owner<'_>) {
        let mut owners = self.owners(owner.conn);
        let Some(channels) = owners.get_mut(&owner.conn) else {
            return;
        };
        let Some(tracked) = channels.remove(owner.channel) else {
            return;
        };
        if channels.is_empty() {
            owners.remove(&owner.conn);
        }
        let followups: Vec<Followup> = tracked.iter().map(|gone| self.remove(gone)).collect();
        drop(owners);
        for followup in followups {
            self.follow(followup);
        }
    }

    fn remove(&self, gone: &Tracked) -> Followup {
        let mut shard = self.shard(&gone.topic);
        match shard.replica.remove(gone.dot) {
            Some(entry) => shard.pend(&gone.topic, |batch| {
                batch.leave(gone.dot, entry);
            }),
            None => Followup::Nothing,
        }
    }

    fn follow(&self, followup: Followup) {
        let Followup::Schedule(topic) = followup else {
            return;
        };
        match self.inner.mode {
            FlushMode::Immediate => flush(&self.inner, &topic),
            FlushMode::After(window) => match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    let inner = Arc::downgrade(&self.inner);
                    runtime.spawn(flush_after(inner, topic, window));
                }
                // Outside a runtime no timer can run: send now rather than never.
                Err(_) => flush(&self.inner, &topic),
            },
            #[cfg(test)]
            FlushMode::Manual => {}
        }
    }

    /// This node's changes since the last call, per shard (empty shards left out): what a
    /// multi-node adapter ships to the other nodes.
    pub fn take_deltas(&self) -> Vec<ShardState> {
        (0..PRESENCE_SHARDS)
            .filter_map(|shard| {
                let state = lock(&self.inner.shards[shard]).replica.take_delta();
                (!state.is_empty()).then_some(ShardState { shard, state })
            })
            .collect()
    }

    /// Every shard's whole state: for a node that just joined the cluster or missed deltas.
    pub fn states(&self) -> Vec<ShardState> {
        (0..PRESENCE_SHARDS)
            .map(|shard| ShardState {
                shard,
                state: lock(&self.inner.shards[shard]).replica.state().clone(),
            })
            .collect()
    }

    /// Merges another node's state or delta; local subscribers receive what changed as diffs.
    /// A shard index out of range is ignored.
    pub fn merge(&self, remote: &ShardState) {
        let Some(shard) = self.inner.shards.get(remote.shard) else {
            warn!(shard = remote.shard, "presence state for an unknown shard");
            return;
        };
        let followups = {
            let mut shard = lock(shard);
            let changes = shard.replica.merge(&remote.state);
            shard.apply(changes.joins, changes.leaves)
        };
        self.follow_all(followups);
    }

    /// `node` stopped answering: its entries are no longer listed and leave on every client.
    pub fn node_down(&self, node: NodeId) {
        self.each_shard(|shard| {
            let leaves = shard.replica.node_down(node);
            shard.apply(Vec::new(), leaves)
        });
    }

    /// `node` answers again: its entries are listed again and join on every client.
    pub fn node_up(&self, node: NodeId) {
        self.each_shard(|shard| {
            let joins = shard.replica.node_up(node);
            shard.apply(joins, Vec::new())
        });
    }

    /// `node` is gone for good: its entries and causal history are dropped.
    pub fn forget_node(&self, node: NodeId) {
        self.each_shard(|shard| {
            let leaves = shard.replica.forget_node(node);
            shard.apply(Vec::new(), leaves)
        });
    }

    fn each_shard(&self, mut change: impl FnMut(&mut Shard) -> Vec<Followup>) {
        for shard in self.inner.shards.iter() {
            let followups = change(&mut lock(shard));
            self.follow_all(followups);
        }
    }

    fn follow_all(&self, followups: Vec<Followup>) {
        for followup in followups {
            self.follow(followup);
        }
    }
}

impl Shard {
    /// `topic`'s entries as clients hold them once every diff taken so far has reached them.
    fn listing_as_sent(&self, topic: &str) -> replica::Listing {
        let listing = self.replica.list(topic);
        match self.flows.get(topic) {
            Some(flow) => flow.batch.before_window(listing),
            None => listing,
        }
    }

    /// Records a change of `topic`'s batch; the first pending change of a topic asks for a timer.
    fn pend(&mut self, topic: &Arc<str>, change: impl FnOnce(&mut TopicBatch)) -> Followup {
        let flow = match self.flows.get_mut(topic) {
            Some(flow) => flow,
            None => self.flows.entry(topic.clone()).or_default(),
        };
        change(&mut flow.batch);
        if flow.batch.is_empty() {
            if flow.is_idle() {
                self.flows.remove(topic);
            }
            return Followup::Nothing;
        }
        if flow.scheduled {
            return Followup::Nothing;
        }
        flow.scheduled = true;
        Followup::Schedule(topic.clone())
    }

    /// Records merged or membership changes, topic by topic.
    fn apply(&mut self, joins: Vec<(Dot, Entry)>, leaves: Vec<(Dot, Entry)>) -> Vec<Followup> {
        let mut followups = Vec::new();
        for (dot, entry) in leaves {
            let topic = entry.topic.clone();
            followups.push(self.pend(&topic, |batch| {
                batch.leave(dot, entry);
            }));
        }
        for (dot, entry) in joins {
            let topic = entry.topic.clone();
            followups.push(self.pend(&topic, |batch| batch.join(dot, entry)));
        }
        followups
    }
}

impl Followup {
    fn or(self, other: Followup) -> Followup {
        match self {
            Followup::Nothing => other,
            schedule => schedule,
        }
    }
}

async fn flush_after(inner: Weak<Inner>, topic: Arc<str>, window: Duration) {
    tokio::time::sleep(window).await;
    if let Some(inner) = inner.upgrade() {
        flush(&inner, &topic);
    }
}

/// Ends `topic`'s window: its batch becomes a diff in the outbox, and unless another task is
/// already at it, this one dispatches the outbox in order. Rendering and fan-out happen outside
/// the shard lock; the outbox keeps diffs of one topic in order whoever dispatches them.
fn flush(inner: &Inner, topic: &str) {
    let shard_lock = &inner.shards[shard_of(topic)];
    let mut shard = lock(shard_lock);
    let Some(flow) = shard.flows.get_mut(topic) else {
        return;
    };
    flow.scheduled = false;
    let diff = flow.batch.take();
    let changed = !diff.is_empty();
    if changed {
        flow.outbox.push_back(diff);
    }
    let draining = std::mem::replace(&mut flow.draining, true);
    if changed {
        shard.states.remove(topic);
    }
    if draining {
        return;
    }
    loop {
        let Some(flow) = shard.flows.get_mut(topic) else {
            return;
        };
        let Some(diff) = flow.outbox.pop_front() else {
            flow.draining = false;
            if flow.is_idle() {
                shard.flows.remove(topic);
            }
            return;
        };
        drop(shard);
        let message = Broadcast::new(topic, DIFF_EVENT, render::diff(&diff));
        (inner.deliver)(Arc::new(message));
        shard = lock(shard_lock);
    }
}

#[cfg(test)]
mod tests;
