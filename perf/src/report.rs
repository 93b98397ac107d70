//! The report as Markdown (printed, and written to `BENCHMARKS.md`): how the run was made,
//! one table of every row, the ratios, the targets and the scale figures. Formatting only.

use crate::alpha2::Alpha2Figures;
use crate::efficiency;
use crate::etcd::EtcdFigures;
use crate::footprint::Scale;
use crate::h2load::H2loadRun;
use crate::load::Settings;
use crate::machine::Pinning;
use crate::stats::Summary;
use crate::targets::{Ratio, Target};
use std::fmt::Write as _;

/// Everything one run measured, and how.
pub struct Report {
    /// The command line.
    pub command: String,
    /// The machine, in one line.
    pub machine: String,
    /// When the run ended.
    pub date: String,
    /// Where the servers and the load generator ran.
    pub pinning: Pinning,
    /// Rounds of the throughput setups.
    pub rounds: usize,
    /// The shape of every load run.
    pub settings: Settings,
    /// Each row's name and figures, in the order of the rounds.
    pub rows: Vec<(String, Summary)>,
    /// Why the Redis rows are missing, if they are.
    pub redis_skipped: Option<String>,
    /// The `lock.etcd` figures measured once (none without etcd).
    pub etcd: Option<EtcdFigures>,
    /// Ratios of rows.
    pub ratios: Vec<Ratio>,
    /// The other targets.
    pub targets: Vec<Target>,
    /// Scale figures (none when skipped).
    pub scale: Vec<Scale>,
    /// alpha2 figures per store (none when skipped).
    pub alpha2: Vec<Alpha2Figures>,
    /// The transports under h2load, or why h2load did not run.
    pub h2load: Result<Vec<H2loadRun>, String>,
}

fn verdict(pass: Option<bool>) -> &'static str {
    match pass {
        Some(true) => "PASS",
        Some(false) => "MISS",
        None => "-",
    }
}

fn percent(share: Option<f64>) -> String {
    share.map_or("n/a".into(), |s| format!("{:.0} %", s * 100.0))
}

impl Report {
    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let s = &self.settings;
        let _ = writeln!(md, "# Benchmarks\n");
        let _ = writeln!(md, "Produced by `{}` on {}.\n", self.command, self.date);
        let _ = writeln!(md, "Machine: {}.\n", self.machine);
        let _ = match &self.pinning {
            Pinning::Pinned { server, load } => writeln!(
                md,
                "Pinned (`sched_setaffinity`): the servers under test (wasilock, the native \
                 baseline, redis-server) on CPU {server}; the load generator (this harness, on \
                 one tokio thread, redis-benchmark and h2load) on CPU {load}.\n"
            ),
            Pinning::NotPinned(why) => writeln!(
                md,
                "Not pinned ({why}): the load generator and the servers share the CPUs.\n"
            ),
        };
        let _ = writeln!(
            md,
            "Load: {} keep-alive connections on loopback (HTTP/1.1, or one HTTP/2 channel \
             each for gRPC), each sending lock then unlock of its own resource; {:?} of \
             warm-up, then {:?} measured. redis-benchmark runs `SET __rand_int__ v NX EX 30` \
             over as many connections, a warm-up run then a measured run, sized by its last \
             rate to last about as long. Figures are requests per second (a pair is two \
             requests).\n",
            s.connections, s.warmup, s.duration
        );
        let _ = writeln!(
            md,
            "Rounds: {}. Each round runs every setup once, in the table's order, each on a \
             server started for it, so that drift hits every setup alike. req/s is the median \
             over the rounds; spread is the slowest and the fastest round against that median; \
             p50, p99, p99.9 and CPU are the medians of the rounds' figures; errors are summed. \
             Ratios and verdicts use the medians. CPU is utime + stime from `/proc/PID/stat` \
             over the measured window, in % of one core: the server's (for d and d', wasilock's \
             and redis-server's together: they share the servers' CPU), and the load \
             generator's (the harness, plus redis-benchmark on its rows). Near 100 % server \
             CPU, a row is bound by the server; near 100 % load CPU, by the load generator.\n",
            self.rounds
        );
        let _ = writeln!(
            md,
            "| setup | req/s | spread | p50 ms | p99 ms | p99.9 ms | server CPU | load CPU | errors |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (name, row) in &self.rows {
            let (below, above) = row.rate.percent();
            let p999 = row.p999.map_or("n/a".to_string(), |v| format!("{v:.2}"));
            let _ = writeln!(
                md,
                "| {name} | {:.0} | {below:+.1} / {above:+.1} % | {:.2} | {:.2} | {p999} | {} | {} | {} |",
                row.rate.median,
                row.p50,
                row.p99,
                percent(row.server_cpu),
                percent(row.load_cpu),
                row.errors
            );
        }
        if let Some(why) = &self.redis_skipped {
            let _ = writeln!(md, "\nRedis rows skipped: {why}.");
        }
        if let Some(etcd) = &self.etcd {
            let _ = writeln!(
                md,
                "\nlock.etcd, measured once: {:.2} etcd calls per lock+unlock (one Txn each, and \
                 the shared leases' grants and revokes); {:.2} s from the leader's SIGKILL to the \
                 next lock granted.",
                etcd.calls_per_pair,
                etcd.leader_kill_to_grant.as_secs_f64()
            );
        }
        self.h2load_section(&mut md);
        let _ = writeln!(md, "\n## Ratios\n");
        let _ = writeln!(md, "| ratio | value | target | verdict |");
        let _ = writeln!(md, "|---|---:|---:|---|");
        for ratio in &self.ratios {
            let target = ratio.target.map_or("-".into(), |t| format!("≥ {t:.2}"));
            let _ = writeln!(
                md,
                "| {} | {:.2} | {target} | {} |",
                ratio.name,
                ratio.value,
                verdict(ratio.pass())
            );
        }
        let _ = writeln!(md, "\n## Targets\n");
        let _ = writeln!(
            md,
            "The efficiency targets (last) count the server's utime + stime from \
             `/proc/PID/stat`, measured once after {:?} unmeasured: over {:?} idle, or over \
             {:?} while a paced, open-loop client sends lock and unlock requests at a fixed \
             {:.0} req/s over {} keep-alive connections; resident memory is `VmRSS` at the \
             window's end.\n",
            efficiency::SETTLE,
            efficiency::IDLE_WINDOW,
            efficiency::WINDOW,
            efficiency::PACED_RATE,
            efficiency::PACED_CONNECTIONS
        );
        let _ = writeln!(md, "| target | figure | verdict |");
        let _ = writeln!(md, "|---|---|---|");
        for target in &self.targets {
            let _ = writeln!(
                md,
                "| {} | {} | {} |",
                target.name,
                target.figure,
                verdict(target.pass)
            );
        }
        if !self.scale.is_empty() {
            let _ = writeln!(md, "\n## Scale\n");
            let _ = writeln!(
                md,
                "Measured once, after the rounds: median latency with 1,000 and with many live \
                 locks, and resident memory per lock.\n"
            );
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
        if !self.alpha2.is_empty() {
            let _ = writeln!(md, "\n## alpha2\n");
            let _ = writeln!(
                md,
                "Measured once per store, after the rounds: release to the next grant with 32 \
                 waiters on one resource, renewals per second, resident memory per lock held \
                 by a stream (1,000 streams), and alpha2 acquire+release next to alpha1 \
                 lock+unlock (requests per second, same connections and window).\n"
            );
            let _ = writeln!(
                md,
                "| store | hand-off p50 ms | hand-off p99 ms | renewals/s | stream B/lock | alpha2 req/s | alpha1 req/s |"
            );
            let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
            for a in &self.alpha2 {
                let _ = writeln!(
                    md,
                    "| {} | {:.3} | {:.3} | {:.0} | {:.0} | {:.0} | {:.0} |",
                    a.store,
                    a.handoff_p50,
                    a.handoff_p99,
                    a.renewals_per_s,
                    a.stream_bytes_per_lock,
                    a.alpha2_rate,
                    a.alpha1_rate
                );
            }
        }
        md
    }

    /// The transports under h2load: a table, and gRPC's rate over HTTP's.
    fn h2load_section(&self, md: &mut String) {
        let _ = writeln!(md, "\n## Transports under h2load\n");
        let runs = match &self.h2load {
            Ok(runs) => runs,
            Err(why) => {
                let _ = writeln!(md, "Not measured: {why}.");
                return;
            }
        };
        let _ = writeln!(
            md,
            "Measured once, after the rounds, on a lock.in-memory wasilock (both transports) \
             and a lock.embedded one: h2load (an independent load generator, on the load \
             generator's CPU) sends one TryLock request again and again over {} connections, \
             one request in flight on each; {:?} of warm-up, then {:?} measured. All but the \
             first answer `success: false` (the lock is held), so each request is one \
             validation and one failed compare-and-set in the store: on lock.embedded, many \
             callers contending for one lock. h2load reports the mean latency, not \
             percentiles.\n",
            self.settings.connections, self.settings.warmup, self.settings.duration
        );
        let _ = writeln!(
            md,
            "| store, transport | req/s | mean ms | server CPU | load CPU | errors |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|");
        for run in runs {
            let _ = writeln!(
                md,
                "| {} | {:.0} | {:.3} | {} | {} | {} |",
                run.setup,
                run.rate,
                run.mean_ms,
                percent(run.cpu.server),
                percent(run.cpu.load),
                run.errors
            );
        }
        if let [http, grpc, ..] = runs.as_slice() {
            let _ = writeln!(
                md,
                "\ngRPC / HTTP under h2load (lock.in-memory): {:.2}.",
                grpc.rate / http.rate
            );
        }
    }
}
