//! Per-topic batching of presence changes into `presence_diff`s.
//!
//! Joins and leaves of a topic accumulate in a [`TopicBatch`] and go out as one diff per window.
//! What the diff says about each entry depends only on the first and last thing that happened to
//! it in the window, and on whether any client could have seen it:
//!
//! | in the window | the diff carries |
//! |---|---|
//! | last a join | the join |
//! | last a leave, first a leave (clients had it) | the leave |
//! | joined then left, and a `presence_state` listed it in between | the leave |
//! | joined then left, seen by no one | nothing: the two cancel out |
//!
//! A client applies joins before leaves and compares metas by `phx_ref` (phoenix.js `syncDiff`),
//! so a join it already holds and a leave of a ref it never had are no-ops: whatever it saw
//! before, it ends where the server is. An entry is "seen" through a state listed while it was
//! pending: [`TopicBatch::observe`] bumps the batch's epoch, and a leave of an entry that joined in
//! an earlier epoch is sent.
//!
//! The batch also knows what clients hold while it is open: the listing as it stood when the
//! window opened ([`TopicBatch::before_window`]), which is what every diff taken so far adds up
//! to. That is the `presence_state` shared by the joiners of a window; it shows nothing pending,
//! so it makes no entry "seen".

use std::collections::BTreeMap;
use std::sync::Arc;

use super::replica::{Dot, Entry, Listing};

/// What happened to one entry in the current window.
#[derive(Debug)]
struct Pending {
    entry: Entry,
    /// The first event was a leave: clients had the entry before the window.
    first_leave: bool,
    /// The last event was a join: clients must end up with the entry.
    last_join: bool,
    /// A state listed the entry between its join and its leave.
    observed: bool,
    /// The epoch of the last join.
    join_epoch: u64,
}

/// The pending changes of one topic.
#[derive(Debug, Default)]
pub(crate) struct TopicBatch {
    pending: BTreeMap<Dot, Pending>,
    /// Bumped each time the topic's state is listed for a client.
    epoch: u64,
}

/// A diff ready to render: joins and leaves of one topic, grouped by key, metas in dot order.
#[derive(Debug, Default)]
pub(crate) struct Diff {
    pub(crate) joins: BTreeMap<Arc<str>, Vec<(Dot, Entry)>>,
    pub(crate) leaves: BTreeMap<Arc<str>, Vec<(Dot, Entry)>>,
}

impl Diff {
    pub(crate) fn is_empty(&self) -> bool {
        self.joins.is_empty() && self.leaves.is_empty()
    }
}

impl TopicBatch {
    /// Whether nothing is pending.
    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// `entry` joined as `dot`.
    pub(crate) fn join(&mut self, dot: Dot, entry: Entry) {
        let epoch = self.epoch;
        let pending = self.pending.entry(dot).or_insert(Pending {
            entry: entry.clone(),
            first_leave: false,
            last_join: true,
            observed: false,
            join_epoch: epoch,
        });
        pending.entry = entry;
        pending.last_join = true;
        pending.join_epoch = epoch;
    }

    /// `entry` (named `dot`) left. Returns `true` if this cancelled its join: no client ever
    /// heard of it.
    pub(crate) fn leave(&mut self, dot: Dot, entry: Entry) -> bool {
        let epoch = self.epoch;
        match self.pending.get_mut(&dot) {
            None => {
                self.pending.insert(
                    dot,
                    Pending {
                        entry,
                        first_leave: true,
                        last_join: false,
                        observed: false,
                        join_epoch: epoch,
                    },
                );
                false
            }
            Some(pending) => {
                if pending.last_join && pending.join_epoch != epoch {
                    pending.observed = true;
                }
                pending.last_join = false;
                pending.entry = entry;
                if !pending.first_leave && !pending.observed {
                    self.pending.remove(&dot);
                    return true;
                }
                false
            }
        }
    }

    /// A client is about to receive the topic's current state.
    pub(crate) fn observe(&mut self) {
        if !self.pending.is_empty() {
            self.epoch += 1;
        }
    }

    /// `listing` (the topic's listed entries now) as it stood when the window opened: pending
    /// joins taken out, entries that were listed before their pending leave put back.
    ///
    /// An entry that was listed when the window opened has a pending record that starts with a
    /// leave; one that was not starts with a join. Either way its last event is what `listing`
    /// shows, so undoing the window only looks at the first.
    pub(crate) fn before_window(&self, mut listing: Listing) -> Listing {
        if self.pending.is_empty() {
            return listing;
        }
        let joined: std::collections::HashSet<Dot> = (self.pending.iter())
            .filter(|(_, pending)| !pending.first_leave)
            .map(|(dot, _)| *dot)
            .collect();
        if !joined.is_empty() {
            for (_, metas) in &mut listing {
                metas.retain(|(dot, _)| !joined.contains(dot));
            }
            listing.retain(|(_, metas)| !metas.is_empty());
        }
        for (dot, pending) in &self.pending {
            if !pending.first_leave || pending.last_join {
                // Not listed before the window, or listed at both ends: `listing` is right.
                continue;
            }
            let key = &pending.entry.key;
            let metas = match listing.binary_search_by(|(k, _)| (**k).cmp(&**key)) {
                Ok(at) => &mut listing[at].1,
                Err(at) => {
                    listing.insert(at, (key.clone(), Vec::new()));
                    &mut listing[at].1
                }
            };
            if let Err(at) = metas.binary_search_by_key(dot, |(d, _)| *d) {
                metas.insert(at, (*dot, pending.entry.clone()));
            }
        }
        listing
    }

    /// Ends the window: the diff to send (possibly empty).
    pub(crate) fn take(&mut self) -> Diff {
        let mut diff = Diff::default();
        for (dot, pending) in std::mem::take(&mut self.pending) {
            let side = if pending.last_join {
                &mut diff.joins
            } else if pending.first_leave || pending.observed {
                &mut diff.leaves
            } else {
                continue;
            };
            side.entry(pending.entry.key.clone())
                .or_default()
                .push((dot, pending.entry));
        }
        self.epoch = 0;
        diff
    }
}

#[cfg(test)]
mod tests {
    use super::super::replica::NodeId;
    use super::*;

    fn dot(counter: u64) -> Dot {
        Dot {
            node: NodeId(1),
            counter,
        }
    }

    fn entry(key: &str) -> Entry {
        Entry {
            topic: "t".into(),
            key: key.into(),
            meta: "{}".into(),
            prev: None,
        }
    }

    fn counters(side: &BTreeMap<Arc<str>, Vec<(Dot, Entry)>>) -> Vec<u64> {
        side.values()
            .flatten()
            .map(|(dot, _)| dot.counter)
            .collect()
    }

    #[test]
    fn joins_and_leaves_of_different_entries_are_sent() {
        let mut batch = TopicBatch::default();
        batch.join(dot(2), entry("a"));
        batch.leave(dot(1), entry("a"));
        let diff = batch.take();
        assert_eq!(counters(&diff.joins), [2]);
        assert_eq!(counters(&diff.leaves), [1]);
        assert!(batch.is_empty());
    }

    #[test]
    fn an_unseen_join_then_leave_cancels_out() {
        let mut batch = TopicBatch::default();
        batch.join(dot(1), entry("a"));
        assert!(batch.leave(dot(1), entry("a")));
        assert!(batch.is_empty());
        assert!(batch.take().is_empty());
    }

    #[test]
    fn a_join_listed_in_a_state_before_its_leave_is_sent_as_both() {
        let mut batch = TopicBatch::default();
        batch.join(dot(1), entry("a"));
        batch.observe();
        assert!(!batch.leave(dot(1), entry("a")));
        let diff = batch.take();
        assert_eq!(counters(&diff.joins), Vec::<u64>::new());
        assert_eq!(counters(&diff.leaves), [1]);
    }

    #[test]
    fn a_leave_then_join_of_one_entry_ends_as_a_join() {
        // A node that went down and came back within the window.
        let mut batch = TopicBatch::default();
        batch.leave(dot(1), entry("a"));
        batch.observe();
        batch.join(dot(1), entry("a"));
        let diff = batch.take();
        assert_eq!(counters(&diff.joins), [1]);
        assert!(diff.leaves.is_empty());
    }
}
