//! One client connection: TCP from a chosen source address, the WebSocket and protocol handshakes,
//! and the request/reply steps every scenario is made of.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

use crate::wire::{Codec, Incoming, Protocol, socketio};

/// How long one handshake or one awaited reply may take before the step fails.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Read buffer per connection. Small, because an idle run holds nearly 20,000 connections; a
/// fan-out subscriber reads about 260-byte frames, many of which still fit one read.
const READ_BUFFER: usize = 8 * 1024;

/// A server under test: where it listens and what it speaks.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The listening address.
    pub addr: SocketAddr,
    /// Its protocol.
    pub protocol: Protocol,
}

/// Why a client step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The TCP connection could not be opened from the chosen source address.
    #[error("cannot connect from {source_ip} to {addr}")]
    Connect {
        /// The source address the socket was bound to.
        source_ip: IpAddr,
        /// The server's address.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The WebSocket upgrade or a later WebSocket read or write failed.
    #[error("WebSocket error")]
    WebSocket(#[from] tungstenite::Error),
    /// The server closed the connection while the client waited for `waiting_for`.
    #[error("the server closed the connection while the client waited for {waiting_for}")]
    Closed {
        /// The step that was under way.
        waiting_for: &'static str,
    },
    /// No answer within [`STEP_TIMEOUT`].
    #[error("no {waiting_for} within {STEP_TIMEOUT:?}")]
    Timeout {
        /// The step that was under way.
        waiting_for: &'static str,
    },
    /// The server answered with an error status.
    #[error("the server refused the {what}: {response}")]
    Refused {
        /// The step that was refused.
        what: &'static str,
        /// The response it sent, as JSON text.
        response: String,
    },
    /// A plain HTTP request (the demo's login) could not be sent or its answer read.
    #[error("the {what} request failed")]
    Http {
        /// The request.
        what: &'static str,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The server sent text the client cannot read where it expected a protocol step.
    #[error("unexpected message during {during}: {text}")]
    Unexpected {
        /// The step that was under way.
        during: &'static str,
        /// The message, cut to 200 bytes.
        text: String,
    },
}

impl ClientError {
    /// A short, stable label for counting failures by kind in a report.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientError::Connect { .. } => "connect",
            ClientError::WebSocket(_) => "websocket",
            ClientError::Closed { .. } => "closed",
            ClientError::Timeout { .. } => "timeout",
            ClientError::Refused { .. } => "refused",
            ClientError::Http { .. } => "http",
            ClientError::Unexpected { .. } => "unexpected",
        }
    }
}

/// An open client connection and its codec.
#[derive(Debug)]
pub struct Client {
    ws: WebSocketStream<TcpStream>,
    codec: Codec,
}

impl Client {
    /// Connects from `source` to `target`, completing the WebSocket upgrade and, for socket.io,
    /// the engine.io open and namespace connect.
    pub async fn connect(target: Target, source: IpAddr) -> Result<Self, ClientError> {
        Client::connect_with_query(target, source, "").await
    }

    /// [`Client::connect`] with `query` (e.g. `token=...`, already URL-safe) added to the
    /// WebSocket URL's query, as phoenix.js adds its `params`.
    pub async fn connect_with_query(
        target: Target,
        source: IpAddr,
        query: &str,
    ) -> Result<Self, ClientError> {
        let stream = open_tcp(target.addr, source)
            .await
            .map_err(|err| ClientError::Connect {
                source_ip: source,
                addr: target.addr,
                source: err,
            })?;
        let mut url = format!("ws://{}{}", target.addr, target.protocol.path());
        if !query.is_empty() {
            url.push('&');
            url.push_str(query);
        }
        let request = url.into_client_request()?;
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(0);
        let (ws, _response) = tokio::time::timeout(
            STEP_TIMEOUT,
            client_async_with_config(request, stream, Some(config)),
        )
        .await
        .map_err(|_| ClientError::Timeout {
            waiting_for: "the WebSocket upgrade",
        })??;
        let mut client = Client {
            ws,
            codec: Codec::new(target.protocol),
        };
        if target.protocol == Protocol::SocketIo {
            client.socketio_handshake().await?;
        }
        Ok(client)
    }

    async fn socketio_handshake(&mut self) -> Result<(), ClientError> {
        const STEP: &str = "the engine.io open packet";
        let text = self.recv_within(STEP).await?;
        if self.codec.decode(&text) != Incoming::Open {
            return Err(unexpected(STEP, &text));
        }
        self.send(socketio::CONNECT.to_owned()).await?;
        const CONNECT: &str = "the namespace connect";
        loop {
            let text = self.recv_within(CONNECT).await?;
            match self.codec.decode(&text) {
                Incoming::Connected => return Ok(()),
                Incoming::Other => {}
                _ => return Err(unexpected(CONNECT, &text)),
            }
        }
    }

    /// The connection's codec, to encode requests and decode what [`Client::recv`] returns.
    pub fn codec(&mut self) -> &mut Codec {
        &mut self.codec
    }

    /// Sends one text message.
    pub async fn send(&mut self, text: String) -> Result<(), ClientError> {
        self.ws.send(Message::text(text)).await?;
        Ok(())
    }

    /// The next text message, or `None` once the server has closed the connection. Answers
    /// engine.io pings on the way and skips control frames.
    pub async fn recv(&mut self) -> Result<Option<Utf8Bytes>, ClientError> {
        while let Some(message) = self.ws.next().await {
            match message? {
                Message::Text(text) => {
                    if self.codec.protocol() == Protocol::SocketIo
                        && self.codec.decode(&text) == Incoming::Ping
                    {
                        let pong = self.codec.pong();
                        self.send(pong.to_owned()).await?;
                        continue;
                    }
                    return Ok(Some(text));
                }
                Message::Close(_) => return Ok(None),
                Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
        Ok(None)
    }

    async fn recv_within(&mut self, waiting_for: &'static str) -> Result<Utf8Bytes, ClientError> {
        match tokio::time::timeout(STEP_TIMEOUT, self.recv()).await {
            Ok(Ok(Some(text))) => Ok(text),
            Ok(Ok(None)) => Err(ClientError::Closed { waiting_for }),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(ClientError::Timeout { waiting_for }),
        }
    }

    /// Waits for the reply to `msg_ref`, skipping everything else, and returns whether it was ok.
    pub async fn await_reply(
        &mut self,
        msg_ref: u64,
        waiting_for: &'static str,
    ) -> Result<(), ClientError> {
        loop {
            let text = self.recv_within(waiting_for).await?;
            match self.codec.decode(&text) {
                Incoming::Reply {
                    msg_ref: r,
                    ok,
                    response,
                } if r == msg_ref => {
                    return if ok {
                        Ok(())
                    } else {
                        Err(ClientError::Refused {
                            what: waiting_for,
                            response: response.to_owned(),
                        })
                    };
                }
                Incoming::Malformed => return Err(unexpected(waiting_for, &text)),
                _ => {}
            }
        }
    }

    /// Joins `topic` and waits for the server's ok.
    pub async fn join(&mut self, topic: &str) -> Result<(), ClientError> {
        let (text, msg_ref) = self.codec.join(topic);
        self.send(text).await?;
        self.await_reply(msg_ref, "the join reply").await
    }

    /// Leaves `topic` and waits for the server's ok.
    pub async fn leave(&mut self, topic: &str) -> Result<(), ClientError> {
        let (text, msg_ref) = self.codec.leave(topic);
        self.send(text).await?;
        self.await_reply(msg_ref, "the leave reply").await
    }

    /// Closes the WebSocket with code 1000 and waits (briefly) for the server's close.
    pub async fn close(mut self) -> Result<(), ClientError> {
        self.ws.close(None).await?;
        let drain = async {
            while let Some(message) = self.ws.next().await {
                if message.is_err() {
                    break;
                }
            }
        };
        // A server that never answers the close is the server's problem, not a failed cycle.
        let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
        Ok(())
    }
}

fn unexpected(during: &'static str, text: &str) -> ClientError {
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    ClientError::Unexpected {
        during,
        text: text[..end].to_owned(),
    }
}

/// A TCP connection to `addr` from `source` (port chosen by the kernel), without Nagle's delay.
pub(crate) async fn open_tcp(addr: SocketAddr, source: IpAddr) -> io::Result<TcpStream> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // Lets the kernel reuse a source port whose earlier connection sits in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::new(source, 0))?;
    let stream = tokio::time::timeout(STEP_TIMEOUT, socket.connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TCP connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}
