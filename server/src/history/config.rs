//! How much history a topic family keeps: [`History`].

use std::time::Duration;

/// What a topic family keeps of its broadcasts, on this node, so that clients that were away can
/// resume.
///
/// A topic keeps its last [`last`](History::last) broadcasts; with
/// [`for_at_least`](History::for_at_least) a broadcast is dropped once it is older than that
/// duration (not before), and the family's topics together hold at most
/// [`max_bytes`](History::max_bytes) (past it, the topics broadcast on least recently are dropped
/// whole, and their positions start a new epoch). A client may be replayed at most
/// [`replay_limit`](History::replay_limit) broadcasts (by default as many as a topic keeps); one
/// further behind is told `recovered: false` and reloads its state.
///
/// # Positions, and resuming
/// Every broadcast on such a topic (from a channel, `POST /api/broadcast` or any
/// [`PubSub`](crate::PubSub) call) gets the next [`Position`](crate::Position) of the topic: an
/// epoch and an offset that grows by one per broadcast, written `"<epoch>-<offset>"`. Its V2 JSON
/// and V1 frames carry it in the `ref` slot, where phoenix.js hands it to
/// `channel.on(event, (payload, ref) => …)`; V2 binary broadcasts have no `ref` field and carry
/// none. A join is subscribed before the channel's `join` runs and reads the topic's position right
/// then: what is broadcast while `join` runs follows the reply, once.
///
/// | join params | the ok reply's response gets | then |
/// |---|---|---|
/// | no `since` (or `null`) | `"position"`: the topic's current position | every later broadcast |
/// | `"since": p`, history covers it | `"position"`, `"recovered": true` | every broadcast after `p` (replayed as ordinary broadcasts, in order), then live ones, none twice |
/// | `"since"` not a string, longer than [`MAX_POSITION_LEN`](crate::MAX_POSITION_LEN), garbled, of another epoch, ahead of the topic, dropped already, or more than the replay limit behind | `"position"`, `"recovered": false` | every later broadcast; the application reloads its state |
///
/// The keys are added to the channel's response when it is a JSON object (they win over keys of
/// the same name); any other response is sent as it is.
///
/// ```
/// use std::time::Duration;
/// use alight_server::History;
///
/// let history = History::last(1_000).for_at_least(Duration::from_secs(300));
/// assert_eq!(history.replay_limit_count(), 1_000);
/// assert_eq!(history.keeps(), 1_000);
/// assert_eq!(history.age(), Some(Duration::from_secs(300)));
/// assert_eq!(history.max_bytes(1 << 20).byte_budget(), 1 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct History {
    pub(crate) last: usize,
    pub(crate) ttl: Option<Duration>,
    pub(crate) max_bytes: usize,
    pub(crate) replay_limit: Option<usize>,
}

/// The default byte budget of a family's history on one node.
const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;

impl History {
    /// Keeps the last `count` broadcasts of each topic (at least 1).
    pub fn last(count: usize) -> Self {
        History {
            last: count.max(1),
            ttl: None,
            max_bytes: DEFAULT_MAX_BYTES,
            replay_limit: None,
        }
    }

    /// Drops a broadcast once it is older than `duration`, and never earlier for its age.
    pub fn for_at_least(mut self, duration: Duration) -> Self {
        self.ttl = Some(duration);
        self
    }

    /// Bounds what the family's topics keep together on this node (default 64 MiB), counting each
    /// broadcast's payload, topic and event and the frames it is encoded in. Another
    /// [`HistoryStore`](crate::HistoryStore) says how it applies the bound (`alight-redis`'s
    /// bounds each topic's stream).
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Replays at most `count` broadcasts to a resuming client (default: as many as a topic keeps).
    pub fn replay_limit(mut self, count: usize) -> Self {
        self.replay_limit = Some(count);
        self
    }

    /// How many broadcasts each topic keeps ([`last`](Self::last)).
    pub fn keeps(&self) -> usize {
        self.last
    }

    /// The age past which a broadcast is dropped ([`for_at_least`](Self::for_at_least)), if any.
    pub fn age(&self) -> Option<Duration> {
        self.ttl
    }

    /// The bytes the family keeps at most ([`max_bytes`](Self::max_bytes)).
    pub fn byte_budget(&self) -> usize {
        self.max_bytes
    }

    /// The most broadcasts a resuming client is replayed.
    pub fn replay_limit_count(&self) -> usize {
        self.replay_limit.unwrap_or(self.last)
    }
}
