//! The HTTP side: `POST /api/broadcast`, `GET /healthz` and `GET /metrics`.
//!
//! Requests are hand-written HTTP/1.1 over a `TcpStream` (see `common::http`), so the tests need
//! no HTTP client crate.

mod common;

use alight_server::Config;
use alight_tests::fixture::API_KEY;
use common::{TestResult, expect, heartbeat, http, join, metric, server, v2};

const BODY: &str = r#"{"topic":"room:api","event":"news","payload":{"x":1}}"#;
const JSON: Header<'static> = ("content-type", "application/json");

/// A request header: name and value.
type Header<'a> = (&'a str, &'a str);

#[tokio::test]
async fn api_broadcast_needs_the_key() -> TestResult {
    let server = server(Config::default()).await;
    let mut subscriber = v2(&server).await?;
    join(&mut subscriber, "1", "room:api").await?;

    let missing = http(server.addr, "POST", "/api/broadcast", &[JSON], BODY).await?;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));

    for wrong in [
        "Bearer nope",
        "Bearer test-api-kex",
        "test-api-key",
        "Basic test-api-key",
    ] {
        let response = http(
            server.addr,
            "POST",
            "/api/broadcast",
            &[JSON, ("authorization", wrong)],
            BODY,
        )
        .await?;
        assert_eq!(response.status, 401, "authorization: {wrong}");
    }

    // None of those reached the subscriber: its next frame is the heartbeat's reply.
    heartbeat(&mut subscriber, "2").await?;
    Ok(())
}

#[tokio::test]
async fn api_broadcast_with_the_key_reaches_subscribers() -> TestResult {
    let server = server(Config::default()).await;
    let mut subscribers = Vec::new();
    for _ in 0..2 {
        let mut client = v2(&server).await?;
        join(&mut client, "1", "room:api").await?;
        subscribers.push(client);
    }
    let auth = format!("Bearer {API_KEY}");
    let response = http(
        server.addr,
        "POST",
        "/api/broadcast",
        &[JSON, ("authorization", &auth)],
        BODY,
    )
    .await?;
    assert_eq!(response.status, 202);
    let body: serde_json::Value = serde_json::from_str(&response.body)?;
    assert_eq!(body, serde_json::json!({"status": "accepted"}));
    for client in &mut subscribers {
        expect(client, r#"[null,null,"room:api","news",{"x":1}]"#).await?;
    }
    Ok(())
}

#[tokio::test]
async fn api_broadcast_rejects_a_bad_body() -> TestResult {
    let server = server(Config::default()).await;
    let auth = format!("Bearer {API_KEY}");
    let authorized = ("authorization", auth.as_str());
    let cases: [(&str, &[Header<'_>], &str, u16); 4] = [
        ("not JSON", &[JSON, authorized], "not json", 400),
        (
            "a missing field",
            &[JSON, authorized],
            r#"{"topic":"room:api"}"#,
            422,
        ),
        (
            "a wrong type",
            &[JSON, authorized],
            r#"{"topic":1,"event":"e","payload":{}}"#,
            422,
        ),
        ("no content type", &[authorized], BODY, 415),
    ];
    for (what, headers, body, status) in cases {
        let response = http(server.addr, "POST", "/api/broadcast", headers, body).await?;
        assert_eq!(response.status, status, "{what}: {}", response.body);
    }
    Ok(())
}

#[tokio::test]
async fn healthz_is_ok() -> TestResult {
    let server = server(Config::default()).await;
    let response = http(server.addr, "GET", "/healthz", &[], "").await?;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, "ok");
    Ok(())
}

#[tokio::test]
async fn metrics_show_connections_and_counters_that_moved() -> TestResult {
    let server = server(Config::default()).await;
    let before = http(server.addr, "GET", "/metrics", &[], "").await?;
    assert_eq!(before.status, 200);
    assert_eq!(metric(&before.body, "alight_connections"), Some(0.0));
    assert_eq!(metric(&before.body, "alight_frames_in_total"), Some(0.0));
    assert_eq!(metric(&before.body, "alight_broadcasts_total"), Some(0.0));

    let mut a = v2(&server).await?;
    let mut b = v2(&server).await?;
    join(&mut a, "1", "room:m").await?;
    join(&mut b, "1", "room:m").await?;
    a.send_text(r#"["1","2","room:m","shout",{}]"#).await?;
    expect(&mut b, r#"[null,null,"room:m","shout",{}]"#).await?;
    // A second round trip on each socket: the counters of the first are in by then.
    heartbeat(&mut b, "2").await?;
    // The shouter gets its own copy, then the reply.
    expect(&mut a, r#"[null,null,"room:m","shout",{}]"#).await?;
    expect(
        &mut a,
        r#"["1","2","room:m","phx_reply",{"status":"ok","response":{}}]"#,
    )
    .await?;
    heartbeat(&mut a, "3").await?;
    let refused = v2_with_bad_vsn(&server).await;
    assert!(refused);

    let after = http(server.addr, "GET", "/metrics", &[], "").await?;
    assert_eq!(after.status, 200);
    let text = after.body;
    let value = |name: &str| metric(&text, name).unwrap_or_else(|| panic!("{name} in {text}"));
    assert_eq!(value("alight_connections"), 2.0);
    assert_eq!(value("alight_channels"), 2.0);
    assert_eq!(value("alight_broadcasts_total"), 1.0);
    assert_eq!(value("alight_deliveries_total"), 2.0);
    assert_eq!(value("alight_refused_connections_total"), 1.0);
    assert_eq!(value("alight_frames_in_total"), 5.0);
    assert!(value("alight_frames_out_total") >= 4.0);
    assert_eq!(value("alight_slow_consumer_disconnects_total"), 0.0);
    Ok(())
}

#[tokio::test]
async fn gauges_return_to_zero_when_sockets_close() -> TestResult {
    let server = server(Config::default()).await;
    let mut client = v2(&server).await?;
    for (n, topic) in ["room:1", "room:2", "room:3", "room:4"].iter().enumerate() {
        join(&mut client, &(n + 1).to_string(), topic).await?;
    }
    // A crash, a stop, a leave and a duplicate join: each takes its channel off the gauge once.
    client.send_text(r#"["1","5","room:1","crash",{}]"#).await?;
    expect(
        &mut client,
        r#"["1","1","room:1","phx_error",{"reason":"channel_crash"}]"#,
    )
    .await?;
    client.send_text(r#"["2","6","room:2","stop",{}]"#).await?;
    client.recv_text().await?;
    expect(&mut client, r#"["2","2","room:2","phx_close",{}]"#).await?;
    client
        .send_text(r#"["3","7","room:3","phx_leave",{}]"#)
        .await?;
    client.recv_text().await?;
    expect(&mut client, r#"["3","3","room:3","phx_close",{}]"#).await?;
    join(&mut client, "8", "room:4").await?;
    expect(&mut client, r#"["4","4","room:4","phx_close",{}]"#).await?;
    let mut other = v2(&server).await?;
    join(&mut other, "1", "room:4").await?;

    let during = http(server.addr, "GET", "/metrics", &[], "").await?.body;
    assert_eq!(metric(&during, "alight_connections"), Some(2.0));
    assert_eq!(metric(&during, "alight_channels"), Some(2.0));

    // The server ends a TCP connection only after its bookkeeping: EOF means it is done.
    for mut socket in [client, other] {
        socket
            .send_raw(tokio_tungstenite::tungstenite::Message::Close(None))
            .await?;
        socket.recv_close().await?;
    }
    let after = http(server.addr, "GET", "/metrics", &[], "").await?.body;
    assert_eq!(metric(&after, "alight_connections"), Some(0.0), "{after}");
    assert_eq!(metric(&after, "alight_channels"), Some(0.0), "{after}");
    Ok(())
}

/// Tries an upgrade with an unsupported `vsn`; whether it was refused.
async fn v2_with_bad_vsn(server: &alight_tests::fixture::Server) -> bool {
    alight_tests::client::TestClient::connect(&server.ws_url("9.9.9"), None)
        .await
        .is_err()
}

#[tokio::test]
async fn metrics_with_a_key_need_it_as_a_bearer_token() -> TestResult {
    let alight = alight_server::Alight::builder().build();
    let app = axum::Router::new()
        .merge(alight.api_router_with_metrics_key(Some(API_KEY.into()), Some("scrape-key".into())));
    let served = common::serve(&alight, app).await?;
    let addr = served.addr;

    let missing = http(addr, "GET", "/metrics", &[], "").await?;
    assert_eq!(missing.status, 401);
    let api_key = format!("Bearer {API_KEY}");
    for wrong in ["Bearer nope", api_key.as_str(), "scrape-key"] {
        let response = http(addr, "GET", "/metrics", &[("authorization", wrong)], "").await?;
        assert_eq!(response.status, 401, "authorization: {wrong}");
        assert!(!response.body.contains("alight_connections"), "{wrong}");
    }
    // The scheme is case-insensitive, as for the API key.
    let scraped = http(
        addr,
        "GET",
        "/metrics",
        &[("authorization", "bearer scrape-key")],
        "",
    )
    .await?;
    assert_eq!(scraped.status, 200);
    assert!(metric(&scraped.body, "alight_connections").is_some());
    // The health check stays open: load balancers send no key.
    assert_eq!(http(addr, "GET", "/healthz", &[], "").await?.status, 200);

    served.stop().await?;
    Ok(())
}
