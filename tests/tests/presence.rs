//! Presence over real sockets, with the `presence:*` fixture: `presence_state` on join,
//! `presence_diff` when others join, update and leave, one key on two sockets, crashes, dropped
//! sockets, failed joins, rejoins, and batching.
//!
//! Most servers here run with an hour-long batch window and the test ends windows itself with
//! `Presence::flush`, so each diff's content is exact. A joiner's `presence_state` is the list as
//! of the topic's last diff, shared by every joiner until the next one and sent without a
//! join_ref; what is still pending, the joiner's own entry included, follows in the next diff. "Nothing else was sent" is shown with a
//! marker broadcast: it goes through the same per-socket queue as diffs, so a diff sent before it
//! would have arrived first. Tests of what happens on its own (a dropped socket, the timer) use a
//! short window and wait for the diff.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use alight_protocol::presence::{PresenceDiff, PresenceState, PresenceSync};
use alight_protocol::{Frame, Payload};
use alight_server::Config;
use alight_tests::client::{ClientError, TestClient};
use alight_tests::fixture::{ONLINE_AT, Server};
use common::{TestResult, server, v2};
use serde_json::{Value, json};

const HOUR: Duration = Duration::from_secs(3600);

fn config(window: Duration) -> Config {
    Config::default().presence_batch_window(window)
}

/// Joins `topic` with `params`; returns the join_ref and the `presence_state` that follows.
async fn join(
    client: &mut TestClient,
    topic: &str,
    params: Value,
) -> Result<(String, PresenceState), Box<dyn std::error::Error + Send + Sync>> {
    let (join_ref, reply) = client.join(topic, params).await?;
    assert_eq!(reply.status, "ok", "join of {topic}: {:?}", reply.json());
    let frame = client
        .recv_until(|f| f.topic == topic && f.event() == "presence_state")
        .await?;
    // Broadcast form: one frame for every joiner (phoenix.js takes it for the topic's channel).
    assert_eq!(frame.join_ref, None);
    assert_eq!(frame.msg_ref, None);
    Ok((join_ref, frame.payload().deserialize()?))
}

/// A client that joined `topic` as `name`.
async fn member(
    server: &Server,
    topic: &str,
    name: &str,
) -> Result<(TestClient, String), Box<dyn std::error::Error + Send + Sync>> {
    let mut client = v2(server).await?;
    let (join_ref, _) = join(&mut client, topic, json!({ "name": name })).await?;
    Ok((client, join_ref))
}

/// A client watching `topic` without being tracked.
async fn observer(
    server: &Server,
    topic: &str,
) -> Result<TestClient, Box<dyn std::error::Error + Send + Sync>> {
    let mut client = v2(server).await?;
    join(&mut client, topic, json!({})).await?;
    Ok(client)
}

/// The next `presence_diff` on `topic`, skipping other frames.
async fn next_diff(client: &mut TestClient, topic: &str) -> Result<PresenceDiff, ClientError> {
    let frame = client
        .recv_until(|f| f.topic == topic && f.event() == "presence_diff")
        .await?;
    Ok(frame
        .payload()
        .deserialize()
        .expect("a presence_diff payload is a diff"))
}

/// The next frame, which must be a `presence_diff` on `topic`; the one after it must be the
/// marker broadcast.
async fn only_diff(
    server: &Server,
    client: &mut TestClient,
    topic: &str,
) -> Result<PresenceDiff, Box<dyn std::error::Error + Send + Sync>> {
    server.alight.presence().flush(topic);
    server.alight.broadcast(topic, "marker", Payload::empty());
    let frame = client.recv().await?;
    assert_eq!(
        frame.event(),
        "presence_diff",
        "expected a diff, got {frame:?}"
    );
    let marker = client.recv().await?;
    assert_eq!(
        marker.event(),
        "marker",
        "a second frame before the marker: {marker:?}"
    );
    Ok(frame.payload().deserialize()?)
}

/// Asserts that nothing is pending: a flush sends nothing before the marker.
async fn nothing_pending(server: &Server, client: &mut TestClient, topic: &str) -> TestResult {
    server.alight.presence().flush(topic);
    server.alight.broadcast(topic, "marker", Payload::empty());
    let frame = client.recv().await?;
    assert_eq!(frame.event(), "marker", "expected no diff, got {frame:?}");
    Ok(())
}

/// key → phx_refs, sorted: what a state or a diff side says about who is there.
fn refs(state: &PresenceState) -> BTreeMap<String, Vec<String>> {
    state
        .iter()
        .map(|(key, presence)| {
            let mut refs: Vec<String> = presence.metas.iter().map(|m| m.phx_ref.clone()).collect();
            refs.sort();
            (key.clone(), refs)
        })
        .collect()
}

/// key → full metas as JSON, sorted.
fn metas(state: &PresenceState) -> BTreeMap<String, Vec<String>> {
    state
        .iter()
        .map(|(key, presence)| {
            let mut metas: Vec<String> = (presence.metas.iter())
                .map(|m| serde_json::to_string(m).expect("a meta serializes"))
                .collect();
            metas.sort();
            (key.clone(), metas)
        })
        .collect()
}

fn keys(state: &PresenceState) -> Vec<&str> {
    state.keys().map(String::as_str).collect()
}

#[tokio::test]
async fn the_state_on_join_lists_everyone_as_of_the_last_diff_and_the_joiner_follows() -> TestResult
{
    let topic = "presence:lobby";
    let server = server(config(HOUR)).await;
    let mut alice = v2(&server).await?;
    let (_, state) = join(&mut alice, topic, json!({"name": "alice"})).await?;
    // Alice's own entry is pending: it comes in the next diff, not in her state.
    assert!(state.is_empty());
    let diff = only_diff(&server, &mut alice, topic).await?;
    assert_eq!(keys(&diff.joins), ["alice"]);
    let meta = &diff.joins["alice"].metas[0];
    assert_eq!(meta.fields.get("online_at"), Some(&json!(ONLINE_AT)));
    assert!(!meta.phx_ref.is_empty() && meta.phx_ref_prev.is_none());

    let mut bob = v2(&server).await?;
    let (_, state) = join(&mut bob, topic, json!({"name": "bob"})).await?;
    assert_eq!(keys(&state), ["alice"]);
    assert_eq!(metas(&state), metas(&diff.joins));
    let diff = only_diff(&server, &mut bob, topic).await?;
    assert_eq!(keys(&diff.joins), ["bob"]);
    // A third joiner gets the whole list, which is the server's now that nothing is pending.
    let mut carol = v2(&server).await?;
    let (_, state) = join(&mut carol, topic, json!({})).await?;
    assert_eq!(keys(&state), ["alice", "bob"]);
    assert_eq!(metas(&state), metas(&server.alight.presence().list(topic)));
    // Another topic is separate.
    let (_, other) = join(&mut bob, "presence:other", json!({})).await?;
    assert!(other.is_empty());
    Ok(())
}

#[tokio::test]
async fn joiners_of_one_window_share_one_state_and_learn_of_each_other_in_the_next_diff()
-> TestResult {
    let topic = "presence:window";
    let server = server(config(HOUR)).await;
    let (_first, _) = member(&server, topic, "first").await?;
    server.alight.presence().flush(topic);
    let mut joiners = Vec::new();
    for name in ["a", "b", "c"] {
        let mut client = v2(&server).await?;
        let (_, state) = join(&mut client, topic, json!({ "name": name })).await?;
        assert_eq!(keys(&state), ["first"], "{name}'s state");
        joiners.push(client);
    }
    server.alight.presence().flush(topic);
    for client in &mut joiners {
        let diff = next_diff(client, topic).await?;
        assert_eq!(keys(&diff.joins), ["a", "b", "c"]);
    }
    Ok(())
}

#[tokio::test]
async fn others_see_a_join_an_update_and_a_leave_as_diffs() -> TestResult {
    let topic = "presence:diffs";
    let server = server(config(HOUR)).await;
    let mut watcher = observer(&server, topic).await?;

    let (mut alice, join_ref) = member(&server, topic, "alice").await?;
    let diff = only_diff(&server, &mut watcher, topic).await?;
    assert_eq!(keys(&diff.joins), ["alice"]);
    assert!(diff.leaves.is_empty());
    let first = diff.joins["alice"].metas[0].clone();
    assert_eq!(first.fields.get("online_at"), Some(&json!(ONLINE_AT)));

    let reply = alice
        .push(&join_ref, topic, "update", json!({"status": "away"}))
        .await?;
    assert_eq!(reply.status, "ok");
    let diff = only_diff(&server, &mut watcher, topic).await?;
    let joined = &diff.joins["alice"].metas[0];
    assert_eq!(joined.phx_ref, reply.json()["phx_ref"]);
    assert_eq!(joined.phx_ref_prev.as_deref(), Some(first.phx_ref.as_str()));
    assert_eq!(joined.fields.get("status"), Some(&json!("away")));
    assert_eq!(diff.leaves["alice"].metas, [first]);

    let left = alice
        .request(Some(&join_ref), topic, "phx_leave", Payload::empty())
        .await?;
    assert_eq!(left.status, "ok");
    let diff = only_diff(&server, &mut watcher, topic).await?;
    assert!(diff.joins.is_empty());
    assert_eq!(
        refs(&diff.leaves)["alice"],
        std::slice::from_ref(&joined.phx_ref)
    );
    assert!(server.alight.presence().list(topic).is_empty());
    Ok(())
}

#[tokio::test]
async fn one_key_on_two_sockets_has_two_metas_and_leaves_with_the_last() -> TestResult {
    let topic = "presence:tabs";
    let server = server(config(HOUR)).await;
    let mut watcher = observer(&server, topic).await?;
    let mut sync = PresenceSync::new();
    sync.handle_state("w", PresenceState::new());

    let (mut tab1, ref1) = member(&server, topic, "alice").await?;
    let (mut tab2, ref2) = member(&server, topic, "alice").await?;
    let diff = only_diff(&server, &mut watcher, topic).await?;
    assert_eq!(diff.joins["alice"].metas.len(), 2);
    sync.handle_diff("w", diff);
    assert_eq!(server.alight.presence().list(topic)["alice"].metas.len(), 2);

    tab1.request(Some(&ref1), topic, "phx_leave", Payload::empty())
        .await?;
    let diff = only_diff(&server, &mut watcher, topic).await?;
    assert_eq!(diff.leaves["alice"].metas.len(), 1);
    sync.handle_diff("w", diff);
    assert_eq!(sync.state()["alice"].metas.len(), 1, "alice is still there");
    assert_eq!(
        metas(sync.state()),
        metas(&server.alight.presence().list(topic))
    );

    tab2.request(Some(&ref2), topic, "phx_leave", Payload::empty())
        .await?;
    let diff = only_diff(&server, &mut watcher, topic).await?;
    assert_eq!(diff.leaves["alice"].metas.len(), 1);
    sync.handle_diff("w", diff);
    assert!(sync.state().is_empty());
    assert!(server.alight.presence().list(topic).is_empty());
    Ok(())
}

#[tokio::test]
async fn a_crashed_channel_leaves_and_the_socket_keeps_working() -> TestResult {
    let topic = "presence:crash";
    let server = server(config(HOUR)).await;
    let mut watcher = observer(&server, topic).await?;
    let (mut alice, join_ref) = member(&server, topic, "alice").await?;
    let joined = only_diff(&server, &mut watcher, topic).await?;

    alice
        .send(&Frame::message(
            Some(join_ref.clone()),
            Some("99".into()),
            topic,
            "crash",
            Payload::empty(),
        ))
        .await?;
    let error = alice.recv_until(|f| f.event() == "phx_error").await?;
    assert_eq!(error.join_ref.as_deref(), Some(join_ref.as_str()));
    let diff = only_diff(&server, &mut watcher, topic).await?;
    assert_eq!(refs(&diff.leaves), refs(&joined.joins));
    assert!(server.alight.presence().list(topic).is_empty());

    // phoenix.js would rejoin: the same socket tracks again, and hears of it in the next diff.
    let (_, state) = join(&mut alice, topic, json!({"name": "alice"})).await?;
    assert!(state.is_empty());
    let diff = only_diff(&server, &mut watcher, topic).await?;
    assert_eq!(keys(&diff.joins), ["alice"]);
    let own = next_diff(&mut alice, topic).await?;
    assert_eq!(refs(&own.joins), refs(&diff.joins));
    Ok(())
}

#[tokio::test]
async fn a_dropped_socket_leaves() -> TestResult {
    let topic = "presence:drop";
    let server = server(config(Duration::from_millis(10))).await;
    let mut watcher = observer(&server, topic).await?;
    let (alice, _) = member(&server, topic, "alice").await?;
    let (_bob, _) = member(&server, topic, "bob").await?;
    let mut seen = PresenceState::new();
    while refs(&seen).len() < 2 {
        let diff = next_diff(&mut watcher, topic).await?;
        seen.extend(diff.joins);
    }
    alice.close().await?;
    let diff = next_diff(&mut watcher, topic).await?;
    assert_eq!(keys(&diff.leaves), ["alice"]);
    assert_eq!(refs(&diff.leaves)["alice"], refs(&seen)["alice"]);
    assert_eq!(keys(&server.alight.presence().list(topic)), ["bob"]);
    Ok(())
}

#[tokio::test]
async fn the_last_socket_of_a_key_dropping_removes_the_key() -> TestResult {
    let topic = "presence:last";
    let server = server(config(Duration::from_millis(10))).await;
    let mut watcher = observer(&server, topic).await?;
    let mut sync = PresenceSync::new();
    sync.handle_state("w", PresenceState::new());
    let (tab1, _) = member(&server, topic, "alice").await?;
    let (tab2, _) = member(&server, topic, "alice").await?;
    while sync.state().get("alice").map_or(0, |p| p.metas.len()) < 2 {
        sync.handle_diff("w", next_diff(&mut watcher, topic).await?);
    }
    tab1.close().await?;
    while sync.state()["alice"].metas.len() > 1 {
        sync.handle_diff("w", next_diff(&mut watcher, topic).await?);
    }
    assert_eq!(keys(sync.state()), ["alice"]);
    tab2.close().await?;
    while !sync.state().is_empty() {
        sync.handle_diff("w", next_diff(&mut watcher, topic).await?);
    }
    assert!(server.alight.presence().list(topic).is_empty());
    Ok(())
}

#[tokio::test]
async fn a_refused_or_crashed_join_keeps_nothing_it_tracked() -> TestResult {
    let topic = "presence:failed";
    let server = server(config(HOUR)).await;
    let mut watcher = observer(&server, topic).await?;
    let mut client = v2(&server).await?;
    let (_, reply) = client
        .join(topic, json!({"name": "ghost", "then": "refuse"}))
        .await?;
    assert_eq!(reply.status, "error");
    let (_, reply) = client
        .join(topic, json!({"name": "ghost", "then": "crash"}))
        .await?;
    assert_eq!(reply.status, "error");
    assert!(server.alight.presence().list(topic).is_empty());
    // Tracked and dropped inside one window, seen by no one: nothing is sent.
    nothing_pending(&server, &mut watcher, topic).await
}

#[tokio::test]
async fn a_rejoin_replaces_the_previous_channel_entry() -> TestResult {
    let topic = "presence:rejoin";
    let server = server(config(HOUR)).await;
    let mut watcher = observer(&server, topic).await?;
    let (mut alice, _) = member(&server, topic, "alice").await?;
    let first = only_diff(&server, &mut watcher, topic).await?;
    // A second join of the same topic on the same socket (the wire allows it). Its state is as
    // of the last diff: the first channel's entry, whose leave is pending with the new join.
    let (_, state) = join(&mut alice, topic, json!({"name": "alice"})).await?;
    assert_eq!(refs(&state), refs(&first.joins));
    let diff = only_diff(&server, &mut watcher, topic).await?;
    assert_eq!(refs(&diff.leaves), refs(&first.joins));
    assert_eq!(diff.joins["alice"].metas.len(), 1);
    assert_eq!(server.alight.presence().list(topic)["alice"].metas.len(), 1);
    Ok(())
}

#[tokio::test]
async fn many_joins_inside_one_window_are_one_diff() -> TestResult {
    const MEMBERS: usize = 40;
    let topic = "presence:batch";
    let server = server(config(HOUR)).await;
    let mut watcher = observer(&server, topic).await?;
    let mut members = Vec::new();
    for i in 0..MEMBERS {
        members.push(member(&server, topic, &format!("user{i}")).await?);
    }
    let diff = only_diff(&server, &mut watcher, topic).await?;
    assert_eq!(diff.joins.len(), MEMBERS);
    assert!(diff.leaves.is_empty());
    // The last member got the whole list in its state.
    let mut last = v2(&server).await?;
    let (_, state) = join(&mut last, topic, json!({})).await?;
    assert_eq!(state.len(), MEMBERS);
    Ok(())
}

/// Nothing flushes the window here: the diff goes out on its own once the window has passed since
/// the first change, and not before. (The window's exact timing is tested on a paused clock in
/// the server's presence unit tests; over real sockets only the lower bound is exact.)
#[tokio::test]
async fn diffs_go_out_at_the_end_of_the_window_on_their_own() -> TestResult {
    const WINDOW: Duration = Duration::from_millis(200);
    let topic = "presence:timer";
    let server = server(config(WINDOW)).await;
    let mut watcher = observer(&server, topic).await?;
    // The window opens with the first track, which the first join makes after this instant.
    let first_join = std::time::Instant::now();
    let mut members = Vec::new();
    for i in 0..5 {
        members.push(member(&server, topic, &format!("user{i}")).await?);
    }
    let mut seen = next_diff(&mut watcher, topic).await?.joins;
    assert!(
        first_join.elapsed() >= WINDOW,
        "a diff went out {:?} after the first change, inside its window of {WINDOW:?}",
        first_join.elapsed()
    );
    while seen.len() < 5 {
        seen.extend(next_diff(&mut watcher, topic).await?.joins);
    }
    Ok(())
}

#[tokio::test]
async fn a_raw_client_with_the_rust_sync_ends_where_the_server_list_is() -> TestResult {
    let topic = "presence:sync";
    let server = server(config(Duration::from_millis(5))).await;
    let mut watcher = v2(&server).await?;
    let (watch_ref, reply) = watcher.join(topic, json!({})).await?;
    assert_eq!(reply.status, "ok");
    let mut sync = PresenceSync::new();

    let (mut alice, alice_ref) = member(&server, topic, "alice").await?;
    let (mut bob1, bob1_ref) = member(&server, topic, "bob").await?;
    let (bob2, _) = member(&server, topic, "bob").await?;
    let (mut carol, carol_ref) = member(&server, topic, "carol").await?;
    alice
        .push(&alice_ref, topic, "update", json!({"status": "away"}))
        .await?;
    bob1.send(&Frame::message(
        Some(bob1_ref),
        Some("9".into()),
        topic,
        "crash",
        Payload::empty(),
    ))
    .await?;
    bob1.recv_until(|f| f.event() == "phx_error").await?;
    bob2.close().await?;
    carol
        .push(&carol_ref, topic, "update", json!({"status": "busy"}))
        .await?;
    carol
        .request(Some(&carol_ref), topic, "phx_leave", Payload::empty())
        .await?;

    // Only alice remains, away; the watcher's sync gets there through the state and the diffs.
    loop {
        let frame = watcher.recv().await?;
        match frame.event() {
            "presence_state" => sync.handle_state(&watch_ref, frame.payload().deserialize()?),
            "presence_diff" => sync.handle_diff(&watch_ref, frame.payload().deserialize()?),
            _ => continue,
        }
        let state = sync.state();
        if keys(state) == ["alice"]
            && state["alice"].metas.len() == 1
            && state["alice"].metas[0].fields.get("status") == Some(&json!("away"))
        {
            break;
        }
    }
    assert_eq!(
        metas(sync.state()),
        metas(&server.alight.presence().list(topic))
    );
    // The fixture's `list` event answers with the same list.
    let reply = alice.push(&alice_ref, topic, "list", json!({})).await?;
    let listed: PresenceState = reply.response.deserialize()?;
    assert_eq!(metas(&listed), metas(sync.state()));
    Ok(())
}
