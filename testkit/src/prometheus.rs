//! Debian's Prometheus for tests: `promtool check metrics` on a scrape, and a throwaway
//! `prometheus` server on a free loopback port, in a temporary directory, that scrapes a
//! target every second and answers PromQL through its HTTP API.
//!
//! When `promtool` or `prometheus` is missing, the `prometheus` package is installed from
//! Debian's packages if this user can (root with `apt-get`); failing that, the functions
//! here fail the test under `CI=true` and otherwise return `None` after saying so on stderr.

use crate::{agent, available};
use std::io::Write;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Whether `promtool` and `prometheus` can run, installing them once if needed.
fn installed() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    crate::require(
        &INSTALLED,
        || available("promtool") && available("prometheus"),
        (&["prometheus"], "for the metrics tests"),
        "prometheus is not installed: .ci/run installs it; under CI=true a missing prometheus is a failure",
        "promtool/prometheus are not installed (Debian package prometheus)",
    )
}

/// What `promtool check metrics` says of `exposition` (its lint lines; empty when clean);
/// `None` when promtool is not installed.
pub fn promtool_check_metrics(exposition: &str) -> Option<Vec<String>> {
    if !installed() {
        return None;
    }
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .expect("write to promtool");
    let output = child.wait_with_output().expect("promtool finishes");
    let said = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    let lints: Vec<String> = said
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    assert!(
        output.status.success() || !lints.is_empty(),
        "promtool failed without a word: {}",
        output.status
    );
    Some(lints)
}

/// A running `prometheus` server, stopped on drop.
pub struct PrometheusServer {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    _dir: tempfile::TempDir,
}

impl PrometheusServer {
    /// Starts a server that scrapes `target` (`host:port`, path `/metrics`) every second;
    /// `None` when prometheus is not installed.
    pub fn scraping(target: &str) -> Option<Self> {
        if !installed() {
            return None;
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: wasilock\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .expect("write prometheus.yml");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        let server = PrometheusServer {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        server.wait_ready();
        Some(server)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let agent = agent();
        loop {
            let ready = agent
                .get(&format!("{}/-/ready", self.base))
                .call()
                .is_ok_and(|r| r.status() == 200);
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus was not ready in 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The answer of `GET /api/v1/query?query=PROMQL` (`status`, `data` or `error`).
    pub fn query(&self, promql: &str) -> serde_json::Value {
        let mut response = agent()
            .get(&format!("{}/api/v1/query", self.base))
            .query("query", promql)
            .call()
            .expect("query prometheus");
        let body = response.body_mut().read_to_string().expect("a body");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    /// The result vector of `promql` once it is not empty (a scrape or two after the
    /// series appeared), within 60 s.
    pub fn query_until_found(&self, promql: &str) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = self.query(promql);
            assert_eq!(answer["status"], "success", "{promql}: {answer}");
            let result = answer["data"]["result"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !result.is_empty() {
                return result;
            }
            assert!(Instant::now() < deadline, "{promql}: no series in 60 s");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        crate::processes::end(&mut self.child);
    }
}
