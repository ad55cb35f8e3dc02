//! A raw-frame test client over tokio-tungstenite.
//!
//! It speaks through `alight-protocol`'s serializers, so tests read and write [`Frame`]s, and it
//! waits on events with a deadline instead of sleeping: every `recv` fails after
//! [`RECV_TIMEOUT`] rather than hanging a test.

use std::time::Duration;

use alight_protocol::{Body, Direction, Frame, Payload, Serializer, Wire};
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for an expected frame.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(10);

/// What went wrong in the test client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The WebSocket failed.
    #[error("websocket: {0}")]
    Ws(#[from] tungstenite::Error),
    /// Nothing arrived in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The server closed the socket.
    #[error("socket closed with {0:?}")]
    Closed(Option<u16>),
    /// A frame did not decode.
    #[error("undecodable frame: {0}")]
    Decode(#[from] alight_protocol::DecodeError),
    /// A frame could not be encoded.
    #[error("unencodable frame: {0}")]
    Encode(#[from] alight_protocol::EncodeError),
    /// A message of the wrong kind arrived.
    #[error("unexpected message: {0}")]
    Unexpected(&'static str),
}

/// The upgrade request for `url`, with phoenix.js's auth-token subprotocol if `token` is given.
fn upgrade_request(
    url: &str,
    token: Option<&str>,
) -> Result<tungstenite::handshake::client::Request, ClientError> {
    let mut request = url.into_client_request()?;
    if let Some(token) = token {
        // As phoenix.js: `btoa(token)` with the padding removed.
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(token);
        let value = format!("phoenix, base64url.bearer.phx.{encoded}");
        if let Ok(value) = HeaderValue::from_str(&value) {
            request
                .headers_mut()
                .insert("sec-websocket-protocol", value);
        }
    }
    Ok(request)
}

/// A connected raw client.
#[derive(Debug)]
pub struct TestClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    serializer: Serializer,
    next_ref: u64,
}

/// A reply: status and response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// `ok`, `error`, …
    pub status: String,
    /// The response payload.
    pub response: Payload,
}

impl Reply {
    /// The response as JSON.
    pub fn json(&self) -> serde_json::Value {
        self.response
            .deserialize()
            .unwrap_or(serde_json::Value::Null)
    }
}

impl TestClient {
    /// Connects to `url` (which carries `vsn`), with phoenix.js's auth-token subprotocol if given.
    pub async fn connect(url: &str, token: Option<&str>) -> Result<Self, ClientError> {
        let request = upgrade_request(url, token)?;
        let (ws, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(TestClient::new(url, ws))
    }

    /// As [`TestClient::connect`], with the socket's receive buffer (`SO_RCVBUF`) set to `bytes`
    /// before connecting, which also turns off the kernel's receive-buffer autotuning: a client that
    /// then stops reading fills the server's send path after a few kilobytes, not megabytes.
    pub async fn connect_with_recv_buffer(
        url: &str,
        token: Option<&str>,
        bytes: u32,
    ) -> Result<Self, ClientError> {
        let request = upgrade_request(url, token)?;
        let host = request.uri().host().unwrap_or("127.0.0.1").to_owned();
        let port = request.uri().port_u16().unwrap_or(80);
        let addr = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(tungstenite::Error::Io)?
            .next()
            .ok_or(ClientError::Timeout("an address to connect to"))?;
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(tungstenite::Error::Io)?;
        socket
            .set_recv_buffer_size(bytes)
            .map_err(tungstenite::Error::Io)?;
        let stream = socket.connect(addr).await.map_err(tungstenite::Error::Io)?;
        let (ws, _) =
            tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await?;
        Ok(TestClient::new(url, ws))
    }

    fn new(url: &str, ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Self {
        let serializer = if url.contains("vsn=2") {
            Serializer::V2
        } else {
            Serializer::V1Json
        };
        TestClient {
            ws,
            serializer,
            next_ref: 0,
        }
    }

    /// The next ref, as phoenix.js counts them.
    pub fn make_ref(&mut self) -> String {
        self.next_ref += 1;
        self.next_ref.to_string()
    }

    /// Sends a frame.
    pub async fn send(&mut self, frame: &Frame) -> Result<(), ClientError> {
        let message = match self.serializer.encode(Direction::ToServer, frame)? {
            Wire::Text(text) => Message::text(text.as_str()),
            Wire::Binary(bytes) => Message::binary(bytes),
        };
        self.ws.send(message).await?;
        Ok(())
    }

    /// Sends a raw WebSocket message (for malformed input).
    pub async fn send_raw(&mut self, message: Message) -> Result<(), ClientError> {
        self.ws.send(message).await?;
        Ok(())
    }

    /// Receives the next frame.
    pub async fn recv(&mut self) -> Result<Frame, ClientError> {
        loop {
            let next = tokio::time::timeout(RECV_TIMEOUT, self.ws.next())
                .await
                .map_err(|_| ClientError::Timeout("a frame"))?;
            match next {
                Some(Ok(Message::Text(text))) => {
                    return Ok(self
                        .serializer
                        .decode_text(Direction::ToClient, text.as_str())?);
                }
                Some(Ok(Message::Binary(bytes))) => {
                    return Ok(self.serializer.decode_binary(Direction::ToClient, bytes)?);
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(ClientError::Closed(frame.map(|f| u16::from(f.code))));
                }
                Some(Ok(_)) => continue,
                Some(Err(err)) => return Err(err.into()),
                None => return Err(ClientError::Closed(None)),
            }
        }
    }

    /// Sends a text message as is (exact frames, or malformed ones).
    pub async fn send_text(&mut self, text: &str) -> Result<(), ClientError> {
        self.send_raw(Message::text(text)).await
    }

    /// Receives the next text or binary message as is, without decoding it.
    pub async fn recv_raw(&mut self) -> Result<Message, ClientError> {
        loop {
            let next = tokio::time::timeout(RECV_TIMEOUT, self.ws.next())
                .await
                .map_err(|_| ClientError::Timeout("a message"))?;
            match next {
                Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => return Ok(message),
                Some(Ok(Message::Close(frame))) => {
                    return Err(ClientError::Closed(frame.map(|f| u16::from(f.code))));
                }
                Some(Ok(_)) => continue,
                Some(Err(err)) => return Err(err.into()),
                None => return Err(ClientError::Closed(None)),
            }
        }
    }

    /// Receives the next message, which must be text, as a string.
    pub async fn recv_text(&mut self) -> Result<String, ClientError> {
        match self.recv_raw().await? {
            Message::Text(text) => Ok(text.as_str().to_owned()),
            _ => Err(ClientError::Unexpected(
                "a binary message where text was expected",
            )),
        }
    }

    /// Receives the next message, which must be binary, as bytes.
    pub async fn recv_binary(&mut self) -> Result<bytes::Bytes, ClientError> {
        match self.recv_raw().await? {
            Message::Binary(bytes) => Ok(bytes),
            _ => Err(ClientError::Unexpected(
                "a text message where binary was expected",
            )),
        }
    }

    /// Receives (and discards, undecoded) messages until the socket closes; returns the close
    /// code, or `None` when the connection ended without a close frame (EOF or reset).
    pub async fn recv_close(&mut self) -> Result<Option<u16>, ClientError> {
        loop {
            match self.recv_raw().await {
                Ok(_) => continue,
                Err(ClientError::Closed(code)) => return Ok(code),
                Err(ClientError::Ws(
                    tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed,
                )) => return Ok(None),
                Err(ClientError::Ws(
                    tungstenite::Error::Protocol(_) | tungstenite::Error::Io(_),
                )) => {
                    return Ok(None);
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// Receives frames until one matches `pred`, skipping others.
    pub async fn recv_until(
        &mut self,
        mut pred: impl FnMut(&Frame) -> bool,
    ) -> Result<Frame, ClientError> {
        loop {
            let frame = self.recv().await?;
            if pred(&frame) {
                return Ok(frame);
            }
        }
    }

    /// Sends `event` on `topic` and waits for its reply (skipping other frames).
    pub async fn request(
        &mut self,
        join_ref: Option<&str>,
        topic: &str,
        event: &str,
        payload: Payload,
    ) -> Result<Reply, ClientError> {
        let msg_ref = self.make_ref();
        let frame = Frame::message(
            join_ref.map(str::to_owned),
            Some(msg_ref.clone()),
            topic,
            event,
            payload,
        );
        self.send(&frame).await?;
        let reply = self
            .recv_until(|f| {
                f.msg_ref.as_deref() == Some(msg_ref.as_str())
                    && matches!(f.body, Body::Reply { .. })
            })
            .await?;
        match reply.body {
            Body::Reply { status, response } => Ok(Reply { status, response }),
            Body::Event { .. } => Err(ClientError::Timeout("a reply")),
        }
    }

    /// Joins `topic`; returns the join_ref used and the reply.
    pub async fn join(
        &mut self,
        topic: &str,
        params: serde_json::Value,
    ) -> Result<(String, Reply), ClientError> {
        let join_ref = self.make_ref();
        self.next_ref -= 1;
        let payload = Payload::json(&params).unwrap_or_else(|_| Payload::empty());
        let reply = self
            .request(Some(&join_ref), topic, "phx_join", payload)
            .await?;
        Ok((join_ref, reply))
    }

    /// Pushes `event` with a JSON payload on a joined topic and waits for the reply.
    pub async fn push(
        &mut self,
        join_ref: &str,
        topic: &str,
        event: &str,
        payload: serde_json::Value,
    ) -> Result<Reply, ClientError> {
        let payload = Payload::json(&payload).unwrap_or_else(|_| Payload::empty());
        self.request(Some(join_ref), topic, event, payload).await
    }

    /// Closes the socket with a normal close.
    pub async fn close(mut self) -> Result<(), ClientError> {
        self.ws
            .close(Some(tungstenite::protocol::CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            }))
            .await?;
        Ok(())
    }
}
