//! `bench-socketioxide`: the socketioxide baseline server (the room contract, socket.io semantics).
//!
//! Run with: `cargo run --release -p alight-bench --bin bench-socketioxide -- --bind 127.0.0.1:4002`

use std::process::ExitCode;

use alight_bench::servers::{self, socketio};

#[tokio::main]
async fn main() -> ExitCode {
    let addr = match servers::bind_arg(std::env::args().skip(1), "127.0.0.1:4002") {
        Ok(addr) => addr,
        Err(err) => {
            eprintln!("bench-socketioxide: {err}");
            return ExitCode::from(2);
        }
    };
    let served = servers::run("bench-socketioxide", &addr, |listener| {
        socketio::serve(listener, servers::shutdown_signal())
    })
    .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench-socketioxide: cannot serve on {addr}: {err}");
            ExitCode::FAILURE
        }
    }
}
