//! `POST /api/login` as the demo page sends it, over one short HTTP/1.1 connection.
//!
//! The demo's login is password-less (any valid user id gets a token), so the scenario logs each
//! of its users in and connects their sockets with `?token=<token>`, as phoenix.js sends a
//! socket's `params`. One request per connection (`Connection: close`, read to the end): a crowd
//! logs in once before it joins, so the generator needs no HTTP client beyond this.

use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::conn::{ClientError, STEP_TIMEOUT, open_tcp};
use crate::wire::json_string;

/// The largest login response read; the demo's is about 150 bytes.
const MAX_RESPONSE: u64 = 16 * 1024;

const WAITING_FOR: &str = "the login";

/// The body of a successful login.
#[derive(Debug, Deserialize)]
struct LoginResponse {
    token: String,
}

/// Logs `user_id` in at `addr` (from `source`) and returns its token.
pub async fn login(addr: SocketAddr, source: IpAddr, user_id: &str) -> Result<String, ClientError> {
    let exchange = async {
        let mut stream = open_tcp(addr, source)
            .await
            .map_err(|err| ClientError::Connect {
                source_ip: source,
                addr,
                source: err,
            })?;
        let body = format!("{{\"user_id\":{}}}", json_string(user_id));
        let request = format!(
            "POST /api/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let io = |source| ClientError::Http {
            what: WAITING_FOR,
            source,
        };
        stream.write_all(request.as_bytes()).await.map_err(io)?;
        let mut response = Vec::new();
        (&mut stream)
            .take(MAX_RESPONSE)
            .read_to_end(&mut response)
            .await
            .map_err(io)?;
        Ok::<_, ClientError>(response)
    };
    let response = tokio::time::timeout(STEP_TIMEOUT, exchange)
        .await
        .map_err(|_| ClientError::Timeout {
            waiting_for: WAITING_FOR,
        })??;
    token_of(&String::from_utf8_lossy(&response))
}

/// The token in a raw HTTP response to `POST /api/login`.
fn token_of(response: &str) -> Result<String, ClientError> {
    let unexpected = || ClientError::Unexpected {
        during: WAITING_FOR,
        text: response.chars().take(200).collect(),
    };
    let (head, body) = response.split_once("\r\n\r\n").ok_or_else(unexpected)?;
    let status = head.split_whitespace().nth(1).ok_or_else(unexpected)?;
    if status != "200" {
        return Err(ClientError::Refused {
            what: WAITING_FOR,
            response: format!("HTTP {status} {}", body.trim()),
        });
    }
    let parsed: LoginResponse = serde_json::from_str(body.trim()).map_err(|_| unexpected())?;
    Ok(parsed.token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_token_or_says_why_not() {
        let ok = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 33\r\n\r\n\
                  {\"user_id\":\"u1\",\"token\":\"u1.9xy\"}";
        assert_eq!(token_of(ok).ok().as_deref(), Some("u1.9xy"));
        let refused = "HTTP/1.1 422 Unprocessable Entity\r\n\r\n{\"error\":\"bad user id\"}";
        assert!(matches!(
            token_of(refused),
            Err(ClientError::Refused { response, .. }) if response.contains("422")
        ));
        assert!(matches!(
            token_of("garbage"),
            Err(ClientError::Unexpected { .. })
        ));
        assert!(matches!(
            token_of("HTTP/1.1 200 OK\r\n\r\nnot json"),
            Err(ClientError::Unexpected { .. })
        ));
    }
}
