//! The fixture server as a process, for the phoenix.js conformance suite.
//!
//! Run with: `cargo run -p alight-tests --bin conformance-server -- [--port N] [--idle-ms N] [--max-message N] [--queue N] [--jwt-secret S]`
//!
//! Prints `LISTENING <port>` on stdout once it accepts connections, and shuts down gracefully
//! (closing sockets with 1012) when stdin closes or on Ctrl-C/SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use alight_server::Config;
use tokio::io::AsyncReadExt;

fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Result<Option<T>, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(None),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .map(Some)
            .ok_or_else(|| format!("{name} needs a number")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = (|| -> Result<(u16, Config), String> {
        let port = arg(&args, "--port")?.unwrap_or(0);
        let mut config = Config::default().shutdown_timeout(Duration::from_secs(5));
        if let Some(ms) = arg::<u64>(&args, "--idle-ms")? {
            config = config.idle_timeout(Duration::from_millis(ms));
        }
        if let Some(bytes) = arg::<usize>(&args, "--max-message")? {
            config = config.max_message_size(bytes);
        }
        if let Some(n) = arg::<usize>(&args, "--queue")? {
            config = config.outbound_queue(n);
        }
        if let Some(secret) = arg::<String>(&args, "--jwt-secret")? {
            let auth = alight_server::JwtAuth::hs256(secret.as_bytes())
                .map_err(|err| format!("--jwt-secret: {err}"))?;
            config = config.jwt(auth);
        }
        Ok((port, config))
    })();
    let (port, config) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => {
            eprintln!("conformance-server: {err}");
            return ExitCode::from(2);
        }
    };
    let server =
        match alight_tests::fixture::start_on(SocketAddr::from(([127, 0, 0, 1], port)), config)
            .await
        {
            Ok(server) => server,
            Err(err) => {
                eprintln!("conformance-server: cannot listen: {err}");
                return ExitCode::FAILURE;
            }
        };
    println!("LISTENING {}", server.addr.port());
    let stdin_closed = async {
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
    };
    let terminate = async {
        #[cfg(unix)]
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            term.recv().await;
            return;
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        () = stdin_closed => {}
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    match server.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("conformance-server: {err}");
            ExitCode::FAILURE
        }
    }
}
