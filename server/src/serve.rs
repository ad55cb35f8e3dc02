//! Serving HTTP/1 on a listener with the timeouts a public server needs.
//!
//! `axum::serve` runs hyper without a timer, so a client that sends half a request (headers or
//! body) holds its connection forever, and a graceful shutdown waits for that request to finish.
//! Here each connection is served by hyper directly (`hyper-util`'s tokio glue), with:
//! - a timer, so request headers must arrive within
//!   [`Limits::header_read_timeout`](crate::Limits::header_read_timeout) (also between requests
//!   of a kept-alive connection);
//! - each request body read through `tower-http`'s `TimeoutBody`
//!   ([`Limits::body_read_timeout`](crate::Limits::body_read_timeout));
//! - a permit per connection until it upgrades or closes
//!   ([`Limits::max_http_connections`](crate::Limits::max_http_connections));
//! - the peer address in each request's extensions, as axum's
//!   [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo), for the connect callback and for
//!   the application's own handlers;
//! - a graceful shutdown that asks every connection to finish its request and drops those still
//!   running after [`Limits::shutdown_timeout`](crate::Limits::shutdown_timeout).
//!
//! Only HTTP/1 is served: WebSocket upgrades are HTTP/1.1, and TLS (so HTTP/2) ends at the proxy.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutBody;
use tower_service::Service;
use tracing::{debug, warn};

use crate::config::Limits;
use crate::metrics::Metrics;

/// How long to wait before accepting again after an accept error (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until `shutdown` is cancelled, then lets each connection finish its
/// request for at most `limits.shutdown_timeout` and drops the rest.
pub(crate) async fn serve_http(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    limits: Limits,
    metrics: Arc<Metrics>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_http_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        // Reap finished connections so the set holds only running ones.
        while connections.try_join_next().is_some() {}
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Per-connection errors (reset before accept) and resource exhaustion alike:
                // waiting a little lets connections close and free descriptors.
                debug!(error = %err, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics.refused_connections.inc();
            debug!(%peer, "too many HTTP connections: closed at once");
            drop(tcp);
            continue;
        };
        tune(&tcp, &limits);
        let service = PeerService {
            app: app.clone(),
            peer,
            body_read_timeout: limits.body_read_timeout,
        };
        let conn = http
            .serve_connection(
                TokioIo::new(tcp),
                hyper_util::service::TowerToHyperService::new(service),
            )
            .with_upgrades();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            tokio::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                () = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(err) = result {
                debug!(%peer, error = %err, "HTTP connection ended with an error");
            }
            // Released once the connection closed or upgraded: an upgraded socket holds a
            // permit of `max_connections` instead.
            drop(permit);
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(limits.shutdown_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            open = connections.len(),
            "shutdown timed out with HTTP requests unfinished: dropping them"
        );
        connections.shutdown().await;
    }
}

/// Socket options of an accepted connection.
fn tune(tcp: &TcpStream, limits: &Limits) {
    // Replies and pushes are small and latency-bound: never hold them back for Nagle.
    if let Err(err) = tcp.set_nodelay(true) {
        debug!(error = %err, "TCP_NODELAY not set");
    }
    if let Some(bytes) = limits.socket_send_buffer
        && let Err(err) = socket2::SockRef::from(tcp).set_send_buffer_size(bytes)
    {
        debug!(error = %err, "SO_SNDBUF not set");
    }
}

/// The app, for one connection: adds the peer address and the body timeout to each request.
#[derive(Clone)]
struct PeerService {
    app: Router,
    peer: SocketAddr,
    body_read_timeout: Duration,
}

impl Service<hyper::Request<Incoming>> for PeerService {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = <Router as Service<hyper::Request<Body>>>::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        <Router as Service<hyper::Request<Body>>>::poll_ready(&mut self.app, cx)
    }

    fn call(&mut self, request: hyper::Request<Incoming>) -> Self::Future {
        let timeout = self.body_read_timeout;
        let mut request = request.map(|body| Body::new(TimeoutBody::new(timeout, body)));
        request.extensions_mut().insert(ConnectInfo(self.peer));
        self.app.call(request)
    }
}
