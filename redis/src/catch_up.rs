//! What this node delivered of each history topic its clients joined, so that what it missed
//! while its subscription was broken is replayed to them, in order and once, as soon as the
//! subscription is back.
//!
//! | event | what is recorded |
//! |---|---|
//! | a join read the topic's history (position `p`) | the topic is watched from `p` on, unless it already was |
//! | a positioned broadcast comes back on the channel | delivered if it is past the topic's last, which it becomes; dropped if not (the catch-up replayed it) |
//! | the subscription is back after a break | each watched topic with subscribers here is read from its last position, the missed broadcasts delivered, and the topic's last moved to the top; topics without subscribers are forgotten |
//!
//! # Locking
//! `topics` is a std mutex held only to read or change the table: never across an await, never
//! while delivering.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use alight_server::{History, Position, Registry};

/// The watched topics.
#[derive(Debug, Default)]
pub(crate) struct Delivered {
    topics: Mutex<HashMap<String, Watched>>,
}

#[derive(Debug)]
struct Watched {
    history: History,
    /// The position of the latest broadcast delivered here (or read by the first join).
    last: Position,
}

impl Delivered {
    fn topics(&self) -> MutexGuard<'_, HashMap<String, Watched>> {
        self.topics.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A join read `topic`'s history at `at`: its broadcasts after `at` are delivered here.
    pub(crate) fn watch(&self, topic: &str, history: &History, at: Position) {
        self.topics().entry(topic.to_owned()).or_insert(Watched {
            history: *history,
            last: at,
        });
    }

    /// Whether the broadcast at `position` of `topic` is still to be delivered here (and records
    /// it as delivered); `false` for one the catch-up already delivered.
    pub(crate) fn advance(&self, topic: &str, position: Position) -> bool {
        let mut topics = self.topics();
        let Some(watched) = topics.get_mut(topic) else {
            return true;
        };
        let old = watched.last.epoch == position.epoch && position.offset <= watched.last.offset;
        if !old {
            watched.last = position;
        }
        !old
    }

    /// Moves `topic`'s last position to `position` (after a catch-up that could not replay).
    pub(crate) fn reset(&self, topic: &str, position: Position) {
        if let Some(watched) = self.topics().get_mut(topic) {
            watched.last = position;
        }
    }

    /// The watched topics that have subscribers here, with their history and last position;
    /// the others are forgotten.
    pub(crate) fn to_catch_up(&self, registry: &Registry) -> Vec<(String, History, Position)> {
        let mut topics = self.topics();
        topics.retain(|topic, _| registry.subscriber_count(topic) > 0);
        topics
            .iter()
            .map(|(topic, watched)| (topic.clone(), watched.history, watched.last))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use alight_server::Epoch;

    use super::*;

    #[test]
    fn a_broadcast_is_delivered_once_past_the_last_and_a_new_epoch_starts_over() {
        let delivered = Delivered::default();
        let epoch = Epoch::from_bits(1);
        let at = |offset| Position::new(epoch, offset);
        // Unwatched topics are never held back.
        assert!(delivered.advance("room:a", at(1)));
        assert!(delivered.advance("room:a", at(1)));
        delivered.watch("room:a", &History::last(10), at(3));
        // A later join does not move a watched topic.
        delivered.watch("room:a", &History::last(10), at(9));
        assert!(!delivered.advance("room:a", at(3)));
        assert!(delivered.advance("room:a", at(4)));
        assert!(!delivered.advance("room:a", at(4)));
        assert!(delivered.advance("room:a", Position::new(Epoch::from_bits(2), 1)));
        delivered.reset("room:a", at(20));
        assert!(!delivered.advance("room:a", at(20)));
        assert!(delivered.advance("room:a", at(21)));
    }
}
