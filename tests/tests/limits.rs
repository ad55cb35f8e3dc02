//! Per-socket limits and the ways a socket is closed for misbehaving: channel count, join rate,
//! message size, undecodable frames, and a consumer too slow for its outbound queue.
//!
//! Each close test checks that the other sockets on the server are unaffected.

mod common;

use alight_protocol::Payload;
use alight_server::Config;
use alight_tests::client::{ClientError, RECV_TIMEOUT, TestClient};
use common::{TestResult, exchange, expect, heartbeat, join, metric, server, v2};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn joins_over_the_channel_limit_are_refused() -> TestResult {
    let server = server(Config::default().max_channels_per_socket(2)).await;
    let mut client = v2(&server).await?;
    join(&mut client, "1", "room:1").await?;
    join(&mut client, "2", "room:2").await?;
    exchange(
        &mut client,
        r#"["3","3","room:3","phx_join",{}]"#,
        r#"["3","3","room:3","phx_reply",{"status":"error","response":{"reason":"too many channels joined"}}]"#,
    )
    .await?;
    assert_eq!(server.alight.registry().subscriber_count("room:3"), 0);
    // The topic is looked up first: an unknown one is unmatched, whatever the count.
    exchange(
        &mut client,
        r#"["9","9","nowhere:1","phx_join",{}]"#,
        r#"[null,"9","nowhere:1","phx_reply",{"status":"error","response":{"reason":"unmatched topic"}}]"#,
    )
    .await?;

    // Rejoining a joined topic replaces a channel rather than adding one.
    join(&mut client, "4", "room:1").await?;
    expect(&mut client, r#"["1","1","room:1","phx_close",{}]"#).await?;

    // Leaving frees a place.
    exchange(
        &mut client,
        r#"["2","5","room:2","phx_leave",{}]"#,
        r#"["2","5","room:2","phx_reply",{"status":"ok","response":{}}]"#,
    )
    .await?;
    expect(&mut client, r#"["2","2","room:2","phx_close",{}]"#).await?;
    join(&mut client, "6", "room:3").await?;

    // The limit is per socket.
    let mut other = v2(&server).await?;
    join(&mut other, "1", "room:1").await?;
    join(&mut other, "2", "room:2").await?;
    Ok(())
}

#[tokio::test]
async fn joins_over_the_rate_are_refused() -> TestResult {
    let server = server(Config::default().joins_per_second(2)).await;
    let mut client = v2(&server).await?;
    // Sent back to back, so the server handles all three well within one refill period.
    for n in 1..=3 {
        client
            .send_text(&format!(r#"["{n}","{n}","room:{n}","phx_join",{{}}]"#))
            .await?;
    }
    expect(
        &mut client,
        r#"["1","1","room:1","phx_reply",{"status":"ok","response":{"user":null}}]"#,
    )
    .await?;
    expect(
        &mut client,
        r#"["2","2","room:2","phx_reply",{"status":"ok","response":{"user":null}}]"#,
    )
    .await?;
    expect(
        &mut client,
        r#"["3","3","room:3","phx_reply",{"status":"error","response":{"reason":"too many joins"}}]"#,
    )
    .await?;
    assert_eq!(server.alight.registry().subscriber_count("room:3"), 0);
    // The socket stays up, and the budget is per socket.
    heartbeat(&mut client, "4").await?;
    let mut other = v2(&server).await?;
    join(&mut other, "1", "room:1").await?;
    Ok(())
}

#[tokio::test]
async fn oversize_message_closes_with_1009_and_spares_the_others() -> TestResult {
    let server = server(Config::default().max_message_size(1024)).await;
    let mut big = v2(&server).await?;
    let mut bystander = v2(&server).await?;
    join(&mut big, "1", "room:a").await?;
    join(&mut bystander, "1", "room:a").await?;

    // Just under the limit is fine.
    let fits = format!(r#"["1","2","room:a","ping",{{"p":"{}"}}]"#, "x".repeat(900));
    big.send_text(&fits).await?;
    let reply = big.recv_text().await?;
    assert!(reply.starts_with(r#"["1","2","room:a","phx_reply",{"status":"ok""#));

    let too_big = format!(
        r#"["1","3","room:a","ping",{{"p":"{}"}}]"#,
        "x".repeat(2000)
    );
    big.send_text(&too_big).await?;
    assert_eq!(big.recv_close().await?, Some(1009));

    heartbeat(&mut bystander, "2").await?;
    server
        .alight
        .broadcast("room:a", "news", Payload::from_json_str("{}")?);
    expect(&mut bystander, r#"[null,null,"room:a","news",{}]"#).await?;
    Ok(())
}

/// The server reads a socket a few hundred bytes at a time and keeps little room for it, but a
/// message of any size up to the limit arrives whole: a 64 KiB push, and one of the default
/// limit's full size, are answered with their payload.
#[tokio::test]
async fn messages_up_to_the_default_limit_arrive_whole() -> TestResult {
    let limit = Config::default().limits().max_message_size;
    let server = server(Config::default()).await;
    let mut client = v2(&server).await?;
    join(&mut client, "1", "room:a").await?;
    for (n, size) in [(2, 64 * 1024), (3, limit)] {
        let frame = |pad: &str| format!(r#"["1","{n}","room:a","ping",{{"p":"{pad}"}}]"#);
        let pad = "x".repeat(size - frame("").len());
        let push = frame(&pad);
        assert_eq!(push.len(), size);
        client.send_text(&push).await?;
        let reply = client.recv_text().await?;
        let expected = format!(
            r#"["1","{n}","room:a","phx_reply",{{"status":"ok","response":{{"p":"{pad}"}}}}]"#
        );
        assert!(
            reply == expected,
            "the reply to a push of {size} bytes is not its payload"
        );
    }
    Ok(())
}

#[tokio::test]
async fn malformed_frames_close_with_1007_and_spare_the_others() -> TestResult {
    let server = server(Config::default()).await;
    let mut bystander = v2(&server).await?;
    join(&mut bystander, "1", "room:a").await?;

    let v2_url = server.ws_url("2.0.0");
    let v1_url = server.ws_url("1.0.0");
    let cases: Vec<(&str, &str, Message)> = vec![
        ("not JSON", &v2_url, Message::text("not json")),
        (
            "a JSON object on V2",
            &v2_url,
            Message::text(r#"{"topic":"x"}"#),
        ),
        (
            "a short array",
            &v2_url,
            Message::text(r#"["1","1","room:a"]"#),
        ),
        (
            "a number as topic",
            &v2_url,
            Message::text(r#"["1","1",7,"ping",{}]"#),
        ),
        (
            "an unknown binary kind",
            &v2_url,
            Message::binary(vec![9u8, 0, 0]),
        ),
        (
            "a truncated binary push",
            &v2_url,
            Message::binary(vec![0u8, 5, 5, 5]),
        ),
        (
            "an array on V1",
            &v1_url,
            Message::text(r#"[null,"1","phoenix","heartbeat",{}]"#),
        ),
        ("binary on V1", &v1_url, Message::binary(vec![0u8, 1, 2])),
    ];
    for (what, url, message) in cases {
        let mut client = TestClient::connect(url, None).await?;
        client.send_raw(message).await?;
        assert_eq!(client.recv_close().await?, Some(1007), "{what}");
    }

    heartbeat(&mut bystander, "2").await?;
    server
        .alight
        .broadcast("room:a", "news", Payload::from_json_str("{}")?);
    expect(&mut bystander, r#"[null,null,"room:a","news",{}]"#).await?;
    Ok(())
}

#[tokio::test]
async fn oversize_fragmented_message_closes_with_1009() -> TestResult {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

    // Every fragment is under the limit; the message they make is not.
    let server = server(Config::default().max_message_size(1024)).await;
    let mut client = v2(&server).await?;
    join(&mut client, "1", "room:a").await?;
    let chunk = "x".repeat(600);
    let fragments = [
        Frame::message(
            format!(r#"["1","2","room:a","ping",{{"p":"{chunk}"#),
            OpCode::Data(Data::Text),
            false,
        ),
        Frame::message(chunk.clone(), OpCode::Data(Data::Continue), false),
        Frame::message(r#""}]"#, OpCode::Data(Data::Continue), true),
    ];
    for fragment in fragments {
        client.send_raw(Message::Frame(fragment)).await?;
    }
    assert_eq!(client.recv_close().await?, Some(1009));
    Ok(())
}

#[tokio::test]
async fn invalid_utf8_text_closes_with_1007_and_spares_the_others() -> TestResult {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

    let server = server(Config::default()).await;
    let mut bystander = v2(&server).await?;
    heartbeat(&mut bystander, "1").await?;
    let mut client = v2(&server).await?;
    join(&mut client, "1", "room:a").await?;
    // A text frame whose payload is not UTF-8 (RFC 6455 §8.1; the close code for it is 1007).
    let mut bad = br#"["1","2","room:a","ping",{"p":""#.to_vec();
    bad.extend_from_slice(&[0xff, 0xfe]);
    bad.extend_from_slice(br#""}]"#);
    client
        .send_raw(Message::Frame(Frame::message(
            bad,
            OpCode::Data(Data::Text),
            true,
        )))
        .await?;
    assert_eq!(client.recv_close().await?, Some(1007));
    heartbeat(&mut bystander, "2").await?;
    Ok(())
}

/// Readers this many messages behind hold back the publisher: with an outbound queue of 16 a
/// reader never has more than this many queued, so only the stalled socket can overflow.
const WINDOW: u64 = 8;
const READERS: usize = 5;
const QUEUE: usize = 16;

fn tick(seq: u64, pad: &str) -> String {
    format!(r#"{{"seq":{seq},"pad":"{pad}"}}"#)
}

/// Reads ticks until `done`, checking each against the exact broadcast bytes in order; reports
/// progress on `progress` and returns how many ticks arrived, and the client (still connected).
async fn read_ticks(
    mut client: TestClient,
    pad: String,
    progress: watch::Sender<u64>,
) -> Result<(u64, TestClient), ClientError> {
    let done = r#"[null,null,"room:x","done",{}]"#;
    let mut seq = 0;
    loop {
        let text = client.recv_text().await?;
        if text == done {
            return Ok((seq, client));
        }
        let expected = format!(r#"[null,null,"room:x","tick",{}]"#, tick(seq, &pad));
        assert!(
            text == expected,
            "reader got {:.60}… where tick {seq} was due",
            text
        );
        seq += 1;
        progress.send_replace(seq);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_is_disconnected_and_the_readers_get_everything() -> TestResult {
    let server = server(Config::default().outbound_queue(QUEUE)).await;
    let url = server.ws_url("2.0.0");

    // The stalled client's small receive buffer (no autotuning) makes its TCP path fill after a
    // few messages rather than the megabytes loopback autotuning would allow.
    let mut stalled = TestClient::connect_with_recv_buffer(&url, None, 4096).await?;
    join(&mut stalled, "1", "room:x").await?;

    let pad = "x".repeat(2048);
    let mut readers = Vec::new();
    let mut progress = Vec::new();
    for _ in 0..READERS {
        let mut client = TestClient::connect(&url, None).await?;
        join(&mut client, "1", "room:x").await?;
        let (tx, rx) = watch::channel(0u64);
        readers.push(tokio::spawn(read_ticks(client, pad.clone(), tx)));
        progress.push(rx);
    }
    assert_eq!(
        server.alight.registry().subscriber_count("room:x"),
        READERS + 1
    );

    // Publish until the stalled socket overflowed (the counter moves at that moment), and at least
    // a couple of thousand messages; then some more, to show the readers carry on.
    let slow_count = |alight: &alight_server::Alight| {
        metric(
            &alight.metrics_text(),
            "alight_slow_consumer_disconnects_total",
        )
        .unwrap_or(0.0)
    };
    let started = std::time::Instant::now();
    let mut seq: u64 = 0;
    let mut detected_at: Option<u64> = None;
    while detected_at.is_none_or(|at| seq < (at + 200).max(2000)) {
        assert!(seq < 50_000, "the stalled socket was never found slow");
        for rx in &mut progress {
            tokio::time::timeout(
                RECV_TIMEOUT,
                rx.wait_for(|&received| received + WINDOW > seq),
            )
            .await??;
        }
        server
            .alight
            .broadcast("room:x", "tick", Payload::from_json_str(&tick(seq, &pad))?);
        seq += 1;
        if detected_at.is_none() && seq.is_multiple_of(16) && slow_count(&server.alight) > 0.0 {
            detected_at = Some(seq);
        }
    }
    server
        .alight
        .broadcast("room:x", "done", Payload::from_json_str("{}")?);

    let mut connected = Vec::new();
    for reader in readers {
        let (received, client) = reader.await??;
        assert_eq!(received, seq, "a reader missed messages");
        connected.push(client);
    }

    // The stalled socket's connection ends: a 1013 close if the frame got through, else EOF/reset.
    let code = stalled.recv_close().await?;
    assert!(
        matches!(code, Some(1013) | None),
        "stalled socket closed with {code:?}"
    );
    // Its connection task unsubscribes before the TCP connection ends.
    assert_eq!(server.alight.registry().subscriber_count("room:x"), READERS);
    assert_eq!(slow_count(&server.alight), 1.0);
    eprintln!(
        "slow consumer found after {detected_at:?} of {seq} broadcasts in {:?}",
        started.elapsed()
    );
    for client in &mut connected {
        heartbeat(client, "2").await?;
    }
    Ok(())
}

/// Sends `count` shouts made by `shout(seq)`, keeping `in_flight` awaiting their replies, as a
/// flat-out publisher does; returns once every one is answered.
async fn shout_flat_out(
    publisher: &mut TestClient,
    count: u64,
    in_flight: u64,
    shout: impl Fn(u64) -> String,
) -> Result<(), ClientError> {
    let mut sent = 0;
    while sent < in_flight.min(count) {
        publisher.send_text(&shout(sent)).await?;
        sent += 1;
    }
    let mut acked = 0;
    while acked < count {
        let frame = publisher.recv().await?;
        if frame.event() == "phx_reply" {
            acked += 1;
            if sent < count {
                publisher.send_text(&shout(sent)).await?;
                sent += 1;
            }
        }
    }
    Ok(())
}

/// A client that pushes broadcasts as fast as it gets replies (16 in flight) does not make the
/// server close subscribers that read everything it sends: the publisher is paced to the rate its
/// broadcasts are written out, and the subscribers' small queues never overflow.
#[tokio::test]
async fn a_publisher_flat_out_does_not_overflow_subscribers_that_keep_up() -> TestResult {
    const SUBSCRIBERS: usize = 20;
    const SHOUTS: u64 = 400;
    const IN_FLIGHT: u64 = 16;
    // Smaller than what the publisher keeps in flight: reading its 16 waiting shouts at once
    // would overflow every subscriber's queue.
    let server = server(Config::default().outbound_queue(4)).await;
    let url = server.ws_url("2.0.0");

    let mut readers = Vec::new();
    for _ in 0..SUBSCRIBERS {
        let mut client = TestClient::connect(&url, None).await?;
        join(&mut client, "1", "room:flat").await?;
        readers.push(tokio::spawn(async move {
            for seq in 0..SHOUTS {
                let text = client.recv_text().await?;
                let expected = format!(r#"[null,null,"room:flat","shout",{{"seq":{seq}}}]"#);
                assert_eq!(text, expected, "a subscriber missed or reordered a shout");
            }
            Ok::<_, ClientError>(client)
        }));
    }

    let mut publisher = TestClient::connect(&url, None).await?;
    join(&mut publisher, "1", "room:flat").await?;
    shout_flat_out(&mut publisher, SHOUTS, IN_FLIGHT, |seq| {
        format!(r#"["1","{seq}","room:flat","shout",{{"seq":{seq}}}]"#)
    })
    .await?;

    for reader in readers {
        let mut client = tokio::time::timeout(RECV_TIMEOUT, reader).await???;
        heartbeat(&mut client, "2").await?;
    }
    let slow = metric(
        &server.alight.metrics_text(),
        "alight_slow_consumer_disconnects_total",
    );
    assert_eq!(slow, Some(0.0), "subscribers were closed as slow consumers");
    Ok(())
}

/// A subscriber that stops reading holds the broadcasts queued for it, which pacing waits on; the
/// publisher is slowed (a window per pacing timeout), not stopped, until the stalled subscriber's
/// queue overflows and it is closed; the subscriber that reads gets every shout.
#[tokio::test]
async fn a_stalled_subscriber_slows_a_publisher_until_it_is_closed() -> TestResult {
    // Enough to fill the stalled socket's kernel buffers (megabytes on loopback) and then its queue.
    const SHOUTS: u64 = 5000;
    const IN_FLIGHT: u64 = 16;
    let server = server(Config::default().outbound_queue(64)).await;
    let url = server.ws_url("2.0.0");

    let mut stalled = TestClient::connect_with_recv_buffer(&url, None, 4096).await?;
    join(&mut stalled, "1", "room:stall").await?;
    let mut reader = TestClient::connect(&url, None).await?;
    join(&mut reader, "1", "room:stall").await?;
    let pad = "x".repeat(2048);
    let reading = tokio::spawn(async move {
        for seq in 0..SHOUTS {
            let text = reader.recv_text().await?;
            assert!(
                text.starts_with(&format!(
                    r#"[null,null,"room:stall","shout",{{"seq":{seq},"#
                )),
                "the reader missed or reordered a shout"
            );
        }
        Ok::<_, ClientError>(reader)
    });

    let mut publisher = TestClient::connect(&url, None).await?;
    join(&mut publisher, "1", "room:stall").await?;
    shout_flat_out(&mut publisher, SHOUTS, IN_FLIGHT, |seq| {
        format!(r#"["1","{seq}","room:stall","shout",{{"seq":{seq},"pad":"{pad}"}}]"#)
    })
    .await?;
    let mut reader = tokio::time::timeout(RECV_TIMEOUT, reading).await???;
    heartbeat(&mut reader, "2").await?;

    let code = stalled.recv_close().await?;
    assert!(
        matches!(code, Some(1013) | None),
        "stalled socket closed with {code:?}"
    );
    let slow = metric(
        &server.alight.metrics_text(),
        "alight_slow_consumer_disconnects_total",
    );
    assert_eq!(slow, Some(1.0));
    Ok(())
}

/// A server-side loop of `broadcast_and_wait` is paced by the fan-out: subscribers with a queue of
/// 2 that read everything get all 200 messages. The same loop with `broadcast` queues them all at
/// once and overflows those queues.
#[tokio::test]
async fn broadcast_and_wait_paces_a_server_side_loop() -> TestResult {
    const MESSAGES: u64 = 200;
    let server = server(Config::default().outbound_queue(2)).await;
    let url = server.ws_url("2.0.0");
    let mut readers = Vec::new();
    for _ in 0..5 {
        let mut client = TestClient::connect(&url, None).await?;
        join(&mut client, "1", "room:api").await?;
        readers.push(tokio::spawn(async move {
            for n in 0..MESSAGES {
                let text = client.recv_text().await?;
                assert_eq!(
                    text,
                    format!(r#"[null,null,"room:api","tick",{{"n":{n}}}]"#)
                );
            }
            Ok::<_, ClientError>(client)
        }));
    }
    for n in 0..MESSAGES {
        let payload = Payload::from_json_str(&format!(r#"{{"n":{n}}}"#))?;
        server
            .alight
            .broadcast_and_wait("room:api", "tick", payload)
            .await;
    }
    for reader in readers {
        let mut client = tokio::time::timeout(RECV_TIMEOUT, reader).await???;
        heartbeat(&mut client, "2").await?;
    }
    let slow = || {
        metric(
            &server.alight.metrics_text(),
            "alight_slow_consumer_disconnects_total",
        )
    };
    assert_eq!(slow(), Some(0.0));

    // Without waiting, the loop outruns the queues of 2.
    let mut subscriber = TestClient::connect(&url, None).await?;
    join(&mut subscriber, "1", "room:api2").await?;
    for n in 0..10 {
        let payload = Payload::from_json_str(&format!(r#"{{"n":{n}}}"#))?;
        server.alight.broadcast("room:api2", "tick", payload);
    }
    assert_eq!(slow(), Some(1.0));
    Ok(())
}
