//! This machine, as Linux shows it: a one-line description, which CPUs the harness may use
//! and how it splits them (servers on one, the load generator on another), and the CPU time
//! processes use (`/proc/PID/stat`).

use std::time::{Duration, Instant};
use wasilock_testkit::host::pin_to_cpu;

/// Where the processes of a run execute.
#[derive(Clone, Debug, PartialEq)]
pub enum Pinning {
    /// Every server under test on `server`; the load generator (this process, its threads
    /// and its children not given a CPU of their own) on `load`.
    Pinned {
        /// The CPU of the servers under test.
        server: usize,
        /// The CPU of the load generator.
        load: usize,
    },
    /// Nothing pinned, for the reason given.
    NotPinned(String),
}

impl Pinning {
    /// The CPU servers are started on, if pinned.
    pub fn server_cpu(&self) -> Option<usize> {
        match self {
            Pinning::Pinned { server, .. } => Some(*server),
            Pinning::NotPinned(_) => None,
        }
    }
}

/// Pins this process to the second CPU it may use, leaving the first for the servers under
/// test. Call it before any thread is started: threads and children inherit the CPU.
pub fn pin_load_generator() -> Pinning {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let allowed = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .and_then(|list| parse_cpu_list(list.trim()));
    let Some(allowed) = allowed else {
        return Pinning::NotPinned("no Cpus_allowed_list in /proc/self/status".into());
    };
    let [server, load, ..] = allowed[..] else {
        return Pinning::NotPinned(format!(
            "only {} CPU available; load and servers share it",
            allowed.len()
        ));
    };
    match pin_to_cpu(load) {
        Ok(()) => Pinning::Pinned { server, load },
        Err(e) => Pinning::NotPinned(format!("sched_setaffinity to CPU {load} failed: {e}")),
    }
}

/// Reads a CPU list such as `0-3,6,8-9`.
pub fn parse_cpu_list(list: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in list.split(',') {
        match part.split_once('-') {
            Some((first, last)) => cpus.extend(first.parse::<usize>().ok()?..=last.parse().ok()?),
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

/// CPU time of a process, in clock ticks: its own (`utime + stime`, every thread) and that
/// of its children it has waited for (`cutime + cstime`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CpuTicks {
    /// `utime + stime`.
    pub own: u64,
    /// `cutime + cstime`.
    pub children: u64,
}

/// Reads fields 14-17 of `/proc/PID/stat` (after the command name, which may hold spaces).
pub fn parse_stat(stat: &str) -> Option<CpuTicks> {
    let (_, after_name) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // `fields[0]` is field 3 (state): utime is field 14.
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(CpuTicks {
        own: field(14)? + field(15)?,
        children: field(16)? + field(17)?,
    })
}

/// CPU time of process `pid` (this process when `None`) so far.
fn cpu_ticks(pid: Option<u32>) -> Option<CpuTicks> {
    let path = pid.map_or("/proc/self/stat".to_string(), |p| format!("/proc/{p}/stat"));
    parse_stat(&std::fs::read_to_string(path).ok()?)
}

/// Share of one core used over a window: CPU time over the window's length.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuUse {
    /// The servers under test, together (1.0 is one core, fully busy).
    pub server: Option<f64>,
    /// The load generator: this process, plus the children it waited for in the window
    /// (`redis-benchmark`).
    pub load: Option<f64>,
}

/// Counts the CPU time of the servers under test and of this process from
/// [`CpuMeter::start`] to [`CpuMeter::stop`].
pub struct CpuMeter {
    server_pids: Vec<u32>,
    server: Option<u64>,
    load: Option<u64>,
    started: Instant,
}

/// The summed `utime + stime` of `pids`; `None` when there are none or one cannot be read.
fn servers_ticks(pids: &[u32]) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter()
        .map(|&pid| Some(cpu_ticks(Some(pid))?.own))
        .sum()
}

/// This process's CPU time, with that of the children it waited for.
fn load_ticks() -> Option<u64> {
    cpu_ticks(None).map(|t| t.own + t.children)
}

impl CpuMeter {
    /// Starts counting, for the server processes `server_pids` and this process.
    pub fn start(server_pids: Vec<u32>) -> CpuMeter {
        CpuMeter {
            server: servers_ticks(&server_pids),
            server_pids,
            load: load_ticks(),
            started: Instant::now(),
        }
    }

    /// The CPU time used since the start, as a share of one core.
    pub fn stop(self) -> CpuUse {
        let elapsed = self.started.elapsed();
        CpuUse {
            server: share(self.server, servers_ticks(&self.server_pids), elapsed),
            load: share(self.load, load_ticks(), elapsed),
        }
    }
}

/// `after - before` clock ticks as a share of `elapsed`.
fn share(before: Option<u64>, after: Option<u64>, elapsed: Duration) -> Option<f64> {
    let ticks = after?.checked_sub(before?)?;
    Some(ticks as f64 / clock_ticks_per_second() / elapsed.as_secs_f64())
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: `sysconf` reads a constant of the system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// CPU model, cores, memory and kernel of this machine, in one line.
pub fn describe() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_gib = meminfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .split_whitespace()
                .next()?
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    let kernel = std::process::Command::new("uname")
        .arg("-r")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("{model}, {cores} cores, {memory_gib:.0} GiB, Linux {kernel}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_lists() {
        assert_eq!(parse_cpu_list("0-1"), Some(vec![0, 1]));
        assert_eq!(parse_cpu_list("0"), Some(vec![0]));
        assert_eq!(parse_cpu_list("2,4-6,9"), Some(vec![2, 4, 5, 6, 9]));
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn reads_cpu_ticks_from_stat() {
        // A command name with a space and a parenthesis; utime 1200, stime 34, cutime 5,
        // cstime 6.
        let stat = "4242 (tokio) x) S 1 4242 4242 0 -1 4194560 3000 0 0 0 1200 34 5 6 20 0 \
                    9 0 100 2000000 500 18446744073709551615";
        assert_eq!(
            parse_stat(stat),
            Some(CpuTicks {
                own: 1234,
                children: 11
            })
        );
        assert_eq!(parse_stat("4242 (short) S 1"), None);
    }
}
