//! How sockets end from the server's side: the idle timeout, disconnecting a socket id, a
//! graceful shutdown, and the fixture's restart (what the browser tests restart the server with).
//!
//! The idle test runs on the real clock with a short configured timeout (a paused tokio clock
//! auto-advances while the runtime waits on loopback I/O, which would fire the timeout at random):
//! it waits for the close event with the client's receive deadline and only asserts a lower bound
//! on the time taken.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use alight_protocol::Payload;
use alight_server::Config;
use alight_tests::client::{RECV_TIMEOUT, TestClient};
use alight_tests::fixture;
use common::{TestResult, exchange, expect, heartbeat, http, join, server, v2};

/// The fixture on `127.0.0.1:0` with a long shutdown timeout: a shutdown that returns promptly
/// then shows that every socket finished, not that the wait gave up.
async fn long_shutdown(config: Config) -> std::io::Result<fixture::Server> {
    fixture::start_on(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        config.shutdown_timeout(Duration::from_secs(60)),
    )
    .await
}

#[tokio::test]
async fn idle_socket_is_closed_with_1001() -> TestResult {
    let idle = Duration::from_millis(600);
    let server = server(Config::default().idle_timeout(idle)).await;
    let mut client = v2(&server).await?;
    join(&mut client, "1", "room:a").await?;

    // Heartbeats keep the socket open past the timeout (the pacing leaves a wide margin).
    let mut ticks = tokio::time::interval(idle / 4);
    let started = Instant::now();
    let mut n = 2;
    while started.elapsed() < idle * 2 {
        ticks.tick().await;
        heartbeat(&mut client, &n.to_string()).await?;
        n += 1;
    }

    // Then silence: closed with 1001, no sooner than the timeout after the last frame.
    let last = Instant::now();
    heartbeat(&mut client, &n.to_string()).await?;
    assert_eq!(client.recv_close().await?, Some(1001));
    assert!(
        last.elapsed() >= idle,
        "closed {:?} after the last frame",
        last.elapsed()
    );
    Ok(())
}

#[tokio::test]
async fn disconnect_closes_that_socket_ids_sockets_only() -> TestResult {
    let server = server(Config::default()).await;
    let url = server.ws_url("2.0.0");
    let mut alice_1 = TestClient::connect(&url, Some("valid-token")).await?;
    let mut alice_2 = TestClient::connect(&server.ws_url("1.0.0"), Some("valid-token")).await?;
    let mut anonymous = v2(&server).await?;
    exchange(
        &mut alice_1,
        r#"["1","1","room:d","phx_join",{}]"#,
        r#"["1","1","room:d","phx_reply",{"status":"ok","response":{"user":"alice"}}]"#,
    )
    .await?;
    // A round trip, so the second socket is registered under its id before the disconnect.
    alice_2
        .send_text(r#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}"#)
        .await?;
    alice_2.recv_text().await?;
    join(&mut anonymous, "1", "room:d").await?;

    server.alight.disconnect("user_socket:nobody");
    server.alight.disconnect("user_socket:alice");
    assert_eq!(alice_1.recv_close().await?, Some(1001));
    assert_eq!(alice_2.recv_close().await?, Some(1001));

    heartbeat(&mut anonymous, "2").await?;
    server
        .alight
        .broadcast("room:d", "news", Payload::from_json_str("{}")?);
    expect(&mut anonymous, r#"[null,null,"room:d","news",{}]"#).await?;
    Ok(())
}

#[tokio::test]
async fn graceful_shutdown_closes_every_socket_with_1012() -> TestResult {
    let server = long_shutdown(Config::default()).await?;
    let addr = server.addr;
    let mut clients = vec![
        v2(&server).await?,
        v2(&server).await?,
        TestClient::connect(&server.ws_url("1.0.0"), None).await?,
    ];
    join(&mut clients[0], "1", "room:a").await?;
    join(&mut clients[1], "1", "room:a").await?;
    join(&mut clients[1], "2", "room:b").await?;
    clients[2]
        .send_text(r#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}"#)
        .await?;
    clients[2].recv_text().await?;

    let alight = server.alight.clone();
    tokio::time::timeout(RECV_TIMEOUT, server.shutdown()).await??;
    for client in &mut clients {
        assert_eq!(client.recv_close().await?, Some(1012));
    }
    assert_eq!(alight.registry().subscriber_count("room:a"), 0);
    assert_eq!(alight.registry().subscriber_count("room:b"), 0);

    // Nothing listens any more.
    let url = format!("ws://{addr}/socket/websocket?vsn=2.0.0");
    assert!(TestClient::connect(&url, None).await.is_err());
    Ok(())
}

#[tokio::test]
async fn graceful_shutdown_does_not_wait_on_a_stalled_socket() -> TestResult {
    let server = long_shutdown(Config::default().outbound_queue(100_000)).await?;
    // A socket that stops reading with a server write blocked on it.
    let mut stalled =
        TestClient::connect_with_recv_buffer(&server.ws_url("2.0.0"), None, 4096).await?;
    join(&mut stalled, "1", "room:a").await?;
    let mut reader = v2(&server).await?;
    heartbeat(&mut reader, "1").await?;
    let payload = Payload::from_json_str(&format!(r#"{{"pad":"{}"}}"#, "x".repeat(4096)))?;
    for _ in 0..1000 {
        server.alight.broadcast("room:a", "tick", payload.clone());
    }

    tokio::time::timeout(RECV_TIMEOUT, server.shutdown()).await??;
    assert_eq!(reader.recv_close().await?, Some(1012));
    let code = stalled.recv_close().await?;
    assert!(
        matches!(code, Some(1012) | None),
        "stalled socket: {code:?}"
    );
    Ok(())
}

/// Sends a normal close frame, as phoenix.js's `disconnect()` does.
async fn send_close(client: &mut TestClient) -> TestResult {
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    client
        .send_raw(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        })))
        .await?;
    Ok(())
}

#[tokio::test]
async fn client_close_is_answered_with_a_close_frame() -> TestResult {
    let server = server(Config::default()).await;
    let mut client = v2(&server).await?;
    join(&mut client, "1", "room:a").await?;
    send_close(&mut client).await?;
    // RFC 6455 §5.5.1: an endpoint that receives a close frame sends one back (Cowboy, under
    // Phoenix, echoes the code); without it a browser reports 1006 and `wasClean: false`.
    assert_eq!(client.recv_close().await?, Some(1000));
    Ok(())
}

#[tokio::test]
async fn closed_connection_frees_its_slot() -> TestResult {
    let server = server(Config::default().max_connections(1)).await;
    let mut client = v2(&server).await?;
    join(&mut client, "1", "room:a").await?;
    assert_eq!(common::refused_status(v2(&server).await), Some(503));

    send_close(&mut client).await?;
    // The TCP connection ends only after the server released the connection's slot and its
    // subscriptions.
    client.recv_close().await?;
    assert_eq!(server.alight.registry().subscriber_count("room:a"), 0);
    let mut next = v2(&server).await?;
    heartbeat(&mut next, "1").await?;
    Ok(())
}

#[tokio::test]
async fn the_fixture_restarts_on_the_same_address_with_a_new_endpoint() -> TestResult {
    let server = long_shutdown(Config::default()).await?;
    let mut client = v2(&server).await?;
    join(&mut client, "1", "room:a").await?;
    assert_eq!(server.alight.registry().subscriber_count("room:a"), 1);

    let response = http(server.addr, "POST", "/test/restart", &[], "").await?;
    assert_eq!(response.status, 200);
    // Closed as a process shutting down would close it; the old endpoint lets go of it.
    assert_eq!(client.recv_close().await?, Some(1012));
    assert_eq!(server.alight.registry().subscriber_count("room:a"), 0);

    // The same address answers again once the new endpoint listens (connection refused until
    // then: the old one finishes closing its sockets first).
    let url = server.ws_url("2.0.0");
    let deadline = Instant::now() + RECV_TIMEOUT;
    let mut again = loop {
        match TestClient::connect(&url, None).await {
            Ok(client) => break client,
            Err(_) if Instant::now() < deadline => tokio::task::yield_now().await,
            Err(err) => return Err(err.into()),
        }
    };
    join(&mut again, "1", "room:a").await?;
    heartbeat(&mut again, "2").await?;
    tokio::time::timeout(RECV_TIMEOUT, server.shutdown()).await??;
    assert_eq!(again.recv_close().await?, Some(1012));
    Ok(())
}
