//! Every server through every case, a fresh server process per case.
//!
//! The suite runs in the generator's process (pinned by `bench/run` to one core, on a
//! current-thread runtime: one tokio worker). For each case and each server it picks a free port,
//! starts the server pinned to the other core with `taskset` and one tokio worker, waits until it
//! accepts connections, runs the case, checks the server is still alive, and kills it. Cases run
//! in the outer loop and servers in the inner one, so a drift of the machine during the run touches
//! every server alike.
//!
//! The fan-out, echo and churn cases, whose figures swing between runs on a 2-core machine, run
//! [`REPEATED_RUNS`] times ([`AT_CAPACITY_RUNS`] for the fan-out cases at the server's capacity)
//! for the two servers the targets compare (bare and Alight),
//! interleaved (bare, Alight, bare, Alight, ...), and each of their figures is the median of
//! those runs; the per-run values of the main figures go into the case's notes.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::conn::Target;
use crate::net::Sources;
use crate::report::{Record, Results};
use crate::scenario::catchup::CatchupParams;
use crate::scenario::chaos::ChaosParams;
use crate::scenario::churn::ChurnParams;
use crate::scenario::echo::EchoParams;
use crate::scenario::fanout::FanoutParams;
use crate::scenario::idle::IdleParams;
use crate::scenario::presence::PresenceParams;
use crate::scenario::retain::RetainParams;
use crate::scenario::{self, Env, Outcome};
use crate::wire::Protocol;

/// Longest a server may take from spawn to accepting connections.
const START_LIMIT: Duration = Duration::from_secs(15);
/// Client source addresses: 127.0.0.2 to 127.0.0.17.
pub const SOURCE_ADDRESSES: u8 = 16;
/// Payload size of fan-out shouts and echo pings.
const PAYLOAD_BYTES: usize = 200;
/// Runs of each fan-out, echo and churn case for bare and Alight in a full run (see the module
/// doc).
pub const REPEATED_RUNS: usize = 3;
/// Runs of the fan-out cases at the server's capacity, 10,000 subscribers at 100 msg/s and flat
/// out: both servers use all of their core there and the p99 swings most (bare alone read
/// 294-1,142 ms flat out in five runs within a quarter of an hour). At 1,000 msg/s both are five
/// times over capacity, the p99 is the age of a backlog that grows all run, and it swings less
/// (4.9-5.4 s in five runs of each).
pub const AT_CAPACITY_RUNS: usize = 5;
/// The figures whose value in every run a repeated case's notes list (those the case has).
const SPREAD_FIGURES: [&str; 7] = [
    "deliveries/s",
    "replies/s",
    "cycles/s",
    "latency p99",
    "cycle p99",
    "server CPU per delivery",
    "server CPU per reply",
];

/// A server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// [`crate::servers::bare`], the baseline of every ratio.
    Bare,
    /// `alight-demo`, its `room:*` channel.
    Alight,
    /// [`crate::servers::socketio`], socketioxide.
    Socketioxide,
    /// `bench/node/server.js`, Node's socket.io.
    Node,
}

impl Server {
    /// All servers, in the report's column order.
    pub const ALL: [Server; 4] = [
        Server::Bare,
        Server::Alight,
        Server::Socketioxide,
        Server::Node,
    ];

    /// Its name in the report and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Server::Bare => "bare",
            Server::Alight => "alight",
            Server::Socketioxide => "socketioxide",
            Server::Node => "node",
        }
    }

    /// The protocol the generator speaks to it.
    pub fn protocol(self) -> Protocol {
        match self {
            Server::Bare | Server::Alight => Protocol::Phoenix,
            Server::Socketioxide | Server::Node => Protocol::SocketIo,
        }
    }

    /// Looks a server up by name.
    pub fn from_name(name: &str) -> Option<Server> {
        Server::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// One case of the plan.
#[derive(Debug, Clone, Copy)]
pub enum Case {
    /// See [`scenario::idle`].
    Idle(IdleParams),
    /// See [`scenario::fanout`].
    Fanout(FanoutParams),
    /// See [`scenario::echo`].
    Echo(EchoParams),
    /// See [`scenario::churn`].
    Churn(ChurnParams),
    /// See [`scenario::presence`].
    Presence(PresenceParams),
    /// See [`scenario::catchup`].
    Catchup(CatchupParams),
    /// See [`scenario::chaos`].
    Chaos(ChaosParams),
    /// See [`scenario::retain`].
    Retain(RetainParams),
}

impl Case {
    /// The scenario's name.
    pub fn scenario(&self) -> &'static str {
        match self {
            Case::Idle(_) => "idle",
            Case::Fanout(_) => "fanout",
            Case::Echo(_) => "echo",
            Case::Churn(_) => "churn",
            Case::Presence(_) => "presence",
            Case::Catchup(_) => "catchup",
            Case::Chaos(_) => "chaos",
            Case::Retain(_) => "retain",
        }
    }

    /// Runs the case against the server in `env`.
    pub async fn run(&self, env: &Env) -> Outcome {
        match *self {
            Case::Idle(p) => scenario::idle::run(env, p).await,
            Case::Fanout(p) => scenario::fanout::run(env, p).await,
            Case::Echo(p) => scenario::echo::run(env, p).await,
            Case::Churn(p) => scenario::churn::run(env, p).await,
            Case::Presence(p) => scenario::presence::run(env, p).await,
            Case::Catchup(p) => scenario::catchup::run(env, p).await,
            Case::Chaos(p) => scenario::chaos::run(env, p).await,
            Case::Retain(p) => scenario::retain::run(env, p).await,
        }
    }
}

/// The cases of the full run: about a minute and a half per server on a 2-core machine.
/// `connections` is the idle run's size (the open-file budget).
pub fn full_plan(connections: usize) -> Vec<Case> {
    let mut cases = vec![Case::Idle(IdleParams { connections })];
    for subscribers in [1_000, 10_000] {
        for rate in [Some(10), Some(100), Some(1_000), None] {
            cases.push(Case::Fanout(FanoutParams {
                subscribers,
                rate,
                duration: Duration::from_secs(3),
                drain: Duration::from_secs(3),
                payload_bytes: PAYLOAD_BYTES,
                window: 16,
            }));
        }
    }
    for clients in [100, 1_000] {
        cases.push(Case::Echo(EchoParams {
            clients,
            duration: Duration::from_secs(3),
            payload_bytes: PAYLOAD_BYTES,
        }));
    }
    cases.push(Case::Churn(ChurnParams {
        workers: 32,
        duration: Duration::from_secs(4),
        settle: Duration::from_secs(3),
    }));
    cases
}

/// The cases of a smoke run: every scenario at a tiny size, in seconds.
pub fn smoke_plan() -> Vec<Case> {
    let short = Duration::from_millis(300);
    let mut cases = vec![Case::Idle(IdleParams { connections: 20 })];
    for rate in [Some(100), None] {
        cases.push(Case::Fanout(FanoutParams {
            subscribers: 10,
            rate,
            duration: short,
            drain: Duration::from_secs(1),
            payload_bytes: PAYLOAD_BYTES,
            window: 4,
        }));
    }
    cases.push(Case::Echo(EchoParams {
        clients: 4,
        duration: short,
        payload_bytes: PAYLOAD_BYTES,
    }));
    cases.push(Case::Churn(ChurnParams {
        workers: 2,
        duration: short,
        settle: short,
    }));
    cases
}

/// Longest a presence case may take, first connect to last complete list.
const PRESENCE_LIMIT: Duration = Duration::from_secs(180);

/// The cases of `bench/run --presence`, against Alight only: 1,000 and 10,000 members joining one
/// room as fast as the server answers.
pub fn presence_plan() -> Vec<Case> {
    [1_000, 10_000]
        .into_iter()
        .map(|members| {
            Case::Presence(PresenceParams {
                members,
                join_rate: None,
                limit: PRESENCE_LIMIT,
            })
        })
        .collect()
}

/// The presence case of a smoke run.
pub fn presence_smoke_plan() -> Vec<Case> {
    vec![Case::Presence(PresenceParams {
        members: 20,
        join_rate: None,
        limit: Duration::from_secs(20),
    })]
}

/// Where the suite finds the servers and how it places them.
#[derive(Debug, Clone)]
pub struct SuiteConfig {
    /// Directory holding `alight-demo`, `bench-bare` and `bench-socketioxide` (release builds).
    pub bin_dir: PathBuf,
    /// `bench/node`, with `server.js` and its `node_modules`.
    pub node_dir: PathBuf,
    /// The CPU list for `taskset -c` of every server, or `None` to leave them unpinned.
    pub server_cpus: Option<String>,
    /// Servers to run, in column order.
    pub servers: Vec<Server>,
    /// The cases.
    pub plan: Vec<Case>,
    /// Scratch space: server logs, and a data directory per case for the demo.
    pub work_dir: PathBuf,
    /// Whether this is a smoke run.
    pub smoke: bool,
}

/// Why a server could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// No free port could be found.
    #[error("cannot find a free port on 127.0.0.1")]
    Port(#[source] std::io::Error),
    /// The server's log file could not be created.
    #[error("cannot create the server log {}", path.display())]
    Log {
        /// The log's path.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// The process could not be spawned.
    #[error("cannot start `{program}`")]
    Spawn {
        /// The program.
        program: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The process exited before accepting connections.
    #[error("the server exited ({status}) before accepting connections; see {}", log.display())]
    Exited {
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Its log.
        log: PathBuf,
    },
    /// The process did not accept connections in time.
    #[error("the server accepted no connection within {START_LIMIT:?}; see {}", log.display())]
    NotReady {
        /// Its log.
        log: PathBuf,
    },
}

/// A running server process.
#[derive(Debug)]
struct Running {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl SuiteConfig {
    /// Whether `server` can run here, or why not.
    pub fn availability(&self, server: Server) -> Result<(), String> {
        let need = |path: PathBuf, hint: &str| {
            if path.exists() {
                Ok(())
            } else {
                Err(format!("{} is missing ({hint})", path.display()))
            }
        };
        match server {
            Server::Bare => need(
                self.bin_dir.join("bench-bare"),
                "cargo build --release -p alight-bench",
            ),
            Server::Socketioxide => need(
                self.bin_dir.join("bench-socketioxide"),
                "cargo build --release -p alight-bench",
            ),
            Server::Alight => need(
                self.bin_dir.join("alight-demo"),
                "cargo build --release -p alight-demo",
            ),
            Server::Node => {
                need(
                    self.node_dir.join("node_modules/socket.io/package.json"),
                    "npm ci in bench/node",
                )?;
                match std::process::Command::new("node").arg("--version").output() {
                    Ok(out) if out.status.success() => Ok(()),
                    _ => Err("`node` is not on PATH".to_owned()),
                }
            }
        }
    }

    /// The command that starts `server` listening on `addr`; `index` numbers the case.
    fn command(&self, server: Server, addr: SocketAddr, index: usize) -> Command {
        let (program, mut args): (PathBuf, Vec<String>) = match server {
            Server::Bare => (self.bin_dir.join("bench-bare"), vec![]),
            Server::Socketioxide => (self.bin_dir.join("bench-socketioxide"), vec![]),
            Server::Alight => (
                self.bin_dir.join("alight-demo"),
                vec![
                    "--data".to_owned(),
                    self.work_dir
                        .join(format!("alight-data-{index:02}"))
                        .display()
                        .to_string(),
                ],
            ),
            Server::Node => (
                PathBuf::from("node"),
                vec![self.node_dir.join("server.js").display().to_string()],
            ),
        };
        args.extend(["--bind".to_owned(), addr.to_string()]);
        let mut command = match &self.server_cpus {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpus).arg(program).args(args);
                c
            }
            None => {
                let mut c = Command::new(program);
                c.args(args);
                c
            }
        };
        command
            .env("TOKIO_WORKER_THREADS", "1")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    async fn start(&self, server: Server, index: usize) -> Result<Running, StartError> {
        let port = StdListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(StartError::Port)?
            .port();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let log = self
            .work_dir
            .join(format!("{index:02}-{}.log", server.name()));
        let log_err = |source| StartError::Log {
            path: log.clone(),
            source,
        };
        let out = std::fs::File::create(&log).map_err(log_err)?;
        let err = out.try_clone().map_err(log_err)?;
        let mut command = self.command(server, addr, index);
        command.stdout(out).stderr(err);
        let mut child = command.spawn().map_err(|source| StartError::Spawn {
            program: command
                .as_std()
                .get_program()
                .to_string_lossy()
                .into_owned(),
            source,
        })?;
        let begun = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(StartError::Exited { status, log });
            }
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(Running { child, addr, log });
            }
            if begun.elapsed() > START_LIMIT {
                let _ = child.kill().await;
                return Err(StartError::NotReady { log });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs the plan against every available server; `on_record` sees each record as it lands.
    pub async fn run(&self, mut on_record: impl FnMut(&Record)) -> Results {
        let started = Instant::now();
        let mut meta =
            crate::machine::meta(self.server_cpus.as_deref(), &self.node_dir, self.smoke);
        let _ = std::fs::create_dir_all(&self.work_dir);
        let mut servers = Vec::new();
        for &server in &self.servers {
            match self.availability(server) {
                Ok(()) => servers.push(server),
                Err(why) => meta.skipped.push(format!("{}: {why}", server.name())),
            }
        }
        let sources = Arc::new(Sources::loopback(SOURCE_ADDRESSES));
        let mut records = Vec::new();
        let mut index = 0;
        for case in &self.plan {
            let mut runs: Vec<Vec<Record>> = servers.iter().map(|_| Vec::new()).collect();
            let rounds = servers
                .iter()
                .map(|&server| self.runs(server, case))
                .max()
                .unwrap_or(0);
            for round in 0..rounds {
                for (at, &server) in servers.iter().enumerate() {
                    if round >= self.runs(server, case) {
                        continue;
                    }
                    index += 1;
                    let record = self.run_case(server, case, index, sources.clone()).await;
                    on_record(&record);
                    runs[at].push(record);
                }
            }
            records.extend(runs.into_iter().filter_map(median_record));
        }
        meta.seconds = started.elapsed().as_secs_f64();
        meta.load_at_end = crate::machine::load_average();
        Results { meta, records }
    }

    /// How many times `case` runs against `server`.
    fn runs(&self, server: Server, case: &Case) -> usize {
        let compared = matches!(server, Server::Bare | Server::Alight);
        if !compared || self.smoke {
            return 1;
        }
        match case {
            Case::Fanout(p) if p.subscribers >= 10_000 && matches!(p.rate, None | Some(100)) => {
                AT_CAPACITY_RUNS
            }
            Case::Fanout(_) | Case::Echo(_) | Case::Churn(_) => REPEATED_RUNS,
            Case::Idle(_) | Case::Presence(_) => 1,
            Case::Catchup(_) | Case::Chaos(_) | Case::Retain(_) => 1,
        }
    }

    async fn run_case(
        &self,
        server: Server,
        case: &Case,
        index: usize,
        sources: Arc<Sources>,
    ) -> Record {
        let begun = Instant::now();
        let outcome = match self.start(server, index).await {
            Ok(mut running) => {
                let target = Target {
                    addr: running.addr,
                    protocol: server.protocol(),
                };
                let env = Env::new(target, sources, running.child.id());
                let mut outcome = case.run(&env).await;
                if let Ok(Some(status)) = running.child.try_wait() {
                    outcome.notes.push(format!(
                        "the server exited during the run ({status}); see {}",
                        running.log.display()
                    ));
                }
                let _ = running.child.kill().await;
                outcome
            }
            Err(err) => Outcome {
                case: String::new(),
                metrics: Vec::new(),
                notes: vec![format!("not run: {}", scenario::error_chain(&err))],
            },
        };
        // Let the kernel finish closing the last case's sockets before the next server starts.
        tokio::time::sleep(Duration::from_millis(200)).await;
        Record {
            server: server.name().to_owned(),
            scenario: case.scenario().to_owned(),
            outcome,
            seconds: begun.elapsed().as_secs_f64(),
        }
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<12} {:<6} {:<22}",
            self.server, self.scenario, self.outcome.case
        )?;
        for m in &self.outcome.metrics {
            write!(f, "  {}={}", m.name, crate::report::format_value(m))?;
        }
        write!(f, "  ({:.1} s)", self.seconds)?;
        for note in &self.outcome.notes {
            write!(f, "\n    {note}")?;
        }
        Ok(())
    }
}

/// One record of a case run several times: each figure the median of its runs (the lower middle
/// one for an even count), the first run's notes, and every run's value of [`SPREAD_FIGURES`];
/// the one record of a case run once, as it is. `None` for no runs.
fn median_record(mut runs: Vec<Record>) -> Option<Record> {
    if runs.len() <= 1 {
        return runs.pop();
    }
    let mut merged = runs[0].clone();
    for metric in &mut merged.outcome.metrics {
        let mut values: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.outcome.metric(&metric.name))
            .collect();
        values.sort_by(f64::total_cmp);
        if let Some(&middle) = values.get((values.len() - 1) / 2) {
            metric.value = middle;
        }
    }
    let mut spread = Vec::new();
    for name in SPREAD_FIGURES {
        let values: Vec<String> = runs
            .iter()
            .filter_map(|r| r.outcome.metrics.iter().find(|m| m.name == name))
            .map(crate::report::format_value)
            .collect();
        if !values.is_empty() {
            spread.push(format!("{name} {}", values.join(", ")));
        }
    }
    merged.outcome.notes.insert(
        0,
        format!(
            "median of {} runs; per run: {}",
            runs.len(),
            spread.join("; ")
        ),
    );
    merged.seconds = runs.iter().map(|r| r.seconds).sum();
    Some(merged)
}

/// The scratch directory of a run in `base`.
pub fn work_dir(base: &Path) -> PathBuf {
    base.join(format!("alight-bench-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(deliveries: f64, p99: f64, note: &str) -> Record {
        Record {
            server: "alight".to_owned(),
            scenario: "fanout".to_owned(),
            outcome: Outcome {
                case: "S=10 R=100/s".to_owned(),
                metrics: vec![
                    scenario::Metric::new(
                        "deliveries/s",
                        deliveries,
                        "msg/s",
                        scenario::Better::Higher,
                    ),
                    scenario::Metric::new("latency p99", p99, "ms", scenario::Better::Lower),
                ],
                notes: vec![note.to_owned()],
            },
            seconds: 1.0,
        }
    }

    #[test]
    fn a_repeated_case_reports_the_median_of_each_figure_and_every_run() {
        let merged = median_record(vec![
            record(900.0, 30.0, "first"),
            record(1_000.0, 10.0, "second"),
            record(800.0, 20.0, "third"),
        ])
        .expect("three runs");
        assert_eq!(merged.outcome.metric("deliveries/s"), Some(900.0));
        assert_eq!(merged.outcome.metric("latency p99"), Some(20.0));
        assert_eq!(merged.seconds, 3.0);
        let notes = &merged.outcome.notes;
        assert!(notes[0].starts_with("median of 3 runs; per run: deliveries/s 900"));
        assert!(
            notes[0].contains("latency p99 30.0 ms, 10.0 ms, 20.0 ms"),
            "{}",
            notes[0]
        );
        assert_eq!(notes[1], "first");

        let once = median_record(vec![record(5.0, 1.0, "only")]).expect("one run");
        assert_eq!(once.outcome.notes, vec!["only".to_owned()]);
        assert!(median_record(Vec::new()).is_none());
    }

    #[test]
    fn the_compared_servers_repeat_the_cases_that_swing_most_most_often() {
        let suite = SuiteConfig {
            bin_dir: PathBuf::new(),
            node_dir: PathBuf::new(),
            server_cpus: None,
            servers: vec![Server::Bare, Server::Alight, Server::Socketioxide],
            plan: full_plan(100),
            work_dir: PathBuf::new(),
            smoke: false,
        };
        let runs = |server| -> Vec<usize> {
            suite
                .plan
                .iter()
                .map(|case| suite.runs(server, case))
                .collect()
        };
        // idle; S=1,000 at 10, 100, 1,000 msg/s and flat out; the same into 10,000; echo at
        // 100 and 1,000 clients; churn.
        assert_eq!(runs(Server::Alight), [1, 3, 3, 3, 3, 3, 5, 3, 5, 3, 3, 3]);
        assert_eq!(runs(Server::Bare), runs(Server::Alight));
        assert!(runs(Server::Socketioxide).iter().all(|&n| n == 1));
        let smoke = SuiteConfig {
            smoke: true,
            plan: smoke_plan(),
            ..suite
        };
        assert!(
            smoke
                .plan
                .iter()
                .all(|case| smoke.runs(Server::Alight, case) == 1)
        );
    }

    #[test]
    fn plans_are_bounded() {
        let full = full_plan(19_850);
        assert_eq!(full.len(), 1 + 8 + 2 + 1);
        assert!(smoke_plan().len() <= 5);
        assert!(
            presence_plan()
                .iter()
                .all(|c| matches!(c, Case::Presence(p) if p.members <= 10_000))
        );
        assert_eq!(Server::from_name("node"), Some(Server::Node));
    }
}
