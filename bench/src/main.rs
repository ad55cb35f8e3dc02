//! `alight-bench`: the load generator and the suite runner.
//!
//! Run with: `bench/run` (everything, release builds, writes `bench/README.md`), `bench/run --smoke`,
//! or `cargo run --release -p alight-bench -- --help` for single scenarios against a running server.
//!
//! The generator runs on one tokio worker (a current-thread runtime), so pinned to one core it
//! measures what one core of client can drive. It raises its open-file limit to the hard limit
//! first; the servers the suite starts inherit it.

use std::process::ExitCode;

use alight_bench::{cli, net};

fn main() -> ExitCode {
    // First, so that the idle run's default size sees the raised limit.
    if let Err(err) = net::raise_nofile_limit() {
        eprintln!("alight-bench: cannot raise the open-file limit, keeping the current one: {err}");
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match cli::parse(&args) {
        Ok(command) => command,
        Err(err) => {
            eprintln!("alight-bench: {err}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("alight-bench: cannot start the tokio runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    ExitCode::from(runtime.block_on(cli::run(command)))
}
