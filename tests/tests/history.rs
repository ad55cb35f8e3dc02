//! Topic history over a real socket: positions in the `ref` slot, `position` in join replies,
//! resume with `since`, everything a bad `since` can be, and subscribe-before-snapshot.
//!
//! The fixture's `history:*` keeps 10,000 broadcasts, `brief:*` the last 3 (see
//! `alight_tests::fixture`). "Nothing else arrived" is shown by ordering: a socket's frames leave
//! in the order they were queued, so a marker broadcast that arrives next proves that nothing was
//! sent before it.

mod common;

use alight_protocol::{Body, Frame, Payload};
use alight_server::Config;
use alight_tests::client::TestClient;
use alight_tests::fixture::Server;
use common::{TestResult, metric, server, v2};
use serde_json::{Value, json};

fn number(n: u64) -> Payload {
    Payload::json(&json!({ "n": n })).unwrap_or_else(|_| Payload::empty())
}

/// The next broadcast's `n` and its position (the frame's `ref`).
async fn next_broadcast(
    client: &mut TestClient,
) -> Result<(u64, String), Box<dyn std::error::Error + Send + Sync>> {
    let frame: Frame = client.recv().await?;
    assert_eq!(frame.join_ref, None, "not a broadcast: {frame:?}");
    let Body::Event { payload, .. } = &frame.body else {
        return Err(format!("not a broadcast: {frame:?}").into());
    };
    let n = payload.deserialize::<Value>()?["n"]
        .as_u64()
        .ok_or("a broadcast without n")?;
    let position = frame
        .msg_ref
        .clone()
        .ok_or("a broadcast without a position")?;
    Ok((n, position))
}

/// Joins `topic` with `params`; returns the reply's response.
async fn join(
    client: &mut TestClient,
    topic: &str,
    params: Value,
) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
    let (_, reply) = client.join(topic, params).await?;
    assert_eq!(reply.status, "ok", "{reply:?}");
    Ok(reply.json())
}

fn broadcast(server: &Server, topic: &str, from: u64, to: u64) {
    for n in from..=to {
        server.alight.broadcast(topic, "n", number(n));
    }
}

#[tokio::test]
async fn broadcasts_carry_their_position_and_the_join_reply_the_current_one() -> TestResult {
    let server = server(Config::default()).await;
    let mut client = v2(&server).await?;
    let joined = join(&mut client, "history:a", json!({})).await?;
    let start = joined["position"].as_str().ok_or("no position")?.to_owned();
    assert!(joined.get("recovered").is_none(), "{joined}");
    assert_eq!(
        joined["user"],
        Value::Null,
        "the channel's response is kept"
    );
    let (epoch, offset) = start.split_once('-').ok_or("not <epoch>-<offset>")?;
    assert_eq!(offset, "0");
    broadcast(&server, "history:a", 1, 2);
    assert_eq!(
        next_broadcast(&mut client).await?,
        (1, format!("{epoch}-1"))
    );
    assert_eq!(
        next_broadcast(&mut client).await?,
        (2, format!("{epoch}-2"))
    );
    // A second joiner reads the topic where it is now.
    let mut other = v2(&server).await?;
    let joined = join(&mut other, "history:a", json!({})).await?;
    assert_eq!(joined["position"], format!("{epoch}-2"));
    // Topics without history are as before: no ref, no position.
    join(&mut client, "room:a", json!({})).await?;
    server.alight.broadcast("room:a", "n", number(3));
    let frame = client.recv().await?;
    assert_eq!(frame.msg_ref, None);
    Ok(())
}

#[tokio::test]
async fn v1_broadcasts_carry_the_position_in_ref() -> TestResult {
    let server = server(Config::default()).await;
    let mut client = TestClient::connect(&server.ws_url("1.0.0"), None).await?;
    let joined = join(&mut client, "history:v1", json!({})).await?;
    let start = joined["position"].as_str().ok_or("no position")?.to_owned();
    server.alight.broadcast("history:v1", "n", number(1));
    let text = client.recv_text().await?;
    let epoch = start.trim_end_matches("-0");
    assert_eq!(
        text,
        format!(r#"{{"topic":"history:v1","event":"n","payload":{{"n":1}},"ref":"{epoch}-1"}}"#)
    );
    Ok(())
}

#[tokio::test]
async fn a_resumed_join_replays_what_was_missed_once_in_order_then_live_ones() -> TestResult {
    let server = server(Config::default()).await;
    let mut client = v2(&server).await?;
    join(&mut client, "history:r", json!({})).await?;
    broadcast(&server, "history:r", 1, 3);
    let mut last = String::new();
    for n in 1..=3 {
        let (got, position) = next_broadcast(&mut client).await?;
        assert_eq!(got, n);
        last = position;
    }
    drop(client);
    broadcast(&server, "history:r", 4, 7);

    let mut back = v2(&server).await?;
    let joined = join(&mut back, "history:r", json!({ "since": last })).await?;
    assert_eq!(joined["recovered"], true, "{joined}");
    let top = joined["position"].as_str().ok_or("no position")?.to_owned();
    for n in 4..=7 {
        assert_eq!(next_broadcast(&mut back).await?.0, n);
    }
    broadcast(&server, "history:r", 8, 8);
    let (n, position) = next_broadcast(&mut back).await?;
    assert_eq!(n, 8, "the live broadcast follows the replay, nothing twice");
    assert!(top.ends_with("-7") && position.ends_with("-8"));

    // Resuming from the top replays nothing.
    let mut current = v2(&server).await?;
    let joined = join(&mut current, "history:r", json!({ "since": position })).await?;
    assert_eq!(joined["recovered"], true);
    broadcast(&server, "history:r", 9, 9);
    assert_eq!(next_broadcast(&mut current).await?.0, 9);

    let metrics = server.alight.metrics_text();
    assert_eq!(
        metric(&metrics, "alight_resumes_recovered_total"),
        Some(2.0)
    );
    assert_eq!(
        metric(&metrics, "alight_resumes_not_recovered_total"),
        Some(0.0)
    );
    assert_eq!(metric(&metrics, "alight_replayed_total"), Some(4.0));
    Ok(())
}

#[tokio::test]
async fn a_since_that_cannot_be_recovered_says_so_replays_nothing_and_the_channel_lives()
-> TestResult {
    let server = server(Config::default()).await;
    let mut client = v2(&server).await?;
    let start = join(&mut client, "history:bad", json!({})).await?["position"]
        .as_str()
        .ok_or("no position")?
        .to_owned();
    broadcast(&server, "history:bad", 1, 2);
    let epoch = start.trim_end_matches("-0");
    let other_epoch = if epoch.starts_with('0') { "1" } else { "0" }.to_owned() + &epoch[1..];
    let cases = [
        json!(42),
        json!({ "a": 1 }),
        json!(true),
        json!("garbled"),
        json!("17"),
        json!("x".repeat(10_000)),
        json!(format!("{other_epoch}-1")),
        json!(format!("{epoch}-1000000")),
        json!(format!("{epoch}-99999999999999999999999")),
    ];
    for (i, since) in cases.into_iter().enumerate() {
        let mut resuming = v2(&server).await?;
        let joined = join(&mut resuming, "history:bad", json!({ "since": since })).await?;
        assert_eq!(joined["recovered"], false, "case {i}: {joined}");
        // Two broadcasts, then one marker per case before this one.
        assert_eq!(joined["position"], format!("{epoch}-{}", 2 + i), "case {i}");
        // Nothing replayed: the next frame is a live broadcast.
        let marker = 100 + i as u64;
        server.alight.broadcast("history:bad", "n", number(marker));
        assert_eq!(next_broadcast(&mut resuming).await?.0, marker, "case {i}");
    }
    Ok(())
}

#[tokio::test]
async fn a_since_beyond_what_is_kept_is_not_recovered() -> TestResult {
    let server = server(Config::default()).await;
    let mut client = v2(&server).await?;
    let start = join(&mut client, "brief:a", json!({})).await?["position"]
        .as_str()
        .ok_or("no position")?
        .to_owned();
    broadcast(&server, "brief:a", 1, 4);
    let epoch = start.trim_end_matches("-0");
    let mut late = v2(&server).await?;
    let joined = join(&mut late, "brief:a", json!({ "since": start })).await?;
    assert_eq!(joined["recovered"], false, "4 missed, 3 kept: {joined}");
    let mut later = v2(&server).await?;
    let joined = join(
        &mut later,
        "brief:a",
        json!({ "since": format!("{epoch}-1") }),
    )
    .await?;
    assert_eq!(joined["recovered"], true, "{joined}");
    for n in 2..=4 {
        assert_eq!(next_broadcast(&mut later).await?.0, n);
    }
    Ok(())
}

#[tokio::test]
async fn a_position_from_another_server_run_is_not_recovered() -> TestResult {
    let first = server(Config::default()).await;
    let mut client = v2(&first).await?;
    join(&mut client, "history:run", json!({})).await?;
    broadcast(&first, "history:run", 1, 1);
    let (_, position) = next_broadcast(&mut client).await?;
    drop(client);
    first.shutdown().await?;

    let second = server(Config::default()).await;
    broadcast(&second, "history:run", 1, 1);
    let mut client = v2(&second).await?;
    let joined = join(&mut client, "history:run", json!({ "since": position })).await?;
    assert_eq!(joined["recovered"], false, "{joined}");
    Ok(())
}

#[tokio::test]
async fn what_is_broadcast_while_the_join_runs_follows_the_reply_once() -> TestResult {
    let server = server(Config::default()).await;
    let mut client = v2(&server).await?;
    let joined = join(
        &mut client,
        "history:during",
        json!({ "publish_during_join": 1 }),
    )
    .await?;
    let position = joined["position"].as_str().ok_or("no position")?.to_owned();
    assert!(
        position.ends_with("-0"),
        "read before the join ran: {position}"
    );
    let frame = client.recv().await?;
    assert_eq!(frame.event(), "during_join");
    assert_eq!(
        frame.msg_ref.as_deref(),
        Some(&*position.replace("-0", "-1"))
    );
    server.alight.broadcast("history:during", "n", number(2));
    assert_eq!(next_broadcast(&mut client).await?.0, 2, "nothing twice");
    Ok(())
}

#[tokio::test]
async fn a_channels_own_broadcast_reaches_it_in_position_order() -> TestResult {
    let server = server(Config::default()).await;
    let mut client = v2(&server).await?;
    let (join_ref, reply) = client.join("history:own", json!({})).await?;
    assert_eq!(reply.status, "ok");
    client
        .push(&join_ref, "history:own", "shout", json!({ "n": 1 }))
        .await?;
    let frame = client.recv_until(|f| f.event() == "shout").await?;
    assert!(frame.msg_ref.as_deref().is_some_and(|p| p.ends_with("-1")));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_publishers_reach_a_subscriber_in_position_order() -> TestResult {
    let server = server(Config::default()).await;
    let mut client = v2(&server).await?;
    join(&mut client, "history:race", json!({})).await?;
    let publishers: Vec<_> = (0..4)
        .map(|_| {
            let alight = server.alight.clone();
            tokio::spawn(async move {
                for n in 0..100 {
                    alight
                        .broadcast_and_wait("history:race", "n", number(n))
                        .await;
                }
            })
        })
        .collect();
    for publisher in publishers {
        publisher.await?;
    }
    for expected in 1..=400u64 {
        let (_, position) = next_broadcast(&mut client).await?;
        let offset: u64 = position.rsplit('-').next().ok_or("no offset")?.parse()?;
        assert_eq!(offset, expected);
    }
    Ok(())
}
