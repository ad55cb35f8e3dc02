//! Alight's demo app: an axum server for a page that loads the browser client.
//!
//! Run with: `scripts/demo` (sets up, builds the client, then starts this), or
//! `cargo run -p alight-demo -- --bind 127.0.0.1:4000 --data ./data`.
//! `cargo run -p alight-demo -- --emit-ts demo/static/rows.d.ts` writes the TypeScript row types of
//! the demo's syncable tables (see [`shapes::typescript_rows`]) and stops.
//!
//! # Layout
//! - [`Args`]: the command line (`--bind`, `--data`, `--redis`, `--node`, `--emit-ts`), with `ALIGHT_BIND`,
//!   `ALIGHT_DATA`, `ALIGHT_REDIS_URL` and `ALIGHT_NODE` as fallbacks.
//! - [`app`]: the router: `/` the notifications page, `/room` the chat room page (`?name=lobby`),
//!   `/live` a live table of the user's notifications over `GET /v1/shape` (`?user=alice`; it
//!   loads the stock Electric client from `node_modules` at `/vendor/electric-client.mjs`),
//!   `/static/*` their assets, `/pkg/*` the built client from `client-wasm/pkg`, the Alight socket
//!   at `/socket/websocket`, `POST /api/broadcast`, `POST /api/login`, `POST /api/notifications`,
//!   `GET /v1/shape` (Electric's shape API), `/healthz` and `/metrics`.
//! - [`assets`]: the pages and their files, compressed and with cache headers.
//! - [`room`]: the `room:*` channel (the contract tests and benchmarks drive).
//! - [`notifications`]: the `notifications:<user_id>` channel, over [`store`] (SQLite in
//!   `<data>/alight.db`); its types are the `alight-demo-schema` crate.
//! - [`api`]: the demo's HTTP API (login, creating notifications).
//! - [`shapes`]: the user's notifications as a shape (`GET /v1/shape`, and the socket's
//!   `shape:notifications` channel, which the bell reads).
//! - [`token`]: login tokens and the socket's connect callback that checks them.
//! - [`secret`]: the API key and the token secret, from the environment or `<data>`.
//! - [`shutdown_signal`]: Ctrl-C (or SIGTERM) stops accepting and closes sockets with 1012.

mod api;
mod assets;
mod notifications;
mod room;
mod secret;
mod shapes;
mod store;
mod token;

use std::{
    ffi::OsString,
    io,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    time::Duration,
};

use alight_redis::{RedisConfig, RedisPubSub};
use alight_server::{Alight, Config};
use axum::Router;
use tower_http::trace::TraceLayer;
use tracing_subscriber::EnvFilter;

use crate::notifications::Notifications;
use crate::store::{Db, Store};
use crate::token::TokenKey;

/// The page and its assets, beside this crate's sources.
const STATIC_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/static");
/// Where `scripts/build-client` puts the browser client package.
const PKG_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../client-wasm/pkg");

/// The notification database, inside the data directory.
const DB_FILE: &str = "alight.db";

const DEFAULT_BIND: &str = "127.0.0.1:4000";
const DEFAULT_DATA: &str = "./data";

const USAGE: &str = "\
Usage: alight-demo [--bind ADDR] [--data DIR] [--redis URL] [--node NAME]
       alight-demo --emit-ts FILE

Options:
  --bind ADDR  address to listen on (env ALIGHT_BIND, default 127.0.0.1:4000)
  --data DIR   directory for the demo's data, created if missing (env ALIGHT_DATA, default ./data):
               alight.db (notifications, SQLite), api_key, token_secret
  --redis URL  run as one node of a cluster over Redis, e.g. redis://127.0.0.1:6379/ (env
               ALIGHT_REDIS_URL; default: a single node, no Redis). Nodes sharing the Redis and the
               --data directory behave as one service
  --node NAME  this node's name in logs and metrics (env ALIGHT_NODE; default: its random id)
  --emit-ts FILE  write the TypeScript row types of the syncable tables (the demo's copy is
               demo/static/rows.d.ts) to FILE, `-` for stdout, and stop
  -h, --help   print this help

Environment:
  ALIGHT_API_KEY       the API key (else <data>/api_key, generated on first start)
  ALIGHT_METRICS_KEY   when set, GET /metrics needs `Authorization: Bearer <key>`
  ALIGHT_TOKEN_SECRET  the login token signing key (else <data>/token_secret, likewise)
  ALIGHT_ROOM_HISTORY  `off`: rooms keep no history (to measure what keeping it costs)";

/// The demo's settings, from the command line or the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Args {
    /// Address to listen on, `host:port`; a host name is resolved.
    bind: String,
    /// Directory for the demo's data.
    data: PathBuf,
    /// Redis to scale out on; `None`: a single node.
    redis: Option<String>,
    /// This node's name in a cluster.
    node: Option<String>,
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    /// Start the server.
    Run(Args),
    /// Print the usage and stop.
    Help,
    /// Write the TypeScript row types to this file (`-`: stdout) and stop.
    EmitTs(PathBuf),
}

/// Why the command line could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
enum ArgsError {
    /// A flag that takes a value came last.
    #[error("{flag} needs a value; see --help")]
    MissingValue {
        /// The flag, as given.
        flag: String,
    },
    /// An argument the demo does not know.
    #[error("unknown argument `{arg}`; see --help")]
    Unknown {
        /// The argument, as given.
        arg: String,
    },
    /// An argument that is not valid UTF-8.
    #[error("argument `{}` is not valid UTF-8", arg.to_string_lossy())]
    NotUnicode {
        /// The argument, as given.
        arg: OsString,
    },
}

impl Args {
    /// Reads `args` (without the program name); `env` looks up the fallbacks.
    fn parse(
        args: impl IntoIterator<Item = OsString>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Command, ArgsError> {
        let mut bind = env("ALIGHT_BIND").unwrap_or_else(|| DEFAULT_BIND.to_owned());
        let mut data = env("ALIGHT_DATA").unwrap_or_else(|| DEFAULT_DATA.to_owned());
        let mut redis = env("ALIGHT_REDIS_URL").unwrap_or_default();
        let mut node = env("ALIGHT_NODE").unwrap_or_default();
        let mut emit_ts = String::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let arg = arg
                .into_string()
                .map_err(|arg| ArgsError::NotUnicode { arg })?;
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => {
                    (flag.to_owned(), Some(value.to_owned()))
                }
                _ => (arg, None),
            };
            let slot = match flag.as_str() {
                "-h" | "--help" => return Ok(Command::Help),
                "--bind" => &mut bind,
                "--data" => &mut data,
                "--redis" => &mut redis,
                "--node" => &mut node,
                "--emit-ts" => &mut emit_ts,
                _ => return Err(ArgsError::Unknown { arg: flag }),
            };
            *slot = match inline {
                Some(value) => value,
                None => match args.next() {
                    Some(value) => value
                        .into_string()
                        .map_err(|arg| ArgsError::NotUnicode { arg })?,
                    None => return Err(ArgsError::MissingValue { flag }),
                },
            };
        }
        if !emit_ts.is_empty() {
            return Ok(Command::EmitTs(PathBuf::from(emit_ts)));
        }
        let given = |value: String| (!value.is_empty()).then_some(value);
        Ok(Command::Run(Args {
            bind,
            data: PathBuf::from(data),
            redis: given(redis),
            node: given(node),
        }))
    }
}

/// Why the demo stopped with an error.
#[derive(Debug, thiserror::Error)]
enum DemoError {
    /// The data directory could not be created.
    #[error("cannot create the data directory {}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: io::Error,
    },
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address from `--bind`.
        addr: String,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// A secret (the API key, the token secret) could not be read or stored.
    #[error("cannot read or store the secret {}", path.display())]
    Secret {
        /// The secret's file.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: io::Error,
    },
    /// The notification database could not be opened.
    #[error("cannot set up the notification database")]
    Store(#[source] store::StoreError),
    /// The shape engine could not be set up on the notification database.
    #[error("cannot serve the notifications as shapes")]
    Shapes(#[source] alight_sync::OpenError),
    /// The server failed while running.
    #[error("the server stopped with an error")]
    Serve(#[source] io::Error),
    /// The TypeScript row types could not be written.
    #[error("cannot write the TypeScript row types to {}", path.display())]
    EmitTs {
        /// The file from `--emit-ts`.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: io::Error,
    },
    /// `--redis` is not a usable Redis URL.
    #[error("cannot use the Redis given with --redis")]
    Redis(#[source] alight_redis::ConfigError),
}

/// The demo's routes; `shapes` serves `GET /v1/shape`; `pkg_dir` holds the built browser client,
/// if it has been built.
fn app(
    alight: &Alight,
    api: api::ApiState,
    shapes: Router,
    static_dir: &Path,
    pkg_dir: &Path,
) -> Router {
    Router::new()
        .merge(alight.router())
        .merge(
            alight.api_router_with_metrics_key(
                Some(api.api_key.to_string()),
                std::env::var("ALIGHT_METRICS_KEY")
                    .ok()
                    .filter(|key| !key.is_empty()),
            ),
        )
        .merge(api::router(api))
        .merge(shapes)
        .merge(assets::router(static_dir, pkg_dir))
        .layer(TraceLayer::new_for_http())
}

/// Resolves when the process is asked to stop: Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C; stop the demo with SIGTERM");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    println!("alight-demo: shutting down");
}

/// The secret from the environment variable `env`, else from (or generated into) `path`.
fn load_secret(env: &str, path: &Path) -> Result<String, DemoError> {
    secret::load_or_create(std::env::var(env).ok(), path).map_err(|source| DemoError::Secret {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes the TypeScript row types of the syncable tables to `path` (`-`: stdout).
fn emit_ts(path: &Path) -> Result<(), DemoError> {
    let db = Db::open_in_memory().map_err(DemoError::Store)?;
    let text = shapes::typescript_rows(db.connection()).map_err(DemoError::Shapes)?;
    let written = if path == Path::new("-") {
        io::Write::write_all(&mut io::stdout(), text.as_bytes())
    } else {
        std::fs::write(path, text)
    };
    written.map_err(|source| DemoError::EmitTs {
        path: path.to_path_buf(),
        source,
    })
}

async fn run(args: Args) -> Result<(), DemoError> {
    std::fs::create_dir_all(&args.data).map_err(|source| DemoError::DataDir {
        path: args.data.clone(),
        source,
    })?;
    let listener = tokio::net::TcpListener::bind(&args.bind)
        .await
        .map_err(|source| DemoError::Bind {
            addr: args.bind.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| DemoError::Bind {
        addr: args.bind.clone(),
        source,
    })?;
    let api_key = load_secret("ALIGHT_API_KEY", &args.data.join(secret::API_KEY_FILE))?;
    let tokens = TokenKey::new(
        load_secret(
            "ALIGHT_TOKEN_SECRET",
            &args.data.join(secret::TOKEN_SECRET_FILE),
        )?
        .as_bytes(),
    );
    let db = Db::open(&args.data.join(DB_FILE)).map_err(DemoError::Store)?;
    let sync = shapes::open(&args.data.join(DB_FILE)).map_err(DemoError::Shapes)?;
    let notifications = Notifications::new(Store::new(db));
    let pkg_dir = Path::new(PKG_DIR);
    println!(
        "alight-demo: serving http://{addr}/ (data in {})",
        args.data.display()
    );
    // The key itself never goes to stdout, where logs are collected.
    println!(
        "alight-demo: API key from ALIGHT_API_KEY or {} (POST /api/broadcast and \
         /api/notifications with `Authorization: Bearer <key>`)",
        args.data.join(secret::API_KEY_FILE).display()
    );
    if !pkg_dir.is_dir() {
        println!("alight-demo: the browser client is not built; run scripts/build-client");
    }
    let connect_key = tokens.clone();
    let tokens_for_shapes = tokens.clone();
    let mut builder = Alight::builder();
    if let Some(url) = &args.redis {
        let mut config = RedisConfig::new(url.as_str());
        if let Some(node) = &args.node {
            config = config.node_name(node.as_str());
        }
        let adapter = RedisPubSub::new(config).map_err(DemoError::Redis)?;
        // Room history in Redis Streams: a client resumes on whichever node it reaches.
        builder = builder
            .history_store(adapter.history())
            .pubsub(adapter.install());
        println!("alight-demo: clustering over Redis at {url}");
    }
    let builder = builder
        // The demo owns its process: give the memory of a wave of closed sockets back to the
        // system (a library leaves that to its binary).
        .config(Config::default().memory_trim(Some(Duration::from_secs(1))))
        .on_connect(move |info| std::future::ready(token::connect(&connect_key, &info)))
        .channel("room:*", room::Room);
    let builder = if std::env::var_os("ALIGHT_ROOM_HISTORY").is_some_and(|v| v == "off") {
        builder
    } else {
        builder.history(room::history())
    };
    let alight = builder
        .typed_channel(notifications.clone())
        .channel("shape:*", shapes::channel(sync.clone()))
        .build();
    let api = api::ApiState {
        notifications,
        pubsub: alight.pubsub().clone(),
        tokens,
        api_key: Arc::from(api_key),
        creation: Arc::default(),
    };
    let shapes = shapes::router(sync, tokens_for_shapes);
    let app = app(&alight, api, shapes, Path::new(STATIC_DIR), pkg_dir);
    alight
        .serve(listener, app, shutdown_signal())
        .await
        .map_err(DemoError::Serve)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args = match Args::parse(std::env::args_os().skip(1), |name| std::env::var(name).ok()) {
        Ok(Command::Run(args)) => args,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::EmitTs(path)) => return report(emit_ts(&path)),
        Err(err) => {
            eprintln!("alight-demo: {err}");
            return ExitCode::from(2);
        }
    };
    report(run(args).await)
}

/// Success, or the error and its causes on stderr and a failure.
fn report(result: Result<(), DemoError>) -> ExitCode {
    if let Err(err) = result {
        eprintln!("alight-demo: {err}");
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            eprintln!("  caused by: {cause}");
            source = cause.source();
        }
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Command, ArgsError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Args::parse(args.iter().map(OsString::from), |name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    fn run_args(bind: &str, data: &str) -> Command {
        Command::Run(Args {
            bind: bind.to_owned(),
            data: PathBuf::from(data),
            redis: None,
            node: None,
        })
    }

    #[test]
    fn redis_and_node() {
        let env = [("ALIGHT_REDIS_URL", "redis://env/")];
        let Ok(Command::Run(args)) = parse(&["--node", "web-1"], &env) else {
            panic!("parses");
        };
        assert_eq!(args.redis.as_deref(), Some("redis://env/"));
        assert_eq!(args.node.as_deref(), Some("web-1"));
        let Ok(Command::Run(args)) = parse(&["--redis=redis://flag/"], &env) else {
            panic!("parses");
        };
        assert_eq!(args.redis.as_deref(), Some("redis://flag/"));
    }

    #[test]
    fn defaults() {
        assert_eq!(parse(&[], &[]), Ok(run_args("127.0.0.1:4000", "./data")));
    }

    #[test]
    fn flags_override_env() {
        let env = [("ALIGHT_BIND", "0.0.0.0:80"), ("ALIGHT_DATA", "/env")];
        assert_eq!(parse(&[], &env), Ok(run_args("0.0.0.0:80", "/env")));
        assert_eq!(
            parse(&["--bind", "127.0.0.1:0", "--data=/flag"], &env),
            Ok(run_args("127.0.0.1:0", "/flag"))
        );
    }

    #[test]
    fn emit_ts_names_the_file() {
        assert_eq!(
            parse(&["--emit-ts", "rows.d.ts"], &[]),
            Ok(Command::EmitTs(PathBuf::from("rows.d.ts")))
        );
        assert_eq!(
            parse(&["--emit-ts=-"], &[]),
            Ok(Command::EmitTs(PathBuf::from("-")))
        );
    }

    #[test]
    fn errors_and_help() {
        assert_eq!(parse(&["--help"], &[]), Ok(Command::Help));
        assert_eq!(
            parse(&["--bind"], &[]),
            Err(ArgsError::MissingValue {
                flag: "--bind".to_owned()
            })
        );
        assert_eq!(
            parse(&["--port=1"], &[]),
            Err(ArgsError::Unknown {
                arg: "--port".to_owned()
            })
        );
    }
}
