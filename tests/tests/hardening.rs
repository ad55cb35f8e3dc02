//! What one client may make the server keep or wait for: field lengths, presence sizes, and a
//! client that stops reading.
//!
//! Each close test checks that the other sockets on the server are unaffected.

mod common;

use std::time::Duration;

use alight_protocol::Payload;
use alight_server::{Alight, Channel, Config, Context, HandleIn, JoinError, Terminate};
use alight_tests::client::TestClient;
use common::{TestResult, exchange, heartbeat, join, server, v2};
use tokio::sync::mpsc;

/// Sends `text` on a fresh socket and returns the close code it gets.
async fn close_code_of(
    server: &alight_tests::fixture::Server,
    text: &str,
) -> Result<u16, Box<dyn std::error::Error + Send + Sync>> {
    let mut client = v2(server).await?;
    client.send_text(text).await?;
    Ok(client
        .recv_close()
        .await?
        .ok_or("closed without a close frame")?)
}

#[tokio::test]
async fn long_topics_events_and_refs_close_with_1009_and_keep_nothing() -> TestResult {
    let server = server(Config::default()).await;
    let mut bystander = v2(&server).await?;
    join(&mut bystander, "1", "room:a").await?;

    // At the limits: accepted.
    let topic = format!("room:{}", "t".repeat(1024 - 5));
    let mut client = v2(&server).await?;
    join(&mut client, "1", &topic).await?;
    let event = "e".repeat(256);
    let ref_ = "r".repeat(64);
    exchange(
        &mut client,
        &format!(r#"["1","{ref_}","{topic}","{event}",{{}}]"#),
        &format!(
            r#"["1","{ref_}","{topic}","phx_reply",{{"status":"error","response":{{"reason":"unknown event"}}}}]"#
        ),
    )
    .await?;

    // One byte over: closed, and the topic is not kept.
    let long_topic = format!("room:{}", "t".repeat(1024 - 4));
    let join_long = format!(r#"["1","1","{long_topic}","phx_join",{{}}]"#);
    assert_eq!(close_code_of(&server, &join_long).await?, 1009);
    assert_eq!(server.alight.registry().subscriber_count(&long_topic), 0);

    let long_event = format!(r#"["1","2","room:a","{}",{{}}]"#, "e".repeat(257));
    assert_eq!(close_code_of(&server, &long_event).await?, 1009);
    let long_ref = format!(r#"["1","{}","room:a","phx_join",{{}}]"#, "r".repeat(65));
    assert_eq!(close_code_of(&server, &long_ref).await?, 1009);
    let long_join_ref = format!(r#"["{}","1","room:a","phx_join",{{}}]"#, "r".repeat(65));
    assert_eq!(close_code_of(&server, &long_join_ref).await?, 1009);

    heartbeat(&mut bystander, "2").await?;
    Ok(())
}

#[tokio::test]
async fn field_limits_are_configurable() -> TestResult {
    let server = server(Config::default().max_topic_len(16)).await;
    let mut client = v2(&server).await?;
    join(&mut client, "1", "room:0123456789a").await?;
    let join_long = r#"["1","1","room:0123456789ab","phx_join",{}]"#;
    assert_eq!(close_code_of(&server, join_long).await?, 1009);
    Ok(())
}

#[tokio::test]
async fn presence_keys_and_metas_over_their_limits_are_refused() -> TestResult {
    let server = server(Config::default().max_presence_meta_size(64)).await;
    let mut client = v2(&server).await?;
    let long_name = "n".repeat(1025);
    exchange(
        &mut client,
        &format!(r#"["1","1","presence:a","phx_join",{{"name":"{long_name}"}}]"#),
        r#"["1","1","presence:a","phx_reply",{"status":"error","response":{"reason":"presence key over 1024 bytes"}}]"#,
    )
    .await?;
    assert!(server.alight.presence().list("presence:a").is_empty());

    client
        .send_text(r#"["2","2","presence:a","phx_join",{"name":"ann"}]"#)
        .await?;
    let reply = client.recv_text().await?;
    assert!(reply.contains(r#""status":"ok""#), "{reply}");
    let big_meta = format!(
        r#"["2","3","presence:a","update",{{"bio":"{}"}}]"#,
        "b".repeat(64)
    );
    client.send_text(&big_meta).await?;
    // presence_state and the join's diff may come first.
    let reply = loop {
        let text = client.recv_text().await?;
        if text.starts_with(r#"["2","3""#) {
            break text;
        }
    };
    assert_eq!(
        reply,
        r#"["2","3","presence:a","phx_reply",{"status":"error","response":{"reason":"presence meta over 64 bytes"}}]"#
    );
    Ok(())
}

/// A channel whose `ping` replies with its payload and whose end is reported on `ended`.
struct Echo {
    ended: mpsc::UnboundedSender<Terminate>,
}

impl Channel for Echo {
    type State = ();

    async fn join(&self, _: Payload, _: &mut Context<'_>) -> Result<((), Payload), JoinError> {
        Ok(((), Payload::empty()))
    }

    async fn handle_in(
        &self,
        _event: &str,
        payload: Payload,
        _: &mut (),
        _: &mut Context<'_>,
    ) -> HandleIn {
        HandleIn::ok(payload)
    }

    async fn terminate(&self, reason: Terminate, _: (), _: &mut Context<'_>) {
        let _ = self.ended.send(reason);
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_after_the_write_timeout() -> TestResult {
    let (ended, mut ends) = mpsc::unbounded_channel();
    let alight = Alight::builder()
        .config(
            Config::default()
                .write_timeout(Duration::from_millis(200))
                .shutdown_timeout(Duration::from_secs(2)),
        )
        .channel("echo:*", Echo { ended })
        .build();
    let served = common::serve(&alight, axum::Router::new().merge(alight.router())).await?;
    let addr = served.addr;
    let url = format!("ws://{addr}/socket/websocket?vsn=2.0.0");

    let mut reader = TestClient::connect(&url, None).await?;
    reader
        .send_text(r#"["1","1","echo:b","phx_join",{}]"#)
        .await?;
    reader.recv_text().await?;

    let mut stalled = TestClient::connect_with_recv_buffer(&url, None, 4096).await?;
    stalled
        .send_text(r#"["1","1","echo:a","phx_join",{}]"#)
        .await?;
    // Replies of 256 KiB each, never read: tens of megabytes, more than every buffer on the way
    // holds. The sends run on their own task, as the server stops reading once its write blocks.
    let big = format!(
        r#"["1","{{}}","echo:a","ping",{{"p":"{}"}}]"#,
        "x".repeat(256 * 1024)
    );
    let flood = tokio::spawn(async move {
        for n in 2..200 {
            if stalled
                .send_text(&big.replace("{}", &n.to_string()))
                .await
                .is_err()
            {
                break;
            }
        }
        stalled
    });

    let ended = tokio::time::timeout(Duration::from_secs(20), ends.recv()).await;
    assert!(
        matches!(ended, Ok(Some(Terminate::Closed))),
        "the stalled socket was never closed: {ended:?}"
    );
    assert_eq!(
        common::metric(&alight.metrics_text(), "alight_write_timeouts_total"),
        Some(1.0)
    );
    flood.abort();

    // The reader is unaffected.
    heartbeat(&mut reader, "2").await?;
    served.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_reading_client_is_not_hurt_by_the_write_timeout() -> TestResult {
    let server = server(Config::default().write_timeout(Duration::from_millis(200))).await;
    let mut client = v2(&server).await?;
    join(&mut client, "1", "room:a").await?;
    for n in 2..20 {
        let ping = format!(
            r#"["1","{n}","room:a","ping",{{"p":"{}"}}]"#,
            "x".repeat(256 * 1024)
        );
        client.send_text(&ping).await?;
        let reply = client.recv_text().await?;
        assert!(reply.starts_with(&format!(r#"["1","{n}","room:a","phx_reply""#)));
    }
    Ok(())
}

#[tokio::test]
async fn a_join_reply_over_its_limit_is_an_error_and_keeps_nothing() -> TestResult {
    // The fixture's room replies `{"user":null}`, 13 bytes.
    let tight = server(Config::default().max_join_reply_size(12)).await;
    let mut client = v2(&tight).await?;
    exchange(
        &mut client,
        r#"["1","1","room:a","phx_join",{}]"#,
        r#"["1","1","room:a","phx_reply",{"status":"error","response":{"reason":"join reply too large"}}]"#,
    )
    .await?;
    assert_eq!(tight.alight.registry().subscriber_count("room:a"), 0);
    heartbeat(&mut client, "2").await?;

    let roomy = server(Config::default().max_join_reply_size(13)).await;
    let mut client = v2(&roomy).await?;
    join(&mut client, "1", "room:a").await?;
    Ok(())
}

#[tokio::test]
async fn client_frames_of_the_wrong_shape_close_with_1007() -> TestResult {
    let server = server(Config::default()).await;
    // V2: exactly five elements.
    let six = r#"["1","1","room:a","phx_join",{},"extra"]"#;
    assert_eq!(close_code_of(&server, six).await?, 1007);
    // V1: `ref` is required (null when no reply is wanted).
    let mut v1 = TestClient::connect(&server.ws_url("1.0.0"), None).await?;
    v1.send_text(r#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":null}"#)
        .await?;
    v1.send_text(r#"{"topic":"phoenix","event":"heartbeat","payload":{}}"#)
        .await?;
    assert_eq!(v1.recv_close().await?, Some(1007));
    Ok(())
}

#[tokio::test]
async fn a_binary_broadcast_to_v1_subscribers_is_counted_not_sent() -> TestResult {
    let server = server(Config::default()).await;
    let mut v1 = TestClient::connect(&server.ws_url("1.0.0"), None).await?;
    v1.send_text(r#"{"topic":"room:a","event":"phx_join","payload":{},"ref":"1","join_ref":"1"}"#)
        .await?;
    v1.recv_text().await?;
    for _ in 0..3 {
        server.alight.broadcast(
            "room:a",
            "bin",
            Payload::Binary(bytes::Bytes::from_static(b"\x00\x01")),
        );
    }
    server
        .alight
        .broadcast("room:a", "text", Payload::from_json_str("{}")?);
    // Queued in order: the binary ones were handled before this one arrives.
    let text = v1.recv_text().await?;
    assert!(text.contains(r#""event":"text""#), "{text}");
    assert_eq!(
        common::metric(
            &server.alight.metrics_text(),
            "alight_frames_not_encodable_total"
        ),
        Some(3.0)
    );
    Ok(())
}

#[tokio::test]
async fn the_connect_callback_sees_the_peer_address_and_the_headers() -> TestResult {
    let (seen, mut sees) = mpsc::unbounded_channel();
    let alight = Alight::builder()
        .on_connect(move |info| {
            let seen = seen.clone();
            async move {
                let agent = info
                    .headers
                    .get("user-agent")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let _ = seen.send((info.peer_addr, agent));
                Ok(alight_server::Connected::new())
            }
        })
        .build();
    let served = common::serve(&alight, axum::Router::new().merge(alight.router())).await?;
    let addr = served.addr;
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://{addr}/socket/websocket?vsn=2.0.0"
        ))?;
    request
        .headers_mut()
        .insert("user-agent", "hardening-test".parse()?);
    let (ws, _) = tokio_tungstenite::connect_async(request).await?;
    let local = ws.get_ref();
    let local = match local {
        tokio_tungstenite::MaybeTlsStream::Plain(tcp) => tcp.local_addr()?,
        _ => return Err("a plain TCP stream was expected".into()),
    };
    let (peer, agent) = sees.recv().await.ok_or("the callback never ran")?;
    assert_eq!(peer, Some(local));
    assert_eq!(agent.as_deref(), Some("hardening-test"));
    drop(ws);
    served.stop().await?;
    Ok(())
}

/// With `socket_send_buffer` set, the data a stalled client has not read is bounded by a few
/// small buffers, so the slow-consumer close frame (1013) reaches it behind them as soon as it
/// reads again, within the second the server gives a closing socket (issue #18, W4).
#[tokio::test]
async fn a_stalled_client_finds_its_1013_close_behind_a_bounded_send_buffer() -> TestResult {
    let (ended, mut ends) = mpsc::unbounded_channel();
    let alight = Alight::builder()
        .config(
            Config::default()
                .outbound_queue(8)
                .socket_send_buffer(Some(16 * 1024))
                .shutdown_timeout(Duration::from_secs(2)),
        )
        .channel("echo:*", Echo { ended })
        .build();
    let served = common::serve(&alight, axum::Router::new().merge(alight.router())).await?;
    let url = format!("ws://{}/socket/websocket?vsn=2.0.0", served.addr);

    let mut reader = TestClient::connect(&url, None).await?;
    reader
        .send_text(r#"["1","1","echo:b","phx_join",{}]"#)
        .await?;
    reader.recv_text().await?;
    let mut stalled = TestClient::connect_with_recv_buffer(&url, None, 4096).await?;
    stalled
        .send_text(r#"["1","1","echo:a","phx_join",{}]"#)
        .await?;
    stalled.recv_text().await?;

    // Broadcasts of 64 KiB that the stalled client never reads: its socket's buffers fill after a
    // few, then its queue of 8, and the next one overflows it.
    let payload = Payload::json(&"x".repeat(64 * 1024))?;
    let overflowed = |alight: &Alight| {
        common::metric(
            &alight.metrics_text(),
            "alight_slow_consumer_disconnects_total",
        ) == Some(1.0)
    };
    let mut sent = 0;
    while !overflowed(&alight) {
        assert!(sent < 1_000, "the stalled client's queue never overflowed");
        alight.broadcast("echo:a", "big", payload.clone());
        sent += 1;
        // Lets the connection task write what it can and block.
        tokio::task::yield_now().await;
    }

    // Reading again, the client gets what was in flight, then the close frame.
    assert_eq!(stalled.recv_close().await?, Some(1013));
    let ended = tokio::time::timeout(Duration::from_secs(5), ends.recv()).await;
    assert!(matches!(ended, Ok(Some(Terminate::Closed))), "{ended:?}");

    // The other socket is unaffected.
    heartbeat(&mut reader, "2").await?;
    served.stop().await?;
    Ok(())
}
