//! The throughput setups and one round of them: every setup once, in [`Row::ALL`]'s order,
//! each on a server started for it, so that drift over a run hits every setup alike.

use crate::etcd::raw_txn_pairs;
use crate::load::{self, Protocol, Settings};
use crate::servers::{Launcher, Persistence, Server, Store, redis_benchmark};
use crate::stats::Sample;
use crate::tenants::{self, FLOOD_CONNECTIONS, SPREAD, TENANTS};
use anyhow::Context;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;
use wasilock_testkit::redis_server::RedisServer;

/// One row of the throughput table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Row {
    /// a. The guest's rules compiled natively behind the host's HTTP server.
    Native,
    /// a¹. a with one client: one connection, no queueing.
    NativeOneClient,
    /// b. wasilock with `lock.in-memory`.
    InMemory,
    /// b¹. b with one client.
    InMemoryOneClient,
    /// b'. b through the `wasi:http/incoming-handler` export.
    WasiHttp,
    /// b". b over gRPC.
    Grpc,
    /// b⁰. b with metrics off (b has them on, the default).
    MetricsOff,
    /// bᵗ⁰. b with tracing configured at sampling rate 0.
    TracingRate0,
    /// bᵗ¹. b with every request traced (sampling rate 1).
    TracingRate1,
    /// c. wasilock with `lock.embedded`.
    Embedded,
    /// d. wasilock with `lock.redis`.
    Redis,
    /// d'. d on a Redis that fsyncs every write.
    RedisAof,
    /// `redis-benchmark` on the Redis of d.
    RedisBenchmark,
    /// `redis-benchmark` on the Redis of d'.
    RedisBenchmarkAof,
    /// h. wasilock with `lock.etcd` on a 3-member cluster.
    Etcd,
    /// h'. A raw etcd client sending h's transactions.
    EtcdRaw,
    /// e. [`TENANTS`] tenants, load on one.
    TenantsOne,
    /// e'. [`TENANTS`] tenants, load spread over [`SPREAD`].
    TenantsSpread,
    /// f. The calm tenant alone.
    CalmAlone,
    /// f'. The calm tenant beside a noisy one.
    CalmBeside,
    /// g. A call wasilock does not serve, sent to its upstream directly (the native
    /// baseline, which answers it at once).
    UpstreamDirect,
    /// g'. g through wasilock with `--dapr-upstream-http` (forwarded).
    Forwarded,
    /// t. b over TLS (HTTPS), keep-alive connections.
    Tls,
    /// t'. b on a new plain connection per request.
    PlainPerRequest,
    /// t". b over TLS on a new connection per request: a full handshake each.
    TlsPerRequest,
}

impl Row {
    /// Every row, in the order of each round and of the table.
    pub const ALL: [Row; 25] = [
        Row::Native,
        Row::NativeOneClient,
        Row::InMemory,
        Row::InMemoryOneClient,
        Row::WasiHttp,
        Row::Grpc,
        Row::MetricsOff,
        Row::TracingRate0,
        Row::TracingRate1,
        Row::Embedded,
        Row::Redis,
        Row::RedisAof,
        Row::RedisBenchmark,
        Row::RedisBenchmarkAof,
        Row::Etcd,
        Row::EtcdRaw,
        Row::TenantsOne,
        Row::TenantsSpread,
        Row::CalmAlone,
        Row::CalmBeside,
        Row::UpstreamDirect,
        Row::Forwarded,
        Row::Tls,
        Row::PlainPerRequest,
        Row::TlsPerRequest,
    ];

    /// The row's name in the report.
    pub fn label(self) -> String {
        match self {
            Row::Native => "a. native baseline (in-memory, no wasm)".into(),
            Row::NativeOneClient => "a¹. a with one client (one connection, no queueing)".into(),
            Row::InMemory => "b. wasilock, lock.in-memory".into(),
            Row::InMemoryOneClient => "b¹. b with one client".into(),
            Row::WasiHttp => "b'. b through wasi:http/incoming-handler".into(),
            Row::Grpc => "b\". b over gRPC (TryLockAlpha1/UnlockAlpha1)".into(),
            Row::MetricsOff => "b⁰. b with --enable-metrics=false".into(),
            Row::TracingRate0 => "bᵗ⁰. b with tracing at samplingRate 0".into(),
            Row::TracingRate1 => {
                "bᵗ¹. b with tracing at samplingRate 1 (OTLP/gRPC to a port nobody serves)".into()
            }
            Row::Embedded => "c. wasilock, lock.embedded (durable)".into(),
            Row::Redis => "d. wasilock, lock.redis".into(),
            Row::RedisAof => "d'. wasilock, lock.redis on Redis with appendfsync always".into(),
            Row::RedisBenchmark => "redis-benchmark SET key v NX EX 30".into(),
            Row::RedisBenchmarkAof => {
                "redis-benchmark SET key v NX EX 30, Redis with appendfsync always".into()
            }
            Row::Etcd => "h. wasilock, lock.etcd (3 etcd members on this machine)".into(),
            Row::EtcdRaw => "h'. raw etcd client, h's acquire and release transactions".into(),
            Row::TenantsOne => format!("e. {TENANTS} tenants, load on one"),
            Row::TenantsSpread => format!("e'. {TENANTS} tenants, load spread over {SPREAD}"),
            Row::CalmAlone => "f. calm tenant alone".into(),
            Row::CalmBeside => format!(
                "f'. calm tenant beside a tenant flooding a looping component ({FLOOD_CONNECTIONS} connections)"
            ),
            Row::UpstreamDirect => {
                "g. GET /v1.0/state/… on the upstream directly (a: its 404)".into()
            }
            Row::Forwarded => "g'. g through wasilock --dapr-upstream-http (forwarded)".into(),
            Row::Tls => "t. b over TLS 1.3 (HTTPS, keep-alive)".into(),
            Row::PlainPerRequest => "t'. b, a new plain connection per request".into(),
            Row::TlsPerRequest => {
                "t\". b over TLS 1.3, a new connection (full handshake) per request".into()
            }
        }
    }
}

/// What one round measured.
pub struct Round {
    /// Each row's figures, in [`Row::ALL`]'s order (without the Redis rows when skipped).
    pub samples: Vec<(Row, Sample)>,
    /// Requests the noisy tenant had answered during f'.
    pub noisy_answered: u64,
}

/// The first `redis-benchmark` run on a kind of Redis, to learn its rate.
const PROBE_REQUESTS: u64 = 1_000;
/// The fewest requests of a `redis-benchmark` run.
const MIN_REQUESTS: u64 = 1_000;

/// Runs rounds, and keeps what one round tells the next.
pub struct Rounds {
    /// Starts the servers.
    pub launcher: Launcher,
    /// The shape of every load run.
    settings: Settings,
    /// The guest with its `fault-injection` feature, for the noisy neighbour.
    fault_guest: PathBuf,
    /// Whether the Redis rows run.
    redis: bool,
    /// The rate `redis-benchmark` last reached on each kind of Redis, to size its runs to the
    /// warm-up and the window of the other rows.
    redis_rates: HashMap<Persistence, f64>,
}

impl Rounds {
    /// Rounds of every setup (the Redis ones only when `redis`).
    pub fn new(launcher: Launcher, settings: Settings, fault_guest: PathBuf, redis: bool) -> Self {
        Rounds {
            launcher,
            settings,
            fault_guest,
            redis,
            redis_rates: HashMap::new(),
        }
    }

    /// Runs every setup once.
    pub async fn run(&mut self) -> anyhow::Result<Round> {
        let launcher = &self.launcher;
        let mut samples = Vec::new();
        let native = launcher.native()?;
        samples.push(self.measure(Row::Native, &native, Protocol::Http).await?);
        samples.push(self.one_client(Row::NativeOneClient, &native).await?);
        let direct = self
            .measure(Row::UpstreamDirect, &native, Protocol::Forwarded)
            .await?;
        let upstream = format!("http://{}", native.address);
        let (forwarding, _) = launcher.wasilock(
            Store::InMemory,
            &["--dapr-upstream-http", upstream.as_str()],
        )?;
        let forwarded = self
            .measure(Row::Forwarded, &forwarding, Protocol::Forwarded)
            .await?;
        drop((forwarding, native));
        for (row, args, protocol) in [
            (Row::InMemory, &[][..], Protocol::Http),
            (
                Row::WasiHttp,
                &["--http-export", "wasi-http"][..],
                Protocol::Http,
            ),
            (Row::Grpc, &[][..], Protocol::Grpc),
            (
                Row::MetricsOff,
                &["--enable-metrics=false"][..],
                Protocol::Http,
            ),
        ] {
            let (server, _) = launcher.wasilock(Store::InMemory, args)?;
            samples.push(self.measure(row, &server, protocol).await?);
            if row == Row::InMemory {
                samples.push(self.one_client(Row::InMemoryOneClient, &server).await?);
            }
        }
        for (row, rate) in [(Row::TracingRate0, "0"), (Row::TracingRate1, "1")] {
            let config = tracing_configuration(rate)?;
            let file = config.path().join("tracing.yaml");
            let args = ["--config", file.to_str().context("a path")?];
            let (server, _) = launcher.wasilock(Store::InMemory, &args)?;
            samples.push(self.measure(row, &server, Protocol::Http).await?);
        }
        let (embedded, _) = launcher.wasilock(Store::Embedded, &[])?;
        samples.push(
            self.measure(Row::Embedded, &embedded, Protocol::Http)
                .await?,
        );
        drop(embedded);

        if self.redis {
            let plain = launcher.redis(Persistence::None)?;
            let aof = launcher.redis(Persistence::AppendFsyncAlways)?;
            for (row, redis) in [(Row::Redis, &plain), (Row::RedisAof, &aof)] {
                let (server, _) = launcher.wasilock(Store::Redis(redis), &[])?;
                samples.push(self.measure(row, &server, Protocol::Http).await?);
            }
            for (row, redis, persistence) in [
                (Row::RedisBenchmark, &plain, Persistence::None),
                (Row::RedisBenchmarkAof, &aof, Persistence::AppendFsyncAlways),
            ] {
                let rate = self.redis_rates.get(&persistence).copied();
                let sample = redis_benchmark_row(redis, rate, &self.settings)?;
                self.redis_rates.insert(persistence, sample.rate);
                samples.push(progress(row, sample));
            }
        }

        if let Some(cluster) = launcher.etcd() {
            let (server, _) = launcher.wasilock(Store::Etcd(&cluster), &[])?;
            samples.push(self.measure(Row::Etcd, &server, Protocol::Http).await?);
            drop(server);
            let raw = raw_txn_pairs(&cluster, &self.settings).await?;
            samples.push(progress(Row::EtcdRaw, raw.sample()));
        }

        let spread = tenants::spread_load(launcher, &self.settings).await?;
        samples.push(progress(Row::TenantsOne, spread.one.sample()));
        samples.push(progress(Row::TenantsSpread, spread.spread.sample()));
        let neighbour =
            tenants::noisy_neighbour(launcher, &self.settings, &self.fault_guest).await?;
        samples.push(progress(Row::CalmAlone, neighbour.alone.sample()));
        samples.push(progress(Row::CalmBeside, neighbour.beside.sample()));
        samples.extend([direct, forwarded]);
        samples.extend(self.run_tls().await?);
        Ok(Round {
            samples,
            noisy_answered: neighbour.noisy_answered,
        })
    }

    /// Runs the setups of the API's TLS (t, t', t") once; `--only tls` runs them alone.
    pub async fn run_tls(&self) -> anyhow::Result<Vec<(Row, Sample)>> {
        let launcher = &self.launcher;
        let tls = launcher.wasilock_tls()?;
        let (plain, _) = launcher.wasilock(Store::InMemory, &[])?;
        Ok(vec![
            self.measure(Row::Tls, &tls, Protocol::Http).await?,
            self.measure(Row::PlainPerRequest, &plain, Protocol::HttpPerRequest)
                .await?,
            self.measure(Row::TlsPerRequest, &tls, Protocol::HttpPerRequest)
                .await?,
        ])
    }

    /// Runs row b alone once; `--only in-memory` runs it, to compare two builds.
    pub async fn run_in_memory(&self) -> anyhow::Result<Vec<(Row, Sample)>> {
        let (server, _) = self.launcher.wasilock(Store::InMemory, &[])?;
        Ok(vec![
            self.measure(Row::InMemory, &server, Protocol::Http).await?,
        ])
    }

    /// Measures lock+unlock pairs on `server` for `row`.
    async fn measure(
        &self,
        row: Row,
        server: &Server,
        protocol: Protocol,
    ) -> anyhow::Result<(Row, Sample)> {
        measure_with(row, server, protocol, &self.settings).await
    }

    /// Measures lock+unlock pairs over HTTP on `server` for `row` from one connection.
    async fn one_client(&self, row: Row, server: &Server) -> anyhow::Result<(Row, Sample)> {
        let settings = Settings {
            connections: 1,
            ..self.settings
        };
        measure_with(row, server, Protocol::Http, &settings).await
    }
}

/// Measures lock+unlock pairs on `server` for `row`, shaped by `settings`.
async fn measure_with(
    row: Row,
    server: &Server,
    protocol: Protocol,
    settings: &Settings,
) -> anyhow::Result<(Row, Sample)> {
    let measured = load::lock_unlock_pairs(server, protocol, &[], settings).await?;
    Ok(progress(row, measured.sample()))
}

/// A directory with `tracing.yaml`, a Dapr `Configuration` tracing at `rate` to an OTLP
/// receiver on a loopback port nobody serves (the spans are made and batched, their export
/// fails at once).
fn tracing_configuration(rate: &str) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let unserved = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    std::fs::write(
        dir.path().join("tracing.yaml"),
        format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: tracing\nspec:\n  tracing:\n    samplingRate: \"{rate}\"\n    otel:\n      endpointAddress: \"{unserved}\"\n      protocol: grpc\n      isSecure: false\n"
        ),
    )?;
    Ok(dir)
}

/// `redis-benchmark` on `redis` for about the warm-up (unmeasured), then for about the
/// measured window, each run sized by `rate`, the rate last seen on this kind of Redis
/// (first found with a short run).
fn redis_benchmark_row(
    redis: &RedisServer,
    rate: Option<f64>,
    settings: &Settings,
) -> anyhow::Result<Sample> {
    let connections = settings.connections;
    let rate = match rate {
        Some(rate) => rate,
        None => redis_benchmark(redis, connections, PROBE_REQUESTS)?.0.rate,
    };
    let requests = |window: Duration| ((rate * window.as_secs_f64()) as u64).max(MIN_REQUESTS);
    redis_benchmark(redis, connections, requests(settings.warmup))?;
    let (measured, cpu) = redis_benchmark(redis, connections, requests(settings.duration))?;
    Ok(Sample {
        rate: measured.rate,
        p50: measured.p50_ms,
        p99: measured.p99_ms,
        p999: None,
        errors: 0,
        server_cpu: cpu.server,
        load_cpu: cpu.load,
    })
}

/// Says on stderr what `row` measured, and passes it on.
fn progress(row: Row, sample: Sample) -> (Row, Sample) {
    let percent =
        |share: Option<f64>| share.map_or("n/a".into(), |s| format!("{:.0} %", s * 100.0));
    eprintln!(
        "  {}: {:.0} req/s, p99 {:.2} ms, {} errors, server CPU {}, load CPU {}",
        row.label(),
        sample.rate,
        sample.p99,
        sample.errors,
        percent(sample.server_cpu),
        percent(sample.load_cpu)
    );
    (row, sample)
}
