//! Alight's benchmark driver.
//!
//! Run with: `cargo run --release -p alight-bench -- --help`
//!
//! A placeholder for now. This will open many Phoenix Channels clients against a server on loopback
//! and measure connections held, broadcast fan-out throughput, message latency percentiles and memory
//! per connection, with every run bounded in clients, messages and time.
//!
//! # Layout
//! - `main`: prints the usage; the scenarios land in a later issue.

use std::process::ExitCode;

const USAGE: &str = "\
Usage: alight-bench <SCENARIO> [OPTIONS]

Load tests for an Alight server on loopback. No scenario is implemented yet; planned:
  connections  hold N sockets joined to a topic and report memory per connection
  fanout       broadcast to N subscribers and report throughput and latency percentiles";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!("{USAGE}");
    match args.first().map(String::as_str) {
        None | Some("-h" | "--help") => ExitCode::SUCCESS,
        Some(other) => {
            eprintln!("alight-bench: scenario `{other}` is not implemented yet");
            ExitCode::from(2)
        }
    }
}
