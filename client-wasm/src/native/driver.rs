//! The driver task: one loop that owns the WebSocket and follows the
//! [`Driver`](crate::rust_api::Driver) contract.
//!
//! The task holds the connection as a read half and a write half (`StreamExt::split`), so that a
//! slow write never stops reads (and so heartbeat replies) from being handled. State, all owned
//! by the task:
//! - `connecting`: the attempt in flight after `Action::Connect` (params, TCP, upgrade);
//! - `reader` / `writer`: the open connection; the writer queues the session's frames and
//!   writes them in order (`feed` each, then one `flush`); past `max_queued_frames` waiting, the
//!   connection is presumed stuck and dropped (the session reconnects);
//! - the session's next deadline, re-read after every wake-up.
//!
//! A transport the session lets go of (`Action::Close`) is handed, with what is still queued
//! for it, to a short-lived task that writes it out, sends the close frame and waits (at most
//! [`CLOSE_TIMEOUT`]) for the server's close reply, so the loop never waits on it.

use std::collections::VecDeque;
use std::future::{Future, pending};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use alight_protocol::Wire;
use alight_protocol::client::Action;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async_with_config};

use super::url::{connect_url, upgrade_request};
use super::{ConnectParams, Provider, TransportError};
use crate::rust_api::Driver;

/// How long a closing transport may take to write what it has and exchange close frames.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Connecting = Pin<Box<dyn Future<Output = Result<Ws, TransportError>> + Send>>;

/// How to open a connection; shared by the attempts.
pub(super) struct Connector {
    pub(super) endpoint: String,
    pub(super) vsn: &'static str,
    pub(super) websocket: WebSocketConfig,
    pub(super) connect_timeout: Duration,
    pub(super) max_queued_frames: usize,
    pub(super) params: ConnectParams,
    pub(super) provider: Option<Provider>,
}

impl Connector {
    /// One connection attempt: params and token evaluated now, then TCP and the upgrade.
    async fn open(self: Arc<Self>) -> Result<Ws, TransportError> {
        let ConnectParams { params, auth_token } = match &self.provider {
            Some(provider) => provider().await.map_err(TransportError::Params)?,
            None => self.params.clone(),
        };
        let url = connect_url(&self.endpoint, &params, self.vsn);
        let request = upgrade_request(&url, auth_token.as_deref())?;
        // Nagle off: frames are small and latency is the point.
        let connect = connect_async_with_config(request, Some(self.websocket), true);
        match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok((ws, _response))) => Ok(ws),
            Ok(Err(error)) => Err(TransportError::Connect(error)),
            Err(_elapsed) => Err(TransportError::ConnectTimeout(self.connect_timeout)),
        }
    }
}

/// The write half and the frames waiting for it.
struct Writer {
    sink: SplitSink<Ws, Message>,
    outbox: VecDeque<Message>,
    /// Frames were fed but not yet flushed.
    unflushed: bool,
}

impl Writer {
    fn wants_to_write(&self) -> bool {
        !self.outbox.is_empty() || self.unflushed
    }

    /// Writes the outbox out. Cancel-safe: a frame leaves the outbox only once the sink took it,
    /// and `unflushed` remembers a flush still owed.
    async fn write(&mut self) -> Result<(), tungstenite::Error> {
        while let Some(message) = self.outbox.front() {
            self.sink.feed(message.clone()).await?;
            self.outbox.pop_front();
            self.unflushed = true;
        }
        self.sink.flush().await?;
        self.unflushed = false;
        Ok(())
    }
}

/// Runs the socket until every handle is gone.
pub(super) async fn run(driver: Driver, connector: Arc<Connector>) {
    let mut connecting: Option<Connecting> = None;
    let mut reader: Option<SplitStream<Ws>> = None;
    let mut writer: Option<Writer> = None;
    // The code of a close frame received, reported when the read half ends.
    let mut close_code: Option<u16> = None;
    loop {
        let work = driver.take_work();
        for wire in work.transmits {
            // Frames are only made while the session believes the transport open, which it is
            // exactly while `writer` is set.
            if let Some(writer) = &mut writer {
                writer.outbox.push_back(message(wire));
            }
        }
        for action in work.actions {
            match action {
                Action::Connect => {
                    // The session closes the previous transport first; be safe anyway.
                    release(reader.take(), writer.take(), None);
                    close_code = None;
                    connecting = Some(Box::pin(Arc::clone(&connector).open()));
                }
                Action::Close { code, reason } => {
                    connecting = None;
                    let frame = code.map(|code| CloseFrame {
                        code: CloseCode::from(code),
                        reason: Utf8Bytes::from(reason),
                    });
                    release(reader.take(), writer.take(), frame);
                }
            }
        }
        if work.shutdown {
            return;
        }
        let queued = writer.as_ref().map_or(0, |w| w.outbox.len());
        if queued > connector.max_queued_frames {
            // Nothing is being taken: drop the connection rather than queue without bound. The
            // session reconnects; what was queued times out.
            reader = None;
            writer = None;
            driver.handle_error(Some(Arc::new(TransportError::Backpressure { queued })));
            driver.handle_close(None);
            continue;
        }
        let sleep = work
            .timeout
            .map(|at| at.saturating_duration_since(driver.now()));
        let wants_to_write = writer.as_ref().is_some_and(Writer::wants_to_write);

        tokio::select! {
            () = driver.woken() => {}
            () = sleep_for(sleep) => driver.handle_timeout(),
            opened = attempt(&mut connecting) => {
                connecting = None;
                match opened {
                    Ok(ws) => {
                        let (sink, stream) = ws.split();
                        reader = Some(stream);
                        writer = Some(Writer { sink, outbox: VecDeque::new(), unflushed: false });
                        driver.handle_open();
                    }
                    Err(error) => {
                        driver.handle_error(Some(Arc::new(error)));
                        driver.handle_close(None);
                    }
                }
            }
            incoming = read(&mut reader) => match incoming {
                Some(Ok(Message::Text(text))) => {
                    // A bad frame is reported on `ClientSocket::events` by the driver handle.
                    let _ = driver.handle_text(text.as_str());
                }
                Some(Ok(Message::Binary(data))) => {
                    let _ = driver.handle_binary(data);
                }
                Some(Ok(Message::Close(frame))) => {
                    // tungstenite answers it; the read half ends once that is done.
                    close_code = frame.map(|f| u16::from(f.code));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Err(
                    tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed,
                ))
                | None => {
                    reader = None;
                    writer = None;
                    driver.handle_close(close_code.take());
                }
                Some(Err(error)) => {
                    reader = None;
                    writer = None;
                    driver.handle_error(Some(Arc::new(TransportError::WebSocket(error))));
                    driver.handle_close(close_code.take());
                }
            },
            written = write(&mut writer), if wants_to_write => {
                if let Err(error) = written {
                    reader = None;
                    writer = None;
                    driver.handle_error(Some(Arc::new(TransportError::WebSocket(error))));
                    driver.handle_close(None);
                }
            }
        }
    }
}

/// A frame of the session as a WebSocket message.
fn message(wire: Wire) -> Message {
    match wire {
        Wire::Text(text) => match Utf8Bytes::try_from(text.as_bytes().clone()) {
            Ok(text) => Message::Text(text),
            // `SharedText` is UTF-8 by construction; copy rather than drop if that ever changes.
            Err(_) => Message::Text(Utf8Bytes::from(text.as_str())),
        },
        Wire::Binary(bytes) => Message::Binary(bytes),
    }
}

/// Lets go of a transport: a task writes what is queued, sends `frame` (none: a close without a
/// code) and waits for the server's reply. Its outcome concerns nobody any more: the session
/// has already reported the close, so errors there are not reported.
fn release(reader: Option<SplitStream<Ws>>, writer: Option<Writer>, frame: Option<CloseFrame>) {
    let (Some(reader), Some(writer)) = (reader, writer) else {
        return;
    };
    let Writer { sink, outbox, .. } = writer;
    let Ok(mut ws) = sink.reunite(reader) else {
        return;
    };
    tokio::spawn(async move {
        let closing = async {
            for message in outbox {
                ws.feed(message).await?;
            }
            ws.close(frame).await?;
            while let Some(Ok(_)) = ws.next().await {}
            Ok::<(), tungstenite::Error>(())
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, closing).await;
    });
}

async fn sleep_for(duration: Option<Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => pending().await,
    }
}

async fn attempt(connecting: &mut Option<Connecting>) -> Result<Ws, TransportError> {
    match connecting {
        Some(connecting) => connecting.await,
        None => pending().await,
    }
}

async fn read(reader: &mut Option<SplitStream<Ws>>) -> Option<Result<Message, tungstenite::Error>> {
    match reader {
        Some(reader) => reader.next().await,
        None => pending().await,
    }
}

async fn write(writer: &mut Option<Writer>) -> Result<(), tungstenite::Error> {
    match writer {
        Some(writer) => writer.write().await,
        None => pending().await,
    }
}
