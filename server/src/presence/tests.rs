//! Presence end to end without sockets: random histories of tracks, updates, untracks, channel
//! ends, flushes and clients joining at random moments, on one node and on two replicating nodes.
//! Every client runs the client-side sync (`alight_protocol::presence::PresenceSync`, phoenix.js's
//! algorithm) over the state it was pushed and the diffs that followed; at the end each must hold
//! exactly the server's list. Clients get their state the way joiners do
//! ([`Presence::joiner_state`], shared, as of the last diff) or from
//! [`Presence::state_payload`] (everything listed, pending changes included). Throughout, the
//! shared state must be exactly what a client subscribed from the start holds.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alight_protocol::Payload;
use alight_protocol::presence::{PresenceDiff, PresenceState, PresenceSync};

use crate::broadcast::Broadcast;
use proptest::prelude::*;

use super::*;

/// Every diff a node sent, in order.
type Log = Arc<Mutex<Vec<Arc<Broadcast>>>>;

fn node(id: u64, mode: FlushMode) -> (Presence, Log) {
    let log: Log = Arc::default();
    let sink = log.clone();
    let presence = Presence::with_mode(
        NodeId(id),
        mode,
        Box::new(move |diff| lock(&sink).push(diff)),
    );
    (presence, log)
}

fn owner(conn: u64) -> Owner<'static> {
    Owner {
        conn,
        channel: "room:own",
    }
}

fn meta(value: serde_json::Value) -> Arc<str> {
    meta_text(&value).unwrap_or_else(|_| Arc::from("{}"))
}

const TOPICS: [&str; 2] = ["room:a", "room:b"];

/// A client on one topic: its sync and how far into its node's diff log it has read.
struct Client {
    topic: &'static str,
    sync: PresenceSync,
    read: usize,
}

impl Client {
    /// Joins: subscribed first (reads the log from here on), then the state: the shared
    /// joiners' state, or everything listed.
    fn join(presence: &Presence, log: &Log, topic: &'static str, shared: bool) -> Client {
        let read = lock(log).len();
        let state: PresenceState = if shared {
            let frame = presence.joiner_state(topic);
            assert_eq!(frame.frame().event(), STATE_EVENT);
            assert_eq!(frame.frame().join_ref, None);
            frame
                .frame()
                .payload()
                .deserialize()
                .expect("a rendered payload parses")
        } else {
            presence
                .state_payload(topic)
                .deserialize()
                .expect("a rendered payload parses")
        };
        let mut sync = PresenceSync::new();
        sync.handle_state("1", state);
        Client { topic, sync, read }
    }

    fn catch_up(&mut self, log: &Log) {
        let log = lock(log);
        for message in &log[self.read..] {
            let frame = message.frame();
            if frame.topic != self.topic {
                continue;
            }
            assert_eq!(frame.event(), DIFF_EVENT);
            let diff: PresenceDiff = frame
                .payload()
                .deserialize()
                .expect("a rendered payload parses");
            self.sync.handle_diff("1", diff);
        }
        self.read = log.len();
    }
}

/// A state with each key's metas sorted by ref: phoenix.js and the server order metas differently.
fn normalized(state: &PresenceState) -> BTreeMap<String, Vec<String>> {
    state
        .iter()
        .map(|(key, presence)| {
            let mut metas: Vec<String> = presence
                .metas
                .iter()
                .map(|m| serde_json::to_string(m).expect("a meta serializes"))
                .collect();
            metas.sort();
            (key.clone(), metas)
        })
        .collect()
}

#[derive(Debug, Clone)]
enum Op {
    Track {
        node: usize,
        conn: u64,
        topic: usize,
        key: u8,
    },
    Update {
        node: usize,
        conn: u64,
        topic: usize,
        key: u8,
        value: u8,
    },
    Untrack {
        node: usize,
        conn: u64,
        topic: usize,
        key: u8,
    },
    /// The channel of `conn` ends: everything it tracked leaves.
    End {
        node: usize,
        conn: u64,
    },
    Flush {
        node: usize,
        topic: usize,
    },
    /// A client joins `topic` on `node`, with the shared state or everything listed.
    Join {
        node: usize,
        topic: usize,
        shared: bool,
    },
    /// `to` merges `from`'s delta.
    Delta {
        from: usize,
        to: usize,
    },
    /// `to` merges `from`'s whole state.
    States {
        from: usize,
        to: usize,
    },
    /// `on` sees the other node go down, or come back up.
    Toggle {
        on: usize,
    },
}

fn op(nodes: usize) -> BoxedStrategy<Op> {
    let n = 0..nodes;
    let local = prop_oneof![
        4 => (n.clone(), 0..4u64, 0..2usize, 0..3u8)
            .prop_map(|(node, conn, topic, key)| Op::Track { node, conn, topic, key }),
        2 => (n.clone(), 0..4u64, 0..2usize, 0..3u8, any::<u8>())
            .prop_map(|(node, conn, topic, key, value)| Op::Update { node, conn, topic, key, value }),
        2 => (n.clone(), 0..4u64, 0..2usize, 0..3u8)
            .prop_map(|(node, conn, topic, key)| Op::Untrack { node, conn, topic, key }),
        1 => (n.clone(), 0..4u64).prop_map(|(node, conn)| Op::End { node, conn }),
        2 => (n.clone(), 0..2usize).prop_map(|(node, topic)| Op::Flush { node, topic }),
        1 => (n.clone(), 0..2usize, any::<bool>())
            .prop_map(|(node, topic, shared)| Op::Join { node, topic, shared }),
    ];
    if nodes < 2 {
        return local.boxed();
    }
    prop_oneof![
        12 => local,
        2 => (n.clone(), n.clone()).prop_map(|(from, to)| Op::Delta { from, to }),
        1 => (n.clone(), n.clone()).prop_map(|(from, to)| Op::States { from, to }),
        1 => n.prop_map(|on| Op::Toggle { on }),
    ]
    .boxed()
}

/// Runs `ops` on `count` nodes, then brings everything up, exchanges everything and flushes;
/// checks every client against its node's list, and the nodes against each other.
fn converge(count: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let nodes: Vec<(Presence, Log)> = (0..count)
        .map(|i| node(i as u64 + 1, FlushMode::Manual))
        .collect();
    // The first clients, subscribed from the start: what every diff so far adds up to.
    let mut clients: Vec<(usize, Client)> = Vec::new();
    for (i, (presence, log)) in nodes.iter().enumerate() {
        for topic in TOPICS {
            clients.push((i, Client::join(presence, log, topic, true)));
        }
    }
    let first_clients = clients.len();
    let mut down = vec![false; count];
    let exchange = |from: usize, to: usize, whole: bool| {
        if from == to {
            return;
        }
        let states = if whole {
            nodes[from].0.states()
        } else {
            nodes[from].0.take_deltas()
        };
        for state in &states {
            nodes[to].0.merge(state);
        }
    };
    for op in ops {
        match *op {
            Op::Track {
                node,
                conn,
                topic,
                key,
            } => {
                let _ = nodes[node].0.track(
                    owner(conn),
                    TOPICS[topic],
                    &key.to_string(),
                    meta(serde_json::json!({"v": 0})),
                );
            }
            Op::Update {
                node,
                conn,
                topic,
                key,
                value,
            } => {
                let _ = nodes[node].0.update(
                    owner(conn),
                    TOPICS[topic],
                    &key.to_string(),
                    meta(serde_json::json!({"v": value})),
                );
            }
            Op::Untrack {
                node,
                conn,
                topic,
                key,
            } => {
                nodes[node]
                    .0
                    .untrack(owner(conn), TOPICS[topic], &key.to_string());
            }
            Op::End { node, conn } => nodes[node].0.untrack_owner(owner(conn)),
            Op::Flush { node, topic } => nodes[node].0.flush(TOPICS[topic]),
            Op::Join {
                node,
                topic,
                shared,
            } => {
                let (presence, log) = &nodes[node];
                clients.push((node, Client::join(presence, log, TOPICS[topic], shared)));
            }
            Op::Delta { from, to } => exchange(from, to, false),
            Op::States { from, to } => exchange(from, to, true),
            Op::Toggle { on } => {
                let other = nodes[(on + 1) % count].0.node();
                if down[on] {
                    nodes[on].0.node_up(other);
                } else {
                    nodes[on].0.node_down(other);
                }
                down[on] = !down[on];
            }
        }
        // Clients read what was sent so far (diffs interleave with later joins of others).
        for (i, client) in &mut clients {
            client.catch_up(&nodes[*i].1);
        }
        // The shared state, kept or listed afresh, is what the clients that saw every diff hold.
        for (i, client) in &clients[..first_clients] {
            let presence = &nodes[*i].0;
            let kept: PresenceState = (presence.joiner_state(client.topic).frame().payload())
                .deserialize()
                .expect("a rendered payload parses");
            let listing = presence.shard(client.topic).listing_as_sent(client.topic);
            let afresh: PresenceState = render::state(&listing)
                .deserialize()
                .expect("a rendered payload parses");
            let held = normalized(client.sync.state());
            prop_assert_eq!(
                &normalized(&kept),
                &held,
                "kept state of node {} on {}",
                i,
                client.topic
            );
            prop_assert_eq!(
                &normalized(&afresh),
                &held,
                "listed state of node {} on {}",
                i,
                client.topic
            );
        }
    }
    for (on, is_down) in down.iter().enumerate() {
        if *is_down {
            nodes[on].0.node_up(nodes[(on + 1) % count].0.node());
        }
    }
    for from in 0..count {
        for to in 0..count {
            exchange(from, to, false);
        }
    }
    for (presence, _) in &nodes {
        presence.flush_all();
    }
    for (i, client) in &mut clients {
        client.catch_up(&nodes[*i].1);
        let listed = nodes[*i].0.list(client.topic);
        prop_assert_eq!(
            normalized(client.sync.state()),
            normalized(&listed),
            "client of node {} on {}",
            i,
            client.topic
        );
    }
    for topic in TOPICS {
        let first = normalized(&nodes[0].0.list(topic));
        for (presence, _) in &nodes[1..] {
            prop_assert_eq!(&normalized(&presence.list(topic)), &first);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn clients_converge_to_the_list_on_one_node(ops in prop::collection::vec(op(1), 0..60)) {
        converge(1, &ops)?;
    }

    #[test]
    fn clients_converge_to_the_list_on_two_replicating_nodes(ops in prop::collection::vec(op(2), 0..60)) {
        converge(2, &ops)?;
    }
}

fn diffs(log: &Log) -> Vec<serde_json::Value> {
    lock(log)
        .iter()
        .map(|m| {
            m.frame()
                .payload()
                .deserialize()
                .expect("a rendered payload parses")
        })
        .collect()
}

#[test]
fn one_key_on_two_channels_has_two_metas_and_leaves_with_the_last() -> Result<(), TrackError> {
    let (presence, log) = node(1, FlushMode::Manual);
    let first = presence.track(owner(1), "t", "alice", meta(serde_json::json!({"tab": 1})))?;
    let second = presence.track(owner(2), "t", "alice", meta(serde_json::json!({"tab": 2})))?;
    assert_ne!(first, second);
    assert_eq!(presence.list("t")["alice"].metas.len(), 2);
    assert!(matches!(
        presence.track(owner(1), "t", "alice", meta(serde_json::json!({}))),
        Err(TrackError::AlreadyTracked)
    ));
    presence.flush("t");
    presence.untrack_owner(owner(1));
    assert_eq!(presence.list("t")["alice"].metas.len(), 1);
    presence.untrack_owner(owner(2));
    assert!(presence.list("t").is_empty());
    presence.flush("t");
    let sent = diffs(&log);
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[0]["joins"]["alice"]["metas"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(
        sent[1]["leaves"]["alice"]["metas"].as_array().map(Vec::len),
        Some(2)
    );
    Ok(())
}

#[test]
fn an_update_is_a_leave_and_a_join_with_phx_ref_prev() -> Result<(), TrackError> {
    let (presence, log) = node(1, FlushMode::Manual);
    let before = presence.track(
        owner(1),
        "t",
        "alice",
        meta(serde_json::json!({"s": "here"})),
    )?;
    presence.flush("t");
    let after = presence.update(
        owner(1),
        "t",
        "alice",
        meta(serde_json::json!({"s": "away"})),
    )?;
    presence.flush("t");
    let sent = diffs(&log);
    assert_eq!(
        sent[1],
        serde_json::json!({
            "joins": {"alice": {"metas": [{"s": "away", "phx_ref": after, "phx_ref_prev": before}]}},
            "leaves": {"alice": {"metas": [{"s": "here", "phx_ref": before}]}},
        })
    );
    assert!(matches!(
        presence.update(owner(2), "t", "alice", meta(serde_json::json!({}))),
        Err(TrackError::NotTracked)
    ));
    Ok(())
}

#[test]
fn a_track_and_untrack_inside_one_window_sends_nothing() -> Result<(), TrackError> {
    let (presence, log) = node(1, FlushMode::Manual);
    presence.track(owner(1), "t", "ghost", meta(serde_json::json!({})))?;
    presence.update(owner(1), "t", "ghost", meta(serde_json::json!({"v": 1})))?;
    assert!(presence.untrack(owner(1), "t", "ghost"));
    presence.flush_all();
    assert!(lock(&log).is_empty());
    Ok(())
}

#[test]
fn many_joins_inside_one_window_are_one_diff() -> Result<(), TrackError> {
    let (presence, log) = node(1, FlushMode::Manual);
    for conn in 0..1000 {
        presence.track(
            owner(conn),
            "t",
            &conn.to_string(),
            meta(serde_json::json!({})),
        )?;
    }
    presence.flush("t");
    let sent = diffs(&log);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["joins"].as_object().map(|o| o.len()), Some(1000));
    Ok(())
}

#[test]
fn immediate_mode_sends_each_change_at_once() -> Result<(), TrackError> {
    let (presence, log) = node(1, FlushMode::Immediate);
    presence.track(owner(1), "t", "a", meta(serde_json::json!({})))?;
    assert_eq!(lock(&log).len(), 1);
    presence.untrack(owner(1), "t", "a");
    assert_eq!(lock(&log).len(), 2);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_window_flushes_once_after_its_first_change() -> Result<(), TrackError> {
    let (presence, log) = node(1, FlushMode::After(Duration::from_millis(50)));
    presence.track(owner(1), "t", "a", meta(serde_json::json!({})))?;
    tokio::time::sleep(Duration::from_millis(30)).await;
    presence.track(owner(2), "t", "b", meta(serde_json::json!({})))?;
    assert!(lock(&log).is_empty());
    tokio::time::sleep(Duration::from_millis(21)).await;
    let sent = diffs(&log);
    assert_eq!(sent.len(), 1, "one diff 50 ms after the first change");
    assert_eq!(sent[0]["joins"].as_object().map(|o| o.len()), Some(2));
    // The next change opens a new window.
    presence.untrack_owner(owner(1));
    tokio::time::sleep(Duration::from_millis(49)).await;
    assert_eq!(lock(&log).len(), 1);
    tokio::time::sleep(Duration::from_millis(2)).await;
    assert_eq!(lock(&log).len(), 2);
    Ok(())
}

#[test]
fn a_node_going_down_leaves_and_coming_back_joins() -> Result<(), TrackError> {
    let (a, _) = node(1, FlushMode::Manual);
    let (b, b_log) = node(2, FlushMode::Manual);
    a.track(owner(1), "t", "alice", meta(serde_json::json!({})))?;
    for delta in a.take_deltas() {
        b.merge(&delta);
    }
    b.flush("t");
    assert_eq!(b.list("t").len(), 1);
    b.node_down(a.node());
    assert!(b.list("t").is_empty());
    b.flush("t");
    b.node_up(a.node());
    b.flush("t");
    b.forget_node(a.node());
    b.flush("t");
    let sent = diffs(&b_log);
    let sides: Vec<(usize, usize)> = sent
        .iter()
        .map(|d| {
            let count = |side: &str| d[side].as_object().map_or(0, |o| o.len());
            (count("joins"), count("leaves"))
        })
        .collect();
    assert_eq!(sides, [(1, 0), (0, 1), (1, 0), (0, 1)]);
    assert!(b.list("t").is_empty());
    Ok(())
}

/// The keys of a shared joiners' state.
fn shared_keys(presence: &Presence, topic: &str) -> Vec<String> {
    let state: PresenceState = presence
        .joiner_state(topic)
        .frame()
        .payload()
        .deserialize()
        .expect("a rendered payload parses");
    state.into_keys().collect()
}

#[test]
fn joiners_share_the_state_as_of_the_last_diff() -> Result<(), TrackError> {
    let (presence, _) = node(1, FlushMode::Manual);
    assert!(shared_keys(&presence, "t").is_empty());
    presence.track(owner(1), "t", "alice", meta(serde_json::json!({})))?;
    // Pending: not in the joiners' state yet (alice learns of herself in the next diff).
    assert!(shared_keys(&presence, "t").is_empty());
    presence.flush("t");
    let first = presence.joiner_state("t");
    assert_eq!(shared_keys(&presence, "t"), ["alice"]);
    // Changes inside the next window leave the shared frame alone...
    presence.track(owner(2), "t", "bob", meta(serde_json::json!({})))?;
    presence.untrack_owner(owner(1));
    assert!(Arc::ptr_eq(&first, &presence.joiner_state("t")));
    // ...and the next diff replaces it.
    presence.flush("t");
    assert!(!Arc::ptr_eq(&first, &presence.joiner_state("t")));
    assert_eq!(shared_keys(&presence, "t"), ["bob"]);
    // A window whose changes cancel out sends nothing and keeps the frame.
    let kept = presence.joiner_state("t");
    presence.track(owner(3), "t", "ghost", meta(serde_json::json!({})))?;
    presence.untrack_owner(owner(3));
    presence.flush("t");
    assert!(Arc::ptr_eq(&kept, &presence.joiner_state("t")));
    // A topic without members keeps no frame.
    presence.untrack_owner(owner(2));
    presence.flush("t");
    assert!(shared_keys(&presence, "t").is_empty());
    assert!(
        lock(&presence.inner.shards[shard_of("t")])
            .states
            .is_empty()
    );
    Ok(())
}

#[test]
fn a_state_payload_has_phoenix_shape() -> Result<(), TrackError> {
    let (presence, _) = node(1, FlushMode::Manual);
    let phx_ref = presence.track(
        owner(1),
        "t",
        "alice",
        meta(serde_json::json!({"online_at": 1})),
    )?;
    let payload: Payload = presence.state_payload("t");
    assert_eq!(
        payload.deserialize::<serde_json::Value>().ok(),
        Some(serde_json::json!({"alice": {"metas": [{"online_at": 1, "phx_ref": phx_ref}]}}))
    );
    Ok(())
}
