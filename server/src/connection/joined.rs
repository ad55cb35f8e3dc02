//! The channels one socket has joined, and how fast it may join more.

use tokio::time::Instant;

use crate::channel::Joined;
use crate::history::Position;

/// A joined channel on this socket.
pub(super) struct ChannelSlot {
    pub(super) join_ref: Option<String>,
    pub(super) joined: Box<dyn Joined>,
    /// On a history topic just joined: the position its join read. Queued broadcasts up to it
    /// are ones the client has (from the replay, or from before it subscribed).
    pub(super) through: Option<Position>,
    /// The routes this channel subscribed its socket to besides its topic
    /// ([`Context::subscribe`](crate::Context::subscribe)), unsubscribed when it ends.
    pub(super) routes: Vec<String>,
}

/// The channels joined on this socket, by topic.
///
/// A `Vec` rather than a `HashMap`: a socket joins one to a few topics (at most
/// [`max_channels_per_socket`](crate::Limits::max_channels_per_socket)), and an idle socket's
/// single channel then costs one slot instead of a hash table's four.
#[derive(Default)]
pub(super) struct Channels(Vec<(String, ChannelSlot)>);

impl Channels {
    pub(super) fn get(&self, topic: &str) -> Option<&ChannelSlot> {
        self.0
            .iter()
            .find(|(t, _)| t == topic)
            .map(|(_, slot)| slot)
    }

    pub(super) fn get_mut(&mut self, topic: &str) -> Option<&mut ChannelSlot> {
        self.0
            .iter_mut()
            .find(|(t, _)| t == topic)
            .map(|(_, slot)| slot)
    }

    pub(super) fn remove(&mut self, topic: &str) -> Option<ChannelSlot> {
        let index = self.0.iter().position(|(t, _)| t == topic)?;
        let (_, slot) = self.0.swap_remove(index);
        if self.0.is_empty() {
            self.0 = Vec::new();
        }
        Some(slot)
    }

    pub(super) fn insert(&mut self, topic: String, slot: ChannelSlot) {
        if let Some(existing) = self.get_mut(&topic) {
            *existing = slot;
            return;
        }
        // Grow one slot at a time while small: most sockets join one to three channels.
        if self.0.len() == self.0.capacity() && self.0.len() < 4 {
            self.0.reserve_exact(1);
        }
        self.0.push((topic, slot));
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn topics(&self) -> Vec<String> {
        self.0.iter().map(|(topic, _)| topic.clone()).collect()
    }
}

/// Token bucket for joins (or pushes) per second.
pub(super) struct JoinBudget {
    tokens: f64,
    rate: f64,
    last: Instant,
}

impl JoinBudget {
    pub(super) fn new(per_second: u32) -> Self {
        let rate = f64::from(per_second.max(1));
        JoinBudget {
            tokens: rate,
            rate,
            last: Instant::now(),
        }
    }

    /// Takes a join from the budget at `now`; whether there was one.
    pub(super) fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
