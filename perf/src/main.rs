//! `wasilock-perf`: the benchmark harness. On loopback, with the servers under test on one
//! CPU and the load generator on another, it runs rounds of lock+unlock throughput against
//! the native baseline, wasilock with the in-memory store (through each HTTP export and
//! gRPC), the embedded and the Redis stores, `redis-benchmark`, 1,000 tenants in one
//! process, a noisy neighbour, and a call forwarded to an upstream (`--dapr-upstream-http`)
//! against the same call sent to it directly; then, once, latency with many live locks,
//! memory per lock and per idle tenant, start-up time, the guest's size, the alpha2
//! figures per store, CPU and memory at ordinary load (idle, and a steady 1,000 req/s), and
//! both transports under an independent load generator (h2load).
//! It prints a report and writes it to `BENCHMARKS.md`.
//!
//! Modules: [`machine`] (pinning, CPU time, the machine), [`servers`] (starting them),
//! [`load`] (the load generator), [`native`] (the baseline server), [`setups`] (the rows and
//! one round), [`etcd`] (the raw etcd client row and the `lock.etcd` figures), [`tenants`]
//! (the tenant setups), [`footprint`] (the figures measured once), [`efficiency`] (CPU and
//! memory idle and at a steady rate), [`h2load`] (both transports under h2load),
//! [`alpha2`] (waiting, renewal, streams and alpha2 throughput),
//! [`stats`] (medians and spreads), [`targets`] (ratios and verdicts), [`report`] (Markdown).

mod alpha2;
mod efficiency;
mod etcd;
mod footprint;
mod h2load;
mod load;
mod machine;
mod native;
mod report;
mod servers;
mod setups;
mod stats;
mod targets;
mod tenants;

use anyhow::Context;
use clap::{Parser, Subcommand};
use load::Settings;
use machine::Pinning;
use report::Report;
use servers::{Launcher, Store};
use setups::{Rounds, Row};
use stats::{Sample, Summary};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Benchmarks wasilock against a native baseline and Redis, and writes BENCHMARKS.md.
#[derive(Parser)]
#[command(name = "wasilock-perf")]
struct Cli {
    #[command(subcommand)]
    command: Option<Hidden>,

    /// Keep-alive connections of every load run.
    #[arg(long, default_value_t = 32)]
    connections: usize,

    /// Measured time of each throughput run.
    #[arg(long, default_value = "8s", value_parser = humantime::parse_duration)]
    duration: Duration,

    /// Unmeasured time before each run.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,

    /// Rounds of the throughput setups (each round runs every setup once).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,

    /// Live locks of the scale runs.
    #[arg(long, default_value_t = 1_000_000)]
    scale_locks: u64,

    /// Leaves out the scale runs (they take minutes).
    #[arg(long)]
    skip_scale: bool,

    /// Leaves out the alpha2 figures.
    #[arg(long)]
    skip_alpha2: bool,

    /// Where the report goes.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../BENCHMARKS.md"))]
    output: PathBuf,

    /// Runs only these rows, for a quick look: their figures go to stderr, and no report is
    /// written.
    #[arg(long, value_enum)]
    only: Option<Only>,

    /// Benchmarks this `wasilock` binary (an older build, say) instead of building the
    /// workspace's; with `--only in-memory`, two runs compare two builds row for row.
    #[arg(long)]
    binary: Option<PathBuf>,
}

/// Rows that can run alone.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Only {
    /// Row b: wasilock with lock.in-memory, lock+unlock over HTTP.
    InMemory,
    /// The API's TLS: keep-alive HTTPS, and a new connection per request, plain and TLS.
    Tls,
    /// CPU and memory idle and at a steady 1,000 req/s, in memory and embedded.
    Efficiency,
    /// Both transports (HTTP/1.1 and gRPC) under h2load.
    H2load,
}

impl Cli {
    /// The shape of every load run.
    fn settings(&self) -> Settings {
        Settings {
            connections: self.connections,
            warmup: self.warmup,
            duration: self.duration,
        }
    }
}

#[derive(Subcommand)]
enum Hidden {
    /// Serves the native baseline (started by the harness itself, with the flags the test
    /// kit gives every server; it serves HTTP only and keeps nothing on disk).
    #[command(hide = true)]
    ServeNative {
        #[arg(long)]
        dapr_http_port: u16,
        #[arg(long)]
        dapr_grpc_port: u16,
        #[arg(long)]
        log_level: String,
        #[arg(long)]
        data_dir: PathBuf,
        /// Accepted as wasilock accepts it; the native server serves no metrics.
        #[arg(long)]
        metrics_port: Option<u16>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Hidden::ServeNative { dapr_http_port, .. }) = cli.command {
        // A server under test: it keeps the CPU it was started on, and builds its runtime
        // as wasilock does.
        return tokio::runtime::Runtime::new()?.block_on(serve_native(dapr_http_port));
    }
    // Before any thread exists, so that every thread and child inherits the CPU.
    let pinning = machine::pin_load_generator();
    match &pinning {
        Pinning::Pinned { server, load } => {
            eprintln!("pinned: servers on CPU {server}, the load generator on CPU {load}")
        }
        Pinning::NotPinned(why) => eprintln!("NOT PINNED: {why}"),
    }
    // One core for the load generator: one thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    eprintln!("building wasilock and the fault-injection guest...");
    let binary = match &cli.binary {
        Some(binary) => binary.clone(),
        None => wasilock_testkit::host::build_binary().map_err(anyhow::Error::msg)?,
    };
    let fault_guest = wasilock_testkit::fault_injection_guest();
    let launcher = Launcher {
        binary,
        cpu: pinning.server_cpu(),
    };
    if let Some(only) = cli.only {
        return runtime.block_on(run_only(only, &cli, launcher, fault_guest));
    }
    let report = runtime.block_on(run(&cli, launcher, fault_guest, pinning))?;
    let markdown = report.markdown();
    println!("\n{markdown}");
    std::fs::write(&cli.output, &markdown)
        .with_context(|| format!("cannot write {}", cli.output.display()))?;
    eprintln!("wrote {}", cli.output.display());
    Ok(())
}

/// Runs only the rows of `only`, each for `--rounds` rounds where it has rounds, and says
/// their figures on stderr.
async fn run_only(
    only: Only,
    cli: &Cli,
    launcher: Launcher,
    fault_guest: PathBuf,
) -> anyhow::Result<()> {
    match only {
        Only::InMemory | Only::Tls => {
            let rounds = Rounds::new(launcher, cli.settings(), fault_guest, false);
            for round in 1..=cli.rounds {
                eprintln!("round {round} of {} (--only rows)...", cli.rounds);
                // The rows say their figures on stderr as they are measured.
                match only {
                    Only::Tls => rounds.run_tls().await?,
                    _ => rounds.run_in_memory().await?,
                };
            }
        }
        Only::H2load => {
            eprintln!("both transports under h2load...");
            h2load::measure(&launcher, &cli.settings())?;
        }
        Only::Efficiency => {
            eprintln!("efficiency rows only (idle, then paced)...");
            let usage = efficiency::measure(&launcher).await?;
            for target in efficiency::targets(&usage) {
                eprintln!("{}: {} [{:?}]", target.name, target.figure, target.pass);
            }
        }
    }
    Ok(())
}

/// The native baseline server on `port`: serves until killed.
async fn serve_native(port: u16) -> anyhow::Result<()> {
    let tenants = native::NativeService::new().await?.into_tenants();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    wasilock::api::http::serve(listener, tenants, stopped).await;
    Ok(())
}

/// The rounds, then the figures measured once.
async fn run(
    cli: &Cli,
    launcher: Launcher,
    fault_guest: PathBuf,
    pinning: Pinning,
) -> anyhow::Result<Report> {
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let settings = cli.settings();
    let redis_skipped = servers::redis_missing();
    let mut rounds = Rounds::new(launcher, settings, fault_guest, redis_skipped.is_none());
    let mut samples: Vec<(Row, Sample)> = Vec::new();
    let mut noisy_answered = Vec::new();
    for round in 1..=cli.rounds {
        eprintln!(
            "round {round} of {} ({:?} measured after {:?} of warm-up, per setup)...",
            cli.rounds, cli.duration, cli.warmup
        );
        let measured = rounds.run().await?;
        samples.extend(measured.samples);
        noisy_answered.push(measured.noisy_answered as f64);
    }
    let rows: Vec<(Row, Summary)> = Row::ALL
        .into_iter()
        .filter_map(|row| {
            let of_row: Vec<Sample> = samples
                .iter()
                .filter(|(r, _)| *r == row)
                .map(|(_, s)| s.clone())
                .collect();
            Some((row, Summary::of(&of_row)?))
        })
        .collect();

    let launcher = &rounds.launcher;
    let footprint = tenants::footprint(launcher).await?;
    let mut scale = Vec::new();
    if !cli.skip_scale {
        for store in [Store::InMemory, Store::Embedded] {
            scale.push(footprint::scale(launcher, store, cli.scale_locks, &settings).await?);
        }
    }
    let mut alpha2 = Vec::new();
    if !cli.skip_alpha2 {
        eprintln!("alpha2 figures...");
        alpha2.push(alpha2::measure(launcher, Store::InMemory, "lock.in-memory", &settings).await?);
        alpha2.push(alpha2::measure(launcher, Store::Embedded, "lock.embedded", &settings).await?);
        if redis_skipped.is_none() {
            let redis = launcher.redis(servers::Persistence::None)?;
            alpha2.push(
                alpha2::measure(launcher, Store::Redis(&redis), "lock.redis", &settings).await?,
            );
        }
    }
    let startup = footprint::startup(launcher).await?;
    eprintln!("efficiency figures (idle, then paced)...");
    let efficiency = efficiency::measure(launcher).await?;
    let etcd = etcd::figures(launcher, 200)?;
    eprintln!("both transports under h2load...");
    let h2load = match h2load::missing() {
        Some(why) => Err(why),
        None => Ok(h2load::measure(launcher, &settings)?),
    };
    let guest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/guest-build/wasm32-wasip2/guest/wasilock_guest.wasm");
    let guest_bytes = std::fs::metadata(&guest)
        .with_context(|| format!("no guest at {}", guest.display()))?
        .len();

    let ratios = targets::ratios(&rows);
    let mut targets = targets::targets(&targets::Figures {
        rows: &rows,
        footprint: &footprint,
        noisy_answered: stats::median(&noisy_answered).unwrap_or(0.0),
        scale: &scale,
        startup: &startup,
        guest_bytes,
    });
    targets.extend(efficiency::targets(&efficiency));
    Ok(Report {
        command,
        machine: machine::describe(),
        date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        pinning,
        rounds: cli.rounds as usize,
        settings,
        rows: rows.into_iter().map(|(row, s)| (row.label(), s)).collect(),
        redis_skipped,
        etcd,
        ratios,
        targets,
        scale,
        alpha2,
        h2load,
    })
}
