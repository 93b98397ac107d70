//! The end-to-end harness: the real `wasilock` binary on a free loopback port, a temporary
//! data directory, and a small HTTP client for the Dapr lock API.

#![allow(dead_code)] // Each test binary uses its own part of the harness.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a host may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The `wasilock` binary cargo built for these tests.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_wasilock")
}

/// A response: status, `Content-Type` and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The body as text.
    pub body: String,
}

/// How to start a host.
#[derive(Clone)]
pub struct Options {
    /// Extra command-line arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// The data directory (`--data-dir`); a fresh temporary one when `None`.
    pub data_dir: Option<PathBuf>,
}

impl Options {
    /// No extra arguments, a fresh data directory.
    pub fn new() -> Self {
        Options {
            args: Vec::new(),
            env: Vec::new(),
            data_dir: None,
        }
    }

    /// Adds command-line arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Uses this data directory.
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_path_buf());
        self
    }
}

/// A running `wasilock` process, killed on drop.
pub struct Host {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The gRPC API's `127.0.0.1:PORT`.
    pub grpc: String,
    /// Everything printed on stdout so far.
    pub stdout: Arc<Mutex<String>>,
    /// Everything printed on stderr so far.
    pub stderr: Arc<Mutex<String>>,
    agent: ureq::Agent,
    _data_dir: Option<tempfile::TempDir>,
}

/// A new HTTP client with keep-alive, that reports every status as a reply.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

impl Host {
    /// Starts a host with the default store (`lockstore`, `lock.embedded`).
    pub fn start() -> Host {
        Host::start_with(Options::new())
    }

    /// Starts a host and waits until it prints its address.
    pub fn start_with(options: Options) -> Host {
        match Host::try_start(options) {
            Ok(host) => host,
            Err(failure) => panic!("wasilock did not start: {failure}"),
        }
    }

    /// Starts a host; when it exits before listening, returns its status and stderr.
    pub fn try_start(options: Options) -> Result<Host, StartFailure> {
        let temp = match options.data_dir {
            Some(_) => None,
            None => Some(tempfile::tempdir().expect("a temporary data directory")),
        };
        let data_dir = options
            .data_dir
            .clone()
            .unwrap_or_else(|| temp.as_ref().unwrap().path().to_path_buf());
        let mut command = Command::new(binary());
        command
            .args([
                "--dapr-http-port",
                "0",
                "--dapr-grpc-port",
                "0",
                "--log-level",
                "debug",
                "--data-dir",
            ])
            .arg(&data_dir)
            .args(&options.args)
            .env_remove("DAPR_API_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in &options.env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("spawn wasilock");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (address_tx, address_rx) = mpsc::channel();
        drain(
            child.stdout.take().unwrap(),
            stdout.clone(),
            Some(address_tx),
        );
        drain(child.stderr.take().unwrap(), stderr.clone(), None);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok((base, grpc)) = address_rx.recv_timeout(Duration::from_millis(20)) {
                return Ok(Host {
                    child,
                    base,
                    grpc,
                    stdout,
                    stderr,
                    agent: agent(),
                    _data_dir: temp,
                });
            }
            if let Some(status) = child.try_wait().expect("wait for wasilock") {
                // Let the readers catch the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return Err(StartFailure {
                    status,
                    stderr: stderr.lock().unwrap().clone(),
                });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "wasilock printed no address within {START_TIMEOUT:?}; stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// POSTs `body` to `path` (which starts with `/`).
    pub fn post(&self, path: &str, body: &str) -> Reply {
        post(&self.agent, &format!("{}{path}", self.base), body, &[])
    }

    /// POSTs with extra headers.
    pub fn post_with(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
        post(&self.agent, &format!("{}{path}", self.base), body, headers)
    }

    /// GETs `path`.
    pub fn get(&self, path: &str) -> Reply {
        self.get_with(path, &[])
    }

    /// GETs `path` with extra headers.
    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = self.agent.get(&format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        reply(&mut request.call().expect("GET"))
    }

    /// `TryLock`: `Ok(success)` on 200, the reply otherwise.
    pub fn lock(
        &self,
        store: &str,
        resource: &str,
        owner: &str,
        expiry: i32,
    ) -> Result<bool, Reply> {
        try_lock(&self.agent, &self.base, store, resource, owner, expiry)
    }

    /// `Unlock`: `Ok(status)` on 200, the reply otherwise.
    pub fn unlock(&self, store: &str, resource: &str, owner: &str) -> Result<i64, Reply> {
        unlock(&self.agent, &self.base, store, resource, owner)
    }

    /// Sends SIGKILL and waits: nothing is flushed or closed by the host.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("wait");
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "wasilock did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A host that exited before it listened.
#[derive(Debug)]
pub struct StartFailure {
    /// Its exit status.
    pub status: ExitStatus,
    /// What it printed on stderr.
    pub stderr: String,
}

impl std::fmt::Display for StartFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}; stderr:\n{}", self.status, self.stderr)
    }
}

/// Copies a pipe into `sink` line by line; once the banner is complete (its last line is
/// the `try:` example or the note that there are no stores), sends the first HTTP and gRPC
/// addresses.
fn drain(
    pipe: impl Read + Send + 'static,
    sink: Arc<Mutex<String>>,
    ready: Option<mpsc::Sender<(String, String)>>,
) {
    std::thread::spawn(move || {
        let mut ready = ready;
        let mut address = None;
        let mut grpc = None;
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            {
                let mut sink = sink.lock().unwrap();
                sink.push_str(&line);
                sink.push('\n');
            }
            let line = line.trim();
            if let Some(url) = line.strip_prefix("listening on ") {
                address.get_or_insert_with(|| url.to_string());
            }
            if let Some(socket) = line.strip_prefix("gRPC API on ") {
                grpc.get_or_insert_with(|| socket.to_string());
            }
            let banner_done = line.starts_with("try: ") || line.starts_with("no lock stores");
            if banner_done
                && let (Some(tx), Some(url), Some(grpc)) =
                    (ready.take(), address.clone(), grpc.clone())
            {
                let _ = tx.send((url, grpc));
            }
        }
    });
}

fn reply(response: &mut ureq::http::Response<ureq::Body>) -> Reply {
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    Reply {
        status: response.status().as_u16(),
        content_type,
        body: response.body_mut().read_to_string().expect("a text body"),
    }
}

/// POSTs `body` to `url` with `agent`.
pub fn post(agent: &ureq::Agent, url: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = agent.post(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = request.send(body).expect("POST");
    reply(&mut response)
}

/// `TryLock` against the host at `base`.
pub fn try_lock(
    agent: &ureq::Agent,
    base: &str,
    store: &str,
    resource: &str,
    owner: &str,
    expiry: i32,
) -> Result<bool, Reply> {
    let body = serde_json::json!({
        "resourceId": resource, "lockOwner": owner, "expiryInSeconds": expiry
    });
    let reply = post(
        agent,
        &format!("{base}/v1.0-alpha1/lock/{store}"),
        &body.to_string(),
        &[],
    );
    match reply.status {
        200 => match reply.body.as_str() {
            r#"{"success":true}"# => Ok(true),
            r#"{"success":false}"# => Ok(false),
            _ => panic!("unexpected TryLock body {:?}", reply.body),
        },
        _ => Err(reply),
    }
}

/// `Unlock` against the host at `base`.
pub fn unlock(
    agent: &ureq::Agent,
    base: &str,
    store: &str,
    resource: &str,
    owner: &str,
) -> Result<i64, Reply> {
    let body = serde_json::json!({ "resourceId": resource, "lockOwner": owner });
    let reply = post(
        agent,
        &format!("{base}/v1.0-alpha1/unlock/{store}"),
        &body.to_string(),
        &[],
    );
    match reply.status {
        200 => {
            let value: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
            assert_eq!(
                value.as_object().map(|o| o.len()),
                Some(1),
                "{}",
                reply.body
            );
            Ok(value["status"].as_i64().expect("an integer status"))
        }
        _ => Err(reply),
    }
}

/// Writes a component YAML file into a new temporary directory for `--resources-path`.
pub fn resources(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a resources directory");
    for (name, yaml) in files {
        std::fs::write(dir.path().join(name), yaml).expect("write a component file");
    }
    dir
}

/// A lock component YAML document.
pub fn component(name: &str, store_type: &str, metadata: &[(&str, &str)]) -> String {
    let mut yaml = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: {store_type}\n  version: v1\n  metadata:\n"
    );
    for (key, value) in metadata {
        yaml.push_str(&format!("  - name: {key}\n    value: \"{value}\"\n"));
    }
    if metadata.is_empty() {
        yaml = yaml.replace("  metadata:\n", "  metadata: []\n");
    }
    yaml
}

/// A Tenant YAML document: app id `name`, token `token`, an optional component file and
/// `limits` as a YAML flow mapping (`{}` for none).
pub fn tenant(name: &str, token: &str, component: Option<&Path>, limits: &str) -> String {
    let mut yaml = format!(
        "apiVersion: wasilock/v1alpha1\nkind: Tenant\nmetadata:\n  name: {name}\nspec:\n  apiToken:\n    value: \"{token}\"\n  limits: {limits}\n"
    );
    if let Some(component) = component {
        yaml.push_str(&format!("  component: \"{}\"\n", component.display()));
    }
    yaml
}

/// A lock component YAML document whose store only the app ids `scopes` see.
pub fn scoped_component(name: &str, store_type: &str, scopes: &[&str]) -> String {
    format!(
        "{}scopes: [{}]\n",
        component(name, store_type, &[]),
        scopes.join(", ")
    )
}

/// Dapr's conformance sequence (components-contrib tests/conformance/lock), over HTTP.
pub fn conformance_sequence(host: &Host, store: &str) {
    let run = format!("{:x}", std::process::id() as u64 * 1_000_003 + now_nanos());
    let (key1, key2) = (format!("key1-{run}"), format!("key2-{run}"));
    assert_eq!(host.lock(store, &key1, "conftest", 15), Ok(true));
    assert_eq!(host.lock(store, &key2, "conftest", 3), Ok(true));
    let expires = Instant::now() + Duration::from_secs(3);
    assert_eq!(
        host.lock(store, &key1, "conftest", 15),
        Ok(false),
        "not reentrant"
    );
    assert_eq!(host.unlock(store, "nonexistent", "conftest"), Ok(1));
    assert_eq!(host.unlock(store, &key1, "nonowner"), Ok(2));
    assert_eq!(host.unlock(store, &key1, "conftest"), Ok(0));
    std::thread::sleep(expires.saturating_duration_since(Instant::now()));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if host.lock(store, &key2, "conftest", 3) == Ok(true) {
            break;
        }
        assert!(Instant::now() < deadline, "key2 never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// `count` threads each try to lock `resource` through one of `bases` at once, `rounds`
/// times; exactly one wins every round, and then releases.
pub fn one_winner_rounds(
    bases: &[String],
    store: &str,
    resource: &str,
    count: usize,
    rounds: usize,
) {
    let agents: Vec<ureq::Agent> = (0..count).map(|_| agent()).collect();
    for round in 0..rounds {
        let barrier = std::sync::Barrier::new(count);
        let winners: Vec<(usize, String)> = std::thread::scope(|scope| {
            let handles: Vec<_> = agents
                .iter()
                .enumerate()
                .map(|(i, agent)| {
                    let base = &bases[i % bases.len()];
                    let barrier = &barrier;
                    scope.spawn(move || {
                        let owner = format!("owner-{round}-{i}");
                        barrier.wait();
                        let won = try_lock(agent, base, store, resource, &owner, 30)
                            .unwrap_or_else(|reply| panic!("TryLock failed: {reply:?}"));
                        won.then_some((i, owner))
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().unwrap())
                .collect()
        });
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let (i, owner) = &winners[0];
        let base = &bases[i % bases.len()];
        assert_eq!(unlock(&agents[*i], base, store, resource, owner), Ok(0));
    }
}

/// Builds the guest with its test-only `fault-injection` feature, in its own target dir.
pub fn fault_injection_guest() -> std::path::PathBuf {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let target_dir = workspace.join("target").join("fault-guest");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .current_dir(workspace)
        .args([
            "build",
            "--quiet",
            "-p",
            "wasilock-guest",
            "--target",
            "wasm32-wasip2",
        ])
        .args([
            "--profile",
            "guest",
            "--features",
            "fault-injection",
            "--target-dir",
        ])
        .arg(&target_dir)
        .status()
        .expect("run cargo to build the fault-injection guest");
    assert!(
        status.success(),
        "building the fault-injection guest failed"
    );
    target_dir.join("wasm32-wasip2/guest/wasilock_guest.wasm")
}
