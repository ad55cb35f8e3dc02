//! History in Redis Streams across nodes: the positions Redis gives are the ones every node's
//! clients see, a client cut from one node resumes on another with `recovered: true`, and while
//! Redis is unreachable history topics refuse what they cannot keep and lose nothing they took.
//! Each test starts its own `redis-server` (skipped with a message if it is not installed).

mod support;

use std::collections::HashMap;

use alight_protocol::Frame;
use alight_redis::VERSION;
use alight_tests::client::TestClient;
use redis::aio::MultiplexedConnection;
use serde_json::{Value, json};
use support::{
    BYTE_BUDGET, Node, Proxy, RedisServer, api_broadcast, http, n_of, next_event, until_clustered,
    within,
};

/// Joins `topic` with `params`; returns the join_ref and the reply's response.
async fn join(client: &mut TestClient, topic: &str, params: Value) -> (String, Value) {
    let (join_ref, reply) = within("join", client.join(topic, params))
        .await
        .expect("joins");
    assert_eq!(reply.status, "ok", "join of {topic}");
    (join_ref, reply.json())
}

/// The next `count` broadcasts of `event` on `topic`: their `n` and position (the `ref` slot).
async fn positioned(
    client: &mut TestClient,
    topic: &str,
    event: &str,
    count: usize,
) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for _ in 0..count {
        let frame: Frame = next_event(client, topic, event).await;
        let n = n_of(&frame).expect("a numbered broadcast");
        out.push((
            n,
            frame.msg_ref.clone().expect("a position in the ref slot"),
        ));
    }
    out
}

fn offset(position: &str) -> u64 {
    let (_, offset) = position.split_once('-').expect("<epoch>-<offset>");
    offset.parse().expect("a decimal offset")
}

fn epoch(position: &str) -> &str {
    position.split_once('-').expect("<epoch>-<offset>").0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_cut_from_one_node_resumes_on_another_with_what_it_missed() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let a = Node::start(&redis, "resume", "a").await;
    let b = Node::start(&redis, "resume", "b").await;
    let c = Node::start(&redis, "resume", "c").await;
    until_clustered(&[&a, &b, &c]).await;
    let topic = "history:resume";

    let mut watcher = a.client(None).await;
    let (_, joined) = join(&mut watcher, topic, json!({})).await;
    let start = joined["position"].as_str().expect("a position").to_owned();
    assert_eq!(offset(&start), 0);
    let mut cut = b.client(None).await;
    let (cut_ref, joined) = join(&mut cut, topic, json!({})).await;
    assert_eq!(
        joined["position"],
        start.as_str(),
        "one history, seen alike from every node"
    );

    // From a channel on B, then from the HTTP API of A.
    let reply = within("shout", cut.push(&cut_ref, topic, "shout", json!({"n": 1})))
        .await
        .expect("pushed");
    assert_eq!(reply.status, "ok");
    assert_eq!(api_broadcast(a.addr, topic, "shout", 2).await, 202);
    let seen = positioned(&mut cut, topic, "shout", 2).await;
    let watched = positioned(&mut watcher, topic, "shout", 2).await;
    assert_eq!(seen, watched, "the same positions on every node");
    assert_eq!(seen.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [1, 2]);
    for (k, (_, position)) in seen.iter().enumerate() {
        assert_eq!(epoch(position), epoch(&start));
        assert_eq!(offset(position), k as u64 + 1);
    }
    let last = seen[1].1.clone();

    // Cut from B; three more from C's API while it is away.
    drop(cut);
    for n in 3..=5 {
        assert_eq!(api_broadcast(c.addr, topic, "shout", n).await, 202);
    }
    let missed = positioned(&mut watcher, topic, "shout", 3).await;

    // It comes back on C: recovered, and replayed exactly what it missed, with the same positions.
    let mut back = c.client(None).await;
    let (_, joined) = join(&mut back, topic, json!({ "since": last })).await;
    assert_eq!(joined["recovered"], true, "{joined}");
    assert_eq!(joined["position"], missed[2].1.as_str());
    assert_eq!(positioned(&mut back, topic, "shout", 3).await, missed);

    // Then live broadcasts, once.
    assert_eq!(api_broadcast(b.addr, topic, "shout", 6).await, 202);
    let live = positioned(&mut back, topic, "shout", 1).await;
    assert_eq!(live[0].0, 6);
    assert_eq!(offset(&live[0].1), 6);

    // A position of another epoch, or from the future, is not recovered.
    let mut stranger = b.client(None).await;
    let (_, joined) = join(&mut stranger, topic, json!({"since": "000000000001-3"})).await;
    assert_eq!(joined["recovered"], false);
    let future = format!("{}-99", epoch(&start));
    let (_, joined) = join(&mut stranger, "history:resume", json!({ "since": future })).await;
    assert_eq!(joined["recovered"], false);

    for node in [a, b, c] {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broadcast_from_on_a_history_topic_skips_only_the_sender() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let a = Node::start(&redis, "from", "a").await;
    let b = Node::start(&redis, "from", "b").await;
    until_clustered(&[&a, &b]).await;
    let topic = "history:from";
    let mut sender = a.client(None).await;
    let mut same_node = a.client(None).await;
    let mut other_node = b.client(None).await;
    let (sender_ref, _) = join(&mut sender, topic, json!({})).await;
    join(&mut same_node, topic, json!({})).await;
    join(&mut other_node, topic, json!({})).await;

    let reply = within(
        "shout_from",
        sender.push(&sender_ref, topic, "shout_from", json!({"n": 1})),
    )
    .await
    .expect("pushed");
    assert_eq!(reply.status, "ok");
    assert_eq!(api_broadcast(b.addr, topic, "end", 2).await, 202);
    // Both reach the others, in one order on both nodes (whichever Redis ran first).
    let mut orders = Vec::new();
    for client in [&mut same_node, &mut other_node] {
        let mut order = Vec::new();
        for _ in 0..2 {
            let frame = within(
                "a broadcast",
                client.recv_until(|f| f.topic == topic && matches!(f.event(), "shout" | "end")),
            )
            .await
            .expect("the socket stays open");
            order.push((frame.event().to_owned(), frame.msg_ref.clone()));
        }
        orders.push(order);
    }
    assert_eq!(orders[0], orders[1]);
    let end = orders[0].iter().find(|(event, _)| event == "end").cloned();
    // The sender gets the end marker and never its own broadcast.
    let frame = within(
        "the end marker",
        sender.recv_until(|f| f.topic == topic && matches!(f.event(), "shout" | "end")),
    )
    .await
    .expect("the socket stays open");
    assert_eq!(Some((frame.event().to_owned(), frame.msg_ref.clone())), end);
    assert_eq!(api_broadcast(b.addr, topic, "end", 3).await, 202);
    let frame = within(
        "the second end marker",
        sender.recv_until(|f| f.topic == topic && matches!(f.event(), "shout" | "end")),
    )
    .await
    .expect("the socket stays open");
    assert_eq!((frame.event(), n_of(&frame)), ("end", Some(3)));

    for node in [a, b] {
        node.shutdown().await;
    }
}

/// Redis killed and started again (keeping its data): history topics answer 503 (HTTP) and an
/// error (a channel's `try_broadcast`) meanwhile, other topics keep local delivery, and a client
/// cut before the outage resumes afterwards with every broadcast that was accepted, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn history_topics_refuse_broadcasts_while_redis_is_down_and_lose_none_they_accepted() {
    let Some(mut redis) = RedisServer::start_persistent().await else {
        return;
    };
    let a = Node::start(&redis, "outage", "a").await;
    let b = Node::start(&redis, "outage", "b").await;
    until_clustered(&[&a, &b]).await;
    let topic = "history:outage";
    let strict = "strict:outage";
    let lobby = "room:lobby";

    let mut a1 = a.client(None).await;
    join(&mut a1, topic, json!({})).await;
    join(&mut a1, lobby, json!({})).await;
    let (strict_ref, _) = join(&mut a1, strict, json!({})).await;
    let mut b1 = b.client(None).await;
    join(&mut b1, topic, json!({})).await;
    let mut cut = b.client(None).await;
    join(&mut cut, topic, json!({})).await;

    assert_eq!(api_broadcast(a.addr, topic, "n", 1).await, 202);
    let first = positioned(&mut cut, topic, "n", 1).await;
    drop(cut);
    for client in [&mut a1, &mut b1] {
        assert_eq!(positioned(client, topic, "n", 1).await, first);
    }

    redis.kill().await;
    for node in [&a, &b] {
        within(
            "the outage to be noticed",
            node.redis.wait_until(|redis| !redis.is_connected()),
        )
        .await;
    }
    let (_, health) = http(a.addr, "GET", "/healthz", &[], "").await;
    assert!(health.starts_with("degraded"), "healthz said {health:?}");
    // History topics refuse what they cannot keep, through the API and through a channel.
    assert_eq!(api_broadcast(a.addr, topic, "n", 2).await, 503);
    assert_eq!(api_broadcast(b.addr, topic, "n", 2).await, 503);
    let reply = within("strict", a1.push(&strict_ref, strict, "n", json!({"n": 2})))
        .await
        .expect("pushed");
    assert_eq!(reply.status, "error");
    assert_eq!(reply.json()["reason"], "unavailable");
    // Other topics still reach this node's subscribers.
    assert_eq!(api_broadcast(a.addr, lobby, "n", 9).await, 202);
    assert_eq!(n_of(&next_event(&mut a1, lobby, "n").await), Some(9));
    assert!(a.redis.stats().history_refused >= 2);

    redis.restart().await;
    until_clustered(&[&a, &b]).await;
    let (_, health) = http(a.addr, "GET", "/healthz", &[], "").await;
    assert_eq!(health, "ok");
    assert_eq!(api_broadcast(b.addr, topic, "n", 3).await, 202);
    // The live subscribers got 3 next: nothing refused, nothing twice.
    for client in [&mut a1, &mut b1] {
        let got = positioned(client, topic, "n", 1).await;
        assert_eq!(got[0].0, 3);
        assert_eq!(offset(&got[0].1), 2, "a refused broadcast took no position");
    }
    let reply = within("strict", a1.push(&strict_ref, strict, "n", json!({"n": 4})))
        .await
        .expect("pushed");
    assert_eq!(reply.status, "ok");
    // The client cut before the outage resumes on A with what was accepted meanwhile.
    let mut back = a.client(None).await;
    let (_, joined) = join(&mut back, topic, json!({ "since": first[0].1 })).await;
    assert_eq!(joined["recovered"], true, "{joined}");
    let replay = positioned(&mut back, topic, "n", 1).await;
    assert_eq!(replay[0].0, 3);

    for node in [a, b] {
        node.shutdown().await;
    }
}

/// One node cut from Redis while another keeps broadcasting: when it is back, its clients get
/// what they missed, in order and once, before anything newer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_cut_from_redis_replays_what_its_clients_missed_when_it_is_back() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let proxy = Proxy::start(redis.port()).await;
    let a = Node::start_at(&proxy.url(), "cutoff", "a").await;
    let b = Node::start(&redis, "cutoff", "b").await;
    until_clustered(&[&a, &b]).await;
    let topic = "history:cutoff";
    let mut a1 = a.client(None).await;
    join(&mut a1, topic, json!({})).await;
    let mut b1 = b.client(None).await;
    join(&mut b1, topic, json!({})).await;
    assert_eq!(api_broadcast(b.addr, topic, "n", 1).await, 202);
    assert_eq!(positioned(&mut a1, topic, "n", 1).await[0].0, 1);

    proxy.cut();
    within(
        "node a to notice",
        a.redis.wait_until(|redis| !redis.is_connected()),
    )
    .await;
    assert_eq!(api_broadcast(a.addr, topic, "n", 0).await, 503);
    for n in [2, 3] {
        assert_eq!(api_broadcast(b.addr, topic, "n", n).await, 202);
    }
    let sent = positioned(&mut b1, topic, "n", 3).await;

    proxy.restore();
    until_clustered(&[&a, &b]).await;
    assert_eq!(api_broadcast(b.addr, topic, "n", 4).await, 202);
    let got = positioned(&mut a1, topic, "n", 3).await;
    assert_eq!(
        got[..2],
        sent[1..],
        "the missed ones, replayed with their positions"
    );
    assert_eq!(got[2].0, 4);
    assert_eq!(offset(&got[2].1), 4);

    for node in [a, b] {
        node.shutdown().await;
    }
}

/// What Redis keeps of a history topic: the byte total of its meta hash, and each entry's offset
/// and stored size.
struct Stored {
    bytes: u64,
    entries: Vec<(u64, usize)>,
}

fn keys(prefix: &str, topic: &str) -> (String, String) {
    (
        format!("alight:{prefix}:v{VERSION}:stream:{{{topic}}}"),
        format!("alight:{prefix}:v{VERSION}:meta:{{{topic}}}"),
    )
}

async fn stored(conn: &mut MultiplexedConnection, prefix: &str, topic: &str) -> Stored {
    let (stream, meta) = keys(prefix, topic);
    let bytes: u64 = redis::cmd("HGET")
        .arg(&meta)
        .arg("b")
        .query_async(conn)
        .await
        .expect("the meta hash has a byte total");
    let range: Vec<(String, HashMap<String, Vec<u8>>)> = redis::cmd("XRANGE")
        .arg(&stream)
        .arg("-")
        .arg("+")
        .query_async(conn)
        .await
        .expect("the stream reads");
    let entries = range
        .into_iter()
        .map(|(_, fields)| {
            let offset = std::str::from_utf8(&fields["o"])
                .expect("ASCII")
                .parse()
                .expect("a decimal offset");
            (offset, fields["d"].len())
        })
        .collect();
    Stored { bytes, entries }
}

impl Stored {
    fn offsets(&self) -> Vec<u64> {
        self.entries.iter().map(|(offset, _)| *offset).collect()
    }

    /// The byte total is what the entries hold.
    fn assert_counted(&self) {
        let held: usize = self.entries.iter().map(|(_, size)| size).sum();
        assert_eq!(self.bytes, held as u64, "the byte total matches the stream");
    }
}

/// `bytes:*` keeps at most `BYTE_BUDGET` bytes a topic: the oldest broadcasts go first, the total
/// stays exact, a client whose position was dropped is told `recovered: false` on another node,
/// and one whose position is still kept resumes there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_byte_bound_drops_the_oldest_broadcasts_and_resume_works_on_another_node() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let a = Node::start(&redis, "bytes", "a").await;
    let b = Node::start(&redis, "bytes", "b").await;
    until_clustered(&[&a, &b]).await;
    let topic = "bytes:resume";
    let mut watcher = a.client(None).await;
    join(&mut watcher, topic, json!({})).await;

    let mut sent = Vec::new();
    for n in 1..=20 {
        assert_eq!(api_broadcast(a.addr, topic, "n", n).await, 202);
        sent.extend(positioned(&mut watcher, topic, "n", 1).await);
    }
    let mut conn = redis.connection().await;
    let kept = stored(&mut conn, "bytes", topic).await;
    kept.assert_counted();
    let size = kept.entries[0].1 as u64;
    assert!(
        kept.bytes <= BYTE_BUDGET as u64 && kept.bytes + size > BYTE_BUDGET as u64,
        "{} bytes kept of {BYTE_BUDGET}: as many of the newest as fit",
        kept.bytes
    );
    let first = kept.entries.len() as u64;
    assert!((2..18).contains(&first), "kept {first} broadcasts");
    let oldest_kept = 21 - first;
    assert_eq!(kept.offsets(), (oldest_kept..=20).collect::<Vec<_>>());
    // `sent[i]` is at offset `i + 1`.
    let at = |offset: u64| sent[offset as usize - 1].1.as_str();

    // Behind what is kept: not recovered, on the other node.
    for since in [at(1), at(oldest_kept - 2)] {
        let mut behind = b.client(None).await;
        let (_, joined) = join(&mut behind, topic, json!({ "since": since })).await;
        assert_eq!(joined["recovered"], false, "since {since}: {joined}");
        assert_eq!(joined["position"], at(20));
    }

    // Right before what is kept: recovered on the other node, with the same positions.
    let mut resumed = b.client(None).await;
    let since = at(oldest_kept - 1);
    let (_, joined) = join(&mut resumed, topic, json!({ "since": since })).await;
    assert_eq!(joined["recovered"], true, "{joined}");
    let replay = positioned(&mut resumed, topic, "n", first as usize).await;
    assert_eq!(replay, sent[oldest_kept as usize - 1..]);

    // The bound holds as broadcasts keep coming, from either node.
    assert_eq!(api_broadcast(b.addr, topic, "n", 21).await, 202);
    assert_eq!(positioned(&mut resumed, topic, "n", 1).await[0].0, 21);
    let kept = stored(&mut conn, "bytes", topic).await;
    kept.assert_counted();
    assert!(kept.bytes <= BYTE_BUDGET as u64);
    assert_eq!(kept.offsets().last(), Some(&21));
    let before_big = positioned(&mut watcher, topic, "n", 1).await;

    // One broadcast larger than the budget is delivered with its position but not kept: a
    // client right before it is not recovered, and the epoch goes on.
    let auth = format!("Bearer {}", alight_tests::fixture::API_KEY);
    let big =
        json!({"topic": topic, "event": "n", "payload": {"n": 22, "pad": "x".repeat(BYTE_BUDGET)}});
    let (status, _) = http(
        a.addr,
        "POST",
        "/api/broadcast",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        &big.to_string(),
    )
    .await;
    assert_eq!(status, 202);
    let delivered = positioned(&mut watcher, topic, "n", 1).await;
    assert_eq!((delivered[0].0, offset(&delivered[0].1)), (22, 22));
    let kept = stored(&mut conn, "bytes", topic).await;
    assert_eq!((kept.bytes, kept.entries.len()), (0, 0), "nothing kept");
    let mut before = b.client(None).await;
    let (_, joined) = join(&mut before, topic, json!({ "since": before_big[0].1 })).await;
    assert_eq!(joined["recovered"], false, "{joined}");
    assert_eq!(api_broadcast(b.addr, topic, "n", 23).await, 202);
    let after = positioned(&mut watcher, topic, "n", 1).await;
    assert_eq!(epoch(&after[0].1), epoch(&delivered[0].1));
    assert_eq!(offset(&after[0].1), 23);
    let mut resumes = a.client(None).await;
    let (_, joined) = join(&mut resumes, topic, json!({ "since": delivered[0].1 })).await;
    assert_eq!(joined["recovered"], true, "{joined}");
    assert_eq!(positioned(&mut resumes, topic, "n", 1).await, after);

    for node in [a, b] {
        node.shutdown().await;
    }
}

/// Entries dropped for their count or their age leave the byte total too: `few:*` keeps the
/// last 3 for at least a minute; two entries older than that, planted with old ids, go on the
/// next broadcast, and so does each entry past the count.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn count_and_age_trims_keep_the_byte_total_exact() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let a = Node::start(&redis, "trims", "a").await;
    let b = Node::start(&redis, "trims", "b").await;
    until_clustered(&[&a, &b]).await;
    let topic = "few:trims";
    let (stream, meta) = keys("trims", topic);
    let mut conn = redis.connection().await;
    // Two broadcasts from long ago (entry ids are Redis time in ms).
    let epoch = "00000000000a";
    let () = redis::pipe()
        .cmd("XADD")
        .arg(&stream)
        .arg("1-1")
        .arg(&["o", "1", "d", "twelve bytes"])
        .ignore()
        .cmd("XADD")
        .arg(&stream)
        .arg("2-1")
        .arg(&["o", "2", "d", "thirteen byte"])
        .ignore()
        .cmd("HSET")
        .arg(&meta)
        .arg(&["e", epoch, "s", "2", "b", "25"])
        .ignore()
        .query_async(&mut conn)
        .await
        .expect("planted");

    let mut watcher = a.client(None).await;
    let (_, joined) = join(&mut watcher, topic, json!({})).await;
    assert_eq!(joined["position"], format!("{epoch}-2"));
    assert_eq!(api_broadcast(a.addr, topic, "n", 3).await, 202);
    let third = positioned(&mut watcher, topic, "n", 1).await;
    let kept = stored(&mut conn, "trims", topic).await;
    assert_eq!(kept.offsets(), [3], "the old entries went for their age");
    kept.assert_counted();

    // Since 1, broadcast 2 is needed: gone for its age. Since 2: recovered, on the other node.
    let mut back = b.client(None).await;
    let (_, joined) = join(&mut back, topic, json!({ "since": format!("{epoch}-1") })).await;
    assert_eq!(joined["recovered"], false, "{joined}");
    let mut resumed = b.client(None).await;
    let (_, joined) = join(
        &mut resumed,
        topic,
        json!({ "since": format!("{epoch}-2") }),
    )
    .await;
    assert_eq!(joined["recovered"], true, "{joined}");
    assert_eq!(positioned(&mut resumed, topic, "n", 1).await, third);

    for n in 4..=7 {
        assert_eq!(api_broadcast(b.addr, topic, "n", n).await, 202);
    }
    let sent = positioned(&mut watcher, topic, "n", 4).await;
    let kept = stored(&mut conn, "trims", topic).await;
    assert_eq!(kept.offsets(), [5, 6, 7], "the last 3, exactly");
    kept.assert_counted();
    let mut behind = b.client(None).await;
    let (_, joined) = join(&mut behind, topic, json!({ "since": third[0].1 })).await;
    assert_eq!(
        joined["recovered"], false,
        "broadcast 4 went for the count: {joined}"
    );
    let mut late = a.client(None).await;
    let (_, joined) = join(&mut late, topic, json!({ "since": sent[0].1 })).await;
    assert_eq!(joined["recovered"], true, "{joined}");
    assert_eq!(positioned(&mut late, topic, "n", 3).await, sent[1..]);

    for node in [a, b] {
        node.shutdown().await;
    }
}

/// History kept by nodes of the previous layout (keys without the version) is not read: a client
/// holding one of its positions is told `recovered: false`, and the topic starts a new epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn history_of_the_previous_layout_starts_a_new_epoch() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let a = Node::start(&redis, "upgrade", "a").await;
    until_clustered(&[&a]).await;
    let topic = "history:upgrade";
    let mut conn = redis.connection().await;
    let () = redis::cmd("HSET")
        .arg(format!("alight:upgrade:meta:{{{topic}}}"))
        .arg(&["e", "00000000000b", "s", "4"])
        .query_async(&mut conn)
        .await
        .expect("planted");
    let mut client = a.client(None).await;
    let (_, joined) = join(&mut client, topic, json!({ "since": "00000000000b-4" })).await;
    assert_eq!(joined["recovered"], false, "{joined}");
    let position = joined["position"].as_str().expect("a position");
    assert_ne!(epoch(position), "00000000000b");
    assert_eq!(offset(position), 0);
    a.shutdown().await;
}
