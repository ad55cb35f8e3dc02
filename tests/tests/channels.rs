//! Channel semantics over a real socket, frame by frame: heartbeats, joins, pushes and replies,
//! leave/stop/crash, duplicate joins, broadcasts and interception, server pushes, and the V1 and V2
//! binary serializers.
//!
//! Frames are written and compared as raw text (or bytes), so each assertion is the exact wire
//! format a Phoenix client sees. "Nothing arrived" is shown by ordering, never by waiting: replies to
//! one socket go out in the order its messages came in, and everything queued for a socket (its
//! broadcasts and server pushes) leaves in queue order, so a marker that arrives next proves that
//! nothing was sent before it.

mod common;

use alight_protocol::Payload;
use alight_server::Config;
use alight_tests::client::TestClient;
use common::{TestResult, exchange, expect, heartbeat, join, server, v2};
use serde_json::{Value, json};

/// The error reply Phoenix sends for a message on a topic the socket has not joined: without a
/// `join_ref` whatever the message carried (`encode_ignore` in Phoenix's `socket.ex`).
async fn expect_unmatched(client: &mut TestClient, msg_ref: &str, topic: &str) -> TestResult {
    expect(
        client,
        &format!(
            r#"[null,"{msg_ref}","{topic}","phx_reply",{{"status":"error","response":{{"reason":"unmatched topic"}}}}]"#
        ),
    )
    .await
}

#[tokio::test]
async fn heartbeat_on_phoenix_is_answered_ok() -> TestResult {
    let server = server(Config::default()).await;
    let mut client = v2(&server).await?;
    heartbeat(&mut client, "1").await?;
    heartbeat(&mut client, "2").await?;
    Ok(())
}

#[tokio::test]
async fn join_ok_replies_with_the_join_response() -> TestResult {
    let server = server(Config::default()).await;
    let mut client = v2(&server).await?;
    exchange(
        &mut client,
        r#"["3","3","room:lobby","phx_join",{"any":"param"}]"#,
        r#"["3","3","room:lobby","phx_reply",{"status":"ok","response":{"user":null}}]"#,
    )
    .await?;
    assert_eq!(server.alight.registry().subscriber_count("room:lobby"), 1);
    Ok(())
}

#[tokio::test]
async fn refused_join_replies_error_and_leaves_the_topic_unjoined() -> TestResult {
    let server = server(Config::default()).await;
    let mut client = v2(&server).await?;
    exchange(
        &mut client,
        r#"["1","1","room:a","phx_join",{"refuse":"nope"}]"#,
        r#"["1","1","room:a","phx_reply",{"status":"error","response":{"reason":"nope"}}]"#,
    )
    .await?;
    assert_eq!(server.alight.registry().subscriber_count("room:a"), 0);
    client.send_text(r#"["1","2","room:a","ping",{}]"#).await?;
    expect_unmatched(&mut client, "2", "room:a").await?;
    // A later join of the same topic works.
    join(&mut client, "3", "room:a").await?;
    Ok(())
}

#[tokio::test]
async fn join_of_an_unmatched_topic_replies_unmatched_topic() -> TestResult {
    let server = server(Config::default()).await;
    let mut client = v2(&server).await?;
    client
        .send_text(r#"["1","1","nowhere:1","phx_join",{}]"#)
        .await?;
    expect_unmatched(&mut client, "1", "nowhere:1").await?;
    heartbeat(&mut client, "2").await?;
    Ok(())
}

#[tokio::test]
async fn push_to_a_topic_not_joined_replies_unmatched_topic() -> TestResult {
    let server = server(Config::default()).await;
    let mut client = v2(&server).await?;
    join(&mut client, "1", "room:a").await?;
    client.send_text(r#"["9","2","room:b","ping",{}]"#).await?;
    expect_unmatched(&mut client, "2", "room:b").await?;
    // Without a join_ref, as after a server-side drop of the channel.
    client.send_text(r#"[null,"3","room:b","ping",{}]"#).await?;
    expect_unmatched(&mut client, "3", "room:b").await?;
    Ok(())
}

#[tokio::test]
async fn pushes_get_ok_and_error_replies() -> TestResult {
    let server = server(Config::default()).await;
    let mut client = v2(&server).await?;
    join(&mut client, "1", "room:a").await?;
    exchange(
        &mut client,
        r#"["1","2","room:a","ping",{"body":"hi","n":[1,2]}]"#,
        r#"["1","2","room:a","phx_reply",{"status":"ok","response":{"body":"hi","n":[1,2]}}]"#,
    )
    .await?;
    exchange(
        &mut client,
        r#"["1","3","room:a","fail",{}]"#,
        r#"["1","3","room:a","phx_reply",{"status":"error","response":{"reason":"failed"}}]"#,
    )
    .await?;
    exchange(
        &mut client,
        r#"["1","4","room:a","what",{}]"#,
        r#"["1","4","room:a","phx_reply",{"status":"error","response":{"reason":"unknown event"}}]"#,
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn push_made_while_handling_arrives_before_the_reply() -> TestResult {
    let server = server(Config::default()).await;
    let mut client = v2(&server).await?;
    join(&mut client, "1", "room:a").await?;
    client
        .send_text(r#"["1","2","room:a","push_me",{"x":1}]"#)
        .await?;
    expect(&mut client, r#"["1",null,"room:a","pushed",{"x":1}]"#).await?;
    expect(
        &mut client,
        r#"["1","2","room:a","phx_reply",{"status":"ok","response":{}}]"#,
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn noreply_sends_nothing() -> TestResult {
    let server = server(Config::default()).await;
    let mut client = v2(&server).await?;
    join(&mut client, "1", "room:a").await?;
    client
        .send_text(r#"["1","2","room:a","noreply",{}]"#)
        .await?;
    // Replies leave in the order messages came in: the ping's reply comes next only if the
    // `noreply` push got none.
    exchange(
        &mut client,
        r#"["1","3","room:a","ping",{}]"#,
        r#"["1","3","room:a","phx_reply",{"status":"ok","response":{}}]"#,
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn duplicate_join_replaces_the_channel_and_closes_the_old_join_ref() -> TestResult {
    let server = server(Config::default()).await;
    let mut client = v2(&server).await?;
    join(&mut client, "1", "room:a").await?;
    exchange(
        &mut client,
        r#"["1","2","room:a","count",{}]"#,
        r#"["1","2","room:a","phx_reply",{"status":"ok","response":{"count":1}}]"#,
    )
    .await?;
    exchange(
        &mut client,
        r#"["1","3","room:a","count",{}]"#,
        r#"["1","3","room:a","phx_reply",{"status":"ok","response":{"count":2}}]"#,
    )
    .await?;

    // The new join is answered first, then the old channel's phx_close (ref = old join_ref).
    exchange(
        &mut client,
        r#"["4","4","room:a","phx_join",{}]"#,
        r#"["4","4","room:a","phx_reply",{"status":"ok","response":{"user":null}}]"#,
    )
    .await?;
    expect(&mut client, r#"["1","1","room:a","phx_close",{}]"#).await?;

    // The new channel works and its state starts afresh.
    exchange(
        &mut client,
        r#"["4","5","room:a","count",{}]"#,
        r#"["4","5","room:a","phx_reply",{"status":"ok","response":{"count":1}}]"#,
    )
    .await?;

    // One subscription, so a broadcast arrives once.
    assert_eq!(server.alight.registry().subscriber_count("room:a"), 1);
    server
        .alight
        .broadcast("room:a", "news", Payload::from_json_str("{}")?);
    expect(&mut client, r#"[null,null,"room:a","news",{}]"#).await?;
    heartbeat(&mut client, "6").await?;
    Ok(())
}

#[tokio::test]
async fn message_with_a_stale_join_ref_is_ignored() -> TestResult {
    let server = server(Config::default()).await;
    let mut client = v2(&server).await?;
    join(&mut client, "1", "room:a").await?;
    join(&mut client, "2", "room:a").await?;
    expect(&mut client, r#"["1","1","room:a","phx_close",{}]"#).await?;

    // Addressed to the replaced channel: no reply, no effect on the current one.
    client.send_text(r#"["1","3","room:a","count",{}]"#).await?;
    client.send_text(r#"["1","4","room:a","ping",{}]"#).await?;
    exchange(
        &mut client,
        r#"["2","5","room:a","count",{}]"#,
        r#"["2","5","room:a","phx_reply",{"status":"ok","response":{"count":1}}]"#,
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn leave_with_a_stale_join_ref_gets_no_reply_and_keeps_the_channel() -> TestResult {
    // Phoenix's socket.ex: a `phx_leave` whose join_ref is not the current channel's is the client
    // racing a server close, "no need to reply since we already sent close"; the current channel
    // stays joined.
    let server = server(Config::default()).await;
    let mut client = v2(&server).await?;
    join(&mut client, "1", "room:a").await?;
    join(&mut client, "2", "room:a").await?;
    expect(&mut client, r#"["1","1","room:a","phx_close",{}]"#).await?;

    client
        .send_text(r#"["1","3","room:a","phx_leave",{}]"#)
        .await?;
    exchange(
        &mut client,
        r#"["2","4","room:a","ping",{}]"#,
        r#"["2","4","room:a","phx_reply",{"status":"ok","response":{}}]"#,
    )
    .await?;
    assert_eq!(server.alight.registry().subscriber_count("room:a"), 1);
    Ok(())
}

#[tokio::test]
async fn leave_replies_ok_then_closes_and_stops_broadcasts() -> TestResult {
    let server = server(Config::default()).await;
    let mut client = v2(&server).await?;
    join(&mut client, "1", "room:a").await?;
    join(&mut client, "2", "room:b").await?;
    exchange(
        &mut client,
        r#"["1","3","room:a","phx_leave",{}]"#,
        r#"["1","3","room:a","phx_reply",{"status":"ok","response":{}}]"#,
    )
    .await?;
    expect(&mut client, r#"["1","1","room:a","phx_close",{}]"#).await?;
    assert_eq!(server.alight.registry().subscriber_count("room:a"), 0);

    // Both broadcasts go through the socket's one queue: room:b's arriving first proves room:a's
    // was not sent.
    server
        .alight
        .broadcast("room:a", "news", Payload::from_json_str(r#"{"n":1}"#)?);
    server
        .alight
        .broadcast("room:b", "news", Payload::from_json_str(r#"{"n":2}"#)?);
    expect(&mut client, r#"[null,null,"room:b","news",{"n":2}]"#).await?;

    // Pushes to the left topic are unmatched; leaving it again is still answered ok (as Phoenix).
    client.send_text(r#"["1","4","room:a","ping",{}]"#).await?;
    expect_unmatched(&mut client, "4", "room:a").await?;
    exchange(
        &mut client,
        r#"["1","5","room:a","phx_leave",{}]"#,
        r#"["1","5","room:a","phx_reply",{"status":"ok","response":{}}]"#,
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn stop_replies_ok_then_closes_the_channel() -> TestResult {
    let server = server(Config::default()).await;
    let mut client = v2(&server).await?;
    join(&mut client, "1", "room:a").await?;
    exchange(
        &mut client,
        r#"["1","2","room:a","stop",{}]"#,
        r#"["1","2","room:a","phx_reply",{"status":"ok","response":{}}]"#,
    )
    .await?;
    expect(&mut client, r#"["1","1","room:a","phx_close",{}]"#).await?;
    assert_eq!(server.alight.registry().subscriber_count("room:a"), 0);
    client.send_text(r#"["1","3","room:a","ping",{}]"#).await?;
    expect_unmatched(&mut client, "3", "room:a").await?;
    Ok(())
}

#[tokio::test]
async fn crash_errors_only_that_channel_and_rejoin_works() -> TestResult {
    let server = server(Config::default()).await;
    let mut client = v2(&server).await?;
    let mut other = v2(&server).await?;
    join(&mut client, "1", "room:a").await?;
    join(&mut client, "2", "room:b").await?;
    join(&mut other, "1", "room:a").await?;

    client.send_text(r#"["1","3","room:a","crash",{}]"#).await?;
    expect(
        &mut client,
        r#"["1","1","room:a","phx_error",{"reason":"channel_crash"}]"#,
    )
    .await?;
    assert_eq!(server.alight.registry().subscriber_count("room:a"), 1);

    // The socket and its other channel carry on.
    heartbeat(&mut client, "4").await?;
    exchange(
        &mut client,
        r#"["2","5","room:b","ping",{"still":"here"}]"#,
        r#"["2","5","room:b","phx_reply",{"status":"ok","response":{"still":"here"}}]"#,
    )
    .await?;
    client.send_text(r#"["1","6","room:a","ping",{}]"#).await?;
    expect_unmatched(&mut client, "6", "room:a").await?;

    // Another socket's channel on the same topic is untouched.
    server
        .alight
        .broadcast("room:a", "news", Payload::from_json_str("{}")?);
    server
        .alight
        .broadcast("room:b", "news", Payload::from_json_str("{}")?);
    expect(&mut other, r#"[null,null,"room:a","news",{}]"#).await?;
    expect(&mut client, r#"[null,null,"room:b","news",{}]"#).await?;

    // Rejoining gives a fresh channel.
    join(&mut client, "7", "room:a").await?;
    exchange(
        &mut client,
        r#"["7","8","room:a","count",{}]"#,
        r#"["7","8","room:a","phx_reply",{"status":"ok","response":{"count":1}}]"#,
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn crash_during_join_replies_join_crashed() -> TestResult {
    let server = server(Config::default()).await;
    let mut client = v2(&server).await?;
    exchange(
        &mut client,
        r#"["1","1","room:a","phx_join",{"crash":true}]"#,
        r#"["1","1","room:a","phx_reply",{"status":"error","response":{"reason":"join crashed"}}]"#,
    )
    .await?;
    assert_eq!(server.alight.registry().subscriber_count("room:a"), 0);
    heartbeat(&mut client, "2").await?;
    join(&mut client, "3", "room:a").await?;
    Ok(())
}

#[tokio::test]
async fn broadcast_reaches_every_subscriber_with_the_same_bytes() -> TestResult {
    let server = server(Config::default()).await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        let mut client = v2(&server).await?;
        join(&mut client, "1", "room:many").await?;
        clients.push(client);
    }
    let mut bystander = v2(&server).await?;
    join(&mut bystander, "1", "room:other").await?;

    let expected = r#"[null,null,"room:many","shout",{"n":1}]"#;
    clients[0]
        .send_text(r#"["1","2","room:many","shout",{"n":1}]"#)
        .await?;
    // The sender gets its own copy before the reply, as from a Phoenix channel process.
    expect(&mut clients[0], expected).await?;
    expect(
        &mut clients[0],
        r#"["1","2","room:many","phx_reply",{"status":"ok","response":{}}]"#,
    )
    .await?;
    for client in &mut clients[1..] {
        expect(client, expected).await?;
    }
    heartbeat(&mut bystander, "2").await?;
    Ok(())
}

#[tokio::test]
async fn broadcast_from_excludes_the_sender() -> TestResult {
    let server = server(Config::default()).await;
    let mut sender = v2(&server).await?;
    let mut others = Vec::new();
    for _ in 0..2 {
        let mut client = v2(&server).await?;
        join(&mut client, "1", "room:x").await?;
        others.push(client);
    }
    join(&mut sender, "1", "room:x").await?;

    exchange(
        &mut sender,
        r#"["1","2","room:x","shout_from",{"n":1}]"#,
        r#"["1","2","room:x","phx_reply",{"status":"ok","response":{}}]"#,
    )
    .await?;
    for client in &mut others {
        expect(client, r#"[null,null,"room:x","shout",{"n":1}]"#).await?;
    }
    // A later broadcast to everyone is the sender's next frame: the first never reached it.
    server
        .alight
        .broadcast("room:x", "shout", Payload::from_json_str(r#"{"n":2}"#)?);
    expect(&mut sender, r#"[null,null,"room:x","shout",{"n":2}]"#).await?;
    for client in &mut others {
        expect(client, r#"[null,null,"room:x","shout",{"n":2}]"#).await?;
    }
    Ok(())
}

#[tokio::test]
async fn intercepted_broadcast_is_rewritten_per_subscriber() -> TestResult {
    let server = server(Config::default()).await;
    let mut first = v2(&server).await?;
    let mut second = v2(&server).await?;
    join(&mut first, "1", "room:c").await?;
    // A different join_ref on the second socket, to see each subscriber's own.
    join(&mut second, "1", "room:elsewhere").await?;
    join(&mut second, "2", "room:c").await?;

    server.alight.broadcast(
        "room:c",
        "censored",
        Payload::from_json_str(r#"{"secret":"x"}"#)?,
    );
    expect(
        &mut first,
        r#"["1",null,"room:c","censored",{"censored":true}]"#,
    )
    .await?;
    expect(
        &mut second,
        r#"["2",null,"room:c","censored",{"censored":true}]"#,
    )
    .await?;

    // `Outgoing::Forward` sends the broadcast's shared bytes, as if it were not intercepted
    // (no join_ref of the subscriber's own: the frame is not encoded again).
    server.alight.broadcast(
        "room:c",
        "forwarded",
        Payload::from_json_str(r#"{"as":"is"}"#)?,
    );
    expect(
        &mut first,
        r#"[null,null,"room:c","forwarded",{"as":"is"}]"#,
    )
    .await?;
    expect(
        &mut second,
        r#"[null,null,"room:c","forwarded",{"as":"is"}]"#,
    )
    .await?;

    // Events that are not intercepted stay broadcasts.
    server.alight.broadcast(
        "room:c",
        "plain",
        Payload::from_json_str(r#"{"secret":"x"}"#)?,
    );
    expect(&mut first, r#"[null,null,"room:c","plain",{"secret":"x"}]"#).await?;
    Ok(())
}

/// Broadcasts queued together reach the client in the order they were sent, whether they go out
/// as their shared bytes or through the channel's `handle_out`.
#[tokio::test]
async fn plain_and_intercepted_broadcasts_keep_their_order() -> TestResult {
    let server = server(Config::default()).await;
    let mut client = v2(&server).await?;
    join(&mut client, "1", "room:o").await?;
    let sent = [
        ("plain", 1),
        ("censored", 2),
        ("plain", 3),
        ("forwarded", 4),
        ("plain", 5),
        ("censored", 6),
        ("plain", 7),
    ];
    // Queued before the connection's task runs again: one batch, in this order.
    for (event, n) in sent {
        server.alight.broadcast(
            "room:o",
            event,
            Payload::from_json_str(&format!(r#"{{"n":{n}}}"#))?,
        );
    }
    for (event, n) in sent {
        let frame = match event {
            "censored" => r#"["1",null,"room:o","censored",{"censored":true}]"#.to_owned(),
            _ => format!(r#"[null,null,"room:o","{event}",{{"n":{n}}}]"#),
        };
        expect(&mut client, &frame).await?;
    }
    Ok(())
}

#[tokio::test]
async fn server_broadcast_reaches_subscribers_only() -> TestResult {
    let server = server(Config::default()).await;
    let mut a = v2(&server).await?;
    let mut b = v2(&server).await?;
    let mut outsider = v2(&server).await?;
    join(&mut a, "1", "room:s").await?;
    join(&mut b, "1", "room:s").await?;
    join(&mut outsider, "1", "room:t").await?;

    server
        .alight
        .broadcast("room:s", "news", Payload::from_json_str(r#"{"a":1}"#)?);
    server
        .alight
        .broadcast("room:t", "news", Payload::from_json_str(r#"{"t":1}"#)?);
    expect(&mut a, r#"[null,null,"room:s","news",{"a":1}]"#).await?;
    expect(&mut b, r#"[null,null,"room:s","news",{"a":1}]"#).await?;
    expect(&mut outsider, r#"[null,null,"room:t","news",{"t":1}]"#).await?;
    Ok(())
}

#[tokio::test]
async fn push_to_socket_reaches_that_socket_ids_channel_only() -> TestResult {
    let server = server(Config::default()).await;
    let mut alice = TestClient::connect(&server.ws_url("2.0.0"), Some("valid-token")).await?;
    let mut anonymous = v2(&server).await?;
    exchange(
        &mut alice,
        r#"["1","1","room:p","phx_join",{}]"#,
        r#"["1","1","room:p","phx_reply",{"status":"ok","response":{"user":"alice"}}]"#,
    )
    .await?;
    join(&mut anonymous, "1", "room:p").await?;

    // To a topic alice has not joined: dropped. Then to her channel.
    server.alight.push_to_socket(
        "user_socket:alice",
        "room:q",
        "direct",
        Payload::from_json_str(r#"{"d":0}"#)?,
    );
    server.alight.push_to_socket(
        "user_socket:alice",
        "room:p",
        "direct",
        Payload::from_json_str(r#"{"d":1}"#)?,
    );
    expect(&mut alice, r#"["1",null,"room:p","direct",{"d":1}]"#).await?;

    // The anonymous socket's next frame is a later broadcast: it got no push.
    server
        .alight
        .broadcast("room:p", "after", Payload::from_json_str("{}")?);
    expect(&mut anonymous, r#"[null,null,"room:p","after",{}]"#).await?;
    expect(&mut alice, r#"[null,null,"room:p","after",{}]"#).await?;
    Ok(())
}

/// Parses a V1 frame and checks that the server left `join_ref` out, as Phoenix's V1 serializer
/// does (`Map.take([:topic, :event, :payload, :ref])`).
async fn expect_v1(client: &mut TestClient, expected: Value) -> TestResult {
    let text = client.recv_text().await?;
    let got: Value = serde_json::from_str(&text)?;
    assert!(
        got.get("join_ref").is_none(),
        "V1 frame with a join_ref: {text}"
    );
    assert_eq!(got, expected, "{text}");
    Ok(())
}

#[tokio::test]
async fn v1_serializer_speaks_objects_without_join_ref() -> TestResult {
    let server = server(Config::default()).await;
    let mut v1 = TestClient::connect(&server.ws_url("1.0.0"), None).await?;
    let mut v2_client = v2(&server).await?;

    v1.send_text(r#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}"#)
        .await?;
    expect_v1(
        &mut v1,
        json!({"topic":"phoenix","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"1"}),
    )
    .await?;

    v1.send_text(r#"{"topic":"room:v1","event":"phx_join","payload":{},"ref":"2","join_ref":"2"}"#)
        .await?;
    expect_v1(
        &mut v1,
        json!({"topic":"room:v1","event":"phx_reply","payload":{"status":"ok","response":{"user":null}},"ref":"2"}),
    )
    .await?;
    join(&mut v2_client, "1", "room:v1").await?;

    v1.send_text(
        r#"{"topic":"room:v1","event":"ping","payload":{"a":1},"ref":"3","join_ref":"2"}"#,
    )
    .await?;
    expect_v1(
        &mut v1,
        json!({"topic":"room:v1","event":"phx_reply","payload":{"status":"ok","response":{"a":1}},"ref":"3"}),
    )
    .await?;

    v1.send_text(
        r#"{"topic":"room:v1","event":"push_me","payload":{"p":1},"ref":"4","join_ref":"2"}"#,
    )
    .await?;
    expect_v1(
        &mut v1,
        json!({"topic":"room:v1","event":"pushed","payload":{"p":1},"ref":null}),
    )
    .await?;
    expect_v1(
        &mut v1,
        json!({"topic":"room:v1","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"4"}),
    )
    .await?;

    // One broadcast, each subscriber in its own format.
    server
        .alight
        .broadcast("room:v1", "news", Payload::from_json_str(r#"{"b":2}"#)?);
    expect_v1(
        &mut v1,
        json!({"topic":"room:v1","event":"news","payload":{"b":2},"ref":null}),
    )
    .await?;
    expect(&mut v2_client, r#"[null,null,"room:v1","news",{"b":2}]"#).await?;

    v1.send_text(
        r#"{"topic":"room:v1","event":"phx_leave","payload":{},"ref":"5","join_ref":"2"}"#,
    )
    .await?;
    expect_v1(
        &mut v1,
        json!({"topic":"room:v1","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"5"}),
    )
    .await?;
    expect_v1(
        &mut v1,
        json!({"topic":"room:v1","event":"phx_close","payload":{},"ref":"2"}),
    )
    .await?;
    Ok(())
}

/// A V2 binary push, client → server: `0, jr_len, ref_len, topic_len, event_len, …, payload`.
fn binary_push(join_ref: &str, msg_ref: &str, topic: &str, event: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![
        0,
        join_ref.len() as u8,
        msg_ref.len() as u8,
        topic.len() as u8,
        event.len() as u8,
    ];
    for part in [join_ref, msg_ref, topic, event] {
        out.extend_from_slice(part.as_bytes());
    }
    out.extend_from_slice(payload);
    out
}

#[tokio::test]
async fn v2_binary_push_reply_and_broadcast() -> TestResult {
    use tokio_tungstenite::tungstenite::Message;

    let server = server(Config::default()).await;
    let mut client = v2(&server).await?;
    let mut other = v2(&server).await?;
    join(&mut client, "1", "room:bin").await?;
    join(&mut other, "1", "room:bin").await?;
    let blob = [0xde, 0xad, 0x00, 0xbe, 0xef];

    // Reply, kind 1: `1, jr_len, ref_len, topic_len, status_len, jr, ref, topic, status, payload`.
    client
        .send_raw(Message::binary(binary_push(
            "1", "2", "room:bin", "ping", &blob,
        )))
        .await?;
    let mut reply = vec![1, 1, 1, 8, 2];
    reply.extend_from_slice(b"12room:binok");
    reply.extend_from_slice(&blob);
    assert_eq!(client.recv_binary().await?.as_ref(), reply.as_slice());

    // A push to the client, kind 0: `0, jr_len, topic_len, event_len, jr, topic, event, payload`,
    // then the (binary) reply.
    client
        .send_raw(Message::binary(binary_push(
            "1", "3", "room:bin", "push_me", &blob,
        )))
        .await?;
    let mut push = vec![0, 1, 8, 6];
    push.extend_from_slice(b"1room:binpushed");
    push.extend_from_slice(&blob);
    assert_eq!(client.recv_binary().await?.as_ref(), push.as_slice());
    expect(
        &mut client,
        r#"["1","3","room:bin","phx_reply",{"status":"ok","response":{}}]"#,
    )
    .await?;

    // Broadcast, kind 2: `2, topic_len, event_len, topic, event, payload`, same bytes for all.
    server.alight.broadcast(
        "room:bin",
        "blob",
        Payload::Binary(bytes::Bytes::copy_from_slice(&blob)),
    );
    let mut broadcast = vec![2, 8, 4];
    broadcast.extend_from_slice(b"room:binblob");
    broadcast.extend_from_slice(&blob);
    assert_eq!(client.recv_binary().await?.as_ref(), broadcast.as_slice());
    assert_eq!(other.recv_binary().await?.as_ref(), broadcast.as_slice());

    // A client's binary shout goes out as a binary broadcast.
    other
        .send_raw(Message::binary(binary_push(
            "1",
            "2",
            "room:bin",
            "shout_from",
            &blob,
        )))
        .await?;
    let mut shout = vec![2, 8, 5];
    shout.extend_from_slice(b"room:binshout");
    shout.extend_from_slice(&blob);
    assert_eq!(client.recv_binary().await?.as_ref(), shout.as_slice());
    Ok(())
}

/// Dispatches `{"n": n}` as `news` on `topic`, routed to `route`; how many sockets it reached.
fn routed(server: &alight_tests::fixture::Server, route: &str, topic: &str, n: u32) -> usize {
    let payload = Payload::json(&json!({ "n": n })).unwrap_or_else(|_| Payload::empty());
    let shared = alight_protocol::SharedBroadcast::new(topic, "news", payload);
    let message = std::sync::Arc::new(alight_server::Broadcast::routed(route, shared));
    server.alight.registry().dispatch(&message, None)
}

/// Joins `room:r` with `join_ref` "1", subscribing `route` (given as JSON string contents).
async fn join_routed(client: &mut TestClient, route: &str) -> TestResult {
    exchange(
        client,
        &format!(r#"["1","1","room:r","phx_join",{{"route":"{route}"}}]"#),
        r#"["1","1","room:r","phx_reply",{"status":"ok","response":{"user":null}}]"#,
    )
    .await
}

#[tokio::test]
async fn routed_broadcast_reaches_only_the_sockets_of_its_route_until_they_leave() -> TestResult {
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    let server = server(Config::default()).await;
    let mut a = v2(&server).await?;
    let mut b = v2(&server).await?;
    join_routed(&mut a, r"room:r\u001fa").await?;
    join_routed(&mut b, r"room:r\u001fb").await?;
    assert_eq!(server.alight.registry().subscriber_count("room:r"), 2);
    assert_eq!(
        server.alight.registry().subscriber_count("room:r\u{1f}a"),
        1
    );

    // Each reaches one socket, under the channel's topic; `a`'s route is not `b`'s: the plain
    // broadcast arriving next at `b` proves it got nothing before.
    assert_eq!(routed(&server, "room:r\u{1f}a", "room:r", 1), 1);
    expect(&mut a, r#"[null,null,"room:r","news",{"n":1}]"#).await?;
    server
        .alight
        .broadcast("room:r", "news", Payload::from_json_str(r#"{"all":1}"#)?);
    expect(&mut b, r#"[null,null,"room:r","news",{"all":1}]"#).await?;
    expect(&mut a, r#"[null,null,"room:r","news",{"all":1}]"#).await?;
    assert_eq!(routed(&server, "room:r\u{1f}b", "room:r", 2), 1);
    expect(&mut b, r#"[null,null,"room:r","news",{"n":2}]"#).await?;

    // Leaving ends the route with the topic.
    exchange(
        &mut a,
        r#"["1","2","room:r","phx_leave",{}]"#,
        r#"["1","2","room:r","phx_reply",{"status":"ok","response":{}}]"#,
    )
    .await?;
    expect(&mut a, r#"["1","1","room:r","phx_close",{}]"#).await?;
    assert_eq!(
        server.alight.registry().subscriber_count("room:r\u{1f}a"),
        0
    );
    assert_eq!(routed(&server, "room:r\u{1f}a", "room:r", 3), 0);

    // A rejoin replaces the route: the old channel's is dropped, the new one's subscribed.
    exchange(
        &mut b,
        r#"["2","2","room:r","phx_join",{"route":"room:r\u001fc"}]"#,
        r#"["2","2","room:r","phx_reply",{"status":"ok","response":{"user":null}}]"#,
    )
    .await?;
    expect(&mut b, r#"["1","1","room:r","phx_close",{}]"#).await?;
    assert_eq!(
        server.alight.registry().subscriber_count("room:r\u{1f}b"),
        0
    );
    assert_eq!(routed(&server, "room:r\u{1f}c", "room:r", 4), 1);
    expect(&mut b, r#"[null,null,"room:r","news",{"n":4}]"#).await?;

    // So does closing the socket: the TCP connection ends after its subscriptions are released.
    drop(a);
    b.send_raw(Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    })))
    .await?;
    b.recv_close().await?;
    assert_eq!(
        server.alight.registry().subscriber_count("room:r\u{1f}c"),
        0
    );
    assert_eq!(server.alight.registry().subscriber_count("room:r"), 0);
    Ok(())
}

#[tokio::test]
async fn a_refused_join_drops_the_routes_it_subscribed() -> TestResult {
    let server = server(Config::default()).await;
    let mut client = v2(&server).await?;
    exchange(
        &mut client,
        r#"["1","1","room:r","phx_join",{"route":"room:r\u001fx","refuse":"no"}]"#,
        r#"["1","1","room:r","phx_reply",{"status":"error","response":{"reason":"no"}}]"#,
    )
    .await?;
    assert_eq!(
        server.alight.registry().subscriber_count("room:r\u{1f}x"),
        0
    );
    assert_eq!(routed(&server, "room:r\u{1f}x", "room:r", 1), 0);
    Ok(())
}
