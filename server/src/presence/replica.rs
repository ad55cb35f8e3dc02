//! The mergeable presence state: an observed-remove set of tracked entries with a causal context,
//! one replica per node (and per presence shard).
//!
//! Every entry is named by a [`Dot`], `(node, counter)`: the node that tracked it and that node's
//! count of tracks so far, so no two entries anywhere share a dot and a dot never names a second
//! entry. A [`ReplicaState`] is the entries a node holds plus its [`CausalContext`], every dot it
//! has ever seen. That is enough to merge without coordination ([`ReplicaState::join`]):
//!
//! - an entry of the other side whose dot this side has never seen is a join;
//! - an entry of this side whose dot the other side has seen but no longer holds was untracked
//!   there: a leave;
//! - everything else stays, and the contexts unite.
//!
//! Only the node that tracked an entry removes it, so an entry leaves exactly once everywhere.
//! The join is commutative, associative and idempotent (tested below with proptest), so replicas
//! converge whatever order, grouping or repetition their states and deltas arrive in. A
//! [`Replica`] records its own changes as a delta (the entries it added and the dots it touched),
//! which is itself a `ReplicaState`: nodes ship deltas to each other and occasionally whole states.
//!
//! Phoenix's Tracker is the same structure (an ORSWOT with `clouds` for non-contiguous dots); the
//! names here follow the CRDT literature instead of its code.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A node of a presence cluster: random per process start, so a restarted node never reuses the
/// dots of its previous life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub u64);

/// One tracked entry's name: the node that tracked it and its count of tracks at that moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Dot {
    /// The node that tracked the entry.
    pub node: NodeId,
    /// That node's count of tracks, this one included (from 1).
    pub counter: u64,
}

/// One tracked presence: a key's meta on a topic.
///
/// Strings are shared (`Arc<str>`) so that listing and batching copy pointers, not text; `meta`
/// is a compact JSON object without `phx_ref`, which is derived from the dot when rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The topic.
    pub topic: Arc<str>,
    /// The presence key (a user id, say).
    pub key: Arc<str>,
    /// The meta: JSON object text.
    pub meta: Arc<str>,
    /// For an update, the dot of the entry it replaced (rendered as `phx_ref_prev`).
    pub prev: Option<Dot>,
}

/// A topic's listed entries: each key with its entries, in order.
pub type Listing = Vec<(Arc<str>, Vec<(Dot, Entry)>)>;

/// Every dot a replica has seen: a contiguous prefix per node plus the dots beyond a gap.
///
/// Kept compact: a dot right after its node's prefix extends the prefix, so the `cloud` only holds
/// dots that arrived ahead of a missing one (out-of-order deltas) and empties once the gap fills.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CausalContext {
    /// Per node, every counter up to this one has been seen.
    clock: BTreeMap<NodeId, u64>,
    /// Seen dots beyond their node's `clock`, never `clock + 1`.
    cloud: BTreeSet<Dot>,
}

impl CausalContext {
    /// Whether `dot` has been seen.
    pub fn contains(&self, dot: &Dot) -> bool {
        self.clock.get(&dot.node).is_some_and(|&c| dot.counter <= c) || self.cloud.contains(dot)
    }

    /// Records `dot` as seen.
    pub fn insert(&mut self, dot: Dot) {
        if self.contains(&dot) {
            return;
        }
        let clock = self.clock.entry(dot.node).or_insert(0);
        if dot.counter == *clock + 1 {
            *clock += 1;
            // The dot may close a gap: absorb what follows it.
            while self.cloud.remove(&Dot {
                node: dot.node,
                counter: *clock + 1,
            }) {
                *clock += 1;
            }
        } else {
            if *clock == 0 {
                self.clock.remove(&dot.node);
            }
            self.cloud.insert(dot);
        }
    }

    /// Unites `other` into this context.
    pub fn join(&mut self, other: &CausalContext) {
        for (&node, &counter) in &other.clock {
            let clock = self.clock.entry(node).or_insert(0);
            *clock = (*clock).max(counter);
        }
        self.cloud.extend(other.cloud.iter().copied());
        self.compact();
    }

    /// How many dots this context names, counting each prefix in full.
    fn size(&self) -> u64 {
        self.clock
            .values()
            .sum::<u64>()
            .saturating_add(self.cloud.len() as u64)
    }

    /// Every dot this context names (prefixes expanded): used when that is the shorter walk.
    fn dots(&self) -> impl Iterator<Item = Dot> + '_ {
        let prefixes = self
            .clock
            .iter()
            .flat_map(|(&node, &max)| (1..=max).map(move |counter| Dot { node, counter }));
        prefixes.chain(self.cloud.iter().copied())
    }

    /// The counter of `node`'s contiguous prefix (0 if none).
    fn clock_of(&self, node: NodeId) -> u64 {
        self.clock.get(&node).copied().unwrap_or(0)
    }

    /// Folds cloud dots into the prefixes they extend and drops those already covered.
    fn compact(&mut self) {
        let cloud = std::mem::take(&mut self.cloud);
        for dot in cloud {
            let clock = self.clock.entry(dot.node).or_insert(0);
            if dot.counter <= *clock {
                continue;
            }
            if dot.counter == *clock + 1 {
                *clock += 1;
            } else {
                self.cloud.insert(dot);
            }
        }
        self.clock.retain(|_, counter| *counter > 0);
    }

    /// Forgets everything about `node`.
    fn remove_node(&mut self, node: NodeId) {
        self.clock.remove(&node);
        self.cloud.retain(|dot| dot.node != node);
    }
}

/// What a merge changed: entries that appeared and entries that went, with their dots.
#[derive(Debug, Default)]
pub struct Changes {
    /// Entries new to this replica.
    pub joins: Vec<(Dot, Entry)>,
    /// Entries this replica no longer holds.
    pub leaves: Vec<(Dot, Entry)>,
}

/// Entries and the dots seen: a node's whole state, or a delta of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "WireState", from = "WireState")]
pub struct ReplicaState {
    values: HashMap<Dot, Entry>,
    context: CausalContext,
}

impl ReplicaState {
    /// The entries.
    pub fn entries(&self) -> impl Iterator<Item = (&Dot, &Entry)> {
        self.values.iter()
    }

    /// The causal context.
    pub fn context(&self) -> &CausalContext {
        &self.context
    }

    /// Whether this holds nothing and has seen nothing.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.context == CausalContext::default()
    }

    /// Merges `other` into this state (the lattice join) and returns what changed here.
    ///
    /// Dots of nodes for which `skip` is true are ignored entirely (forgotten nodes).
    pub fn join(&mut self, other: &ReplicaState) -> Changes {
        self.join_filtered(other, |_| false)
    }

    fn join_filtered(&mut self, other: &ReplicaState, skip: impl Fn(NodeId) -> bool) -> Changes {
        let mut changes = Changes::default();
        // Leaves: ours, seen there, gone there. Walk whichever side is shorter.
        let gone: Vec<Dot> = if other.context.size() < self.values.len() as u64 {
            other
                .context
                .dots()
                .filter(|dot| self.values.contains_key(dot))
                .filter(|dot| !other.values.contains_key(dot) && !skip(dot.node))
                .collect()
        } else {
            self.values
                .keys()
                .filter(|dot| other.context.contains(dot) && !other.values.contains_key(dot))
                .filter(|dot| !skip(dot.node))
                .copied()
                .collect()
        };
        for dot in gone {
            if let Some(entry) = self.values.remove(&dot) {
                changes.leaves.push((dot, entry));
            }
        }
        // Joins: theirs, never seen here.
        for (dot, entry) in &other.values {
            if !skip(dot.node) && !self.context.contains(dot) {
                self.values.insert(*dot, entry.clone());
                changes.joins.push((*dot, entry.clone()));
            }
        }
        if other.context.clock.keys().any(|&node| skip(node))
            || other.context.cloud.iter().any(|dot| skip(dot.node))
        {
            let mut context = other.context.clone();
            context.clock.retain(|&node, _| !skip(node));
            context.cloud.retain(|dot| !skip(dot.node));
            self.context.join(&context);
        } else {
            self.context.join(&other.context);
        }
        changes
    }
}

/// The replica of one node: its state, an index by topic and key, its pending delta, and which
/// nodes are down or forgotten.
#[derive(Debug)]
pub struct Replica {
    node: NodeId,
    state: ReplicaState,
    /// topic → key → dots: what `list` walks. Holds every entry of `state`, down nodes' included.
    topics: HashMap<Arc<str>, BTreeMap<Arc<str>, BTreeSet<Dot>>>,
    /// This node's changes since the last [`Replica::take_delta`].
    delta: ReplicaState,
    /// Nodes presumed down: their entries are kept but not listed.
    down: HashSet<NodeId>,
    /// Nodes gone for good: their dots are ignored if a stale state still carries them.
    forgotten: HashSet<NodeId>,
}

impl Replica {
    /// An empty replica of `node`.
    pub fn new(node: NodeId) -> Self {
        Replica {
            node,
            state: ReplicaState::default(),
            topics: HashMap::new(),
            delta: ReplicaState::default(),
            down: HashSet::new(),
            forgotten: HashSet::new(),
        }
    }

    /// Tracks a new entry on this node; returns its dot.
    pub fn add(&mut self, entry: Entry) -> Dot {
        let dot = Dot {
            node: self.node,
            counter: self.state.context.clock_of(self.node) + 1,
        };
        self.state.context.insert(dot);
        self.delta.context.insert(dot);
        self.delta.values.insert(dot, entry.clone());
        self.index(dot, &entry);
        self.state.values.insert(dot, entry);
        dot
    }

    /// Untracks the entry named `dot` (one of this node's); returns it.
    pub fn remove(&mut self, dot: Dot) -> Option<Entry> {
        let entry = self.state.values.remove(&dot)?;
        self.unindex(dot, &entry);
        self.delta.values.remove(&dot);
        self.delta.context.insert(dot);
        Some(entry)
    }

    /// Merges another node's state or delta; returns the changes a client can see (entries of
    /// down nodes change silently).
    pub fn merge(&mut self, remote: &ReplicaState) -> Changes {
        let forgotten = &self.forgotten;
        let own = self.node;
        // Only this node removes its own entries, and only this node invents its dots.
        let changes = self
            .state
            .join_filtered(remote, |node| forgotten.contains(&node) || node == own);
        for (dot, entry) in &changes.joins {
            self.index(*dot, entry);
        }
        for (dot, entry) in &changes.leaves {
            self.unindex(*dot, entry);
        }
        let down = &self.down;
        Changes {
            joins: (changes.joins.into_iter())
                .filter(|(dot, _)| !down.contains(&dot.node))
                .collect(),
            leaves: (changes.leaves.into_iter())
                .filter(|(dot, _)| !down.contains(&dot.node))
                .collect(),
        }
    }

    /// This node's changes since the last call, to ship to the other nodes.
    pub fn take_delta(&mut self) -> ReplicaState {
        std::mem::take(&mut self.delta)
    }

    /// The whole state, for a node that missed deltas or just started.
    pub fn state(&self) -> &ReplicaState {
        &self.state
    }

    /// Marks `node` down: its entries stop being listed; returns them as leaves.
    pub fn node_down(&mut self, node: NodeId) -> Vec<(Dot, Entry)> {
        if node == self.node || !self.down.insert(node) {
            return Vec::new();
        }
        self.entries_of(node)
    }

    /// Marks `node` up again: its entries are listed again; returns them as joins.
    pub fn node_up(&mut self, node: NodeId) -> Vec<(Dot, Entry)> {
        if !self.down.remove(&node) {
            return Vec::new();
        }
        self.entries_of(node)
    }

    /// Drops `node` for good: its entries and its dots. Returns the entries that were still listed.
    pub fn forget_node(&mut self, node: NodeId) -> Vec<(Dot, Entry)> {
        if node == self.node {
            return Vec::new();
        }
        let was_down = self.down.remove(&node);
        let entries = self.entries_of(node);
        for (dot, entry) in &entries {
            self.state.values.remove(dot);
            self.unindex(*dot, entry);
        }
        self.state.context.remove_node(node);
        self.forgotten.insert(node);
        if was_down { Vec::new() } else { entries }
    }

    /// The listed entries of `topic`, by key, each key's metas in dot order.
    pub fn list(&self, topic: &str) -> Listing {
        let Some(keys) = self.topics.get(topic) else {
            return Vec::new();
        };
        keys.iter()
            .filter_map(|(key, dots)| {
                let metas: Vec<(Dot, Entry)> = dots
                    .iter()
                    .filter(|dot| !self.down.contains(&dot.node))
                    .filter_map(|dot| self.state.values.get(dot).map(|e| (*dot, e.clone())))
                    .collect();
                (!metas.is_empty()).then(|| (key.clone(), metas))
            })
            .collect()
    }

    /// How many entries this replica holds (listed or not).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.state.values.len()
    }

    fn entries_of(&self, node: NodeId) -> Vec<(Dot, Entry)> {
        let mut entries: Vec<(Dot, Entry)> = (self.state.values.iter())
            .filter(|(dot, _)| dot.node == node)
            .map(|(dot, entry)| (*dot, entry.clone()))
            .collect();
        entries.sort_by_key(|(dot, _)| *dot);
        entries
    }

    fn index(&mut self, dot: Dot, entry: &Entry) {
        self.topics
            .entry(entry.topic.clone())
            .or_default()
            .entry(entry.key.clone())
            .or_default()
            .insert(dot);
    }

    fn unindex(&mut self, dot: Dot, entry: &Entry) {
        let Some(keys) = self.topics.get_mut(&entry.topic) else {
            return;
        };
        if let Some(dots) = keys.get_mut(&entry.key) {
            dots.remove(&dot);
            if dots.is_empty() {
                keys.remove(&entry.key);
            }
        }
        if keys.is_empty() {
            self.topics.remove(&entry.topic);
        }
    }
}

/// [`ReplicaState`] as it travels between nodes.
#[derive(Serialize, Deserialize)]
struct WireState {
    entries: Vec<WireEntry>,
    context: CausalContext,
}

#[derive(Serialize, Deserialize)]
struct WireEntry {
    dot: Dot,
    topic: String,
    key: String,
    meta: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prev: Option<Dot>,
}

impl From<ReplicaState> for WireState {
    fn from(state: ReplicaState) -> Self {
        let mut entries: Vec<WireEntry> = (state.values.into_iter())
            .map(|(dot, entry)| WireEntry {
                dot,
                topic: entry.topic.to_string(),
                key: entry.key.to_string(),
                meta: entry.meta.to_string(),
                prev: entry.prev,
            })
            .collect();
        entries.sort_by_key(|entry| entry.dot);
        WireState {
            entries,
            context: state.context,
        }
    }
}

impl From<WireState> for ReplicaState {
    fn from(wire: WireState) -> Self {
        let values = (wire.entries.into_iter())
            .map(|entry| {
                let value = Entry {
                    topic: entry.topic.into(),
                    key: entry.key.into(),
                    meta: entry.meta.into(),
                    prev: entry.prev,
                };
                (entry.dot, value)
            })
            .collect();
        ReplicaState {
            values,
            context: wire.context,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn entry(topic: &str, key: &str) -> Entry {
        Entry {
            topic: topic.into(),
            key: key.into(),
            meta: "{}".into(),
            prev: None,
        }
    }

    fn dot(node: u64, counter: u64) -> Dot {
        Dot {
            node: NodeId(node),
            counter,
        }
    }

    #[test]
    fn context_compacts_contiguous_dots_and_keeps_gaps() {
        let mut context = CausalContext::default();
        context.insert(dot(1, 2));
        assert!(context.contains(&dot(1, 2)));
        assert!(!context.contains(&dot(1, 1)));
        assert_eq!(context.cloud.len(), 1);
        context.insert(dot(1, 1));
        assert_eq!(context.clock_of(NodeId(1)), 2);
        assert!(context.cloud.is_empty());
        let mut other = CausalContext::default();
        other.insert(dot(1, 4));
        other.insert(dot(2, 1));
        context.join(&other);
        assert_eq!(context.clock_of(NodeId(1)), 2);
        assert_eq!(context.clock_of(NodeId(2)), 1);
        assert!(context.contains(&dot(1, 4)) && !context.contains(&dot(1, 3)));
        context.insert(dot(1, 3));
        assert_eq!(context.clock_of(NodeId(1)), 4);
        assert!(context.cloud.is_empty());
    }

    #[test]
    fn a_delta_carries_adds_and_removes_to_another_node() {
        let mut a = Replica::new(NodeId(1));
        let mut b = Replica::new(NodeId(2));
        let d1 = a.add(entry("t", "alice"));
        let d2 = a.add(entry("t", "bob"));
        let changes = b.merge(&a.take_delta());
        assert_eq!(changes.joins.len(), 2);
        a.remove(d1);
        let changes = b.merge(&a.take_delta());
        assert_eq!(changes.leaves.len(), 1);
        assert_eq!(changes.leaves[0].0, d1);
        let listed: Vec<_> = b
            .list("t")
            .into_iter()
            .map(|(k, _)| k.to_string())
            .collect();
        assert_eq!(listed, ["bob"]);
        // Merging the same delta twice, or a whole state, changes nothing more.
        let whole = a.state().clone();
        assert!(b.merge(&whole).joins.is_empty());
        assert!(b.merge(&whole).leaves.is_empty());
        assert!(b.list("t")[0].1.iter().any(|(d, _)| *d == d2));
    }

    #[test]
    fn a_remove_that_overtakes_its_add_wins() {
        let mut a = Replica::new(NodeId(1));
        let mut b = Replica::new(NodeId(2));
        a.add(entry("t", "alice"));
        let add = a.take_delta();
        let d = Dot {
            node: NodeId(1),
            counter: 1,
        };
        a.remove(d);
        let remove = a.take_delta();
        let changes = b.merge(&remove);
        assert!(changes.joins.is_empty() && changes.leaves.is_empty());
        let changes = b.merge(&add);
        assert!(
            changes.joins.is_empty(),
            "a removed entry must not come back"
        );
        assert!(b.list("t").is_empty());
    }

    #[test]
    fn down_nodes_are_hidden_then_listed_again_and_forgotten_nodes_stay_out() {
        let mut a = Replica::new(NodeId(1));
        let mut b = Replica::new(NodeId(2));
        a.add(entry("t", "alice"));
        b.merge(&a.take_delta());
        assert_eq!(b.node_down(NodeId(1)).len(), 1);
        assert!(b.list("t").is_empty());
        assert!(b.node_down(NodeId(1)).is_empty(), "down once");
        assert_eq!(b.node_up(NodeId(1)).len(), 1);
        assert_eq!(b.list("t").len(), 1);
        assert_eq!(b.forget_node(NodeId(1)).len(), 1);
        assert!(b.list("t").is_empty());
        // A stale whole state from the forgotten node does not bring it back.
        assert!(b.merge(a.state()).joins.is_empty());
        assert_eq!(b.len(), 0);
    }

    #[test]
    fn state_travels_as_json() -> Result<(), serde_json::Error> {
        let mut a = Replica::new(NodeId(7));
        let d = a.add(entry("room:1", "alice"));
        let mut updated = entry("room:1", "alice");
        updated.prev = Some(d);
        a.remove(d);
        a.add(updated);
        let text = serde_json::to_string(a.state())?;
        let back: ReplicaState = serde_json::from_str(&text)?;
        assert_eq!(&back, a.state());
        Ok(())
    }

    /// One operation of a random history over three nodes.
    #[derive(Debug, Clone)]
    enum Op {
        Add {
            node: usize,
            key: u8,
        },
        Remove {
            node: usize,
            pick: usize,
        },
        /// `to` merges `from`'s whole state.
        Sync {
            from: usize,
            to: usize,
        },
        /// `to` merges `from`'s delta since its last delta.
        Delta {
            from: usize,
            to: usize,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0..3usize, 0..4u8).prop_map(|(node, key)| Op::Add { node, key }),
            2 => (0..3usize, any::<usize>()).prop_map(|(node, pick)| Op::Remove { node, pick }),
            1 => (0..3usize, 0..3usize).prop_map(|(from, to)| Op::Sync { from, to }),
            1 => (0..3usize, 0..3usize).prop_map(|(from, to)| Op::Delta { from, to }),
        ]
    }

    /// Runs a history; returns the three replicas' states and every delta taken on the way.
    fn run(ops: &[Op]) -> (Vec<Replica>, Vec<ReplicaState>) {
        let mut nodes: Vec<Replica> = (1..=3).map(|n| Replica::new(NodeId(n))).collect();
        let mut deltas = Vec::new();
        for op in ops {
            match *op {
                Op::Add { node, key } => {
                    nodes[node].add(entry("t", &key.to_string()));
                }
                Op::Remove { node, pick } => {
                    let own = NodeId(node as u64 + 1);
                    let mut mine: Vec<Dot> = (nodes[node].state.values.keys())
                        .filter(|dot| dot.node == own)
                        .copied()
                        .collect();
                    mine.sort();
                    if !mine.is_empty() {
                        nodes[node].remove(mine[pick % mine.len()]);
                    }
                }
                Op::Sync { from, to } => {
                    let state = nodes[from].state.clone();
                    nodes[to].merge(&state);
                }
                Op::Delta { from, to } => {
                    let delta = nodes[from].take_delta();
                    nodes[to].merge(&delta);
                    deltas.push(delta);
                }
            }
        }
        (nodes, deltas)
    }

    fn joined(a: &ReplicaState, b: &ReplicaState) -> ReplicaState {
        let mut out = a.clone();
        out.join(b);
        out
    }

    proptest! {
        #[test]
        fn join_is_commutative_associative_and_idempotent(ops in prop::collection::vec(op(), 0..40)) {
            let (nodes, _) = run(&ops);
            let [a, b, c] = [&nodes[0].state, &nodes[1].state, &nodes[2].state];
            prop_assert_eq!(joined(a, b), joined(b, a));
            prop_assert_eq!(joined(&joined(a, b), c), joined(a, &joined(b, c)));
            prop_assert_eq!(&joined(a, a), a);
            prop_assert_eq!(joined(&joined(a, b), b), joined(a, b));
        }

        #[test]
        fn deltas_in_any_order_converge_to_the_whole_state(
            ops in prop::collection::vec(op(), 0..40),
            seed in any::<u64>(),
        ) {
            let (mut nodes, mut deltas) = run(&ops);
            for node in &mut nodes {
                deltas.push(node.take_delta());
            }
            // Shuffle the deltas (a cheap LCG is enough), repeat some, merge into a fresh replica.
            let mut order: Vec<usize> = (0..deltas.len()).collect();
            let mut x = seed | 1;
            for i in (1..order.len()).rev() {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                order.swap(i, (x >> 33) as usize % (i + 1));
            }
            let mut fresh = Replica::new(NodeId(9));
            for &i in order.iter().chain(order.iter().take(3)) {
                fresh.merge(&deltas[i]);
            }
            let mut everything = ReplicaState::default();
            for node in &nodes {
                everything.join(&node.state);
            }
            prop_assert_eq!(&fresh.state.values, &everything.values);
            // And the index agrees with the entries.
            let listed: usize = fresh.list("t").iter().map(|(_, metas)| metas.len()).sum();
            prop_assert_eq!(listed, fresh.len());
        }
    }
}
