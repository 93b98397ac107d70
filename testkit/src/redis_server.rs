//! A throwaway `redis-server` on a free loopback port, for tests.
//!
//! Shared by the host's store contract tests and the end-to-end tests. When `redis-server`
//! is not installed, it is installed from Debian's packages if this user can (root with
//! `apt-get`); failing that, [`RedisServer::start`] fails the test under `CI=true` and
//! otherwise returns `None` after saying so on stderr.
//!
//! A server can be a replica of another ([`RedisServer::start_replica_of`]), serve TLS only
//! ([`RedisServer::start_tls`], with certificates from [`TlsFiles`], made by `openssl`), and
//! be watched by a [`RedisSentinel`] (`redis-server --sentinel`, in the same package). For
//! benchmarks, a server can run on one CPU only ([`RedisServer::start_pinned`]).

use crate::available;
use crate::certificates::{self, Authority};
use crate::host::pin_command;
use crate::ports::{free_port, wait_for_port};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// How long a server or Sentinel may take to listen.
const SERVER_PATIENCE: Duration = Duration::from_secs(10);

/// A running `redis-server`, stopped on drop.
pub struct RedisServer {
    child: Option<Child>,
    /// The loopback port it listens on.
    pub port: u16,
    dir: PathBuf,
    extra_args: Vec<String>,
    tls: Option<PathBuf>,
    cpu: Option<usize>,
}

impl RedisServer {
    /// Starts a server on a free port; see the module docs for a missing `redis-server`.
    pub fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    /// Starts a node of a Redis cluster (`cluster-enabled`), not yet joined to others.
    pub fn start_cluster_node() -> Option<Self> {
        Self::start_with(&["--cluster-enabled", "yes"])
    }

    /// Starts a server with extra `redis-server` arguments, which override the defaults (no
    /// snapshots, no append-only file); e.g. `["--appendonly", "yes", "--appendfsync",
    /// "always"]` keeps every acknowledged write across [`RedisServer::restart`].
    pub fn start_with(extra_args: &[&str]) -> Option<Self> {
        Self::start_configured(extra_args, None, None)
    }

    /// Starts a server as [`RedisServer::start_with`] does, running on `cpu` only (its
    /// background threads too), also after a [`RedisServer::restart`].
    pub fn start_pinned(extra_args: &[&str], cpu: usize) -> Option<Self> {
        Self::start_configured(extra_args, None, Some(cpu))
    }

    /// Starts a replica of `master` (`--replicaof`), over TLS when `master` serves TLS.
    pub fn start_replica_of(master: &RedisServer) -> Option<Self> {
        Self::start_replica_with(master, &[])
    }

    /// Starts a replica of `master` with extra arguments (such as `--masterauth`).
    pub fn start_replica_with(master: &RedisServer, extra_args: &[&str]) -> Option<Self> {
        let port = master.port.to_string();
        let args = [&["--replicaof", "127.0.0.1", &port][..], extra_args].concat();
        Self::start_configured(&args, master.tls.clone(), None)
    }

    /// Starts a server that speaks TLS only, with the certificates of `tls`; clients must
    /// present a certificate of its authority (`tls-auth-clients yes`).
    pub fn start_tls(tls: &TlsFiles) -> Option<Self> {
        Self::start_configured(&[], Some(tls.dir().to_path_buf()), None)
    }

    /// Starts a server; `tls` is a directory of [`TlsFiles`] when it serves TLS only, `cpu`
    /// the only CPU it runs on, if any.
    fn start_configured(
        extra_args: &[&str],
        tls: Option<PathBuf>,
        cpu: Option<usize>,
    ) -> Option<Self> {
        if !installed() {
            return None;
        }
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("wasilock-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create a directory for redis-server");
        let mut server = RedisServer {
            child: None,
            port,
            dir,
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            tls,
            cpu,
        };
        server.restart();
        Some(server)
    }

    /// `host:port` for `redisHost`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the server (SIGKILL): only what it had already persisted survives.
    pub fn stop(&mut self) {
        crate::processes::end_taken(&mut self.child);
    }

    /// Starts the server again on the same port and waits until it answers.
    pub fn restart(&mut self) {
        self.stop();
        let port = self.port.to_string();
        let listen = match &self.tls {
            None => vec!["--port".to_string(), port],
            Some(dir) => [
                &["--port", "0", "--tls-port", &port][..],
                &["--tls-replication", "yes"],
            ]
            .concat()
            .into_iter()
            .map(str::to_string)
            .chain(tls_server_args(dir))
            .collect(),
        };
        let mut command = Command::new("redis-server");
        command
            .args(&listen)
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&self.dir)
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(cpu) = self.cpu {
            pin_command(&mut command, cpu);
        }
        let child = command.spawn().expect("start redis-server");
        self.child = Some(child);
        wait_for_port(self.port, "redis-server", SERVER_PATIENCE);
    }
}

/// `redis-server` arguments for the certificates in `dir` (see [`TlsFiles`]); the server's
/// certificate is also its client certificate towards a master or the servers it watches.
fn tls_server_args(dir: &Path) -> Vec<String> {
    [
        ("--tls-cert-file", "server.crt"),
        ("--tls-key-file", "server.key"),
        ("--tls-ca-cert-file", "ca.crt"),
    ]
    .into_iter()
    .flat_map(|(flag, file)| [flag.to_string(), dir.join(file).display().to_string()])
    .collect()
}

/// A certificate authority, a server certificate for `127.0.0.1` and a client certificate,
/// made with `openssl` (P-256 keys, valid two days) in a temporary directory.
pub struct TlsFiles {
    dir: tempfile::TempDir,
}

impl TlsFiles {
    /// Makes the files and starts a server with them (`start`); `None` when either gives
    /// `None`, as [`TlsFiles::generate`] does.
    pub fn generate_for<T>(start: impl FnOnce(&TlsFiles) -> Option<T>) -> Option<(Self, T)> {
        let tls = TlsFiles::generate()?;
        let started = start(&tls)?;
        Some((tls, started))
    }

    /// Makes the files; when `openssl` is missing and cannot be installed, fails the test
    /// under `CI=true` and otherwise returns `None` after saying so on stderr.
    pub fn generate() -> Option<Self> {
        if !certificates::openssl_available() {
            return None;
        }
        let dir = tempfile::tempdir().expect("a directory for certificates");
        let authority = Authority::create(dir.path(), "ca");
        authority.issue("server", &["IP:127.0.0.1"], "serverAuth,clientAuth");
        authority.issue("client", &[], "clientAuth");
        Some(TlsFiles { dir })
    }

    /// The directory of the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The authority's certificate file (for `SSL_CERT_FILE`).
    pub fn ca_file(&self) -> PathBuf {
        self.dir().join("ca.crt")
    }

    /// The client certificate, PEM (for `clientCert`).
    pub fn client_cert(&self) -> String {
        std::fs::read_to_string(self.dir().join("client.crt")).expect("read client.crt")
    }

    /// The client certificate's private key, PEM (for `clientKey`).
    pub fn client_key(&self) -> String {
        std::fs::read_to_string(self.dir().join("client.key")).expect("read client.key")
    }
}

/// A Redis Sentinel (`redis-server --sentinel`) watching one master, stopped on drop.
///
/// Quorum 1, so this one Sentinel fails over alone: it considers the master down after one
/// second without an answer, and promotes a replica.
pub struct RedisSentinel {
    child: Child,
    /// The loopback port it listens on.
    pub port: u16,
    dir: PathBuf,
}

impl RedisSentinel {
    /// Starts a Sentinel that monitors `master` as `master_name`, over TLS when `master`
    /// serves TLS; replicas already attached to `master` are found at once.
    pub fn start(master_name: &str, master: &RedisServer) -> Self {
        Self::start_with(master_name, master, &[])
    }

    /// Starts a Sentinel as [`RedisSentinel::start`] does, with more lines of configuration
    /// (such as `requirepass`, or `sentinel auth-pass <name> <password>`).
    pub fn start_with(master_name: &str, master: &RedisServer, extra_config: &[&str]) -> Self {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("wasilock-sentinel-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create a directory for redis-sentinel");
        let mut config = vec![
            "bind 127.0.0.1".to_string(),
            format!("dir {}", dir.display()),
            format!("sentinel monitor {master_name} 127.0.0.1 {} 1", master.port),
            format!("sentinel down-after-milliseconds {master_name} 1000"),
            format!("sentinel failover-timeout {master_name} 10000"),
        ];
        match &master.tls {
            None => config.push(format!("port {port}")),
            Some(tls) => {
                config.extend([
                    "port 0".to_string(),
                    format!("tls-port {port}"),
                    "tls-replication yes".to_string(),
                ]);
                for pair in tls_server_args(tls).chunks(2) {
                    config.push(format!("{} {}", pair[0].trim_start_matches("--"), pair[1]));
                }
            }
        }
        config.extend(extra_config.iter().map(|line| line.to_string()));
        let file = dir.join("sentinel.conf");
        std::fs::write(&file, config.join("\n") + "\n").expect("write sentinel.conf");
        let child = Command::new("redis-server")
            .arg(&file)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server --sentinel");
        wait_for_port(port, "redis-server --sentinel", SERVER_PATIENCE);
        RedisSentinel { child, port, dir }
    }

    /// `host:port`, for `redisHost`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        crate::processes::end(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether `redis-server` can be run, installing it with `apt-get` once when possible; when
/// it cannot, fails the test under `CI=true` and otherwise says so on stderr.
fn installed() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    crate::require(
        &INSTALLED,
        || available("redis-server"),
        (&["redis-server"], "for the Redis tests"),
        "redis-server is not installed: .ci/run installs it; under CI=true a missing server is a failure",
        "redis-server is not installed (install it to run the Redis tests)",
    )
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
