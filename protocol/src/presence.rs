//! Presence on the client: phoenix.js's `Presence`, sans-IO.
//!
//! A server tracks who is on a topic and tells each channel in two kinds of messages, both in the
//! shapes of Phoenix:
//!
//! | event | payload |
//! |---|---|
//! | `presence_state` (a push to one channel, after its join) | `{key: {metas: [{...meta, phx_ref}]}}` |
//! | `presence_diff` (a broadcast on the topic) | `{joins: {key: {metas: [..]}}, leaves: {key: {metas: [..]}}}` |
//!
//! A key (a user id, say) has one meta per tracked presence (one per tab or device), each with a
//! unique `phx_ref`; an updated meta is a leave of the old ref and a join of a new one carrying
//! `phx_ref_prev`. [`sync_state`] and [`sync_diff`] are phoenix.js's `Presence.syncState` and
//! `Presence.syncDiff`: they compare metas by `phx_ref` only, so a diff whose joins the state
//! already holds, or whose leaves it no longer holds, changes nothing.
//!
//! [`PresenceSync`] is phoenix.js's `Presence` object as a state machine: feed it the channel's
//! `presence_state` and `presence_diff` payloads with [`PresenceSync::handle_state`] and
//! [`PresenceSync::handle_diff`], and read what happened from [`PresenceSync::poll_event`]
//! ([`PresenceEvent::Join`], [`PresenceEvent::Leave`] and [`PresenceEvent::Sync`] are phoenix.js's
//! `onJoin`, `onLeave` and `onSync` callbacks, in the same order). As in phoenix.js, diffs that
//! arrive before the state of the channel's current join are queued and applied right after it.
//!
//! Keys are kept in a [`BTreeMap`], so [`PresenceSync::list`] is ordered by key; phoenix.js lists
//! in JavaScript object order (integer-like keys first). Metas keep phoenix.js's order.
//!
//! ```
//! use alight_protocol::presence::{PresenceEvent, PresenceSync};
//!
//! let mut presence = PresenceSync::new();
//! // A diff before the state is queued, as phoenix.js does.
//! let diff = serde_json::from_str(
//!     r#"{"joins":{"bob":{"metas":[{"phx_ref":"b1"}]}},"leaves":{}}"#,
//! )?;
//! presence.handle_diff("1", diff);
//! assert!(presence.list().is_empty());
//!
//! let state = serde_json::from_str(r#"{"alice":{"metas":[{"phx_ref":"a1","online_at":1}]}}"#)?;
//! presence.handle_state("1", state);
//! let keys = presence.list_by(|key, _| key.to_owned());
//! assert_eq!(keys, ["alice", "bob"]);
//! let events: Vec<_> = std::iter::from_fn(|| presence.poll_event()).collect();
//! assert!(matches!(events.last(), Some(PresenceEvent::Sync)));
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One tracked presence of a key: the application's fields and the server's refs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// Unique per tracked presence (and per update of it); what joins and leaves are matched by.
    pub phx_ref: String,
    /// On an updated meta, the `phx_ref` it replaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phx_ref_prev: Option<String>,
    /// The meta the server tracked (`online_at`, a status, …).
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

/// Every meta of one key: `{metas: [...]}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Presence {
    /// One per tracked presence of the key.
    pub metas: Vec<Meta>,
}

impl Presence {
    fn has_ref(&self, phx_ref: &str) -> bool {
        self.metas.iter().any(|meta| meta.phx_ref == phx_ref)
    }
}

/// The payload of `presence_state`, and the state a client keeps: key → presence.
pub type PresenceState = BTreeMap<String, Presence>;

/// The payload of `presence_diff`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PresenceDiff {
    /// Metas that joined (an update's new meta included), by key.
    #[serde(default)]
    pub joins: PresenceState,
    /// Metas that left (an update's old meta included), by key.
    #[serde(default)]
    pub leaves: PresenceState,
}

/// phoenix.js `Presence.syncState`: the joins and leaves that turn `current` into `new`, applied
/// with [`sync_diff`].
///
/// `on_join(key, current, joined)` and `on_leave(key, current, left)` are called as in phoenix.js.
pub fn sync_state(
    current: &PresenceState,
    new: PresenceState,
    on_join: impl FnMut(&str, Option<&Presence>, &Presence),
    on_leave: impl FnMut(&str, &Presence, &Presence),
) -> PresenceState {
    let mut joins = PresenceState::new();
    let mut leaves = PresenceState::new();
    for (key, presence) in current {
        if !new.contains_key(key) {
            leaves.insert(key.clone(), presence.clone());
        }
    }
    for (key, new_presence) in new {
        match current.get(&key) {
            Some(current_presence) => {
                let joined: Vec<Meta> = new_presence
                    .metas
                    .iter()
                    .filter(|meta| !current_presence.has_ref(&meta.phx_ref))
                    .cloned()
                    .collect();
                let left: Vec<Meta> = current_presence
                    .metas
                    .iter()
                    .filter(|meta| !new_presence.has_ref(&meta.phx_ref))
                    .cloned()
                    .collect();
                if !joined.is_empty() {
                    joins.insert(key.clone(), Presence { metas: joined });
                }
                if !left.is_empty() {
                    leaves.insert(key, Presence { metas: left });
                }
            }
            None => {
                joins.insert(key, new_presence);
            }
        }
    }
    sync_diff(
        current.clone(),
        PresenceDiff { joins, leaves },
        on_join,
        on_leave,
    )
}

/// phoenix.js `Presence.syncDiff`: applies the joins, then the leaves, by `phx_ref`.
///
/// A joined key keeps its current metas that the join does not carry, ahead of the joined ones; a
/// key whose last meta leaves is removed. `on_join(key, current, joined)` sees the presence before
/// the join; `on_leave(key, current, left)` sees it after the leave (with no metas if it is gone).
pub fn sync_diff(
    mut state: PresenceState,
    diff: PresenceDiff,
    mut on_join: impl FnMut(&str, Option<&Presence>, &Presence),
    mut on_leave: impl FnMut(&str, &Presence, &Presence),
) -> PresenceState {
    for (key, joined) in diff.joins {
        let current = state.remove(&key);
        let mut next = joined.clone();
        if let Some(current) = &current {
            let kept: Vec<Meta> = current
                .metas
                .iter()
                .filter(|meta| !joined.has_ref(&meta.phx_ref))
                .cloned()
                .collect();
            next.metas.splice(0..0, kept);
        }
        on_join(&key, current.as_ref(), &joined);
        state.insert(key, next);
    }
    for (key, left) in diff.leaves {
        let Some(current) = state.get_mut(&key) else {
            continue;
        };
        current.metas.retain(|meta| !left.has_ref(&meta.phx_ref));
        on_leave(&key, current, &left);
        if current.metas.is_empty() {
            state.remove(&key);
        }
    }
    state
}

/// What a [`PresenceSync`] reports: phoenix.js's `onJoin`, `onLeave` and `onSync` callbacks.
#[derive(Debug, Clone, PartialEq)]
pub enum PresenceEvent {
    /// `onJoin(key, current, newPres)`: metas joined `key`.
    Join {
        /// The presence key.
        key: String,
        /// The key's presence before the join, if it had one.
        current: Option<Presence>,
        /// The metas that joined.
        joined: Presence,
    },
    /// `onLeave(key, current, leftPres)`: metas left `key`.
    Leave {
        /// The presence key.
        key: String,
        /// The key's presence after the leave (no metas: the key is gone).
        current: Presence,
        /// The metas that left.
        left: Presence,
    },
    /// `onSync()`: a state or diff was applied; the list is current.
    Sync,
}

/// phoenix.js's `Presence` object for one channel, sans-IO.
///
/// Pass each method the channel's *current* join ref (phoenix.js reads `channel.joinRef()`): a
/// diff that arrives while the state of that join has not, after a rejoin say, is queued until the
/// state comes. Events accumulate until [`PresenceSync::poll_event`] drains them.
#[derive(Debug, Clone, Default)]
pub struct PresenceSync {
    state: PresenceState,
    pending_diffs: Vec<PresenceDiff>,
    join_ref: Option<String>,
    events: VecDeque<PresenceEvent>,
}

impl PresenceSync {
    /// An empty presence list waiting for its first `presence_state`.
    pub fn new() -> Self {
        PresenceSync::default()
    }

    /// A `presence_state` arrived on the channel whose current join ref is `channel_join_ref`.
    pub fn handle_state(&mut self, channel_join_ref: &str, new: PresenceState) {
        self.join_ref = Some(channel_join_ref.to_owned());
        // syncDiff calls every onJoin before any onLeave: two lists keep that order.
        let (mut joins, mut leaves) = (Vec::new(), Vec::new());
        self.state = sync_state(
            &self.state,
            new,
            |key, current, joined| joins.push(join_event(key, current, joined)),
            |key, current, left| leaves.push(leave_event(key, current, left)),
        );
        self.events.extend(joins.into_iter().chain(leaves));
        for diff in std::mem::take(&mut self.pending_diffs) {
            self.apply(diff);
        }
        self.events.push_back(PresenceEvent::Sync);
    }

    /// A `presence_diff` arrived on the channel whose current join ref is `channel_join_ref`.
    pub fn handle_diff(&mut self, channel_join_ref: &str, diff: PresenceDiff) {
        if self.in_pending_sync_state(channel_join_ref) {
            self.pending_diffs.push(diff);
        } else {
            self.apply(diff);
            self.events.push_back(PresenceEvent::Sync);
        }
    }

    /// Whether diffs are being queued: no state has arrived for the channel's current join.
    pub fn in_pending_sync_state(&self, channel_join_ref: &str) -> bool {
        self.join_ref.as_deref() != Some(channel_join_ref)
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<PresenceEvent> {
        self.events.pop_front()
    }

    /// The presences, by key.
    pub fn state(&self) -> &PresenceState {
        &self.state
    }

    /// phoenix.js `list()`: every key with its presence.
    pub fn list(&self) -> Vec<(&str, &Presence)> {
        self.list_by(|key, presence| (key, presence))
    }

    /// phoenix.js `list(chooser)`: what `chooser(key, presence)` makes of each key.
    pub fn list_by<'a, T>(&'a self, mut chooser: impl FnMut(&'a str, &'a Presence) -> T) -> Vec<T> {
        self.state
            .iter()
            .map(|(key, presence)| chooser(key, presence))
            .collect()
    }

    fn apply(&mut self, diff: PresenceDiff) {
        let (mut joins, mut leaves) = (Vec::new(), Vec::new());
        self.state = sync_diff(
            std::mem::take(&mut self.state),
            diff,
            |key, current, joined| joins.push(join_event(key, current, joined)),
            |key, current, left| leaves.push(leave_event(key, current, left)),
        );
        self.events.extend(joins.into_iter().chain(leaves));
    }
}

fn join_event(key: &str, current: Option<&Presence>, joined: &Presence) -> PresenceEvent {
    PresenceEvent::Join {
        key: key.to_owned(),
        current: current.cloned(),
        joined: joined.clone(),
    }
}

fn leave_event(key: &str, current: &Presence, left: &Presence) -> PresenceEvent {
    PresenceEvent::Leave {
        key: key.to_owned(),
        current: current.clone(),
        left: left.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn state(value: serde_json::Value) -> PresenceState {
        serde_json::from_value(value).expect("the test's state has the shape of one")
    }

    fn diff(value: serde_json::Value) -> PresenceDiff {
        serde_json::from_value(value).expect("the test's diff has the shape of one")
    }

    fn refs(state: &PresenceState) -> Vec<(String, Vec<String>)> {
        state
            .iter()
            .map(|(key, p)| {
                let refs = p.metas.iter().map(|m| m.phx_ref.clone()).collect();
                (key.clone(), refs)
            })
            .collect()
    }

    fn pairs(list: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        list.iter()
            .map(|(key, refs)| {
                let refs = refs.iter().map(|r| (*r).to_owned()).collect();
                ((*key).to_owned(), refs)
            })
            .collect()
    }

    #[test]
    fn meta_fields_and_refs_round_trip() {
        let parsed = state(json!({"u1": {"metas": [
            {"id": 1, "phx_ref": "2", "phx_ref_prev": "1"}
        ]}}));
        let meta = &parsed["u1"].metas[0];
        assert_eq!(meta.phx_ref, "2");
        assert_eq!(meta.phx_ref_prev.as_deref(), Some("1"));
        assert_eq!(meta.fields.get("id"), Some(&json!(1)));
        assert_eq!(
            serde_json::to_value(&parsed).ok(),
            Some(json!({"u1": {"metas": [{"id": 1, "phx_ref": "2", "phx_ref_prev": "1"}]}}))
        );
    }

    #[test]
    fn sync_state_reports_joins_and_leaves_by_ref() {
        // phoenix.js's own example: u1 stays, u2 leaves, u3 joins, u4 has a new meta.
        let current = state(json!({
            "u1": {"metas": [{"id": 1, "phx_ref": "1"}]},
            "u2": {"metas": [{"id": 2, "phx_ref": "2"}]},
            "u4": {"metas": [{"id": 4, "phx_ref": "4"}]},
        }));
        let new = state(json!({
            "u1": {"metas": [{"id": 1, "phx_ref": "1"}]},
            "u3": {"metas": [{"id": 3, "phx_ref": "3"}]},
            "u4": {"metas": [{"id": 4, "phx_ref": "4.2", "phx_ref_prev": "4"}]},
        }));
        let mut joins = Vec::new();
        let mut leaves = Vec::new();
        let synced = sync_state(
            &current,
            new.clone(),
            |key, current, joined| joins.push((key.to_owned(), current.cloned(), joined.clone())),
            |key, current, left| leaves.push((key.to_owned(), current.clone(), left.clone())),
        );
        assert_eq!(synced, new);
        let joined: Vec<_> = joins
            .iter()
            .map(|(k, c, _)| (k.as_str(), c.is_some()))
            .collect();
        assert_eq!(joined, [("u3", false), ("u4", true)]);
        let left: Vec<_> = leaves
            .iter()
            .map(|(k, c, l)| (k.as_str(), c.metas.len(), l.metas[0].phx_ref.as_str()))
            .collect();
        assert_eq!(left, [("u2", 0, "2"), ("u4", 1, "4")]);
    }

    #[test]
    fn sync_diff_keeps_current_metas_before_joined_ones() {
        let current = state(json!({"u1": {"metas": [{"phx_ref": "1"}]}}));
        let synced = sync_diff(
            current,
            diff(json!({
                "joins": {"u1": {"metas": [{"phx_ref": "1.2"}]}, "u2": {"metas": [{"phx_ref": "2"}]}},
                "leaves": {},
            })),
            |_, _, _| {},
            |_, _, _| {},
        );
        assert_eq!(
            refs(&synced),
            pairs(&[("u1", &["1", "1.2"]), ("u2", &["2"])])
        );
    }

    #[test]
    fn sync_diff_removes_a_key_with_its_last_meta_and_ignores_unknown_leaves() {
        let current = state(json!({"u1": {"metas": [{"phx_ref": "1"}, {"phx_ref": "1.2"}]}}));
        let mut left = Vec::new();
        let synced = sync_diff(
            current,
            diff(json!({"joins": {}, "leaves": {
                "u1": {"metas": [{"phx_ref": "1"}]},
                "nobody": {"metas": [{"phx_ref": "9"}]},
            }})),
            |_, _, _| {},
            |key, current, _| left.push((key.to_owned(), current.metas.len())),
        );
        assert_eq!(refs(&synced), pairs(&[("u1", &["1.2"])]));
        assert_eq!(left, [("u1".to_owned(), 1)]);
        let synced = sync_diff(
            synced,
            diff(json!({"leaves": {"u1": {"metas": [{"phx_ref": "1.2"}]}}})),
            |_, _, _| {},
            |_, _, _| {},
        );
        assert!(synced.is_empty());
    }

    #[test]
    fn a_diff_repeating_what_the_state_holds_changes_nothing() {
        // The server may send a join the state already carried, or a leave of a ref already gone.
        let current = state(json!({"u1": {"metas": [{"phx_ref": "1"}]}}));
        let synced = sync_diff(
            current.clone(),
            diff(json!({
                "joins": {"u1": {"metas": [{"phx_ref": "1"}]}},
                "leaves": {"u2": {"metas": [{"phx_ref": "2"}]}},
            })),
            |_, _, _| {},
            |_, _, _| {},
        );
        assert_eq!(synced, current);
    }

    #[test]
    fn a_join_and_leave_of_one_ref_in_one_diff_leaves_it_out() {
        let synced = sync_diff(
            PresenceState::new(),
            diff(json!({
                "joins": {"u1": {"metas": [{"phx_ref": "1"}, {"phx_ref": "2"}]}},
                "leaves": {"u1": {"metas": [{"phx_ref": "1"}]}},
            })),
            |_, _, _| {},
            |_, _, _| {},
        );
        assert_eq!(refs(&synced), pairs(&[("u1", &["2"])]));
    }

    #[test]
    fn diffs_wait_for_the_state_of_the_current_join() {
        let mut presence = PresenceSync::new();
        presence.handle_diff(
            "1",
            diff(json!({"joins": {"u2": {"metas": [{"phx_ref": "2"}]}}})),
        );
        assert!(presence.in_pending_sync_state("1"));
        assert!(presence.poll_event().is_none());
        presence.handle_state("1", state(json!({"u1": {"metas": [{"phx_ref": "1"}]}})));
        assert_eq!(
            refs(presence.state()),
            pairs(&[("u1", &["1"]), ("u2", &["2"])])
        );
        let events: Vec<_> = std::iter::from_fn(|| presence.poll_event()).collect();
        assert!(
            matches!(&events[0], PresenceEvent::Join { key, current: None, .. } if key == "u1")
        );
        assert!(
            matches!(&events[1], PresenceEvent::Join { key, current: None, .. } if key == "u2")
        );
        assert_eq!(events[2], PresenceEvent::Sync);
        assert_eq!(events.len(), 3);

        // A diff now applies at once.
        presence.handle_diff(
            "1",
            diff(json!({"leaves": {"u1": {"metas": [{"phx_ref": "1"}]}}})),
        );
        assert_eq!(refs(presence.state()), pairs(&[("u2", &["2"])]));
        let events: Vec<_> = std::iter::from_fn(|| presence.poll_event()).collect();
        assert!(
            matches!(&events[0], PresenceEvent::Leave { key, current, .. } if key == "u1" && current.metas.is_empty())
        );
        assert_eq!(events[1], PresenceEvent::Sync);

        // After a rejoin (join ref 2), diffs wait for the new state, which replaces the old one.
        presence.handle_diff(
            "2",
            diff(json!({"joins": {"u3": {"metas": [{"phx_ref": "3"}]}}})),
        );
        assert!(presence.in_pending_sync_state("2"));
        assert_eq!(refs(presence.state()), pairs(&[("u2", &["2"])]));
        presence.handle_state("2", state(json!({"u4": {"metas": [{"phx_ref": "4"}]}})));
        assert_eq!(
            refs(presence.state()),
            pairs(&[("u3", &["3"]), ("u4", &["4"])])
        );
    }

    #[test]
    fn list_by_chooses_per_key() {
        let mut presence = PresenceSync::new();
        presence.handle_state(
            "1",
            state(json!({
                "u1": {"metas": [{"phx_ref": "1", "name": "a"}, {"phx_ref": "1.2", "name": "b"}]},
                "u2": {"metas": [{"phx_ref": "2", "name": "c"}]},
            })),
        );
        let firsts = presence.list_by(|key, p| (key, p.metas[0].fields["name"].clone()));
        assert_eq!(firsts, [("u1", json!("a")), ("u2", json!("c"))]);
        assert_eq!(presence.list().len(), 2);
    }
}
