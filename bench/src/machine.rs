//! The machine a run is made on, and the versions of what it runs: the header of the report.

use std::path::Path;

use crate::report::Meta;
use crate::suite::SOURCE_ADDRESSES;

/// The machine, the placement and the versions, read now.
pub fn meta(server_cpus: Option<&str>, node_dir: &Path, smoke: bool) -> Meta {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, model)| model.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let nproc = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let kernel = read_trimmed("/proc/sys/kernel/osrelease");
    let load_at_start = load_average();
    let own_cpus = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("Cpus_allowed_list:")
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_else(|| "?".to_owned());
    let mut placement = match server_cpus {
        Some(cpus) => format!(
            "Servers pinned to CPU {cpus} (taskset), the generator to CPU {own_cpus}; one tokio \
             worker each (TOKIO_WORKER_THREADS=1; the generator on a current-thread runtime; Node \
             is single-threaded); a fresh server process per case; clients from 127.0.0.2–127.0.0.{}.",
            1 + SOURCE_ADDRESSES
        ),
        None => format!(
            "Servers unpinned, the generator on CPUs {own_cpus}; one tokio worker each; a fresh \
             server process per case."
        ),
    };
    if let Some(priority) = realtime_priority() {
        placement.push_str(&format!(
            " Generator and servers ran under SCHED_FIFO priority {priority} (`chrt`; the servers \
             inherit it), so that other work on the machine does not take their CPUs."
        ));
    }
    let mut versions = vec![(
        "alight".to_owned(),
        format!("{} ({})", env!("CARGO_PKG_VERSION"), git_revision()),
    )];
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"))
        .unwrap_or_default();
    for name in ["socketioxide", "axum", "tokio", "tokio-tungstenite"] {
        if let Some(v) = lock_version(&lock, name) {
            versions.push((name.to_owned(), v));
        }
    }
    if let Some(v) = command_output("rustc", &["--version"]) {
        versions.push((
            "rustc".to_owned(),
            v.trim_start_matches("rustc ").to_owned(),
        ));
    }
    let socket_io = std::fs::read_to_string(node_dir.join("node_modules/socket.io/package.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["version"].as_str().map(str::to_owned));
    if let (Some(v), Some(node)) = (socket_io, command_output("node", &["--version"])) {
        versions.push(("socket.io".to_owned(), format!("{v} on Node {node}")));
    }
    Meta {
        started: command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default(),
        nproc,
        cpu_model,
        kernel,
        load_at_start,
        load_at_end: String::new(),
        placement,
        versions,
        skipped: Vec::new(),
        smoke,
        seconds: 0.0,
    }
}

/// `/proc/loadavg`'s first three fields: the load average over 1, 5 and 15 minutes.
pub fn load_average() -> String {
    read_trimmed("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "?".to_owned())
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn git_revision() -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let rev = command_output("git", &["-C", dir, "rev-parse", "--short", "HEAD"])
        .unwrap_or_else(|| "no git".to_owned());
    let dirty = command_output(
        "git",
        &["-C", dir, "status", "--porcelain", "--untracked-files=no"],
    )
    .is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{rev}, uncommitted changes")
    } else {
        rev
    }
}

/// The version of package `name` in a `Cargo.lock`.
fn lock_version(lock: &str, name: &str) -> Option<String> {
    let needle = format!("name = \"{name}\"\nversion = \"");
    let at = lock.find(&needle)? + needle.len();
    let end = lock[at..].find('"')?;
    Some(lock[at..at + end].to_owned())
}

/// This process's real-time priority, if it runs under `SCHED_FIFO` or `SCHED_RR`
/// (`/proc/self/stat` fields 40 and 41: `rt_priority`, `policy`).
fn realtime_priority() -> Option<u32> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields from the third on follow the command name, which ends at the last `)`.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let rt_priority: u32 = fields.get(40 - 3)?.parse().ok()?;
    let policy: u32 = fields.get(41 - 3)?.parse().ok()?;
    // SCHED_FIFO is 1, SCHED_RR 2.
    matches!(policy, 1 | 2).then_some(rt_priority)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lock_versions() {
        let lock = "[[package]]\nname = \"socketioxide\"\nversion = \"0.18.9\"\nsource = \"x\"\n";
        assert_eq!(
            lock_version(lock, "socketioxide").as_deref(),
            Some("0.18.9")
        );
        assert_eq!(lock_version(lock, "axum"), None);
    }
}
