//! Tiny runs of the generator against the baselines, in process: what CI checks of the bench.
//!
//! Each test binds `127.0.0.1:0`, serves a baseline on the test's runtime, runs scenarios at a
//! size of a few clients for a few hundred milliseconds, and stops the server. Durations here are
//! the scenarios' own bounds, not waits for something to happen.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use alight_bench::conn::Target;
use alight_bench::net::Sources;
use alight_bench::scenario::catchup::{self, CatchupParams};
use alight_bench::scenario::chaos::{self, ChaosParams};
use alight_bench::scenario::churn::{self, ChurnParams};
use alight_bench::scenario::echo::{self, EchoParams};
use alight_bench::scenario::fanout::{self, FanoutParams};
use alight_bench::scenario::idle::{self, IdleParams};
use alight_bench::scenario::presence::{self, PresenceParams};
use alight_bench::scenario::retain::{self, RetainParams};
use alight_bench::scenario::{Env, Outcome};
use alight_bench::servers;
use alight_bench::wire::Protocol;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A baseline served in this process until the returned token is cancelled.
async fn serve(protocol: Protocol) -> std::io::Result<(SocketAddr, CancellationToken)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    let shutdown = stop.clone().cancelled_owned();
    match protocol {
        Protocol::Phoenix => tokio::spawn(servers::bare::serve(listener, shutdown)),
        Protocol::SocketIo => tokio::spawn(servers::socketio::serve(listener, shutdown)),
    };
    Ok((addr, stop))
}

fn env(addr: SocketAddr, protocol: Protocol) -> Env {
    let sources = Sources::new(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    // Our own pid stands in for the server's: the server runs in this process.
    Env::new(
        Target { addr, protocol },
        Arc::new(sources),
        Some(std::process::id()),
    )
}

fn fanout_params(rate: Option<u32>) -> FanoutParams {
    FanoutParams {
        subscribers: 8,
        rate,
        duration: Duration::from_millis(200),
        drain: Duration::from_secs(2),
        payload_bytes: 200,
        window: 4,
    }
}

fn figure(outcome: &Outcome, name: &str) -> f64 {
    outcome
        .metric(name)
        .unwrap_or_else(|| panic!("no `{name}` in {outcome:#?}"))
}

/// Fan-out at a fixed rate and flat out: every delivery arrives, with a latency.
async fn check_fanout(protocol: Protocol) -> std::io::Result<()> {
    let (addr, stop) = serve(protocol).await?;
    let env = env(addr, protocol);
    for rate in [Some(50), None] {
        let outcome = fanout::run(&env, fanout_params(rate)).await;
        assert_eq!(figure(&outcome, "missing deliveries"), 0.0, "{outcome:#?}");
        assert_eq!(figure(&outcome, "subscribers dropped"), 0.0, "{outcome:#?}");
        assert!(figure(&outcome, "deliveries/s") > 0.0, "{outcome:#?}");
        assert!(figure(&outcome, "latency max") > 0.0, "{outcome:#?}");
        // In process, the generator's CPU time is counted too: only its presence is checked.
        assert!(
            figure(&outcome, "server CPU per delivery") >= 0.0,
            "{outcome:#?}"
        );
    }
    stop.cancel();
    Ok(())
}

/// Idle, echo and churn complete without a failure.
async fn check_others(protocol: Protocol) -> std::io::Result<()> {
    let (addr, stop) = serve(protocol).await?;
    let env = env(addr, protocol);

    let outcome = idle::run(&env, IdleParams { connections: 10 }).await;
    assert_eq!(figure(&outcome, "connections held"), 10.0, "{outcome:#?}");
    assert!(figure(&outcome, "server RSS after") > 0.0, "{outcome:#?}");

    let outcome = echo::run(
        &env,
        EchoParams {
            clients: 3,
            duration: Duration::from_millis(200),
            payload_bytes: 200,
        },
    )
    .await;
    assert!(figure(&outcome, "replies/s") > 0.0, "{outcome:#?}");
    assert!(
        figure(&outcome, "server CPU per reply") >= 0.0,
        "{outcome:#?}"
    );
    assert!(
        !outcome.notes.iter().any(|n| n.contains("failed")),
        "{outcome:#?}"
    );

    let outcome = churn::run(
        &env,
        ChurnParams {
            workers: 2,
            duration: Duration::from_millis(200),
            settle: Duration::ZERO,
        },
    )
    .await;
    assert!(figure(&outcome, "cycles/s") > 0.0, "{outcome:#?}");
    assert!(
        !outcome.notes.iter().any(|n| n.contains("failed")),
        "{outcome:#?}"
    );
    stop.cancel();
    Ok(())
}

#[tokio::test]
async fn fanout_against_the_bare_server() -> std::io::Result<()> {
    check_fanout(Protocol::Phoenix).await
}

#[tokio::test]
async fn fanout_against_socketioxide() -> std::io::Result<()> {
    check_fanout(Protocol::SocketIo).await
}

#[tokio::test]
async fn idle_echo_churn_against_the_bare_server() -> std::io::Result<()> {
    check_others(Protocol::Phoenix).await
}

#[tokio::test]
async fn idle_echo_churn_against_socketioxide() -> std::io::Result<()> {
    check_others(Protocol::SocketIo).await
}

/// The demo's `room:*` presence contract: a join with `{"name": n}` tracks `n` and pushes the
/// state.
struct Room;

impl alight_server::Channel for Room {
    type State = ();

    async fn join(
        &self,
        params: alight_protocol::Payload,
        ctx: &mut alight_server::Context<'_>,
    ) -> Result<((), alight_protocol::Payload), alight_server::JoinError> {
        let params: serde_json::Value = params.deserialize().unwrap_or_default();
        if let Some(name) = params.get("name").and_then(|n| n.as_str()) {
            ctx.track(name, &serde_json::json!({"online_at": 1}))
                .map_err(|err| alight_server::JoinError::reason(&err.to_string()))?;
            ctx.push_presence_state();
        }
        Ok(((), alight_protocol::Payload::empty()))
    }

    async fn handle_in(
        &self,
        _event: &str,
        _payload: alight_protocol::Payload,
        _state: &mut (),
        _ctx: &mut alight_server::Context<'_>,
    ) -> alight_server::HandleIn {
        alight_server::HandleIn::error_reason("unknown event")
    }
}

/// Members join flat out and on a schedule, each run against a fresh server: every list ends
/// complete, every byte is counted.
#[tokio::test]
async fn presence_against_alight() -> std::io::Result<()> {
    for join_rate in [None, Some(200)] {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let alight = alight_server::Alight::builder()
            .channel("room:*", Room)
            .build();
        let stop = CancellationToken::new();
        let shutdown = stop.clone().cancelled_owned();
        let server =
            tokio::spawn(async move { alight.serve(listener, alight.router(), shutdown).await });
        let params = PresenceParams {
            members: 12,
            join_rate,
            limit: Duration::from_secs(20),
        };
        let outcome = presence::run(&env(addr, Protocol::Phoenix), params).await;
        assert_eq!(figure(&outcome, "members joined"), 12.0, "{outcome:#?}");
        assert_eq!(figure(&outcome, "lists complete"), 12.0, "{outcome:#?}");
        assert!(
            figure(&outcome, "first join → every list complete") > 0.0,
            "{outcome:#?}"
        );
        assert!(
            figure(&outcome, "of which presence_state, mean") > 0.0,
            "{outcome:#?}"
        );
        assert!(
            figure(&outcome, "frames received per client, mean") >= 3.0,
            "{outcome:#?}"
        );
        assert_eq!(figure(&outcome, "clients dropped"), 0.0, "{outcome:#?}");
        stop.cancel();
        server.await.map_err(std::io::Error::other)??;
    }
    Ok(())
}

/// The demo's `room:*` history contract, as `catchup` and `retain` use it: a join is answered
/// ok (the server adds `position` and `recovered`), a `shout` goes to every member, sender
/// included.
struct ShoutRoom;

impl alight_server::Channel for ShoutRoom {
    type State = ();

    async fn join(
        &self,
        _params: alight_protocol::Payload,
        _ctx: &mut alight_server::Context<'_>,
    ) -> Result<((), alight_protocol::Payload), alight_server::JoinError> {
        Ok(((), alight_protocol::Payload::empty()))
    }

    async fn handle_in(
        &self,
        event: &str,
        payload: alight_protocol::Payload,
        _state: &mut (),
        ctx: &mut alight_server::Context<'_>,
    ) -> alight_server::HandleIn {
        if event != "shout" {
            return alight_server::HandleIn::error_reason("unknown event");
        }
        ctx.broadcast("shout", payload);
        alight_server::HandleIn::ok(alight_protocol::Payload::empty())
    }
}

/// An Alight server in this process whose `room:*` topics keep their last `keeps` broadcasts
/// (none when `None`), until the returned token is cancelled.
async fn serve_rooms(
    keeps: Option<usize>,
) -> std::io::Result<(
    SocketAddr,
    CancellationToken,
    tokio::task::JoinHandle<std::io::Result<()>>,
)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let builder = alight_server::Alight::builder().channel("room:*", ShoutRoom);
    let alight = match keeps {
        Some(keeps) => builder.history(alight_server::History::last(keeps)),
        None => builder,
    }
    .build();
    let stop = CancellationToken::new();
    let shutdown = stop.clone().cancelled_owned();
    let server =
        tokio::spawn(async move { alight.serve(listener, alight.router(), shutdown).await });
    Ok((addr, stop, server))
}

/// Clients that missed 20 broadcasts all resume with `recovered: true` and exactly 1..20, in
/// order, and then join fresh; without history the run stops at the first joins and says why.
#[tokio::test]
async fn catchup_against_alight() -> std::io::Result<()> {
    let params = CatchupParams {
        clients: 6,
        broadcasts: 20,
        payload_bytes: 200,
        limit: Duration::from_secs(20),
    };
    let (addr, stop, server) = serve_rooms(Some(50)).await?;
    let outcome = catchup::run(&env(addr, Protocol::Phoenix), params).await;
    assert_eq!(figure(&outcome, "clients joined"), 6.0, "{outcome:#?}");
    assert_eq!(
        figure(&outcome, "broadcasts published"),
        20.0,
        "{outcome:#?}"
    );
    assert_eq!(
        figure(&outcome, "resume: recovered true"),
        6.0,
        "{outcome:#?}"
    );
    assert_eq!(
        figure(&outcome, "resume: clients with exactly 1..N in order"),
        6.0,
        "{outcome:#?}"
    );
    for name in [
        "resume: first reconnect → every client caught up",
        "fresh: first reconnect → every join answered",
        "catch-up time / fresh join time",
    ] {
        assert!(figure(&outcome, name) > 0.0, "{name}: {outcome:#?}");
    }
    // The join reply and the 20 missed broadcasts, against the join reply alone.
    assert_eq!(
        figure(&outcome, "resume: frames received per client, mean"),
        21.0,
        "{outcome:#?}"
    );
    assert_eq!(
        figure(&outcome, "fresh: frames received per client, mean"),
        1.0,
        "{outcome:#?}"
    );
    assert!(
        figure(&outcome, "resume: bytes received per client, mean")
            > figure(&outcome, "fresh: bytes received per client, mean") + 20.0 * 200.0 / 1024.0,
        "{outcome:#?}"
    );
    assert_eq!(
        figure(&outcome, "resume: not recovered"),
        0.0,
        "{outcome:#?}"
    );
    assert_eq!(figure(&outcome, "clients dropped"), 0.0, "{outcome:#?}");
    stop.cancel();
    server.await.map_err(std::io::Error::other)??;

    let (addr, stop, server) = serve_rooms(None).await?;
    let outcome = catchup::run(&env(addr, Protocol::Phoenix), params).await;
    assert_eq!(figure(&outcome, "clients joined"), 6.0, "{outcome:#?}");
    assert!(outcome.metric("resume: recovered true").is_none());
    assert!(
        outcome.notes.iter().any(|n| n.contains("keeps no history")),
        "{outcome:#?}"
    );
    stop.cancel();
    server.await.map_err(std::io::Error::other)??;
    Ok(())
}

/// Clients cut every 50-200 ms while 300 broadcasts are published all resume with
/// `recovered: true` every time and end with exactly 1..300, in order, nothing twice.
#[tokio::test]
async fn chaos_against_alight() -> std::io::Result<()> {
    let params = ChaosParams {
        clients: 8,
        broadcasts: 300,
        rate: 1_000,
        cut_min: Duration::from_millis(50),
        cut_max: Duration::from_millis(200),
        payload_bytes: 200,
        drain: Duration::from_secs(20),
    };
    let (addr, stop, server) = serve_rooms(Some(1_000)).await?;
    let outcome = chaos::run(&env(addr, Protocol::Phoenix), params).await;
    assert_eq!(figure(&outcome, "clients joined"), 8.0, "{outcome:#?}");
    assert_eq!(
        figure(&outcome, "broadcasts published"),
        300.0,
        "{outcome:#?}"
    );
    assert_eq!(
        figure(&outcome, "clients with exactly 1..N in order"),
        8.0,
        "{outcome:#?}"
    );
    // 300 broadcasts at 1,000/s take 0.3 s: every client is cut at least once on the way.
    assert!(figure(&outcome, "cuts") >= 8.0, "{outcome:#?}");
    assert_eq!(
        figure(&outcome, "rejoins recovered true"),
        figure(&outcome, "cuts"),
        "{outcome:#?}"
    );
    for name in [
        "rejoins not recovered",
        "duplicates",
        "out of order",
        "clients short of N",
    ] {
        assert_eq!(figure(&outcome, name), 0.0, "{name}: {outcome:#?}");
    }
    assert!(
        figure(&outcome, "first publish → every client has all N") > 0.0,
        "{outcome:#?}"
    );
    stop.cancel();
    server.await.map_err(std::io::Error::other)??;
    Ok(())
}

/// Every broadcast a topic keeps is found by the probe and counted; past the cap only the cap
/// is; and a claimed cap above what the server keeps is caught, not counted.
#[tokio::test]
async fn retain_against_alight() -> std::io::Result<()> {
    let (addr, stop, server) = serve_rooms(Some(50)).await?;
    let env = env(addr, Protocol::Phoenix);
    let params = |per_topic, keeps| RetainParams {
        topics: 3,
        per_topic,
        keeps,
        payload_bytes: 200,
        settle: Duration::ZERO,
        limit: Duration::from_secs(20),
    };
    let outcome = retain::run(&env, params(30, 50)).await;
    assert_eq!(
        figure(&outcome, "broadcasts published"),
        90.0,
        "{outcome:#?}"
    );
    assert_eq!(
        figure(&outcome, "retained broadcasts (probe)"),
        90.0,
        "{outcome:#?}"
    );
    assert_eq!(
        figure(&outcome, "topics not recovered (probe)"),
        0.0,
        "{outcome:#?}"
    );
    // In process the generator's memory moves too: only that the figure is made is checked.
    figure(&outcome, "server RSS per retained broadcast");

    let outcome = retain::run(&env, params(70, 50)).await;
    assert_eq!(
        figure(&outcome, "retained broadcasts (probe)"),
        150.0,
        "{outcome:#?}"
    );
    assert!(
        outcome.notes.iter().any(|n| n.contains("above the 50")),
        "{outcome:#?}"
    );

    let outcome = retain::run(&env, params(70, 60)).await;
    assert_eq!(
        figure(&outcome, "retained broadcasts (probe)"),
        0.0,
        "{outcome:#?}"
    );
    assert_eq!(
        figure(&outcome, "topics not recovered (probe)"),
        3.0,
        "{outcome:#?}"
    );
    stop.cancel();
    server.await.map_err(std::io::Error::other)??;
    Ok(())
}
