//! `bench-socketioxide`: the socketioxide baseline server (the room contract, socket.io semantics).
//!
//! Run with: `cargo run --release -p alight-bench --bin bench-socketioxide -- --bind 127.0.0.1:4002`
//!
//! With `--redis redis://127.0.0.1:6379/` it runs on socketioxide's Redis adapter: start two on
//! the same Redis and a `shout` on one reaches the room's sockets on both.

use std::process::ExitCode;

use alight_bench::scenario::error_chain;
use alight_bench::servers::{self, ServerArgs, socketio};

#[tokio::main]
async fn main() -> ExitCode {
    let ServerArgs { bind, redis } =
        match servers::server_args(std::env::args().skip(1), "127.0.0.1:4002") {
            Ok(args) => args,
            Err(err) => {
                eprintln!("bench-socketioxide: {err}");
                return ExitCode::from(2);
            }
        };
    let router = match redis {
        None => socketio::router(),
        Some(url) => match socketio::router_on_redis(&url).await {
            Ok(router) => router,
            Err(err) => {
                eprintln!("bench-socketioxide: {}", error_chain(&err));
                return ExitCode::FAILURE;
            }
        },
    };
    let served = servers::run("bench-socketioxide", &bind, |listener| {
        servers::serve_router(listener, router, servers::shutdown_signal())
    })
    .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench-socketioxide: cannot serve on {bind}: {err}");
            ExitCode::FAILURE
        }
    }
}
