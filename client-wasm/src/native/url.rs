//! The upgrade request of one connection attempt, built with [`crate::connect`] as the browser's
//! is: phoenix.js's URL and auth-token subprotocols.

use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::TransportError;
use crate::connect::{auth_protocols, encode_uri_component, websocket_url};

/// `{endpoint}/websocket?{params}&vsn={vsn}`, with `http(s)://` taken as `ws(s)://`.
pub(super) fn connect_url(endpoint: &str, params: &[(String, String)], vsn: &str) -> String {
    let endpoint = if let Some(rest) = endpoint.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = endpoint.strip_prefix("https://") {
        format!("wss://{rest}")
    } else {
        endpoint.to_owned()
    };
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", encode_uri_component(k), encode_uri_component(v)))
        .collect();
    websocket_url(&endpoint, &query.join("&"), vsn)
}

/// The upgrade request for `url`, offering phoenix.js's subprotocols when there is a token
/// (`phoenix, base64url.bearer.phx.<btoa(token) without padding>`).
pub(super) fn upgrade_request(
    url: &str,
    auth_token: Option<&str>,
) -> Result<Request, TransportError> {
    let mut request = url.into_client_request().map_err(TransportError::Connect)?;
    if let Some(token) = auth_token {
        let protocols = auth_protocols(token).map_err(TransportError::InvalidToken)?;
        // Base64 and a fixed prefix: always a valid header value.
        if let Ok(value) = HeaderValue::from_str(&protocols.join(", ")) {
            request
                .headers_mut()
                .insert("sec-websocket-protocol", value);
        }
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_phoenix_js_urls() {
        let params = [
            ("token".to_owned(), "a b&c=d/é".to_owned()),
            ("x".to_owned(), "-_.!~*'()".to_owned()),
        ];
        assert_eq!(
            connect_url("ws://h:1/socket", &params, "2.0.0"),
            "ws://h:1/socket/websocket?token=a%20b%26c%3Dd%2F%C3%A9&x=-_.!~*'()&vsn=2.0.0"
        );
        assert_eq!(
            connect_url("https://h/socket", &[], "1.0.0"),
            "wss://h/socket/websocket?vsn=1.0.0"
        );
    }

    #[test]
    fn carries_the_token_as_a_subprotocol() {
        let request = upgrade_request("ws://h/socket/websocket?vsn=2.0.0", Some("secret"))
            .expect("a valid request");
        let protocol = request.headers().get("sec-websocket-protocol");
        assert_eq!(
            protocol.and_then(|v| v.to_str().ok()),
            Some("phoenix, base64url.bearer.phx.c2VjcmV0")
        );
        let request = upgrade_request("ws://h/socket/websocket", None).expect("a valid request");
        assert!(request.headers().get("sec-websocket-protocol").is_none());
        assert!(matches!(
            upgrade_request("ws://h/socket/websocket", Some("✓")),
            Err(TransportError::InvalidToken(_))
        ));
    }
}
