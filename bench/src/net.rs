//! The machine around a run: client source addresses, the open-file budget, and `/proc` readings.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};

/// File descriptors the generator keeps for itself beyond its sockets: stdio, the runtime's epoll
/// and eventfd, pipes to the server under test, `/proc` reads, and slack.
pub const FD_RESERVE: u64 = 150;

/// Client source addresses, handed out round-robin.
///
/// Each connection binds its socket to one of these before connecting, so the ephemeral ports of
/// one address (about 28,000 in Linux's default range) never bound the number of connections, and
/// a churn run's closed sockets spread their `TIME_WAIT` entries over several addresses.
#[derive(Debug)]
pub struct Sources {
    ips: Vec<IpAddr>,
    /// The next index to hand out; shared by every connecting task.
    next: AtomicUsize,
}

impl Sources {
    /// `127.0.0.2` to `127.0.0.(count + 1)`; all of 127.0.0.0/8 is local on Linux.
    pub fn loopback(count: u8) -> Self {
        let count = count.clamp(1, 250);
        Sources::new(
            (0..count)
                .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i)))
                .collect(),
        )
    }

    /// Exactly these addresses (at least one: an empty list means `127.0.0.1`).
    pub fn new(mut ips: Vec<IpAddr>) -> Self {
        if ips.is_empty() {
            ips.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        Sources {
            ips,
            next: AtomicUsize::new(0),
        }
    }

    /// The next address.
    pub fn next(&self) -> IpAddr {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.ips[i % self.ips.len()]
    }

    /// How many addresses there are.
    pub fn len(&self) -> usize {
        self.ips.len()
    }

    /// Always false: there is at least one address.
    pub fn is_empty(&self) -> bool {
        self.ips.is_empty()
    }
}

/// Raises this process's soft open-file limit to its hard limit and returns the new soft limit.
/// Child processes (the servers the suite starts) inherit it.
pub fn raise_nofile_limit() -> io::Result<u64> {
    let (_, hard) = rlimit::Resource::NOFILE.get()?;
    rlimit::Resource::NOFILE.set(hard, hard)?;
    Ok(rlimit::Resource::NOFILE.get()?.0)
}

/// How many connections one process may hold under `soft_limit` open files.
pub fn connection_budget(soft_limit: u64) -> usize {
    usize::try_from(soft_limit.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX)
}

/// Resident memory of process `pid` in KiB, from `VmRSS` in `/proc/<pid>/status`.
pub fn rss_kib(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_vm_rss(&status).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("no VmRSS line in /proc/{pid}/status"),
        )
    })
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time process `pid` has used so far, user and system, all threads: `utime + stime` of
/// `/proc/<pid>/stat`, in clock ticks of 1/100 s (Linux's `USER_HZ` on every common platform).
pub fn cpu_seconds(pid: u32) -> io::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_cpu_ticks(&stat)
        .map(|ticks| ticks as f64 / 100.0)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("no utime and stime in /proc/{pid}/stat"),
            )
        })
}

fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name, in parentheses, may hold spaces: count fields after its closing one.
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Open file descriptors of this process (entries of `/proc/self/fd`).
pub fn open_fds() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/fd")?.count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_round_robin() {
        let s = Sources::loopback(3);
        let got: Vec<String> = (0..4).map(|_| s.next().to_string()).collect();
        assert_eq!(got, ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.2"]);
        assert_eq!(Sources::new(vec![]).next().to_string(), "127.0.0.1");
    }

    #[test]
    fn reads_vm_rss() {
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t    4321 kB\nThreads: 1\n";
        assert_eq!(parse_vm_rss(status), Some(4321));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
    }

    #[test]
    fn reads_cpu_ticks() {
        let stat = "42 (a b) R 1 1 1 0 -1 4194304 123 0 0 0 250 31 0 0 20 0 1 0 489222";
        assert_eq!(parse_cpu_ticks(stat), Some(281));
        assert_eq!(parse_cpu_ticks("42 (x) R 1"), None);
        // A command name may hold `) ` itself; the fields count from the last `)`.
        let odd = "7 (tokio) 1) S 1 7 7 0 -1 4194560 5061 0 3 0 1234567 89012 0 0 20 0 2 0 77";
        assert_eq!(parse_cpu_ticks(odd), Some(1_234_567 + 89_012));
        assert_eq!(parse_cpu_ticks("7 (x) S 1 7 7 0 -1 0 0 0 0 0 a 1"), None);
    }

    #[test]
    fn own_cpu_time_grows_with_work() -> io::Result<()> {
        let pid = std::process::id();
        let before = cpu_seconds(pid)?;
        // Spin until the reading moves by two ticks, within a bound on a machine too busy to
        // give this thread any time.
        let begun = std::time::Instant::now();
        let mut x: u64 = 1;
        while cpu_seconds(pid)? < before + 0.02 {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
            assert!(begun.elapsed() < std::time::Duration::from_secs(30));
        }
        Ok(())
    }

    #[test]
    fn own_rss_is_readable() -> io::Result<()> {
        assert!(rss_kib(std::process::id())? > 0);
        Ok(())
    }
}
