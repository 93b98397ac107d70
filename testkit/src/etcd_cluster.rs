//! A throwaway 3-member etcd cluster on free loopback ports, for tests and benchmarks.
//!
//! Debian's `etcd-server` (the `etcd` binary) and `etcd-client` (`etcdctl`, used to find
//! the leader and to switch on authentication) are installed when missing if this user can
//! (root with `apt-get`); failing that, [`EtcdCluster::start`] fails the test under
//! `CI=true` and otherwise returns `None` after saying so on stderr.
//!
//! Members elect fast (50 ms heartbeats, 500 ms election timeout), keep their data in a
//! temporary directory, and are killed on drop. A member can be killed and restarted with
//! its data ([`EtcdCluster::kill`], [`EtcdCluster::restart`]); the cluster can serve TLS
//! with client certificates ([`EtcdCluster::start_tls`]) and require a user and password
//! ([`EtcdCluster::enable_auth`]).

use crate::available;
use crate::host::pin_command;
use crate::ports::{free_port, wait_for_port};
use crate::redis_server::TlsFiles;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a member may take to listen: on a loaded machine, with other clusters fsyncing,
/// a member can take seconds.
const MEMBER_PATIENCE: Duration = Duration::from_secs(30);

/// The number of members.
pub const MEMBERS: usize = 3;

/// A running cluster, killed on drop.
pub struct EtcdCluster {
    members: Vec<Member>,
    dir: tempfile::TempDir,
    tls: Option<PathBuf>,
    /// `root`'s password once [`EtcdCluster::enable_auth`] ran.
    root_password: Option<String>,
    /// The only CPU the members run on, if any.
    cpu: Option<usize>,
    /// More `etcd` arguments for every member.
    extra_args: Vec<String>,
}

struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

impl EtcdCluster {
    /// Starts a cluster of [`MEMBERS`] members and waits until it has a leader.
    pub fn start() -> Option<Self> {
        Self::start_configured(None, None, &[])
    }

    /// Starts a cluster whose members take the extra `etcd` arguments `extra_args` (such as
    /// `["--auth-token-ttl", "1"]`).
    pub fn start_with(extra_args: &[&str]) -> Option<Self> {
        Self::start_configured(None, None, extra_args)
    }

    /// Starts a cluster as [`EtcdCluster::start`] does, every member running on `cpu` only
    /// (when given), also after a [`EtcdCluster::restart`]; for benchmarks.
    pub fn start_pinned(cpu: Option<usize>) -> Option<Self> {
        Self::start_configured(None, cpu, &[])
    }

    /// Starts a cluster whose members serve clients over TLS only, with the certificates of
    /// `tls`, and require a client certificate of its authority.
    pub fn start_tls(tls: &TlsFiles) -> Option<Self> {
        Self::start_configured(Some(tls.dir().to_path_buf()), None, &[])
    }

    fn start_configured(
        tls: Option<PathBuf>,
        cpu: Option<usize>,
        extra_args: &[&str],
    ) -> Option<Self> {
        if !installed() {
            return None;
        }
        let members = (0..MEMBERS)
            .map(|i| Member {
                name: format!("m{i}"),
                client_port: free_port(),
                peer_port: free_port(),
                child: None,
            })
            .collect();
        let mut cluster = EtcdCluster {
            members,
            dir: tempfile::tempdir().expect("a directory for etcd"),
            tls,
            root_password: None,
            cpu,
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
        };
        for i in 0..MEMBERS {
            cluster.restart(i);
        }
        cluster.wait_for_leader();
        Some(cluster)
    }

    /// The members' `host:port`, comma-separated: the `endpoints` metadata.
    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The client URL of member `i` (`http://` or `https://`).
    pub fn url(&self, i: usize) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.members[i].client_port)
    }

    /// Kills member `i` (SIGKILL); its data stays for [`EtcdCluster::restart`].
    pub fn kill(&mut self, i: usize) {
        crate::processes::end_taken(&mut self.members[i].child);
    }

    /// Kills every member.
    pub fn kill_all(&mut self) {
        for i in 0..MEMBERS {
            self.kill(i);
        }
    }

    /// Starts member `i` again (with its data, if it ran before) and waits for its port.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        let initial_cluster = self
            .members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let member = &self.members[i];
        let client_url = self.url(i);
        let peer_url = format!("http://127.0.0.1:{}", member.peer_port);
        let mut command = Command::new("etcd");
        command
            .args(["--name", &member.name, "--data-dir"])
            .arg(self.dir.path().join(&member.name))
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &initial_cluster])
            .args(["--initial-cluster-state", "new"])
            .args([
                "--initial-cluster-token",
                &format!("wasilock-{}", self.members[0].peer_port),
            ])
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .args(["--logger", "zap", "--log-level", "error"])
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(tls) = &self.tls {
            command
                .arg("--cert-file")
                .arg(tls.join("server.crt"))
                .arg("--key-file")
                .arg(tls.join("server.key"))
                .arg("--trusted-ca-file")
                .arg(tls.join("ca.crt"))
                .arg("--client-cert-auth");
        }
        if let Some(cpu) = self.cpu {
            pin_command(&mut command, cpu);
        }
        self.members[i].child = Some(command.spawn().expect("start etcd"));
        wait_for_port(self.members[i].client_port, "etcd", MEMBER_PATIENCE);
    }

    /// The index of the leader, waiting up to 10 s for the members running to elect one.
    pub fn leader(&self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(leader) = self.find_leader() {
                return leader;
            }
            assert!(Instant::now() < deadline, "etcd elected no leader");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the running members have a leader.
    pub fn wait_for_leader(&self) {
        self.leader();
    }

    fn find_leader(&self) -> Option<usize> {
        for (i, member) in self.members.iter().enumerate() {
            if member.child.is_none() {
                continue;
            }
            let out = self
                .etcdctl(i, &["endpoint", "status", "-w", "json"])
                .ok()?;
            let status: serde_json::Value = serde_json::from_slice(&out).ok()?;
            let status = &status[0]["Status"];
            let (me, leader) = (
                status["header"]["member_id"].as_u64()?,
                status["leader"].as_u64()?,
            );
            if leader != 0 && me == leader {
                return Some(i);
            }
        }
        None
    }

    /// Adds user `root` with `password` and switches authentication on: from then on every
    /// client must log in (`username: root`).
    pub fn enable_auth(&mut self, password: &str) {
        let leader = self.leader();
        for args in [
            &["user", "add", &format!("root:{password}")][..],
            &["auth", "enable"],
        ] {
            let out = self.etcdctl(leader, args);
            assert!(out.is_ok(), "etcdctl {args:?}: {out:?}");
        }
        self.root_password = Some(password.to_string());
    }

    /// Runs `etcdctl` against member `i`; its stdout, or its stderr as the error.
    pub fn etcdctl(&self, i: usize, args: &[&str]) -> Result<Vec<u8>, String> {
        let mut command = Command::new("etcdctl");
        command
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.url(i)))
            .args(["--dial-timeout=2s", "--command-timeout=3s"]);
        if let Some(tls) = &self.tls {
            command
                .arg(format!("--cacert={}", tls.join("ca.crt").display()))
                .arg(format!("--cert={}", tls.join("client.crt").display()))
                .arg(format!("--key={}", tls.join("client.key").display()));
        }
        if let Some(password) = &self.root_password {
            command.arg(format!("--user=root:{password}"));
        }
        let out = command.args(args).output().map_err(|e| e.to_string())?;
        match out.status.success() {
            true => Ok(out.stdout),
            false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
        }
    }

    /// The data directory of the cluster.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process ids of the members running.
    pub fn pids(&self) -> Vec<u32> {
        self.members
            .iter()
            .filter_map(|m| m.child.as_ref().map(Child::id))
            .collect()
    }

    /// How many gRPC calls of `method` (`Txn`, `Range`, `LeaseGrant`, ...) the running
    /// members have answered, from their `/metrics` (`grpc_server_handled_total`).
    pub fn handled(&self, method: &str) -> u64 {
        let agent = crate::agent();
        let needle = format!("grpc_method=\"{method}\"");
        (0..MEMBERS)
            .filter(|i| self.members[*i].child.is_some())
            .map(|i| {
                let metrics = agent
                    .get(format!("{}/metrics", self.url(i)))
                    .call()
                    .and_then(|mut r| r.body_mut().read_to_string())
                    .expect("etcd's /metrics");
                metrics
                    .lines()
                    .filter(|l| l.starts_with("grpc_server_handled_total{") && l.contains(&needle))
                    .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                    .sum::<f64>() as u64
            })
            .sum()
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// Whether `etcd` and `etcdctl` can be run, installing them with `apt-get` once when possible;
/// when they cannot, fails the test under `CI=true` and otherwise says so on stderr.
fn installed() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    crate::require(
        &INSTALLED,
        || available("etcd") && etcdctl_runs(),
        (&["etcd-server", "etcd-client"], "for the etcd tests"),
        "etcd is not installed: .ci/run installs etcd-server and etcd-client; under CI=true a missing etcd is a failure",
        "etcd is not installed (install etcd-server and etcd-client to run the etcd tests)",
    )
}

fn etcdctl_runs() -> bool {
    Command::new("etcdctl")
        .arg("version")
        .env("ETCDCTL_API", "3")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
