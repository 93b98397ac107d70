//! A throwaway `redis-server` on a free loopback port, for tests.
//!
//! Shared by the host's store contract tests and the end-to-end tests. When `redis-server`
//! is not installed, it is installed from Debian's packages if this user can (root with
//! `apt-get`); failing that, [`RedisServer::start`] fails the test under `CI=true` and
//! otherwise returns `None` after saying so on stderr.

use crate::{apt, available};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running `redis-server`, stopped on drop.
pub struct RedisServer {
    child: Option<Child>,
    /// The loopback port it listens on.
    pub port: u16,
    dir: PathBuf,
    extra_args: Vec<String>,
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

    fn start_with(extra_args: &[&str]) -> Option<Self> {
        if !ensure_installed() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "redis-server is not installed: .ci/run installs it; under CI=true a missing server is a failure"
            );
            eprintln!("SKIPPED: redis-server is not installed (install it to run the Redis tests)");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let dir =
            std::env::temp_dir().join(format!("wasilock-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create a directory for redis-server");
        let mut server = RedisServer {
            child: None,
            port,
            dir,
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
        };
        server.restart();
        Some(server)
    }

    /// `host:port` for `redisHost`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGKILL); its data is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and waits until it answers.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&self.dir)
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Whether `redis-server` can be run, installing it with `apt-get` once when possible.
fn ensure_installed() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        if available("redis-server") {
            return true;
        }
        apt::install(&["redis-server"], "for the Redis tests") && available("redis-server")
    })
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
