//! The WebSocket upgrade: the auth token and the connect callback, `vsn`, and the connection limit.
//!
//! A refused upgrade is an HTTP answer, which tungstenite reports as `Error::Http` with the status;
//! a token the connect callback refuses is, by default, a socket closed at once with 4001/4003.

mod common;

use alight_server::Config;
use alight_tests::client::TestClient;
use common::{TestResult, closed_at_once, exchange, heartbeat, refusal, server, v2};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, http::HeaderValue};

#[tokio::test]
async fn a_refused_token_is_closed_at_once_with_4001_or_4003() -> TestResult {
    let server = server(Config::default()).await;
    let url = server.ws_url("2.0.0");
    // A browser can read a close code, not the status of a refused upgrade.
    assert_eq!(
        closed_at_once(&url, Some("bad-token")).await,
        Ok((4001, "unauthorized".to_owned()))
    );
    assert_eq!(
        closed_at_once(&url, Some("banned-token")).await,
        Ok((4003, "forbidden".to_owned()))
    );
    // The refused sockets are counted.
    let metrics = server.alight.metrics_text();
    assert_eq!(
        common::metric(&metrics, "alight_refused_connections_total"),
        Some(2.0)
    );
    Ok(())
}

#[tokio::test]
async fn bad_token_is_refused_with_403_when_close_on_refusal_is_off() -> TestResult {
    let server = server(Config::default().close_on_refusal(false)).await;
    let refused = TestClient::connect(&server.ws_url("2.0.0"), Some("bad-token")).await;
    // The connect callback's reason is the body.
    assert_eq!(refusal(refused), Some((403, "invalid token".to_owned())));
    let banned = TestClient::connect(&server.ws_url("2.0.0"), Some("banned-token")).await;
    assert_eq!(refusal(banned), Some((403, "banned".to_owned())));
    Ok(())
}

#[tokio::test]
async fn a_malformed_token_is_refused_with_400() -> TestResult {
    let server = server(Config::default()).await;
    // A token that is not base64 never reaches the callback.
    let mut request = server.ws_url("2.0.0").into_client_request()?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("phoenix, base64url.bearer.phx.!!!"),
    );
    match tokio_tungstenite::connect_async(request).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 400),
        other => panic!("a malformed token was not refused: {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn valid_token_joins_a_private_topic_as_its_user() -> TestResult {
    let server = server(Config::default()).await;
    let mut alice = TestClient::connect(&server.ws_url("2.0.0"), Some("valid-token")).await?;
    exchange(
        &mut alice,
        r#"["1","1","private:x","phx_join",{}]"#,
        r#"["1","1","private:x","phx_reply",{"status":"ok","response":{"user":"alice"}}]"#,
    )
    .await?;

    let mut anonymous = v2(&server).await?;
    exchange(
        &mut anonymous,
        r#"["1","1","private:x","phx_join",{}]"#,
        r#"["1","1","private:x","phx_reply",{"status":"error","response":{"reason":"unauthorized"}}]"#,
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn unknown_vsn_is_refused_with_400() -> TestResult {
    let server = server(Config::default()).await;
    for vsn in ["3.0.0", "2", "garbage"] {
        let refused = TestClient::connect(&server.ws_url(vsn), None).await;
        let (status, body) = refusal(refused).unwrap_or_default();
        assert_eq!(status, 400, "vsn={vsn}");
        assert!(body.contains(vsn), "the body names the vsn: {body}");
    }
    // Without `vsn` Phoenix picks V1.
    let url = format!("ws://{}/socket/websocket", server.addr);
    let mut v1 = TestClient::connect(&url, None).await?;
    v1.send_text(r#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}"#)
        .await?;
    let reply: serde_json::Value = serde_json::from_str(&v1.recv_text().await?)?;
    assert_eq!(reply["event"], "phx_reply");
    assert_eq!(reply["ref"], "1");
    Ok(())
}

#[tokio::test]
async fn connection_over_the_limit_is_refused_with_503() -> TestResult {
    let server = server(Config::default().max_connections(2)).await;
    let mut first = v2(&server).await?;
    let mut second = v2(&server).await?;
    let refused = v2(&server).await;
    assert_eq!(
        refusal(refused),
        Some((503, "too many connections".to_owned()))
    );
    // Those within the limit are unaffected.
    heartbeat(&mut first, "1").await?;
    heartbeat(&mut second, "1").await?;
    Ok(())
}
