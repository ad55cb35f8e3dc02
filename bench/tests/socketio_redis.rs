//! socketioxide's Redis adapter in the bench: two `bench-socketioxide` routers on one Redis, the
//! fan-out's subscribers on one and its publisher on the other (`--publish-to`), so that every
//! delivery crosses Redis. Starts its own `redis-server` on a free loopback port (skipped with a
//! message if it is not installed, except under `CI`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use alight_bench::conn::Target;
use alight_bench::net::Sources;
use alight_bench::scenario::Env;
use alight_bench::scenario::fanout::{self, FanoutParams};
use alight_bench::servers::{self, socketio};
use alight_bench::wire::Protocol;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

/// A `redis-server` on a free loopback port, persisting nothing; killed when dropped.
struct RedisServer {
    port: u16,
    dir: PathBuf,
    _child: Child,
}

impl RedisServer {
    async fn start() -> Option<RedisServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        let dir = std::env::temp_dir().join(format!("alight-bench-redis-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let spawned = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "redis-server is not installed (run scripts/setup)"
                );
                eprintln!("SKIPPED: redis-server is not installed (scripts/setup installs it)");
                return None;
            }
            Err(err) => panic!("redis-server did not start: {err}"),
        };
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let ready = async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("Ready to accept connections") {
                    return true;
                }
            }
            false
        };
        let ready = tokio::time::timeout(Duration::from_secs(10), ready).await;
        assert_eq!(ready, Ok(true), "redis-server became ready");
        // Drained so that it never blocks on its log.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Some(RedisServer {
            port,
            dir,
            _child: child,
        })
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A socketioxide node on the Redis at `url`, served until the returned token is cancelled.
async fn node(url: &str) -> std::io::Result<(SocketAddr, CancellationToken)> {
    let router = socketio::router_on_redis(url)
        .await
        .map_err(std::io::Error::other)?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    tokio::spawn(servers::serve_router(
        listener,
        router,
        stop.clone().cancelled_owned(),
    ));
    Ok((addr, stop))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_crosses_redis_between_two_socketioxide_nodes() -> std::io::Result<()> {
    let Some(redis) = RedisServer::start().await else {
        return Ok(());
    };
    let (a, stop_a) = node(&redis.url()).await?;
    let (b, stop_b) = node(&redis.url()).await?;
    let sources = Sources::new(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    let protocol = Protocol::SocketIo;
    let mut env = Env::new(
        Target { addr: b, protocol },
        Arc::new(sources),
        Some(std::process::id()),
    );
    env.publish_to = Some(Target { addr: a, protocol });
    let params = FanoutParams {
        subscribers: 8,
        rate: Some(50),
        duration: Duration::from_millis(200),
        drain: Duration::from_secs(2),
        payload_bytes: 200,
        window: 4,
    };
    let outcome = fanout::run(&env, params).await;
    let figure = |name: &str| {
        outcome
            .metric(name)
            .unwrap_or_else(|| panic!("no `{name}` in {outcome:#?}"))
    };
    assert_eq!(figure("missing deliveries"), 0.0, "{outcome:#?}");
    assert_eq!(figure("subscribers dropped"), 0.0, "{outcome:#?}");
    assert!(figure("deliveries/s") > 0.0, "{outcome:#?}");
    assert!(figure("latency max") > 0.0, "{outcome:#?}");
    stop_a.cancel();
    stop_b.cancel();
    Ok(())
}
