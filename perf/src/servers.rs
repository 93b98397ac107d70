//! The servers under test, as child processes started by the shared test kit, each on the
//! servers' CPU when the run is pinned: `wasilock` with a given store, the native baseline
//! (this binary's `serve-native`), `redis-server`; and `redis-benchmark` runs, which stay on
//! the load generator's CPU.

use crate::machine::{CpuMeter, CpuUse};
use anyhow::{Context, anyhow, bail};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use wasilock_testkit::certificates::{self, Authority};
use wasilock_testkit::etcd_cluster::EtcdCluster;
use wasilock_testkit::redis_server::RedisServer;
use wasilock_testkit::{Host, Options, component, resources};

/// A server process, ready on `/v1.0/healthz`, killed on drop.
pub struct Server {
    host: Host,
    /// Other processes serving with it (the `redis-server` of `lock.redis`, the members
    /// of `lock.etcd`).
    helpers: Vec<u32>,
    /// `127.0.0.1:PORT` of the HTTP API.
    pub address: String,
    /// `127.0.0.1:PORT` of the gRPC API (`wasilock` only).
    pub grpc_address: String,
    /// For a server that serves TLS: a client configuration that trusts its certificate.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Server {
    /// Resident memory in bytes (`VmRSS`).
    pub fn rss_bytes(&self) -> u64 {
        self.host.rss_bytes()
    }

    /// The processes whose CPU use is the server's: its own, and that of the processes
    /// serving with it (`redis-server` for `lock.redis`).
    pub fn pids(&self) -> Vec<u32> {
        [self.host.pid()]
            .into_iter()
            .chain(self.helpers.iter().copied())
            .collect()
    }
}

/// Which store a `wasilock` run uses.
#[derive(Clone, Copy)]
pub enum Store<'a> {
    /// `lock.in-memory`.
    InMemory,
    /// The default `lock.embedded` store.
    Embedded,
    /// `lock.redis` on this server.
    Redis(&'a RedisServer),
    /// `lock.etcd` on this cluster.
    Etcd(&'a EtcdCluster),
}

/// How Redis keeps its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Persistence {
    /// Nothing on disk (no snapshots, no append-only file).
    None,
    /// `--appendonly yes --appendfsync always`: every write is on disk before its answer.
    AppendFsyncAlways,
}

/// Starts every server of a run: the `wasilock` binary under test, and all of them on one
/// CPU when the run is pinned.
pub struct Launcher {
    /// The `wasilock` binary.
    pub binary: PathBuf,
    /// The CPU servers run on, if pinned.
    pub cpu: Option<usize>,
}

impl Launcher {
    /// Starts the server `options` describe (logging warnings only), keeping `dirs` until
    /// it ends.
    pub fn start(&self, options: Options, dirs: Vec<tempfile::TempDir>) -> anyhow::Result<Server> {
        let mut options = options.log_level("warn");
        if let Some(cpu) = self.cpu {
            options = options.cpu(cpu);
        }
        let host = Host::try_start(options).map_err(|e| anyhow!("{e}"))?;
        let address = host
            .base
            .split_once("://")
            .map_or(&host.base[..], |(_, a)| a);
        Ok(Server {
            address: address.to_string(),
            grpc_address: host.grpc.clone(),
            tls: None,
            host,
            helpers: Vec::new(),
            _dirs: dirs,
        })
    }

    /// Starts `wasilock` with one store named `lockstore` and the extra `args`; returns with
    /// its data directory.
    pub fn wasilock(&self, store: Store, args: &[&str]) -> anyhow::Result<(Server, PathBuf)> {
        let data = tempfile::tempdir()?;
        let data_path = data.path().to_path_buf();
        let mut options = Options::new()
            .program(&self.binary)
            .args(args.iter().copied())
            .data_dir(&data_path);
        let yaml = match store {
            Store::Embedded => None,
            Store::InMemory => Some(component("lockstore", "lock.in-memory", &[])),
            Store::Redis(redis) => Some(component(
                "lockstore",
                "lock.redis",
                &[("redisHost", &redis.address())],
            )),
            Store::Etcd(cluster) => Some(component(
                "lockstore",
                "lock.etcd",
                &[("endpoints", &cluster.endpoints())],
            )),
        };
        let mut dirs = vec![data];
        if let Some(yaml) = yaml {
            let dir = resources(&[("lockstore.yaml", &yaml)]);
            options = options.args(["--resources-path", dir.path().to_str().context("a path")?]);
            dirs.push(dir);
        }
        let mut server = self.start(options, dirs)?;
        match store {
            Store::Redis(redis) => server.helpers.extend(redis.pid()),
            Store::Etcd(cluster) => server.helpers.extend(cluster.pids()),
            Store::InMemory | Store::Embedded => {}
        }
        Ok((server, data_path))
    }

    /// Starts `wasilock` with a `lock.in-memory` store named `lockstore`, serving TLS
    /// (`--api-tls-cert`) with a certificate of an authority made for it by `openssl`.
    pub fn wasilock_tls(&self) -> anyhow::Result<Server> {
        if !certificates::openssl_available() {
            bail!("openssl is not installed: the TLS rows need it to make certificates");
        }
        let pki = tempfile::tempdir()?;
        let authority = Authority::create(pki.path(), "ca");
        let server = authority.issue("server", &["IP:127.0.0.1"], "serverAuth");
        let dir = resources(&[(
            "lockstore.yaml",
            &component("lockstore", "lock.in-memory", &[]),
        )]);
        let options = Options::new()
            .program(&self.binary)
            .tls()
            .args(["--resources-path", dir.path().to_str().context("a path")?])
            .args(["--api-tls-cert", server.cert.to_str().context("a path")?])
            .args(["--api-tls-key", server.key.to_str().context("a path")?]);
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_file(authority.cert())?)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut server = self.start(options, vec![pki, dir])?;
        server.tls = Some(Arc::new(config));
        Ok(server)
    }

    /// Starts `wasilock` with the resource files `files` (name, YAML).
    pub fn wasilock_with(&self, files: &[(&str, &str)]) -> anyhow::Result<Server> {
        let dir = resources(files);
        let options = Options::new()
            .program(&self.binary)
            .args(["--resources-path", dir.path().to_str().context("a path")?]);
        self.start(options, vec![dir])
    }

    /// Starts this binary's native baseline server.
    pub fn native(&self) -> anyhow::Result<Server> {
        let options = Options::new()
            .program(&std::env::current_exe()?)
            .args(["serve-native"]);
        self.start(options, Vec::new())
    }

    /// Starts a 3-member etcd cluster (on the servers' CPU when pinned); `None` when etcd
    /// is not installed.
    pub fn etcd(&self) -> Option<EtcdCluster> {
        EtcdCluster::start_pinned(self.cpu)
    }

    /// Starts `redis-server` keeping its data as `persistence` says, in a temporary
    /// directory.
    pub fn redis(&self, persistence: Persistence) -> anyhow::Result<RedisServer> {
        let args: &[&str] = match persistence {
            Persistence::None => &[],
            Persistence::AppendFsyncAlways => &["--appendonly", "yes", "--appendfsync", "always"],
        };
        let server = match self.cpu {
            Some(cpu) => RedisServer::start_pinned(args, cpu),
            None => RedisServer::start_with(args),
        };
        server.context("redis-server did not start")
    }
}

/// What `redis-benchmark` reported for one command.
#[derive(Debug, PartialEq)]
pub struct RedisBenchmark {
    /// Commands per second.
    pub rate: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
}

/// Runs `redis-benchmark` with `SET <random key> v NX EX 30`, `requests` times over
/// `connections`, against `redis`; returns what it reported and the CPU use of `redis` and
/// of `redis-benchmark` meanwhile.
pub fn redis_benchmark(
    redis: &RedisServer,
    connections: usize,
    requests: u64,
) -> anyhow::Result<(RedisBenchmark, CpuUse)> {
    let meter = CpuMeter::start(redis.pid().into_iter().collect());
    let output = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &redis.port.to_string()])
        .args(["-c", &connections.to_string()])
        .args(["-n", &requests.to_string(), "-r", "1000000", "--csv"])
        .args(["SET", "__rand_int__", "v", "NX", "EX", "30"])
        .output()
        .context("cannot run redis-benchmark")?;
    let cpu = meter.stop();
    if !output.status.success() {
        bail!(
            "redis-benchmark failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok((
        parse_redis_benchmark_csv(&String::from_utf8_lossy(&output.stdout))?,
        cpu,
    ))
}

/// Reads `redis-benchmark --csv`: a header naming the columns, then one row.
pub fn parse_redis_benchmark_csv(csv: &str) -> anyhow::Result<RedisBenchmark> {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let fields = |line: &str| -> Vec<String> {
        line.split("\",\"")
            .map(|f| f.trim_matches('"').to_string())
            .collect()
    };
    let header = fields(lines.next().context("empty redis-benchmark output")?);
    let row = fields(
        lines
            .next()
            .context("no result row in redis-benchmark output")?,
    );
    let column = |name: &str| -> anyhow::Result<f64> {
        let i = header
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("no {name} column in redis-benchmark output"))?;
        row.get(i)
            .context("a short row")?
            .parse()
            .with_context(|| format!("{name} is not a number"))
    };
    Ok(RedisBenchmark {
        rate: column("rps")?,
        p50_ms: column("p50_latency_ms")?,
        p99_ms: column("p99_latency_ms")?,
    })
}

/// Why the Redis rows cannot run, if they cannot: they need `redis-server` and
/// `redis-benchmark`.
pub fn redis_missing() -> Option<String> {
    ["redis-server", "redis-benchmark"]
        .into_iter()
        .find(|program| !wasilock_testkit::available(program))
        .map(|program| format!("{program} is not installed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_redis_benchmark_csv() {
        let csv = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\"SET __rand_int__ v NX EX 30\",\"81234.56\",\"0.350\",\"0.080\",\"0.327\",\"0.551\",\"0.871\",\"3.215\"\n";
        assert_eq!(
            parse_redis_benchmark_csv(csv).unwrap(),
            RedisBenchmark {
                rate: 81234.56,
                p50_ms: 0.327,
                p99_ms: 0.871
            }
        );
        assert!(parse_redis_benchmark_csv("").is_err());
        assert!(parse_redis_benchmark_csv("\"test\",\"rps\"\n\"x\",\"fast\"\n").is_err());
    }
}
