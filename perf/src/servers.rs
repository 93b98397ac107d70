//! The servers under test, as child processes: `wasilock` with a given store, the native
//! baseline (this binary's `serve-native`), `redis-server`, and `redis-benchmark` runs.

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A server process, killed on drop.
pub struct Server {
    child: Child,
    /// `127.0.0.1:PORT` of the HTTP API.
    pub address: String,
    /// `127.0.0.1:PORT` of the gRPC API, for `wasilock`.
    pub grpc_address: Option<String>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Server {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory in bytes (`VmRSS`).
    pub fn rss_bytes(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        parse_vm_rss(&status).context("no VmRSS in /proc/PID/status")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmRSS:  1234 kB` in bytes.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
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

/// Starts `wasilock` with one store named `lockstore` and the extra `args`; returns with its
/// data directory.
pub fn start_wasilock(
    binary: &Path,
    store: Store,
    args: &[&str],
) -> anyhow::Result<(Server, PathBuf)> {
    let data = tempfile::tempdir()?;
    let resources = tempfile::tempdir()?;
    let mut command = Command::new(binary);
    command
        .args(["--dapr-http-port", "0", "--dapr-grpc-port", "0"])
        .args(["--log-level", "warn"])
        .args(args)
        .arg("--data-dir")
        .arg(data.path());
    let yaml = match store {
        Store::Embedded => None,
        Store::InMemory => Some("type: lock.in-memory\n  metadata: []".to_string()),
        Store::Redis(address) => Some(format!(
            "type: lock.redis\n  metadata:\n  - name: redisHost\n    value: \"{address}\""
        )),
    };
    if let Some(spec) = yaml {
        let document = format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: lockstore\nspec:\n  version: v1\n  {spec}\n"
        );
        std::fs::write(resources.path().join("lockstore.yaml"), document)?;
        command.arg("--resources-path").arg(resources.path());
    }
    let data_path = data.path().to_path_buf();
    let server = spawn_listening(command, true, vec![data, resources])?;
    Ok((server, data_path))
}

/// Starts this binary's native baseline server.
pub fn start_native() -> anyhow::Result<Server> {
    let mut command = Command::new(std::env::current_exe()?);
    command.args(["serve-native"]);
    spawn_listening(command, false, Vec::new())
}

/// Spawns `command` and waits for its `listening on http://ADDRESS` line, and then for its
/// `gRPC API on ADDRESS` line when it serves `grpc`.
fn spawn_listening(
    mut command: Command,
    grpc: bool,
    dirs: Vec<tempfile::TempDir>,
) -> anyhow::Result<Server> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {command:?}"))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        let mut http = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let line = line.trim();
            if let Some(address) = line.strip_prefix("listening on http://") {
                http.get_or_insert_with(|| address.to_string());
            }
            let grpc_address = line.strip_prefix("gRPC API on ").map(str::to_string);
            if let Some(address) = &http
                && (grpc_address.is_some() || !grpc)
                && let Some(tx) = tx.take()
            {
                let _ = tx.send((address.clone(), grpc_address));
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok((address, grpc_address)) => Ok(Server {
            child,
            address,
            grpc_address,
            _dirs: dirs,
        }),
        Err(_) => {
            let _ = child.kill();
            bail!("{command:?} did not print its address")
        }
    }
}

/// Whether a program can be run.
pub fn available(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts `redis-server` on a free loopback port, without persistence.
pub fn start_redis() -> anyhow::Result<Server> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let dir = tempfile::tempdir()?;
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--dir"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .spawn()
        .context("cannot start redis-server")?;
    let address = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&address).is_err() {
        if Instant::now() > deadline {
            bail!("redis-server did not start on {address}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Server {
        child,
        address,
        grpc_address: None,
        _dirs: vec![dir],
    })
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

    #[test]
    fn reads_resident_memory() {
        let status = "Name:\twasilock\nVmPeak:\t  9000 kB\nVmRSS:\t   1234 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss(status), Some(1234 * 1024));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
    }
}
