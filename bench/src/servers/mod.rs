//! The baselines the suite measures Alight against, each speaking the room contract.
//!
//! - [`bare`]: the least work per message a server of the contract does on axum's WebSocket, Phoenix
//!   V2 frames read in place, no channel logic.
//! - [`socketio`]: socketioxide, the same contract with socket.io semantics.
//!
//! (The third baseline, Node's socket.io, is `bench/node/server.js`.)

pub mod bare;
pub mod socketio;

use std::io;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

/// Serves `router` on `listener` until `shutdown` resolves, with `TCP_NODELAY` on every accepted
/// socket: a real-time server writes small frames, and with Nagle's algorithm a second small write
/// waits for the ACK of the first, which the client's delayed ACK holds back for up to 40 ms.
/// (Node's `http` server sets it by default.)
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            eprintln!("cannot set TCP_NODELAY on an accepted socket: {err}");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves on Ctrl-C or SIGTERM, for the baselines' binaries.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// `--bind ADDR` (or `--bind=ADDR`) from a baseline's command line, else `default`.
pub fn bind_arg(
    args: impl IntoIterator<Item = String>,
    default: &str,
) -> Result<String, BindArgError> {
    let mut bind = default.to_owned();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if let Some(value) = arg.strip_prefix("--bind=") {
            bind = value.to_owned();
        } else if arg == "--bind" {
            bind = args.next().ok_or(BindArgError::MissingValue)?;
        } else {
            return Err(BindArgError::Unknown(arg));
        }
    }
    Ok(bind)
}

/// Why a baseline's command line could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BindArgError {
    /// `--bind` came last.
    #[error("--bind needs a value, e.g. --bind 127.0.0.1:4001")]
    MissingValue,
    /// Anything but `--bind`.
    #[error("unknown argument `{0}`; the only option is --bind ADDR")]
    Unknown(String),
}

/// Binds `addr`, prints the URL as `name: serving http://ADDR/`, and serves with `serve` until
/// Ctrl-C or SIGTERM.
pub async fn run<F, Fut>(name: &str, addr: &str, serve: F) -> io::Result<()>
where
    F: FnOnce(tokio::net::TcpListener) -> Fut,
    Fut: Future<Output = io::Result<()>>,
{
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("{name}: serving http://{}/", listener.local_addr()?);
    serve(listener).await
}
