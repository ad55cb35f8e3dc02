//! Helpers shared by the integration tests: exact-frame exchanges, a minimal HTTP/1.1 client and
//! a reader of the Prometheus text.
//!
//! Each test file is its own crate and uses a different subset of these.
#![allow(dead_code)]

use std::net::SocketAddr;

use alight_server::Config;
use alight_tests::client::{ClientError, RECV_TIMEOUT, TestClient};
use alight_tests::fixture::{self, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A test result; `?` on anything that went wrong.
pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// The fixture server with `config`.
pub async fn server(config: Config) -> Server {
    match fixture::start(config).await {
        Ok(server) => server,
        Err(err) => panic!("the fixture server did not start: {err}"),
    }
}

/// A V2 client, anonymous.
pub async fn v2(server: &Server) -> Result<TestClient, ClientError> {
    TestClient::connect(&server.ws_url("2.0.0"), None).await
}

/// Sends `text` and asserts that the very next message is exactly `expected`.
pub async fn exchange(client: &mut TestClient, text: &str, expected: &str) -> TestResult {
    client.send_text(text).await?;
    expect(client, expected).await
}

/// Asserts that the very next message is the text `expected`, byte for byte.
pub async fn expect(client: &mut TestClient, expected: &str) -> TestResult {
    let got = client.recv_text().await?;
    assert_eq!(got, expected, "unexpected frame");
    Ok(())
}

/// Joins `topic` anonymously with `join_ref` (also the message ref) and asserts the ok reply.
pub async fn join(client: &mut TestClient, join_ref: &str, topic: &str) -> TestResult {
    exchange(
        client,
        &format!(r#"["{join_ref}","{join_ref}","{topic}","phx_join",{{}}]"#),
        &format!(
            r#"["{join_ref}","{join_ref}","{topic}","phx_reply",{{"status":"ok","response":{{"user":null}}}}]"#
        ),
    )
    .await
}

/// Sends a heartbeat with `msg_ref` and asserts that the very next message is its ok reply.
pub async fn heartbeat(client: &mut TestClient, msg_ref: &str) -> TestResult {
    exchange(
        client,
        &format!(r#"[null,"{msg_ref}","phoenix","heartbeat",{{}}]"#),
        &format!(r#"[null,"{msg_ref}","phoenix","phx_reply",{{"status":"ok","response":{{}}}}]"#),
    )
    .await
}

/// The status code of a refused WebSocket upgrade.
pub fn refused_status(result: Result<TestClient, ClientError>) -> Option<u16> {
    refusal(result).map(|(status, _)| status)
}

/// The status code and body of a refused WebSocket upgrade.
pub fn refusal(result: Result<TestClient, ClientError>) -> Option<(u16, String)> {
    match result {
        Err(ClientError::Ws(tokio_tungstenite::tungstenite::Error::Http(response))) => {
            let body = response
                .body()
                .as_deref()
                .map(|body| String::from_utf8_lossy(body).into_owned())
                .unwrap_or_default();
            Some((response.status().as_u16(), body))
        }
        _ => None,
    }
}

/// A metric's value in the Prometheus/OpenMetrics text (`name value` lines, no labels).
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once(' '))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| value.trim().parse().ok())
}

/// An HTTP response, read whole.
#[derive(Debug)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header lines, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: String,
}

impl HttpResponse {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Sends one HTTP/1.1 request with `Connection: close` over a fresh TCP connection and reads the
/// whole response. A hand-written request keeps the test dependencies to what the crate has.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<HttpResponse, Box<dyn std::error::Error + Send + Sync>> {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);

    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(RECV_TIMEOUT, stream.read_to_end(&mut raw)).await??;
    let raw = String::from_utf8(raw)?;

    let (head, rest) = raw
        .split_once("\r\n\r\n")
        .ok_or("response without an end of headers")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("empty response")?;
    let status = status_line
        .split(' ')
        .nth(1)
        .ok_or("status line without a code")?
        .parse()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_owned()
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &str) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").ok_or("truncated chunk size")?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)?;
        if size == 0 {
            return Ok(body);
        }
        let chunk = after.get(..size).ok_or("truncated chunk")?;
        body.push_str(chunk);
        rest = after
            .get(size..)
            .and_then(|r| r.strip_prefix("\r\n"))
            .ok_or("chunk without its CRLF")?;
    }
}

/// An app of a hand-built [`Alight`](alight_server::Alight), served on a free loopback port
/// until [`Served::stop`].
pub struct Served {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Serves `app` with `alight` (its graceful shutdown) on `127.0.0.1:0`.
pub async fn serve(alight: &alight_server::Alight, app: axum::Router) -> std::io::Result<Served> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let alight = alight.clone();
    let task = tokio::spawn(async move {
        alight
            .serve(listener, app, async {
                let _ = stopped.await;
            })
            .await
    });
    Ok(Served { addr, stop, task })
}

impl Served {
    /// Shuts the server down and waits until it has stopped.
    pub async fn stop(self) -> TestResult {
        let _ = self.stop.send(());
        self.task.await??;
        Ok(())
    }
}

/// How the server ended a socket it accepted and closed at once (a refusal with
/// [`Config::close_on_refusal`] on): `Ok((code, reason))` of its close frame, or `Err` with what
/// happened instead (a refused upgrade, a frame before the close, no close frame).
pub async fn closed_at_once(url: &str, token: Option<&str>) -> Result<(u16, String), String> {
    use base64::Engine;
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};

    let mut request = url.into_client_request().map_err(|err| err.to_string())?;
    let mut protocols = "phoenix".to_owned();
    if let Some(token) = token {
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(token);
        protocols.push_str(&format!(", base64url.bearer.phx.{encoded}"));
    }
    let value = tungstenite::http::HeaderValue::from_str(&protocols).map_err(|e| e.to_string())?;
    request
        .headers_mut()
        .insert("sec-websocket-protocol", value);
    let (mut ws, response) = match tokio_tungstenite::connect_async(request).await {
        Ok(connected) => connected,
        Err(err) => return Err(format!("the upgrade failed: {err}")),
    };
    // A browser fails a connection whose answer picks no subprotocol after it offered some.
    let protocol = response.headers().get("sec-websocket-protocol");
    if protocol.and_then(|value| value.to_str().ok()) != Some("phoenix") {
        return Err(format!("the upgrade answered the subprotocol {protocol:?}"));
    }
    match tokio::time::timeout(RECV_TIMEOUT, ws.next()).await {
        Ok(Some(Ok(Message::Close(Some(frame))))) => {
            Ok((u16::from(frame.code), frame.reason.as_str().to_owned()))
        }
        Ok(other) => Err(format!("expected a close frame, got {other:?}")),
        Err(_) => Err("no close frame in time".to_owned()),
    }
}
