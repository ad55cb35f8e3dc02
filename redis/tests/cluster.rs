//! Three Alight nodes and one real Redis: broadcasts, pushes and disconnects reach every node,
//! presence spans the nodes and a silent node's members leave, and a Redis restart is survived.
//! Each test starts its own `redis-server` (skipped with a message if it is not installed).

mod support;

use std::collections::HashMap;
use std::time::Duration;

use alight_protocol::Payload;
use alight_redis::{Envelope, Message, VERSION};
use alight_server::NodeId;
use alight_tests::client::TestClient;
use alight_tests::fixture::API_KEY;
use serde_json::json;
use support::{Node, RedisServer, http, join_presence, n_of, next_event, until_clustered, within};

const LOBBY: &str = "room:lobby";

/// Joins the lobby; returns the join_ref.
async fn join_lobby(client: &mut TestClient) -> String {
    let (join_ref, reply) = within("join", client.join(LOBBY, json!({})))
        .await
        .expect("joins");
    assert_eq!(reply.status, "ok");
    join_ref
}

/// Reads until the `end` broadcast and counts the `(event, n)` of the events on the way.
async fn until_end(client: &mut TestClient) -> HashMap<(String, i64), usize> {
    let mut seen = HashMap::new();
    within("the end marker", async {
        loop {
            let frame = client.recv().await.expect("the socket stays open");
            if frame.topic != LOBBY {
                continue;
            }
            if frame.event() == "end" {
                return;
            }
            if let Some(n) = n_of(&frame) {
                *seen.entry((frame.event().to_owned(), n)).or_insert(0) += 1;
            }
        }
    })
    .await;
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broadcasts_pushes_and_disconnects_reach_every_node_exactly_once() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let a = Node::start(&redis, "fanout", "a").await;
    let b = Node::start(&redis, "fanout", "b").await;
    let c = Node::start(&redis, "fanout", "c").await;
    until_clustered(&[&a, &b, &c]).await;

    let mut sender = a.client(Some("alice")).await;
    let mut others = vec![
        a.client(None).await,
        b.client(Some("bob")).await,
        c.client(Some("bob")).await,
        c.client(Some("carol")).await,
    ];
    let sender_ref = join_lobby(&mut sender).await;
    for client in &mut others {
        join_lobby(client).await;
    }

    // From a channel on node A, sender included.
    let reply = within(
        "shout",
        sender.push(&sender_ref, LOBBY, "shout", json!({"n": 1})),
    )
    .await
    .expect("pushed");
    assert_eq!(reply.status, "ok");
    // (The sender's own copy came before the reply, which the push skipped to.)
    for client in &mut others {
        let frame = next_event(client, LOBBY, "shout").await;
        assert_eq!(n_of(&frame), Some(1));
    }

    // From the HTTP API of node C.
    let auth = format!("Bearer {API_KEY}");
    let body = json!({"topic": LOBBY, "event": "api", "payload": {"n": 2}}).to_string();
    let (status, _) = http(
        c.addr,
        "POST",
        "/api/broadcast",
        &[
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ],
        &body,
    )
    .await;
    assert_eq!(status, 202);
    for client in std::iter::once(&mut sender).chain(&mut others) {
        let frame = next_event(client, LOBBY, "api").await;
        assert_eq!(n_of(&frame), Some(2));
    }

    // broadcast_from: everyone but the sender, on every node.
    let reply = within(
        "shout_from",
        sender.push(&sender_ref, LOBBY, "shout_from", json!({"n": 3})),
    )
    .await
    .expect("pushed");
    assert_eq!(reply.status, "ok");
    for client in &mut others {
        let frame = next_event(client, LOBBY, "shout").await;
        assert_eq!(n_of(&frame), Some(3));
    }

    // Nothing came twice, and the sender did not get its own broadcast_from: an end marker from
    // node B arrives after any duplicate would have.
    b.alight.broadcast(LOBBY, "end", Payload::empty());
    let seen = until_end(&mut sender).await;
    assert!(seen.is_empty(), "the sender saw {seen:?} again");
    for client in &mut others {
        let seen = until_end(client).await;
        assert!(seen.is_empty(), "a subscriber saw {seen:?} again");
    }

    // A push to a socket id reaches its sockets on the other nodes.
    a.alight.push_to_socket(
        "user_socket:bob",
        LOBBY,
        "note",
        Payload::json(&json!({"n": 4})).expect("json"),
    );
    for bob in &mut others[1..3] {
        let frame = next_event(bob, LOBBY, "note").await;
        assert_eq!(n_of(&frame), Some(4));
    }

    // A disconnect by socket id closes bob's sockets on B and C, and only them.
    a.alight.disconnect("user_socket:bob");
    let mut carol = others.pop().expect("carol");
    for bob in others.drain(1..) {
        let mut bob = bob;
        let code = within("bob's close", bob.recv_close())
            .await
            .expect("a close");
        assert_eq!(code, Some(1001));
    }
    let (_, reply) = within("carol's join", carol.join("room:other", json!({})))
        .await
        .expect("carol is still connected");
    assert_eq!(reply.status, "ok");

    for node in [a, b, c] {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn presence_spans_nodes_and_a_silent_node_leaves_everywhere() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let topic = "presence:room";
    let a = Node::start(&redis, "presence", "a").await;
    let b = Node::start(&redis, "presence", "b").await;
    let c = Node::start(&redis, "presence", "c").await;
    until_clustered(&[&a, &b, &c]).await;

    let mut alice = a.client(None).await;
    let mut bob = b.client(None).await;
    let mut carol = c.client(None).await;
    let mut alice_list = join_presence(&mut alice, topic, Some("alice")).await;
    let mut bob_list = join_presence(&mut bob, topic, Some("bob")).await;
    let mut carol_list = join_presence(&mut carol, topic, Some("carol")).await;
    let everyone = ["alice", "bob", "carol"];
    alice_list.until_keys(&mut alice, topic, &everyone).await;
    bob_list.until_keys(&mut bob, topic, &everyone).await;
    carol_list.until_keys(&mut carol, topic, &everyone).await;

    // Node C goes silent (as if killed): no goodbye, no untrack reaches the others.
    c.redis.stop();
    let silent_at = tokio::time::Instant::now();
    alice_list
        .until_keys(&mut alice, topic, &["alice", "bob"])
        .await;
    bob_list
        .until_keys(&mut bob, topic, &["alice", "bob"])
        .await;
    let took = silent_at.elapsed();
    assert!(
        took < Duration::from_secs(1) + Duration::from_millis(1500),
        "carol left after {took:?}, the down period is 1 s"
    );
    assert_eq!(a.redis.stats().nodes_down, 1);
    assert_eq!(b.redis.stats().nodes_down, 1);
    drop(carol);
    c.shutdown().await;

    // A node that starts later gets the whole state.
    let d = Node::start(&redis, "presence", "d").await;
    let mut dave = d.client(None).await;
    within(
        "d to hear from a and b",
        d.redis.wait_until(|redis| redis.stats().syncs >= 2),
    )
    .await;
    let mut dave_list = join_presence(&mut dave, topic, None).await;
    dave_list
        .until_keys(&mut dave, topic, &["alice", "bob"])
        .await;

    for node in [a, b, d] {
        node.shutdown().await;
    }
}

/// Redis killed and started again: local delivery goes on, `/healthz` is degraded then ok, failed
/// publishes are counted, cross-node delivery resumes and presence converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_restart_keeps_local_delivery_and_cross_node_delivery_resumes() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let a = Node::start(&redis, "restart", "a").await;
    let b = Node::start(&redis, "restart", "b").await;
    until_clustered(&[&a, &b]).await;
    let mut a1 = a.client(None).await;
    let mut a2 = a.client(None).await;
    let mut b1 = b.client(None).await;
    let a1_ref = join_lobby(&mut a1).await;
    join_lobby(&mut a2).await;
    let b1_ref = join_lobby(&mut b1).await;
    let topic = "presence:restart";
    let mut alice = a.client(None).await;
    let mut bob = b.client(None).await;
    join_presence(&mut alice, topic, Some("alice")).await;
    let mut bob_list = join_presence(&mut bob, topic, Some("bob")).await;
    bob_list
        .until_keys(&mut bob, topic, &["alice", "bob"])
        .await;

    within("shout", a1.push(&a1_ref, LOBBY, "shout", json!({"n": 1})))
        .await
        .expect("pushed");
    assert_eq!(n_of(&next_event(&mut b1, LOBBY, "shout").await), Some(1));

    redis.kill().await;
    for node in [&a, &b] {
        within(
            "the outage to be noticed",
            node.redis.wait_until(|redis| !redis.is_connected()),
        )
        .await;
    }
    let (status, body) = http(a.addr, "GET", "/healthz", &[], "").await;
    assert_eq!(status, 200);
    assert!(body.starts_with("degraded"), "healthz said {body:?}");

    // Local delivery goes on; what could not cross is counted.
    let failures = a.redis.stats().publish_failures;
    within("shout", a1.push(&a1_ref, LOBBY, "shout", json!({"n": 2})))
        .await
        .expect("pushed");
    assert_eq!(n_of(&next_event(&mut a2, LOBBY, "shout").await), Some(1));
    assert_eq!(n_of(&next_event(&mut a2, LOBBY, "shout").await), Some(2));
    within(
        "the failed publish to be counted",
        a.redis
            .wait_until(|redis| redis.stats().publish_failures > failures),
    )
    .await;

    // Carol joins on A while B cannot hear of it.
    let mut carol = a.client(None).await;
    join_presence(&mut carol, topic, Some("carol")).await;

    let syncs = [a.redis.stats().syncs, b.redis.stats().syncs];
    redis.restart().await;
    for (node, before) in [(&a, syncs[0]), (&b, syncs[1])] {
        within(
            "the nodes to resynchronise",
            node.redis
                .wait_until(|redis| redis.is_connected() && redis.stats().syncs > before),
        )
        .await;
    }
    let (_, body) = http(a.addr, "GET", "/healthz", &[], "").await;
    assert_eq!(body, "ok");
    // Presence converges: what changed during the outage reaches B once Redis is back.
    bob_list
        .until_keys(&mut bob, topic, &["alice", "bob", "carol"])
        .await;

    within("shout", a1.push(&a1_ref, LOBBY, "shout", json!({"n": 3})))
        .await
        .expect("pushed");
    // b1 never got n = 2 (it could not cross), and gets n = 3.
    assert_eq!(n_of(&next_event(&mut b1, LOBBY, "shout").await), Some(3));
    within("shout", b1.push(&b1_ref, LOBBY, "shout", json!({"n": 4})))
        .await
        .expect("pushed");
    let frame = within(
        "n = 4 on a1",
        a1.recv_until(|f| f.event() == "shout" && n_of(f) == Some(4)),
    )
    .await
    .expect("the socket stays open");
    assert_eq!(n_of(&frame), Some(4));

    let metrics = a.alight.metrics_text();
    let failed: u64 = metrics
        .lines()
        .find(|line| line.starts_with("alight_redis_publish_failures_total"))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .expect("the failures counter in /metrics");
    assert!(failed >= 1, "{metrics}");
    assert!(metrics.trim_end().ends_with("# EOF"));

    for node in [a, b] {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn garbage_and_other_versions_are_counted_and_dropped() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let a = Node::start(&redis, "garbage", "a").await;
    let b = Node::start(&redis, "garbage", "b").await;
    until_clustered(&[&a, &b]).await;
    let mut b1 = b.client(None).await;
    join_lobby(&mut b1).await;

    let client = redis::Client::open(redis.url()).expect("url");
    let mut conn = within("connect", client.get_multiplexed_async_connection())
        .await
        .expect("connects");
    let mut future = Envelope {
        origin: NodeId(42),
        message: Message::Broadcast {
            topic: LOBBY.into(),
            event: "shout".into(),
            payload: Payload::empty(),
        },
    }
    .encode()
    .expect("encodes")
    .to_vec();
    future[4] = VERSION + 1;
    for bytes in [b"garbage".to_vec(), future] {
        let _: i64 = within(
            "publish",
            redis::cmd("PUBLISH")
                .arg("alight:garbage")
                .arg(bytes)
                .query_async(&mut conn),
        )
        .await
        .expect("published");
    }
    within(
        "both to be counted",
        a.redis.wait_until(|redis| {
            redis.stats().undecodable >= 1 && redis.stats().version_mismatches >= 1
        }),
    )
    .await;

    // The cluster still works.
    a.alight.broadcast(
        LOBBY,
        "shout",
        Payload::json(&json!({"n": 1})).expect("json"),
    );
    assert_eq!(n_of(&next_event(&mut b1, LOBBY, "shout").await), Some(1));

    for node in [a, b] {
        node.shutdown().await;
    }
}
