//! The servers under test, as child processes started by the shared test kit: `wasilock`
//! with a given store, the native baseline (this binary's `serve-native`), `redis-server`,
//! and `redis-benchmark` runs.

use anyhow::{Context, anyhow, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use wasilock_testkit::{Host, Options, component, resources};

/// A server process, ready on `/v1.0/healthz`, killed on drop.
pub struct Server {
    host: Host,
    /// `127.0.0.1:PORT` of the HTTP API.
    pub address: String,
    /// `127.0.0.1:PORT` of the gRPC API (`wasilock` only).
    pub grpc_address: String,
    _dirs: Vec<tempfile::TempDir>,
}

impl Server {
    /// Resident memory in bytes (`VmRSS`).
    pub fn rss_bytes(&self) -> u64 {
        self.host.rss_bytes()
    }

    /// Starts the server `options` describe, keeping `dirs` until it ends.
    pub fn start(options: Options, dirs: Vec<tempfile::TempDir>) -> anyhow::Result<Server> {
        let host = Host::try_start(options.log_level("warn")).map_err(|e| anyhow!("{e}"))?;
        Ok(Server {
            address: host.base.trim_start_matches("http://").to_string(),
            grpc_address: host.grpc.clone(),
            host,
            _dirs: dirs,
        })
    }
}

/// Which store a `wasilock` run uses.
#[derive(Clone, Copy)]
pub enum Store<'a> {
    /// `lock.in-memory`.
    InMemory,
    /// The default `lock.embedded` store.
    Embedded,
    /// `lock.redis` at this address.
    Redis(&'a str),
}

/// Starts `wasilock` (`binary`) with one store named `lockstore` and the extra `args`;
/// returns with its data directory.
pub fn start_wasilock(
    binary: &Path,
    store: Store,
    args: &[&str],
) -> anyhow::Result<(Server, PathBuf)> {
    let data = tempfile::tempdir()?;
    let data_path = data.path().to_path_buf();
    let mut options = Options::new()
        .program(binary)
        .args(args.iter().copied())
        .data_dir(&data_path);
    let yaml = match store {
        Store::Embedded => None,
        Store::InMemory => Some(component("lockstore", "lock.in-memory", &[])),
        Store::Redis(address) => Some(component(
            "lockstore",
            "lock.redis",
            &[("redisHost", address)],
        )),
    };
    let mut dirs = vec![data];
    if let Some(yaml) = yaml {
        let dir = resources(&[("lockstore.yaml", &yaml)]);
        options = options.args(["--resources-path", dir.path().to_str().context("a path")?]);
        dirs.push(dir);
    }
    Ok((Server::start(options, dirs)?, data_path))
}

/// Starts this binary's native baseline server.
pub fn start_native() -> anyhow::Result<Server> {
    let options = Options::new()
        .program(&std::env::current_exe()?)
        .args(["serve-native"]);
    Server::start(options, Vec::new())
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

/// Runs `redis-benchmark` with `SET <random key> v NX EX 30` at `connections`.
pub fn redis_benchmark(
    address: &str,
    connections: usize,
    requests: u64,
) -> anyhow::Result<RedisBenchmark> {
    let (host, port) = address.rsplit_once(':').context("host:port")?;
    let output = Command::new("redis-benchmark")
        .args(["-h", host, "-p", port, "-c", &connections.to_string()])
        .args(["-n", &requests.to_string(), "-r", "1000000", "--csv"])
        .args(["SET", "__rand_int__", "v", "NX", "EX", "30"])
        .output()
        .context("cannot run redis-benchmark")?;
    if !output.status.success() {
        bail!(
            "redis-benchmark failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse_redis_benchmark_csv(&String::from_utf8_lossy(&output.stdout))
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
