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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:4000").await?;
    tracing::info!("counter server on http://127.0.0.1:4000 (Ctrl-C stops it)");
    alight
        .serve(listener, app, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
