//! `bench-bare`: the bare fan-out baseline server (axum WebSocket, no channel logic).
//!
//! Run with: `cargo run --release -p alight-bench --bin bench-bare -- --bind 127.0.0.1:4001`

use std::process::ExitCode;

use alight_bench::servers::{self, bare};

#[tokio::main]
async fn main() -> ExitCode {
    let addr = match servers::server_args(std::env::args().skip(1), "127.0.0.1:4001") {
        Ok(servers::ServerArgs { bind, redis: None }) => bind,
        Ok(servers::ServerArgs { redis: Some(_), .. }) => {
            eprintln!("bench-bare: --redis is for bench-socketioxide; this baseline runs alone");
            return ExitCode::from(2);
        }
        Err(err) => {
            eprintln!("bench-bare: {err}");
            return ExitCode::from(2);
        }
    };
    let served = servers::run("bench-bare", &addr, |listener| {
        bare::serve(listener, servers::shutdown_signal())
    })
    .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench-bare: cannot serve on {addr}: {err}");
            ExitCode::FAILURE
        }
    }
}
