//! The `alight-bench` command line: parsing and the commands it runs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::conn::Target;
use crate::net::{self, Sources};
use crate::report::{self, Results};
use crate::scenario::catchup::CatchupParams;
use crate::scenario::churn::ChurnParams;
use crate::scenario::echo::EchoParams;
use crate::scenario::fanout::FanoutParams;
use crate::scenario::idle::IdleParams;
use crate::scenario::presence::PresenceParams;
use crate::scenario::retain::RetainParams;
use crate::scenario::shapes::{self, ShapesParams};
use crate::scenario::{Env, Outcome};
use crate::suite::{self, Case, Server, SuiteConfig};
use crate::wire::Protocol;

/// The usage text.
pub const USAGE: &str = "\
Usage: alight-bench <COMMAND> [OPTIONS]

Load tests for Phoenix Channels (and socket.io) servers on loopback. Every run is bounded in
clients, messages and time.

Commands:
  suite    every server through every scenario, a fresh pinned server per case (bench/run runs this)
  report   render a results file as the markdown table
  idle     N connections joined to a topic; connect+join rate, server RSS per connection
  fanout   S subscribers, one publisher at R msg/s or flat out; deliveries/s, latency, missing
  echo     C clients pinging in a closed loop; replies/s, latency
  churn    connect, join, leave, disconnect in a loop; cycles/s, whether server RSS returns
  presence M members join one room under their names; time until every presence list is
           complete, bytes and frames per client (Phoenix; Alight's demo room)
  catchup  M clients miss the same N broadcasts, reconnect at once and rejoin with `since`; time
           until every one has all N, against the same clients joining fresh (Phoenix; Alight's
           demo, whose room:* topics keep history)
  retain   K broadcasts into each of T history topics that nobody else joined; server RSS per
           retained broadcast (Phoenix; Alight's demo; needs --server-pid)
  shapes   S clients follow shape:notifications on alight-demo while rows are committed into
           its SQLite file at R rows/s; commit→receive latency, missing rows

suite:
  --smoke              tiny sizes, a few seconds in all
  --presence           the presence cases (1,000 and 10,000 members) against alight only, into
                       their own README section (default results: target/bench/presence.json)
  --servers LIST       comma-separated from bare,alight,socketioxide,node (default: all of them)
  --bin-dir DIR        the release binaries (default: target/release)
  --node-dir DIR       the Node baseline (default: bench/node)
  --server-cpus LIST   `taskset -c LIST` for every server, or `none` (default: 0)
  --results FILE       where to write the results as JSON (default: target/bench/results.json)
  --readme FILE        write the table into FILE between its markers

report:
  --results FILE       results written by `suite` (default: target/bench/results.json)
  --readme FILE        write the table into FILE between its markers (default: print it)

idle, fanout, echo, churn, presence (against a server you started):
  --target ADDR        the server, e.g. 127.0.0.1:4000 (required)
  --protocol P         phoenix (default) or socketio
  --server-pid PID     read the server's RSS from /proc/PID/status
  --sources K          client source addresses 127.0.0.2 to 127.0.0.(K+1) (default: 16)
  --payload-bytes B    JSON payload size of shouts and pings (default: 200)
  idle:    --connections N     (default: the open-file limit less a reserve)
  fanout:  --subscribers S (1000)  --rate R|max (100)  --duration SECS (3)  --drain SECS (3)
           --window W (16, flat out only)  --publish-to ADDR (the publisher on another
           node of a cluster: every delivery crosses between nodes)
  echo:    --clients C (100)  --duration SECS (3)
  churn:   --workers W (32)  --duration SECS (4)  --settle SECS (3)
  presence: --members M (10000)  --join-rate R|max (max: as fast as answered, with 100 joins
           in flight)  --limit SECS (180)

catchup, retain (against alight-demo; the options above apply; ALIGHT_ROOM_HISTORY=off on the
demo turns its history off):
  catchup: --clients M (1000)  --broadcasts N (500; at most what the topic replays, 1,000 for
           the demo's rooms, or every resume says recovered: false)  --limit SECS (60, per phase)
  retain:  --topics T (100)  --per-topic K (1000)  --keeps CAP (1000: what a topic keeps, the
           demo's rooms keep the last 1,000 each; K above CAP measures eviction, not retention)
           --settle SECS (2, RSS watched for its lowest before and after)  --limit SECS (120);
           run it against a freshly started demo: a family's topics share one history byte
           budget (64 MiB by default), and what an earlier run left counts against it

shapes (against alight-demo started with a fresh --data DIR):
  --target ADDR  --server-pid PID  --sources K   as above
  --db FILE            the demo's database, DIR/alight.db (required)
  --mode M             one-shape (every client is user u0: one shape, S subscribers) or per-user
                       (client i is user u<i>; row n is u<n mod S>'s) (default: one-shape)
  --subscribers S (1000)  --rate R rows/s (100)  --duration SECS (10)  --drain SECS (5)";

/// Why the command line could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// No command, or one that does not exist.
    #[error("unknown command `{0}`; see --help")]
    UnknownCommand(String),
    /// An option the command does not take.
    #[error("unknown option `{0}` for this command; see --help")]
    UnknownOption(String),
    /// An option that takes a value came last.
    #[error("{0} needs a value; see --help")]
    MissingValue(String),
    /// A value that does not parse.
    #[error("invalid value `{value}` for {option}: {reason}")]
    Invalid {
        /// The option.
        option: String,
        /// The value given.
        value: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A required option was not given.
    #[error("{0} is required; see --help")]
    Required(&'static str),
}

/// What to do.
#[derive(Debug)]
pub enum Command {
    /// Print the usage.
    Help,
    /// Run the suite; write the results (and the README table if asked).
    Suite {
        /// Where the servers are and what to run.
        config: SuiteConfig,
        /// The results file.
        results: PathBuf,
        /// The README to write the table into.
        readme: Option<PathBuf>,
    },
    /// Render a results file.
    Report {
        /// The results file.
        results: PathBuf,
        /// The README to write into; stdout if `None`.
        readme: Option<PathBuf>,
    },
    /// A shapes case against a running `alight-demo`.
    Shapes {
        /// The demo.
        target: Target,
        /// Its pid, for CPU readings.
        server_pid: Option<u32>,
        /// Client source addresses.
        sources: u8,
        /// The case.
        params: ShapesParams,
    },
    /// One case against a running server.
    Single {
        /// The server.
        target: Target,
        /// Where the fan-out's publisher connects, when not to `target` (`--publish-to`).
        publish_to: Option<Target>,
        /// Its pid, for RSS readings.
        server_pid: Option<u32>,
        /// Client source addresses.
        sources: u8,
        /// The case.
        case: Case,
    },
}

/// Options as given: `--name value` pairs and bare switches.
#[derive(Debug, Default)]
struct Options {
    values: BTreeMap<String, String>,
    switches: Vec<String>,
}

impl Options {
    fn parse(args: &[String], switches: &[&str]) -> Result<Self, CliError> {
        let mut options = Options::default();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            if switches.contains(&arg.as_str()) {
                options.switches.push(arg.clone());
                continue;
            }
            if !arg.starts_with("--") {
                return Err(CliError::UnknownOption(arg.clone()));
            }
            let (name, value) = match arg.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => {
                    let value = iter
                        .next()
                        .ok_or_else(|| CliError::MissingValue(arg.clone()))?;
                    (arg.clone(), value.clone())
                }
            };
            options.values.insert(name, value);
        }
        Ok(options)
    }

    fn switch(&mut self, name: &str) -> bool {
        let before = self.switches.len();
        self.switches.retain(|s| s != name);
        self.switches.len() != before
    }

    fn take<T: FromStr>(&mut self, name: &str) -> Result<Option<T>, CliError>
    where
        T::Err: std::fmt::Display,
    {
        match self.values.remove(name) {
            None => Ok(None),
            Some(value) => value
                .parse()
                .map(Some)
                .map_err(|err: T::Err| CliError::Invalid {
                    option: name.to_owned(),
                    reason: err.to_string(),
                    value,
                }),
        }
    }

    fn take_or<T: FromStr>(&mut self, name: &str, default: T) -> Result<T, CliError>
    where
        T::Err: std::fmt::Display,
    {
        Ok(self.take(name)?.unwrap_or(default))
    }

    fn seconds(&mut self, name: &str, default: f64) -> Result<Duration, CliError> {
        let secs: f64 = self.take_or(name, default)?;
        Duration::try_from_secs_f64(secs).map_err(|err| CliError::Invalid {
            option: name.to_owned(),
            value: secs.to_string(),
            reason: err.to_string(),
        })
    }

    /// Fails on anything not taken.
    fn finish(self) -> Result<(), CliError> {
        match (
            self.values.into_keys().next(),
            self.switches.into_iter().next(),
        ) {
            (Some(name), _) | (None, Some(name)) => Err(CliError::UnknownOption(name)),
            (None, None) => Ok(()),
        }
    }
}

/// Reads the command line (without the program name).
pub fn parse(args: &[String]) -> Result<Command, CliError> {
    let Some((command, rest)) = args.split_first() else {
        return Ok(Command::Help);
    };
    if matches!(command.as_str(), "-h" | "--help" | "help") {
        return Ok(Command::Help);
    }
    let mut o = Options::parse(rest, &["--smoke", "--presence", "-h", "--help"])?;
    if o.switch("-h") || o.switch("--help") {
        return Ok(Command::Help);
    }
    let default_results = PathBuf::from("target/bench/results.json");
    let parsed = match command.as_str() {
        "suite" => {
            let smoke = o.switch("--smoke");
            let presence = o.switch("--presence");
            let servers = match o.values.remove("--servers") {
                None if presence => vec![Server::Alight],
                None => Server::ALL.to_vec(),
                Some(list) => list
                    .split(',')
                    .map(|name| {
                        Server::from_name(name.trim()).ok_or_else(|| CliError::Invalid {
                            option: "--servers".to_owned(),
                            value: name.to_owned(),
                            reason: "expected bare, alight, socketioxide or node".to_owned(),
                        })
                    })
                    .collect::<Result<_, _>>()?,
            };
            if presence && servers != [Server::Alight] {
                return Err(CliError::Invalid {
                    option: "--servers".to_owned(),
                    value: servers
                        .iter()
                        .map(|s| s.name())
                        .collect::<Vec<_>>()
                        .join(","),
                    reason: "the presence cases run against alight only".to_owned(),
                });
            }
            let server_cpus: String = o.take_or("--server-cpus", "0".to_owned())?;
            let config = SuiteConfig {
                bin_dir: o.take_or("--bin-dir", PathBuf::from("target/release"))?,
                node_dir: o.take_or("--node-dir", PathBuf::from("bench/node"))?,
                server_cpus: (server_cpus != "none").then_some(server_cpus),
                servers,
                plan: match (presence, smoke) {
                    (true, true) => suite::presence_smoke_plan(),
                    (true, false) => suite::presence_plan(),
                    (false, true) => suite::smoke_plan(),
                    (false, false) => suite::full_plan(default_connections()),
                },
                work_dir: suite::work_dir(&std::env::temp_dir()),
                smoke,
            };
            let default_results = if presence {
                PathBuf::from("target/bench/presence.json")
            } else {
                default_results
            };
            Command::Suite {
                config,
                results: o.take_or("--results", default_results)?,
                readme: o.take("--readme")?,
            }
        }
        "report" => Command::Report {
            results: o.take_or("--results", default_results)?,
            readme: o.take("--readme")?,
        },
        "idle" | "fanout" | "echo" | "churn" | "presence" | "catchup" | "retain" => {
            let addr: SocketAddr = o.take("--target")?.ok_or(CliError::Required("--target"))?;
            let protocol: Protocol = o.take_or("--protocol", Protocol::Phoenix)?;
            let server_pid = o.take("--server-pid")?;
            let sources = o.take_or("--sources", 16u8)?;
            let payload_bytes = o.take_or("--payload-bytes", 200usize)?;
            let publish_to: Option<SocketAddr> = o.take("--publish-to")?;
            let case = match command.as_str() {
                "idle" => Case::Idle(IdleParams {
                    connections: o.take_or("--connections", default_connections())?,
                }),
                "fanout" => Case::Fanout(FanoutParams {
                    subscribers: o.take_or("--subscribers", 1_000)?,
                    rate: rate_or_max(&mut o, "--rate", "100")?,
                    duration: o.seconds("--duration", 3.0)?,
                    drain: o.seconds("--drain", 3.0)?,
                    payload_bytes,
                    window: o.take_or("--window", 16)?,
                }),
                "echo" => Case::Echo(EchoParams {
                    clients: o.take_or("--clients", 100)?,
                    duration: o.seconds("--duration", 3.0)?,
                    payload_bytes,
                }),
                "presence" => Case::Presence(PresenceParams {
                    members: o.take_or("--members", 10_000)?,
                    join_rate: rate_or_max(&mut o, "--join-rate", "max")?,
                    limit: o.seconds("--limit", 180.0)?,
                }),
                "catchup" => Case::Catchup(CatchupParams {
                    clients: o.take_or("--clients", 1_000)?,
                    broadcasts: o.take_or("--broadcasts", 500)?,
                    payload_bytes,
                    limit: o.seconds("--limit", 60.0)?,
                }),
                "retain" => Case::Retain(RetainParams {
                    topics: o.take_or("--topics", 100)?,
                    per_topic: o.take_or("--per-topic", 1_000)?,
                    keeps: o.take_or("--keeps", 1_000)?,
                    payload_bytes,
                    settle: o.seconds("--settle", 2.0)?,
                    limit: o.seconds("--limit", 120.0)?,
                }),
                _ => Case::Churn(ChurnParams {
                    workers: o.take_or("--workers", 32)?,
                    duration: o.seconds("--duration", 4.0)?,
                    settle: o.seconds("--settle", 3.0)?,
                }),
            };
            Command::Single {
                target: Target { addr, protocol },
                publish_to: publish_to.map(|addr| Target { addr, protocol }),
                server_pid,
                sources,
                case,
            }
        }
        "shapes" => Command::Shapes {
            target: Target {
                addr: o.take("--target")?.ok_or(CliError::Required("--target"))?,
                protocol: Protocol::Phoenix,
            },
            server_pid: o.take("--server-pid")?,
            sources: o.take_or("--sources", 16u8)?,
            params: ShapesParams {
                mode: o.take_or("--mode", shapes::Mode::OneShape)?,
                subscribers: o.take_or("--subscribers", 1_000)?,
                rate: o.take_or("--rate", 100)?,
                duration: o.seconds("--duration", 10.0)?,
                drain: o.seconds("--drain", 5.0)?,
                db: o.take("--db")?.ok_or(CliError::Required("--db"))?,
            },
        },
        other => return Err(CliError::UnknownCommand(other.to_owned())),
    };
    o.finish()?;
    Ok(parsed)
}

/// A per-second rate option: a number, or `max` for as fast as possible (`None`).
fn rate_or_max(o: &mut Options, name: &str, default: &str) -> Result<Option<u32>, CliError> {
    let rate: String = o.take_or(name, default.to_owned())?;
    if rate == "max" {
        return Ok(None);
    }
    rate.parse()
        .map(Some)
        .map_err(|err: std::num::ParseIntError| CliError::Invalid {
            option: name.to_owned(),
            value: rate.clone(),
            reason: err.to_string(),
        })
}

/// The idle run's size: what this process's open-file limit leaves after the reserve.
fn default_connections() -> usize {
    let soft = rlimit::Resource::NOFILE.get_soft().unwrap_or(1024);
    net::connection_budget(soft)
}

/// Runs a parsed command; returns the process's exit status (0 on success).
pub async fn run(command: Command) -> u8 {
    match command {
        Command::Help => {
            println!("{USAGE}");
            0
        }
        Command::Suite {
            config,
            results,
            readme,
        } => {
            let cases = config.plan.len();
            println!(
                "alight-bench: {} cases × {} servers{}; server logs in {}",
                cases,
                config.servers.len(),
                if config.smoke { " (smoke)" } else { "" },
                config.work_dir.display()
            );
            let out = config.run(|record| println!("{record}")).await;
            for skipped in &out.meta.skipped {
                println!("alight-bench: skipped {skipped}");
            }
            println!("alight-bench: done in {:.0} s", out.meta.seconds);
            let mut status = 0;
            if let Err(err) = out.save(&results) {
                eprintln!("alight-bench: cannot write {}: {err}", results.display());
                status = 1;
            }
            status = status.max(render(&out, readme.as_deref()));
            if config.smoke {
                // One check per case and server; the closing line is the one test runners print.
                let problems = out.problems();
                let failed = problems.iter().filter(|(_, why)| why.is_some()).count();
                for (record, why) in &problems {
                    if let Some(why) = why {
                        println!(
                            "FAILED {} {} {}: {why}",
                            record.server, record.scenario, record.outcome.case
                        );
                    }
                }
                println!(
                    "alight-bench smoke: {} passed, {failed} failed",
                    problems.len() - failed
                );
                if failed > 0 {
                    status = 1;
                }
            }
            status
        }
        Command::Report { results, readme } => match Results::load(&results) {
            Ok(out) => render(&out, readme.as_deref()),
            Err(err) => {
                eprintln!("alight-bench: cannot read {}: {err}", results.display());
                1
            }
        },
        Command::Shapes {
            target,
            server_pid,
            sources,
            params,
        } => {
            let env = Env::new(target, Arc::new(Sources::loopback(sources)), server_pid);
            let outcome = shapes::run(&env, params).await;
            println!("shapes {}", outcome.case);
            for m in &outcome.metrics {
                println!("  {:<28} {}", m.name, report::format_value(m));
            }
            for note in &outcome.notes {
                println!("  note: {note}");
            }
            u8::from(outcome.metrics.is_empty())
        }
        Command::Single {
            target,
            publish_to,
            server_pid,
            sources,
            case,
        } => {
            let mut env = Env::new(target, Arc::new(Sources::loopback(sources)), server_pid);
            env.publish_to = publish_to;
            let outcome: Outcome = case.run(&env).await;
            println!("{} {}", case.scenario(), outcome.case);
            for m in &outcome.metrics {
                println!("  {:<28} {}", m.name, report::format_value(m));
            }
            for note in &outcome.notes {
                println!("  note: {note}");
            }
            u8::from(outcome.metrics.is_empty())
        }
    }
}

fn render(results: &Results, readme: Option<&std::path::Path>) -> u8 {
    match readme {
        Some(path) => match report::write_readme(path, results) {
            Ok(()) => {
                println!("alight-bench: wrote the table into {}", path.display());
                0
            }
            Err(err) => {
                eprintln!("alight-bench: cannot write {}: {err}", path.display());
                1
            }
        },
        None => {
            println!("{}", report::render(results));
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parses_commands() -> Result<(), CliError> {
        assert!(matches!(parse(&[])?, Command::Help));
        let Command::Single { target, case, .. } = parse(&args(
            "fanout --target 127.0.0.1:4000 --protocol socketio --rate max --subscribers 5",
        ))?
        else {
            panic!("expected a single case");
        };
        assert_eq!(target.protocol, Protocol::SocketIo);
        assert!(matches!(case, Case::Fanout(p) if p.rate.is_none() && p.subscribers == 5));
        // Cross-node: the publisher speaks the subscribers' protocol on the other node.
        let Command::Single { publish_to, .. } = parse(&args(
            "fanout --target 127.0.0.1:4012 --protocol socketio --publish-to 127.0.0.1:4011",
        ))?
        else {
            panic!("expected a single case");
        };
        let publish_to = publish_to.expect("a publisher target");
        assert_eq!(publish_to.protocol, Protocol::SocketIo);
        assert_eq!(publish_to.addr.port(), 4011);
        let Command::Suite { config, readme, .. } = parse(&args(
            "suite --smoke --servers bare,alight --server-cpus none",
        ))?
        else {
            panic!("expected the suite");
        };
        assert!(config.smoke && config.server_cpus.is_none() && readme.is_none());
        assert_eq!(config.servers, vec![Server::Bare, Server::Alight]);
        let Command::Suite {
            config, results, ..
        } = parse(&args("suite --presence"))?
        else {
            panic!("expected the suite");
        };
        assert_eq!(config.servers, vec![Server::Alight]);
        assert!(config.plan.iter().all(|c| c.scenario() == "presence"));
        assert_eq!(results, PathBuf::from("target/bench/presence.json"));
        let Command::Single { case, .. } = parse(&args(
            "presence --target 127.0.0.1:4000 --members 50 --join-rate 200",
        ))?
        else {
            panic!("expected a single case");
        };
        assert!(matches!(case, Case::Presence(p) if p.members == 50 && p.join_rate == Some(200)));
        Ok(())
    }

    #[test]
    fn parses_shapes() -> Result<(), CliError> {
        let Command::Shapes { target, params, .. } = parse(&args(
            "shapes --target 127.0.0.1:4000 --db /tmp/d/alight.db --mode per-user --rate 1000",
        ))?
        else {
            panic!("expected a shapes case");
        };
        assert_eq!(target.protocol, Protocol::Phoenix);
        assert_eq!(params.mode, shapes::Mode::PerUser);
        assert_eq!((params.subscribers, params.rate), (1_000, 1_000));
        assert_eq!(params.db, PathBuf::from("/tmp/d/alight.db"));
        assert!(matches!(
            parse(&args("shapes --target 127.0.0.1:4000")),
            Err(CliError::Required("--db"))
        ));
        assert!(matches!(
            parse(&args("shapes --target 127.0.0.1:4000 --db x --mode both")),
            Err(CliError::Invalid { .. })
        ));
        Ok(())
    }

    #[test]
    fn parses_history_scenarios() -> Result<(), CliError> {
        let Command::Single { case, .. } = parse(&args("catchup --target 127.0.0.1:4000"))? else {
            panic!("expected a single case");
        };
        assert!(matches!(case, Case::Catchup(p)
            if p.clients == 1_000 && p.broadcasts == 500 && p.limit == Duration::from_secs(60)));
        let Command::Single {
            case, server_pid, ..
        } = parse(&args(
            "retain --target 127.0.0.1:4000 --server-pid 42 --topics 3 --per-topic 1500 --keeps 1000",
        ))?
        else {
            panic!("expected a single case");
        };
        assert_eq!(server_pid, Some(42));
        assert!(matches!(case, Case::Retain(p)
            if p.topics == 3 && p.kept_per_topic() == 1_000 && p.payload_bytes == 200));
        assert!(matches!(
            parse(&args("catchup --target 127.0.0.1:4000 --broadcasts many")),
            Err(CliError::Invalid { .. })
        ));
        Ok(())
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            parse(&args("nope")),
            Err(CliError::UnknownCommand(_))
        ));
        assert!(matches!(parse(&args("echo")), Err(CliError::Required(_))));
        assert!(matches!(
            parse(&args("echo --target 127.0.0.1:1 --bogus 1")),
            Err(CliError::UnknownOption(_))
        ));
        assert!(matches!(
            parse(&args("suite --servers bare,phoenix")),
            Err(CliError::Invalid { .. })
        ));
        assert!(matches!(
            parse(&args("suite --presence --servers bare")),
            Err(CliError::Invalid { .. })
        ));
    }
}
