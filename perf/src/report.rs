//! The report: a table on stdout and `BENCHMARKS.md`, with the machine, the command, the
//! date, the ratios and each target's verdict.

use crate::load::Measured;
use crate::servers::RedisBenchmark;
use crate::tenants::{Neighbour, SPREAD, TENANTS, Tenancy};
use std::fmt::Write as _;
use std::time::Duration;

/// One throughput row.
pub struct Row {
    /// What was measured.
    pub name: String,
    /// Requests per second.
    pub rate: f64,
    /// Median latency, ms.
    pub p50: f64,
    /// 99th percentile, ms.
    pub p99: f64,
    /// 99.9th percentile, ms (`None` when the tool does not report it).
    pub p999: Option<f64>,
    /// Requests answered wrongly.
    pub errors: u64,
}

impl Row {
    /// A row from a load run.
    pub fn measured(name: &str, m: &Measured) -> Row {
        Row {
            name: name.into(),
            rate: m.rate(),
            p50: m.quantile_ms(0.50),
            p99: m.quantile_ms(0.99),
            p999: Some(m.quantile_ms(0.999)),
            errors: m.errors,
        }
    }

    /// A row from `redis-benchmark`.
    pub fn redis(name: &str, r: &RedisBenchmark) -> Row {
        Row {
            name: name.into(),
            rate: r.rate,
            p50: r.p50_ms,
            p99: r.p99_ms,
            p999: None,
            errors: 0,
        }
    }
}

/// Figures of one store with 1k and with many live locks.
pub struct Scale {
    /// The store type.
    pub store: String,
    /// Live locks in the large run.
    pub locks: u64,
    /// Median latency with 1,000 live locks, ms.
    pub p50_small: f64,
    /// Median latency with `locks` live locks, ms.
    pub p50_large: f64,
    /// Resident memory per live lock, bytes.
    pub rss_per_lock: f64,
    /// Bytes per lock beyond its key and value (in-memory), or on disk (embedded).
    pub extra: (String, f64),
}

/// Everything one run measured.
pub struct Report {
    /// The command line.
    pub command: String,
    /// Connections of every load run.
    pub connections: usize,
    /// Measured window of every load run.
    pub duration: Duration,
    /// Throughput rows, in order: native, in-memory, embedded, then Redis rows if any.
    pub rows: Vec<Row>,
    /// Ratios with their targets, if any: (name, value, lowest acceptable value).
    pub ratios: Vec<(String, f64, Option<f64>)>,
    /// Scale figures.
    pub scale: Vec<Scale>,
    /// Start-up to first served request.
    pub startup: Duration,
    /// Size of the embedded guest component.
    pub guest_bytes: u64,
    /// Why the Redis figures are missing, if they are.
    pub redis_skipped: Option<String>,
    /// Many tenants in one process.
    pub tenancy: Tenancy,
    /// A noisy neighbour beside a well-behaved tenant.
    pub neighbour: Neighbour,
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

impl Report {
    /// The report as Markdown (also what is printed).
    pub fn markdown(&self, machine: &str, date: &str) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# Benchmarks\n");
        let _ = writeln!(md, "Produced by `{}` on {date}.\n", self.command);
        let _ = writeln!(md, "Machine: {machine}.\n");
        let _ = writeln!(
            md,
            "Load: {} keep-alive HTTP/1.1 connections on loopback, each sending lock then unlock \
             of its own resource, {:?} measured after a warm-up; the load generator shares the \
             machine with the server. Figures are requests per second (a pair is two requests).\n",
            self.connections, self.duration
        );
        let _ = writeln!(
            md,
            "| setup | req/s | p50 ms | p99 ms | p99.9 ms | errors |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|");
        let tenant_rows = [
            &self.tenancy.one,
            &self.tenancy.spread,
            &self.neighbour.alone,
            &self.neighbour.beside,
        ];
        for row in self.rows.iter().chain(tenant_rows) {
            let p999 = row.p999.map_or("n/a".to_string(), |v| format!("{v:.2}"));
            let _ = writeln!(
                md,
                "| {} | {:.0} | {:.2} | {:.2} | {p999} | {} |",
                row.name, row.rate, row.p50, row.p99, row.errors
            );
        }
        if let Some(why) = &self.redis_skipped {
            let _ = writeln!(md, "\nRedis rows skipped: {why}.");
        }
        let _ = writeln!(md, "\n| ratio | value | target | verdict |");
        let _ = writeln!(md, "|---|---:|---:|---|");
        for (name, value, target) in &self.ratios {
            let (target_text, verdict_text) = match target {
                Some(t) => (format!("≥ {t:.2}"), verdict(value >= t)),
                None => ("-".to_string(), "-"),
            };
            let _ = writeln!(
                md,
                "| {name} | {value:.2} | {target_text} | {verdict_text} |"
            );
        }
        let _ = writeln!(md, "\n## Targets\n");
        let _ = writeln!(md, "| target | figure | verdict |");
        let _ = writeln!(md, "|---|---|---|");
        if let Some(b) = self.rows.get(1) {
            let _ = writeln!(
                md,
                "| p99 of wasm in-memory ≤ 2 ms | {:.2} ms | {} |",
                b.p99,
                verdict(b.p99 <= 2.0)
            );
        }
        for s in &self.scale {
            let drift = s.p50_large / s.p50_small - 1.0;
            let _ = writeln!(
                md,
                "| {}: p50 at {} locks within 20 % of 1k | {:.3} ms vs {:.3} ms ({:+.0} %) | {} |",
                s.store,
                s.locks,
                s.p50_large,
                s.p50_small,
                drift * 100.0,
                verdict(drift <= 0.20)
            );
            if s.store == "lock.in-memory" {
                let _ = writeln!(
                    md,
                    "| in-memory ≤ 200 B overhead per lock | {:.0} B ({:.0} B resident per lock) | {} |",
                    s.extra.1,
                    s.rss_per_lock,
                    verdict(s.extra.1 <= 200.0)
                );
            }
        }
        let t = &self.tenancy;
        let _ = writeln!(
            md,
            "| ≤ 1 MiB resident per idle tenant ({TENANTS} tenants) | {:.0} B | {} |",
            t.rss_per_idle_tenant,
            verdict(t.rss_per_idle_tenant <= 1024.0 * 1024.0)
        );
        let spread = t.spread.rate / t.one.rate;
        let _ = writeln!(
            md,
            "| load spread over {SPREAD} tenants ≥ 0.8 × one tenant | {spread:.2} ({:.0} vs {:.0} req/s) | {} |",
            t.spread.rate,
            t.one.rate,
            verdict(spread >= 0.8)
        );
        let _ = writeln!(
            md,
            "| first request of a cold tenant (median, slowest of 50) | {:.2} ms, {:.2} ms | - |",
            t.cold_first_ms.0, t.cold_first_ms.1
        );
        let n = &self.neighbour;
        let kept = n.beside.rate / n.alone.rate;
        let _ = writeln!(
            md,
            "| calm tenant beside a noisy one ≥ 0.5 × alone, 0 errors | {kept:.2} ({:.0} vs {:.0} req/s; p99 {:.2} vs {:.2} ms; {} errors; the noisy tenant got {} answers) | {} |",
            n.beside.rate,
            n.alone.rate,
            n.beside.p99,
            n.alone.p99,
            n.beside.errors,
            n.noisy_answered,
            verdict(kept >= 0.5 && n.beside.errors == 0)
        );
        let startup_ms = self.startup.as_secs_f64() * 1000.0;
        let _ = writeln!(
            md,
            "| start-up to first served request ≤ 300 ms | {startup_ms:.0} ms | {} |",
            verdict(startup_ms <= 300.0)
        );
        let _ = writeln!(
            md,
            "| guest `.wasm` ≤ 300 KB | {:.0} KB ({} bytes) | {} |",
            self.guest_bytes as f64 / 1000.0,
            self.guest_bytes,
            verdict(self.guest_bytes <= 300_000)
        );
        if !self.scale.is_empty() {
            let _ = writeln!(md, "\n## Scale\n");
            let _ = writeln!(
                md,
                "| store | live locks | p50 1k ms | p50 large ms | resident B/lock | other |"
            );
            let _ = writeln!(md, "|---|---:|---:|---:|---:|---|");
            for s in &self.scale {
                let _ = writeln!(
                    md,
                    "| {} | {} | {:.3} | {:.3} | {:.0} | {}: {:.0} B |",
                    s.store,
                    s.locks,
                    s.p50_small,
                    s.p50_large,
                    s.rss_per_lock,
                    s.extra.0,
                    s.extra.1
                );
            }
        }
        md
    }
}

/// CPU model, cores, memory and kernel of this machine, in one line.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
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
