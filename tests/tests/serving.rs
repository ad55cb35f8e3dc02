//! Serving HTTP as an attacker meets it: half-sent headers and bodies, connections that never
//! upgrade, a shutdown while a request is half-received, foreign origins, and the bearer scheme.

mod common;

use std::time::Duration;

use alight_server::{CheckOrigin, Config};
use alight_tests::client::RECV_TIMEOUT;
use common::{TestResult, heartbeat, http, server, v2};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, http::HeaderValue};

/// Reads until the server closes the connection; what it sent before closing.
async fn until_closed(
    stream: &mut TcpStream,
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let mut got = Vec::new();
    // A reset counts as closed too.
    let _ = tokio::time::timeout(RECV_TIMEOUT, stream.read_to_end(&mut got))
        .await
        .map_err(|_| "the server kept the connection open")?;
    Ok(String::from_utf8_lossy(&got).into_owned())
}

#[tokio::test]
async fn half_sent_headers_are_dropped_after_the_header_timeout() -> TestResult {
    let server = server(Config::default().header_read_timeout(Duration::from_millis(300))).await;
    let mut slow = TcpStream::connect(server.addr).await?;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: 1\r\n")
        .await?;
    until_closed(&mut slow).await?;

    // A connection that sends nothing at all is dropped too.
    let mut silent = TcpStream::connect(server.addr).await?;
    until_closed(&mut silent).await?;

    // Others are served meanwhile.
    let health = http(server.addr, "GET", "/healthz", &[], "").await?;
    assert_eq!(health.status, 200);
    Ok(())
}

#[tokio::test]
async fn a_half_sent_body_ends_after_the_body_timeout() -> TestResult {
    let server = server(Config::default().body_read_timeout(Duration::from_millis(300))).await;
    let mut slow = TcpStream::connect(server.addr).await?;
    let head = format!(
        "POST /api/broadcast HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"topic\":",
        alight_tests::fixture::API_KEY
    );
    slow.write_all(head.as_bytes()).await?;
    let answer = until_closed(&mut slow).await?;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{answer}"
    );
    Ok(())
}

#[tokio::test]
async fn connections_not_upgraded_count_against_their_limit() -> TestResult {
    let server = server(Config::default().max_http_connections(2)).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(server.addr).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
            .await?;
        held.push(stream);
    }
    // The third is closed at once, without an answer.
    let mut third = TcpStream::connect(server.addr).await?;
    assert_eq!(until_closed(&mut third).await?, "");

    // Finishing a request and closing frees its place.
    let mut first = held.remove(0);
    first.write_all(b"connection: close\r\n\r\n").await?;
    assert!(until_closed(&mut first).await?.starts_with("HTTP/1.1 200"));
    let mut client = loop {
        // The permit is released when the server's connection task ends, just after the close.
        match v2(&server).await {
            Ok(client) => break client,
            Err(_) => tokio::task::yield_now().await,
        }
    };
    heartbeat(&mut client, "1").await?;
    Ok(())
}

#[tokio::test]
async fn shutdown_with_a_half_sent_request_finishes_within_the_shutdown_timeout() -> TestResult {
    let server = alight_tests::fixture::start_on(
        "127.0.0.1:0".parse()?,
        Config::default().shutdown_timeout(Duration::from_millis(500)),
    )
    .await?;
    let mut headers = TcpStream::connect(server.addr).await?;
    headers
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await?;
    let mut body = TcpStream::connect(server.addr).await?;
    body.write_all(b"POST /api/broadcast HTTP/1.1\r\nhost: x\r\ncontent-length: 50\r\n\r\n{")
        .await?;
    let mut socket = v2(&server).await?;
    heartbeat(&mut socket, "1").await?;

    tokio::time::timeout(Duration::from_secs(5), server.shutdown())
        .await
        .map_err(|_| "shutdown hung on a half-sent request")??;
    assert_eq!(socket.recv_close().await?, Some(1012));
    until_closed(&mut headers).await?;
    until_closed(&mut body).await?;
    Ok(())
}

fn upgrade_with_origin(url: &str, origin: &str) -> tungstenite::handshake::client::Request {
    let mut request = url.into_client_request().expect("a valid test URL");
    request.headers_mut().insert(
        "origin",
        HeaderValue::from_str(origin).expect("a valid origin"),
    );
    request
}

async fn upgrade_status(request: tungstenite::handshake::client::Request) -> u16 {
    match tokio_tungstenite::connect_async(request).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("the upgrade failed: {other}"),
    }
}

#[tokio::test]
async fn a_foreign_origin_is_refused_and_the_own_accepted() -> TestResult {
    let server = server(Config::default()).await;
    let url = server.ws_url("2.0.0");
    let own = format!("http://{}", server.addr);
    assert_eq!(upgrade_status(upgrade_with_origin(&url, &own)).await, 101);
    // Same host, another port: a development server's page.
    assert_eq!(
        upgrade_status(upgrade_with_origin(&url, "http://127.0.0.1:5173")).await,
        101
    );
    assert_eq!(
        upgrade_status(upgrade_with_origin(&url, "https://evil.example")).await,
        403
    );
    assert_eq!(upgrade_status(upgrade_with_origin(&url, "null")).await, 403);
    // No Origin: not a browser.
    assert_eq!(
        upgrade_status(url.clone().into_client_request()?).await,
        101
    );
    Ok(())
}

#[tokio::test]
async fn a_configured_origin_list_replaces_the_host_check() -> TestResult {
    let server =
        server(Config::default().check_origin(CheckOrigin::allow(["https://app.example.com"])))
            .await;
    let url = server.ws_url("2.0.0");
    assert_eq!(
        upgrade_status(upgrade_with_origin(&url, "https://app.example.com")).await,
        101
    );
    let own = format!("http://{}", server.addr);
    assert_eq!(upgrade_status(upgrade_with_origin(&url, &own)).await, 403);
    Ok(())
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() -> TestResult {
    let server = server(Config::default()).await;
    let body = r#"{"topic":"room:a","event":"news","payload":{}}"#;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let authorization = format!("{scheme} {}", alight_tests::fixture::API_KEY);
        let response = http(
            server.addr,
            "POST",
            "/api/broadcast",
            &[
                ("authorization", &authorization),
                ("content-type", "application/json"),
            ],
            body,
        )
        .await?;
        assert_eq!(response.status, 202, "{scheme}: {}", response.body);
    }
    let response = http(
        server.addr,
        "POST",
        "/api/broadcast",
        &[
            ("authorization", "Basic x"),
            ("content-type", "application/json"),
        ],
        body,
    )
    .await?;
    assert_eq!(response.status, 401);
    Ok(())
}
