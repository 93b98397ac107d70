//! Test and benchmark support for wasilock, shared by the end-to-end tests (`tests/`), the
//! store contract tests and the benchmark harness (`perf/`).
//!
//! - [`alpha2`]: a client of the alpha2 lock API, plain calls and a lock held by a stream;
//! - [`host`]: a `wasilock` process on free ports, ready on `/v1.0/healthz`, and an HTTP client;
//! - [`resources`](mod@resources): Component and Tenant YAML for `--resources-path`;
//! - [`sequences`]: Dapr's conformance sequence and one-winner rounds;
//! - [`redis_server`]: a throwaway `redis-server`;
//! - [`etcd_cluster`]: a throwaway 3-member etcd cluster;
//! - [`certificates`]: an authority and the certificates it issues, for TLS tests;
//! - [`http_cases`]: every answer of the lock API as raw requests, to compare hosts;
//! - [`installs`]: pinned Python and npm packages, installed by the tests;
//! - [`load`]: lock traffic while a store goes away, and the failure it must give;
//! - [`python_host`]: the Python example host (wasmtime-py), over HTTP or its typed calls;
//! - [`sdk_clients`]: Dapr's Python and JavaScript SDKs, installed at pinned versions;
//! - [`standin_daprd`]: a stand-in daprd (the `dapr` package's servicer stubs) for the
//!   upstream flags;
//! - [`guests`]: lock components built for tests;
//! - [`node_host`]: Node.js hosting the lock component through jco, as `examples/node/` does;
//! - [`prometheus`]: `promtool check metrics` and a throwaway Prometheus server.

#![warn(missing_docs)]

pub mod alpha2;
mod apt;
pub mod certificates;
pub mod etcd_cluster;
pub mod guests;
pub mod host;
pub mod http_cases;
pub mod installs;
pub mod load;
pub mod node_host;
mod ports;
mod processes;
pub mod prometheus;
pub mod python_host;
pub mod redis_server;
pub mod resources;
pub mod sdk_clients;
pub mod sequences;
pub mod standin_daprd;

pub use guests::fault_injection_guest;
pub use host::{Host, Options, Reply, StartFailure, agent, binary, post, try_lock, unlock};
pub use resources::{
    component, component_with_refs, resources, resources_path, scoped_component, tenant,
};
pub use sequences::{conformance_sequence, one_winner_rounds};

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Whether `program --version` runs and succeeds.
pub fn available(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether `check` (a program and the arguments that make it print its version) succeeds,
/// installing Debian's `package` when it does not and this user can (`why` says for what).
/// When it stays missing, fails the test under `CI=true`, and otherwise says so on stderr and
/// returns `false`.
pub fn require_tool(check: &[&str], package: &str, why: &str) -> bool {
    let program = check[0];
    let runs = || {
        Command::new(program)
            .args(&check[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    require(
        &OnceLock::new(),
        runs,
        (&[package], why),
        &format!(
            "{program} is not installed: .ci/run installs it; under CI=true a missing {program} is a failure"
        ),
        &format!("{program} is not installed (install it to run {why})"),
    )
}

/// Whether `present` holds, installing Debian's packages (`apt`: the packages, and what for)
/// when it does not and this user can, once for the process if `once` is a static. When it
/// still does not, the test fails with `failure` under `CI=true` (where `.ci/run` installs
/// every tool), and otherwise says `SKIPPED: {skipped}` on stderr.
pub(crate) fn require(
    once: &OnceLock<bool>,
    present: impl Fn() -> bool,
    (packages, why): (&[&str], &str),
    failure: &str,
    skipped: &str,
) -> bool {
    let installed = *once.get_or_init(|| present() || (apt::install(packages, why) && present()));
    if !installed {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{failure}");
        eprintln!("SKIPPED: {skipped}");
    }
    installed
}

/// Waits until `done` holds, asking every 50 ms; fails the test, naming `what`, when it
/// still does not after `bound`.
pub fn wait_until(what: &str, bound: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + bound;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {bound:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The workspace's root directory.
pub fn workspace() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit/ lives in the workspace")
        .to_path_buf()
}
