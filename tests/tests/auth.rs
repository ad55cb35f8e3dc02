//! JWT connect auth (expiry for the life of the socket, in-band refresh) and per-socket rate
//! limits.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use alight_server::{Config, JwtAuth};
use alight_tests::client::TestClient;
use common::{TestResult, closed_at_once, exchange, heartbeat, join, refusal, server, v2};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

const SECRET: &str = "test secret of thirty-two bytes!";

fn token(sub: &str, exp_in: i64, channels: &[&str]) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let claims = json!({
        "sub": sub,
        "exp": now.saturating_add_signed(exp_in),
        "channels": channels,
    });
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()).expect("a non-empty secret"),
    )
    .expect("HS256 encodes")
}

fn jwt_config() -> Config {
    Config::default().jwt(JwtAuth::hs256(SECRET.as_bytes()).expect("a non-empty secret"))
}

#[tokio::test]
async fn a_socket_needs_a_valid_unexpired_token() -> TestResult {
    let server = server(jwt_config()).await;
    let url = server.ws_url("2.0.0");
    let unauthorized = Ok((4001, "unauthorized".to_owned()));
    assert_eq!(closed_at_once(&url, None).await, unauthorized);
    let expired = token("ann", -10, &["room:*"]);
    assert_eq!(closed_at_once(&url, Some(&expired)).await, unauthorized);
    assert_eq!(closed_at_once(&url, Some("forged")).await, unauthorized);

    // As `authToken`, and as the `token` param of phoenix.js `params`.
    let valid = token("ann", 60, &["room:*"]);
    let mut by_header = TestClient::connect(&server.ws_url("2.0.0"), Some(&valid)).await?;
    exchange(
        &mut by_header,
        r#"["1","1","room:a","phx_join",{}]"#,
        r#"["1","1","room:a","phx_reply",{"status":"ok","response":{"user":"ann"}}]"#,
    )
    .await?;
    // The `channels` claim does not list `private:*`.
    exchange(
        &mut by_header,
        r#"["2","2","private:a","phx_join",{}]"#,
        r#"["2","2","private:a","phx_reply",{"status":"error","response":{"reason":"unauthorized"}}]"#,
    )
    .await?;
    let url = format!("{}&token={valid}", server.ws_url("2.0.0"));
    let mut by_param = TestClient::connect(&url, None).await?;
    heartbeat(&mut by_param, "1").await?;
    Ok(())
}

#[tokio::test]
async fn without_close_on_refusal_a_bad_token_gets_403_and_the_reason() -> TestResult {
    let server = server(jwt_config().close_on_refusal(false)).await;
    let missing = TestClient::connect(&server.ws_url("2.0.0"), None).await;
    assert_eq!(refusal(missing), Some((403, "no token".to_owned())));
    let expired = token("ann", -10, &["room:*"]);
    let refused = TestClient::connect(&server.ws_url("2.0.0"), Some(&expired)).await;
    assert!(matches!(refusal(refused), Some((403, reason)) if reason.starts_with("invalid token")));
    Ok(())
}

#[tokio::test]
async fn an_expired_token_closes_the_socket_unless_refreshed() -> TestResult {
    let server = server(jwt_config()).await;
    let short = token("ann", 2, &["room:*", "presence:*"]);
    let mut stale = TestClient::connect(&server.ws_url("2.0.0"), Some(&short)).await?;
    let mut fresh = TestClient::connect(&server.ws_url("2.0.0"), Some(&short)).await?;
    exchange(
        &mut fresh,
        r#"["1","1","room:a","phx_join",{}]"#,
        r#"["1","1","room:a","phx_reply",{"status":"ok","response":{"user":"ann"}}]"#,
    )
    .await?;
    fresh
        .send_text(r#"["2","2","presence:b","phx_join",{}]"#)
        .await?;
    let reply = fresh.recv_text().await?;
    assert!(reply.starts_with(r#"["2","2","presence:b","phx_reply",{"status":"ok""#));
    fresh.recv_text().await?; // presence_state

    // A bad refresh is refused and changes nothing.
    fresh
        .send_text(r#"["1","3","room:a","access_token",{"access_token":"nope"}]"#)
        .await?;
    let refused = fresh.recv_text().await?;
    assert!(
        refused.starts_with(
            r#"["1","3","room:a","phx_reply",{"status":"error","response":{"reason":"invalid token"#
        ),
        "{refused}"
    );
    // A good one that no longer allows `presence:*`: ok, then that channel is closed.
    let longer = token("ann", 60, &["room:*"]);
    exchange(
        &mut fresh,
        &format!(r#"["1","4","room:a","access_token",{{"access_token":"{longer}"}}]"#),
        r#"["1","4","room:a","phx_reply",{"status":"ok","response":{}}]"#,
    )
    .await?;
    common::expect(&mut fresh, r#"["2","2","presence:b","phx_close",{}]"#).await?;

    // The socket that did not refresh is closed when its token expires ...
    assert_eq!(stale.recv_close().await?, Some(4001));
    // ... and the one that did is still served past that moment.
    heartbeat(&mut fresh, "5").await?;
    Ok(())
}

#[tokio::test]
async fn pushes_over_the_rate_are_refused_then_the_socket_closed() -> TestResult {
    let server = server(Config::default().pushes_per_second(2).max_rate_strikes(3)).await;
    let mut client = v2(&server).await?;
    join(&mut client, "1", "room:a").await?;
    for n in 2..=3 {
        exchange(
            &mut client,
            &format!(r#"["1","{n}","room:a","ping",{{}}]"#),
            &format!(r#"["1","{n}","room:a","phx_reply",{{"status":"ok","response":{{}}}}]"#),
        )
        .await?;
    }
    for n in 4..=5 {
        exchange(
            &mut client,
            &format!(r#"["1","{n}","room:a","ping",{{}}]"#),
            &format!(
                r#"["1","{n}","room:a","phx_reply",{{"status":"error","response":{{"reason":"too many pushes"}}}}]"#
            ),
        )
        .await?;
    }
    // Heartbeats are not pushes.
    heartbeat(&mut client, "6").await?;
    client.send_text(r#"["1","7","room:a","ping",{}]"#).await?;
    assert_eq!(client.recv_close().await?, Some(1008));

    // Another socket has its own budget.
    let mut other = v2(&server).await?;
    join(&mut other, "1", "room:a").await?;
    Ok(())
}

#[tokio::test]
async fn connections_per_address_are_limited_when_configured() -> TestResult {
    let server = server(Config::default().max_connections_per_ip(Some(2))).await;
    let mut first = v2(&server).await?;
    let _second = v2(&server).await?;
    let third = v2(&server).await;
    assert_eq!(
        refusal(third),
        Some((429, "too many connections from this address".to_owned()))
    );
    heartbeat(&mut first, "1").await?;
    Ok(())
}
