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

/// A baseline's command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerArgs {
    /// `--bind ADDR`: where to listen.
    pub bind: String,
    /// `--redis URL`: share rooms with the other processes on this Redis (socketioxide only).
    pub redis: Option<String>,
}

/// `--bind ADDR` (default `default`) and `--redis URL` from a baseline's command line, each also
/// as `--name=value`.
pub fn server_args(
    args: impl IntoIterator<Item = String>,
    default: &str,
) -> Result<ServerArgs, ServerArgError> {
    let mut parsed = ServerArgs {
        bind: default.to_owned(),
        redis: None,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        let slot = match name.as_str() {
            "--bind" => "--bind",
            "--redis" => "--redis",
            _ => return Err(ServerArgError::Unknown(name)),
        };
        let value = match inline {
            Some(value) => value,
            None => args.next().ok_or(ServerArgError::MissingValue(slot))?,
        };
        if slot == "--bind" {
            parsed.bind = value;
        } else {
            parsed.redis = Some(value);
        }
    }
    Ok(parsed)
}

/// Why a baseline's command line could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ServerArgError {
    /// An option came last, without its value.
    #[error("{0} needs a value, e.g. --bind 127.0.0.1:4001 or --redis redis://127.0.0.1:6379/")]
    MissingValue(&'static str),
    /// Anything but `--bind` and `--redis`.
    #[error(
        "unknown argument `{0}`; the options are --bind ADDR and, for bench-socketioxide, --redis URL"
    )]
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn reads_bind_and_redis() -> Result<(), ServerArgError> {
        let parsed = server_args(args(""), "127.0.0.1:4002")?;
        assert_eq!(
            (parsed.bind.as_str(), parsed.redis),
            ("127.0.0.1:4002", None)
        );
        let parsed = server_args(
            args("--bind 127.0.0.1:4012 --redis=redis://127.0.0.1:6379/"),
            "127.0.0.1:4002",
        )?;
        assert_eq!(parsed.bind, "127.0.0.1:4012");
        assert_eq!(parsed.redis.as_deref(), Some("redis://127.0.0.1:6379/"));
        assert!(matches!(
            server_args(args("--redis"), ""),
            Err(ServerArgError::MissingValue("--redis"))
        ));
        assert!(matches!(
            server_args(args("--port 1"), ""),
            Err(ServerArgError::Unknown(name)) if name == "--port"
        ));
        Ok(())
    }
}
