//! Run with: `cargo run -p alight-examples --example counter_server` (then, in another terminal,
//! `cargo run -p alight-examples --example counter_client`).
//!
//! The counter app's server on http://127.0.0.1:4000: the typed `counter:*` channel with presence
//! (see `alight_examples::Counter`), its socket at `/socket`, and the HTTP API with the key
//! `example-key`. Stock phoenix.js clients join it too, with `{name}` as join params. Try the API,
//! which checks broadcasts against the schema:
//!
//! ```sh
//! curl -i -H 'authorization: Bearer example-key' -H 'content-type: application/json' \
//!   -d '{"topic":"counter:lobby","event":"changed","payload":{"value":7,"by":"api"}}' \
//!   http://127.0.0.1:4000/api/broadcast        # 202
//! curl -i -H 'authorization: Bearer example-key' -H 'content-type: application/json' \
//!   -d '{"topic":"counter:lobby","event":"changed","payload":{"value":"seven"}}' \
//!   http://127.0.0.1:4000/api/broadcast        # 422, with the reason
//! ```
//! `RUST_LOG=alight_server=debug` logs every join and leave.

use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let (alight, app) = alight_examples::app("example-key");
    // `ALIGHT_ADDR=127.0.0.1:0` picks a free port (the tests do).
    let addr = std::env::var("ALIGHT_ADDR").unwrap_or_else(|_| "127.0.0.1:4000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "counter server on http://{} (Ctrl-C stops it)",
        listener.local_addr()?
    );
    alight.serve(listener, app, stop_signal()).await
}

/// Ctrl-C, or SIGTERM where there is one.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
