//! Presence across nodes: who else is out there, when they were last heard from, and what to do
//! with the presence they send.
//!
//! | event | what this node does |
//! |---|---|
//! | any message from a node | it is alive; if it was down, its presences are listed again (joins) |
//! | heartbeat with deltas | merges them (clients get the changes as `presence_diff`s) |
//! | hello (a node started or reconnected) | merges its whole state and answers with this node's own |
//! | states (the answer to our hello) | merges them, and marks down the nodes the sender holds down |
//! | a node silent for the down period | declared down once: its presences leave on this node's clients |
//! | a down node silent for the permdown period | forgotten: its entries and history are dropped |
//!
//! While this node's own subscription is broken it hears nobody, and that says nothing about the
//! others: no one is declared down then, and everyone's clock restarts when the subscription is
//! back.
//!
//! # Locking
//! `peers` is a std mutex held only to read or change the table, never across an await and never
//! while calling into [`Presence`] (which takes its own shard locks and fans diffs out).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use alight_server::{NodeId, Presence, ShardState};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::envelope::FullState;
use crate::stats::Stats;

#[derive(Debug)]
struct Peer {
    name: String,
    last_seen: Instant,
    /// Since when the node is declared down.
    down_since: Option<Instant>,
}

/// This node's view of the cluster, and its presence.
#[derive(Debug)]
pub(crate) struct Cluster {
    pub(crate) presence: Presence,
    pub(crate) name: String,
    down_period: Duration,
    permdown_period: Duration,
    peers: Mutex<HashMap<NodeId, Peer>>,
    stats: Arc<Stats>,
}

impl Cluster {
    pub(crate) fn new(
        presence: Presence,
        name: String,
        down_period: Duration,
        permdown_period: Duration,
        stats: Arc<Stats>,
    ) -> Self {
        Cluster {
            presence,
            name,
            down_period,
            permdown_period,
            peers: Mutex::default(),
            stats,
        }
    }

    fn peers(&self) -> MutexGuard<'_, HashMap<NodeId, Peer>> {
        self.peers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A message from `node` arrived: it is alive.
    pub(crate) fn heard(&self, node: NodeId, name: Option<&str>, now: Instant) {
        let came_back = {
            let mut peers = self.peers();
            let peer = peers.entry(node).or_insert_with(|| {
                self.stats.changed();
                info!(node = %name.unwrap_or(""), id = %format_args!("{:016x}", node.0), "node joined");
                Peer {
                    name: String::new(),
                    last_seen: now,
                    down_since: None,
                }
            });
            peer.last_seen = now;
            if let Some(name) = name
                && peer.name != name
            {
                peer.name = name.to_owned();
            }
            peer.down_since.take().is_some()
        };
        if came_back {
            self.stats.changed();
            info!(node = %name.unwrap_or(""), "node heard from again: its presences are listed again");
            self.presence.node_up(node);
        }
    }

    /// Merges presence deltas or states from another node.
    pub(crate) fn merge(&self, states: &[ShardState], now: Instant) {
        self.learn_nodes(states, now);
        for state in states {
            self.presence.merge(state);
        }
    }

    /// Merges a node's whole state; the nodes it holds down are held down here too unless heard
    /// from directly.
    pub(crate) fn merge_full(&self, full: &FullState, now: Instant) {
        let own = self.presence.node();
        let newly_down: Vec<NodeId> = {
            let mut peers = self.peers();
            full.down
                .iter()
                .filter(|&&node| node != own)
                .filter(|&&node| {
                    let peer = peers.entry(node).or_insert(Peer {
                        name: String::new(),
                        last_seen: now,
                        down_since: None,
                    });
                    // Heard from recently here: the sender's view is older than ours.
                    let stale = now.saturating_duration_since(peer.last_seen) >= self.down_period
                        || peer.name.is_empty();
                    if stale && peer.down_since.is_none() {
                        peer.down_since = Some(now);
                        true
                    } else {
                        false
                    }
                })
                .copied()
                .collect()
        };
        for node in newly_down {
            self.stats.changed();
            self.presence.node_down(node);
        }
        self.merge(&full.states, now);
    }

    /// Nodes whose entries arrive before a word from them: watched from now on, so that a node
    /// that already died is declared down after one down period.
    fn learn_nodes(&self, states: &[ShardState], now: Instant) {
        let own = self.presence.node();
        let mut peers = self.peers();
        for state in states {
            for (dot, _) in state.state.entries() {
                if dot.node != own {
                    peers.entry(dot.node).or_insert(Peer {
                        name: String::new(),
                        last_seen: now,
                        down_since: None,
                    });
                }
            }
        }
    }

    /// This node's whole presence and the nodes it holds down: what a hello carries.
    pub(crate) fn full_state(&self) -> FullState {
        let down = (self.peers().iter())
            .filter(|(_, peer)| peer.down_since.is_some())
            .map(|(&node, _)| node)
            .collect();
        FullState {
            name: self.name.clone(),
            states: self.presence.states(),
            down,
        }
    }

    /// Our subscription is back: everyone's silence so far was ours.
    pub(crate) fn restart_clocks(&self, now: Instant) {
        for peer in self.peers().values_mut() {
            peer.last_seen = now;
        }
    }

    /// Declares down the nodes silent for the down period (only while `listening`: our own
    /// subscription works) and forgets those down for the permdown period.
    pub(crate) fn check(&self, now: Instant, listening: bool) {
        let mut down = Vec::new();
        let mut forget = Vec::new();
        self.peers().retain(|&node, peer| match peer.down_since {
            None if listening
                && now.saturating_duration_since(peer.last_seen) >= self.down_period =>
            {
                peer.down_since = Some(now);
                down.push((node, peer.name.clone()));
                true
            }
            Some(since) if now.saturating_duration_since(since) >= self.permdown_period => {
                forget.push(node);
                false
            }
            _ => true,
        });
        for (node, name) in down {
            warn!(
                node = %name,
                id = %format_args!("{:016x}", node.0),
                period = ?self.down_period,
                "node silent for the down period: declared down, its presences leave"
            );
            self.stats.bump_rare(&self.stats.nodes_down);
            self.presence.node_down(node);
        }
        for node in forget {
            self.presence.forget_node(node);
        }
    }

    /// Other nodes heard from within the down period.
    pub(crate) fn peers_up(&self) -> usize {
        (self.peers().values())
            .filter(|peer| peer.down_since.is_none())
            .count()
    }
}
