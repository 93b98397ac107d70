//! `wasilock-perf`: the benchmark harness. In one run, on loopback, with one load generator
//! and one concurrency, it measures lock+unlock pairs against the native baseline, wasilock
//! with the in-memory store (through each HTTP export), the embedded and the Redis stores, and
//! `redis-benchmark`; 1,000 tenants in one process and a noisy neighbour; then latency with
//! many live locks, memory per lock, start-up time and the guest's size. It prints a report
//! and writes it to `BENCHMARKS.md`.

mod load;
mod native;
mod report;
mod servers;
mod tenants;

use anyhow::Context;
use clap::{Parser, Subcommand};
use load::Protocol;
use report::{Report, Row, Scale};
use servers::Store;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wasilock_testkit::redis_server::RedisServer;

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

    /// Live locks of the scale runs.
    #[arg(long, default_value_t = 1_000_000)]
    scale_locks: u64,

    /// Leaves out the scale runs (they take minutes).
    #[arg(long)]
    skip_scale: bool,

    /// Where the report goes.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../BENCHMARKS.md"))]
    output: PathBuf,
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
    },
}

/// Live locks of the small scale run.
const SMALL_SCALE: u64 = 1_000;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    if let Some(Hidden::ServeNative { dapr_http_port, .. }) = cli.command {
        return runtime.block_on(serve_native(dapr_http_port));
    }
    eprintln!("building wasilock...");
    let binary = wasilock_testkit::host::build_binary().map_err(anyhow::Error::msg)?;
    let report = runtime.block_on(run(&cli, &binary))?;
    let date = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let markdown = report.markdown(&report::machine(), &date);
    println!("\n{markdown}");
    std::fs::write(&cli.output, &markdown)
        .with_context(|| format!("cannot write {}", cli.output.display()))?;
    eprintln!("wrote {}", cli.output.display());
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

async fn measure(cli: &Cli, name: &str, address: &str) -> anyhow::Result<load::Measured> {
    measure_over(cli, name, Protocol::Http, address).await
}

async fn measure_over(
    cli: &Cli,
    name: &str,
    protocol: Protocol,
    address: &str,
) -> anyhow::Result<load::Measured> {
    eprintln!(
        "measuring {name} ({:?} + {:?} warm-up)...",
        cli.duration, cli.warmup
    );
    let measured = load::lock_unlock_pairs(
        protocol,
        address,
        &[],
        "lockstore",
        cli.connections,
        cli.warmup,
        cli.duration,
    )
    .await?;
    eprintln!(
        "  {:.0} req/s, p99 {:.2} ms, {} errors",
        measured.rate(),
        measured.quantile_ms(0.99),
        measured.errors
    );
    Ok(measured)
}

async fn run(cli: &Cli, binary: &Path) -> anyhow::Result<Report> {
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let mut rows = Vec::new();

    let native = servers::start_native()?;
    let a = measure(cli, "native baseline", &native.address).await?;
    drop(native);
    let (memory, _) = servers::start_wasilock(binary, Store::InMemory, &[])?;
    let b = measure(cli, "wasilock, in-memory", &memory.address).await?;
    let b_grpc = measure_over(
        cli,
        "wasilock, in-memory, gRPC",
        Protocol::Grpc,
        &memory.grpc_address,
    )
    .await?;
    drop(memory);
    let wasi_http = ["--http-export", "wasi-http"];
    let (memory, _) = servers::start_wasilock(binary, Store::InMemory, &wasi_http)?;
    let b_wasi_http = measure(cli, "wasilock, in-memory, wasi:http", &memory.address).await?;
    drop(memory);
    let (embedded, _) = servers::start_wasilock(binary, Store::Embedded, &[])?;
    let c = measure(cli, "wasilock, embedded", &embedded.address).await?;
    drop(embedded);
    rows.push(Row::measured("a. native baseline (in-memory, no wasm)", &a));
    rows.push(Row::measured("b. wasilock, lock.in-memory", &b));
    rows.push(Row::measured(
        "b'. b through wasi:http/incoming-handler",
        &b_wasi_http,
    ));
    rows.push(Row::measured(
        "b\". b over gRPC (TryLockAlpha1/UnlockAlpha1)",
        &b_grpc,
    ));
    rows.push(Row::measured("c. wasilock, lock.embedded (durable)", &c));
    let mut ratios = vec![
        (
            "b/a (wasm / native)".to_string(),
            b.rate() / a.rate(),
            Some(0.60),
        ),
        (
            "b'/a (wasi:http export / native)".to_string(),
            b_wasi_http.rate() / a.rate(),
            None,
        ),
        (
            "b\"/b (gRPC / HTTP, same server)".to_string(),
            b_grpc.rate() / b.rate(),
            None,
        ),
        (
            "c/b (durable / in-memory)".to_string(),
            c.rate() / b.rate(),
            Some(0.50),
        ),
    ];

    let redis_skipped = if wasilock_testkit::available("redis-server")
        && wasilock_testkit::available("redis-benchmark")
    {
        let redis = RedisServer::start().context("redis-server did not start")?;
        let (wasilock, _) = servers::start_wasilock(binary, Store::Redis(&redis.address()), &[])?;
        let d = measure(cli, "wasilock, lock.redis", &wasilock.address).await?;
        drop(wasilock);
        eprintln!(
            "running redis-benchmark SET NX EX at {} connections...",
            cli.connections
        );
        let requests = (d.rate() * 4.0 * cli.duration.as_secs_f64()).max(100_000.0) as u64;
        let baseline = servers::redis_benchmark(&redis.address(), cli.connections, requests)?;
        rows.push(Row::measured("d. wasilock, lock.redis", &d));
        rows.push(Row::redis("redis-benchmark SET key v NX EX 30", &baseline));
        ratios.push((
            "d/redis-benchmark".to_string(),
            d.rate() / baseline.rate,
            None,
        ));
        None
    } else {
        Some("redis-server or redis-benchmark is not installed".to_string())
    };

    let tenancy = tenants::tenancy(binary, cli.connections, cli.warmup, cli.duration).await?;
    let neighbour =
        tenants::noisy_neighbour(binary, cli.connections, cli.warmup, cli.duration).await?;

    let mut scale = Vec::new();
    if !cli.skip_scale {
        for store in [Store::InMemory, Store::Embedded] {
            scale.push(scale_run(cli, binary, store).await?);
        }
    }
    let startup = startup_time(binary).await?;
    let guest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/guest-build/wasm32-wasip2/guest/wasilock_guest.wasm");
    let guest_bytes = std::fs::metadata(&guest)
        .with_context(|| format!("no guest at {}", guest.display()))?
        .len();
    Ok(Report {
        command,
        connections: cli.connections,
        duration: cli.duration,
        rows,
        ratios,
        scale,
        startup,
        guest_bytes,
        redis_skipped,
        tenancy,
        neighbour,
    })
}

/// Latency with 1k and with `--scale-locks` live locks, and memory per lock.
async fn scale_run(cli: &Cli, binary: &Path, store: Store<'_>) -> anyhow::Result<Scale> {
    let (name, key_and_value) = match store {
        Store::InMemory => (
            "lock.in-memory",
            "lock||fill-0000000".len() + "filler".len(),
        ),
        _ => ("lock.embedded", 0),
    };
    let (server, data_dir) = servers::start_wasilock(binary, store, &[])?;
    let window = (
        Duration::from_secs(1),
        cli.duration.min(Duration::from_secs(5)),
    );
    let (small, rss_small) = fill_then_measure(cli, &server, name, 0, SMALL_SCALE, window).await?;
    let (large, rss_large) =
        fill_then_measure(cli, &server, name, SMALL_SCALE, cli.scale_locks, window).await?;
    let added = (cli.scale_locks - SMALL_SCALE) as f64;
    let rss_per_lock = rss_large.saturating_sub(rss_small) as f64 / added;
    let extra = match store {
        Store::InMemory => (
            "overhead beyond key+value".to_string(),
            rss_per_lock - key_and_value as f64,
        ),
        _ => {
            let disk: u64 = std::fs::read_dir(&data_dir)?
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum();
            (
                "on disk per lock".to_string(),
                disk as f64 / cli.scale_locks as f64,
            )
        }
    };
    Ok(Scale {
        store: name.into(),
        locks: cli.scale_locks,
        p50_small: small.quantile_ms(0.5),
        p50_large: large.quantile_ms(0.5),
        rss_per_lock,
        extra,
    })
}

/// Takes locks `from..to` on `server`, then measures lock+unlock latency (`window`: warm-up,
/// measured) and reads the resident memory.
async fn fill_then_measure(
    cli: &Cli,
    server: &servers::Server,
    name: &str,
    from: u64,
    to: u64,
    window: (Duration, Duration),
) -> anyhow::Result<(load::Measured, u64)> {
    eprintln!("scale, {name}: filling up to {to} locks...");
    load::fill(&server.address, "lockstore", cli.connections, from, to).await?;
    let (warmup, measured) = window;
    let latency = load::lock_unlock_pairs(
        Protocol::Http,
        &server.address,
        &[],
        "lockstore",
        cli.connections,
        warmup,
        measured,
    )
    .await?;
    Ok((latency, server.rss_bytes()))
}

/// Spawn to first granted TryLock, best of three.
async fn startup_time(binary: &Path) -> anyhow::Result<Duration> {
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let (server, _) = servers::start_wasilock(binary, Store::InMemory, &[])?;
        anyhow::ensure!(
            load::try_lock_once(&server.address, "lockstore").await?,
            "the first TryLock was refused"
        );
        best = best.min(started.elapsed());
    }
    Ok(best)
}
