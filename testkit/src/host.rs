//! A `wasilock` process on free loopback ports with a temporary data directory, ready once
//! it answers `GET /v1.0/healthz`, optionally pinned to one CPU; and a small HTTP client for
//! the Dapr lock API.

use crate::ports::free_port;
use crate::processes::drain;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a host (ours, or an example host) may take to be ready.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How often a starting host is asked whether it is ready: short, because the benchmark
/// harness times start-ups with it.
const READY_POLL: Duration = Duration::from_millis(2);

/// The `wasilock` binary cargo built beside the running test or harness (`target/PROFILE/`).
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the running executable");
    let mut dir = exe.parent().expect("a directory").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("wasilock")
}

/// Runs `cargo build -p wasilock` for the profile this crate was built with (`--release` in
/// a release build), so that the binary matches the sources, and returns it ([`binary`]).
/// For programs that start hosts outside `cargo test` of the host crate (the benchmark
/// harness, the lock-safety checker): cargo builds another package's binaries only for that
/// package's own tests.
pub fn build_binary() -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .current_dir(crate::workspace())
        .args(["build", "--quiet", "-p", "wasilock"]);
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    let status = command
        .status()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build -p wasilock failed: {status}"));
    }
    let binary = binary();
    if !binary.is_file() {
        return Err(format!("cargo built no {}", binary.display()));
    }
    Ok(binary)
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
#[derive(Clone, Default)]
pub struct Options {
    /// The program; [`binary`] when `None`.
    pub program: Option<PathBuf>,
    /// Extra command-line arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// The data directory (`--data-dir`); a fresh temporary one when `None`.
    pub data_dir: Option<PathBuf>,
    /// `--log-level`; `debug` when `None`.
    pub log_level: Option<String>,
    /// The only CPU the process may run on; any when `None`.
    pub cpu: Option<usize>,
    /// Whether the host serves TLS (`--api-tls-cert`): it is ready once its HTTP port
    /// accepts connections, as plain HTTP gets no answer; [`Host::base`] is `https://`.
    pub tls: bool,
    /// A resources directory written by [`Options::resources`]: kept as long as these
    /// options and every host started with them.
    pub resources: Option<Arc<tempfile::TempDir>>,
}

impl Options {
    /// No extra arguments, a fresh data directory.
    pub fn new() -> Self {
        Options::default()
    }

    /// Runs `program` instead of [`binary`]; it is given the arguments, then `wasilock`'s
    /// port, log and data flags.
    pub fn program(mut self, program: &Path) -> Self {
        self.program = Some(program.to_path_buf());
        self
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

    /// Adds environment variables.
    pub fn envs(self, vars: &[(&str, &str)]) -> Self {
        vars.iter()
            .fold(self, |options, (name, value)| options.env(name, value))
    }

    /// Runs as the app `app_id` (`--app-id`).
    pub fn app_id(self, app_id: &str) -> Self {
        self.args(["--app-id", app_id])
    }

    /// Reads the resource files in `dir` (`--resources-path`).
    pub fn resources_path(self, dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref().to_str().expect("a UTF-8 resources path");
        self.args(["--resources-path", dir])
    }

    /// Writes `files` (name, YAML) into a new resources directory and reads them from there
    /// (`--resources-path`); the directory lives as long as these options and every host
    /// started with them.
    pub fn resources(mut self, files: &[(&str, &str)]) -> Self {
        let dir = crate::resources::resources(files);
        self = self.resources_path(&dir);
        self.resources = Some(Arc::new(dir));
        self
    }

    /// Logs at `level` (`--log-level`).
    pub fn log_level(mut self, level: &str) -> Self {
        self.log_level = Some(level.into());
        self
    }

    /// Uses this data directory.
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_path_buf());
        self
    }

    /// The host serves TLS (see [`Options::tls`]); the TLS flags go in [`Options::args`].
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Runs the process, and every thread it starts, on `cpu` only (see [`pin_command`]).
    pub fn cpu(mut self, cpu: usize) -> Self {
        self.cpu = Some(cpu);
        self
    }
}

/// Confines the calling thread to `cpu` (`sched_setaffinity`); threads and processes it
/// starts afterwards inherit this. Called first thing in a program's `main`, it pins the
/// whole program.
pub fn pin_to_cpu(cpu: usize) -> std::io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: `set` is a plain bit set, zeroed, then `cpu` (checked above) is set in it;
    // `sched_setaffinity` only reads it. No allocation, so this may run between fork and
    // exec.
    let result = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Makes `command` run on `cpu` only: the child pins itself between fork and exec, so the
/// program, and every thread or process it starts, runs there from its first instruction.
pub fn pin_command(command: &mut Command, cpu: usize) {
    // SAFETY: the hook makes one system call and allocates nothing.
    unsafe {
        command.pre_exec(move || pin_to_cpu(cpu));
    }
}

/// A running `wasilock` process, killed on drop.
pub struct Host {
    child: Child,
    /// `http://127.0.0.1:PORT` (`https://` when it serves TLS).
    pub base: String,
    /// The gRPC API's `127.0.0.1:PORT`.
    pub grpc: String,
    /// Everything printed on stdout so far.
    pub stdout: Arc<Mutex<String>>,
    /// Everything printed on stderr so far.
    pub stderr: Arc<Mutex<String>>,
    agent: ureq::Agent,
    launch: Launch,
    _data_dir: Option<tempfile::TempDir>,
    _resources: Option<Arc<tempfile::TempDir>>,
}

/// How a host's process is started: again the same way by [`Host::kill9_and_restart`].
struct Launch {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cpu: Option<usize>,
    tls: bool,
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

    /// Starts a host as the app `app_id` whose one resource file is the component `yaml`.
    pub fn start_on(app_id: &str, yaml: &str) -> Host {
        Host::start_with(
            Options::new()
                .app_id(app_id)
                .resources(&[("store.yaml", yaml)]),
        )
    }

    /// Starts a host and waits until it answers `GET /v1.0/healthz`.
    pub fn start_with(options: Options) -> Host {
        match Host::try_start(options) {
            Ok(host) => host,
            Err(failure) => panic!("wasilock did not start: {failure}"),
        }
    }

    /// Starts a host that must not start (`why` says why): checks that it exits with a
    /// failure status and that its stderr says each of `needles`, and returns the failure.
    pub fn refused(options: Options, why: &str, needles: &[&str]) -> StartFailure {
        let failure = Host::try_start(options).err().expect(why);
        assert!(!failure.status.success(), "{why}: {failure}");
        for needle in needles {
            assert!(
                failure.stderr.contains(needle),
                "{why}: {needle:?} not in stderr:\n{}",
                failure.stderr
            );
        }
        failure
    }

    /// Starts a host on free ports; when it exits before it is ready, returns its status
    /// and stderr (after trying other ports if the chosen ones were taken meanwhile).
    pub fn try_start(options: Options) -> Result<Host, StartFailure> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match Host::try_start_once(&options) {
                Err(failure) if attempts < 3 && failure.stderr.contains("cannot listen") => {}
                started => return started,
            }
        }
    }

    fn try_start_once(options: &Options) -> Result<Host, StartFailure> {
        let temp = match options.data_dir {
            Some(_) => None,
            None => Some(tempfile::tempdir().expect("a temporary data directory")),
        };
        let data_dir = options
            .data_dir
            .clone()
            .unwrap_or_else(|| temp.as_ref().unwrap().path().to_path_buf());
        let (http_port, grpc_port) = (free_port(), free_port());
        let log_level = options.log_level.as_deref().unwrap_or("debug");
        let mut args = options.args.clone();
        args.extend([
            "--dapr-http-port".into(),
            http_port.to_string(),
            "--dapr-grpc-port".into(),
            grpc_port.to_string(),
            "--log-level".into(),
            log_level.into(),
            "--data-dir".into(),
            data_dir.to_string_lossy().into_owned(),
        ]);
        // Metrics on a free port (the banner says which), unless the test chose one.
        if !args.iter().any(|a| a.starts_with("--metrics-port")) {
            args.extend(["--metrics-port".into(), "0".into()]);
        }
        let launch = Launch {
            program: options.program.clone().unwrap_or_else(binary),
            args,
            env: options.env.clone(),
            cpu: options.cpu,
            tls: options.tls,
        };
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let scheme = if options.tls { "https" } else { "http" };
        let base = format!("{scheme}://127.0.0.1:{http_port}");
        let agent = agent();
        let child = launch.run(&base, &agent, &stdout, &stderr)?;
        Ok(Host {
            child,
            base,
            grpc: format!("127.0.0.1:{grpc_port}"),
            stdout,
            stderr,
            agent,
            launch,
            _data_dir: temp,
            _resources: options.resources.clone(),
        })
    }

    /// Kills the process with SIGKILL (nothing is flushed or closed by the host) and starts
    /// it again with the same arguments, ports and data directory; returns once it answers
    /// `GET /v1.0/healthz`. Its output is appended to [`Host::stdout`] and [`Host::stderr`].
    pub fn kill9_and_restart(&mut self) {
        crate::processes::end(&mut self.child);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (base, agent) = (&self.base, &self.agent);
            match self.launch.run(base, agent, &self.stdout, &self.stderr) {
                Ok(child) => {
                    self.child = child;
                    return;
                }
                // The port may be held for a moment (a client's connection attempt to it).
                Err(failure) if attempts < 50 && failure.stderr.contains("cannot listen") => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(failure) => panic!("wasilock did not restart: {failure}"),
            }
        }
    }

    /// The start-up banner: stdout once its last line (the `try:` example, or the note that
    /// there are no stores) has arrived. With `--log-as-json`, each JSON line stands for its
    /// `msg`.
    pub fn banner(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let stdout = plain_lines(&self.stdout.lock().unwrap());
            let complete = stdout
                .lines()
                .any(|l| l.trim().starts_with("try: ") || l.trim().starts_with("no lock stores"));
            if complete {
                return stdout;
            }
            assert!(Instant::now() < deadline, "no complete banner: {stdout}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Checks that the host's stderr so far says each of `lines`.
    pub fn assert_logged(&self, lines: &[&str]) {
        let stderr = self.stderr.lock().unwrap().clone();
        for line in lines {
            assert!(stderr.contains(line), "{line:?} not in stderr:\n{stderr}");
        }
    }

    /// The metrics endpoint the banner names (`http://ADDR/metrics`), when metrics are on.
    pub fn metrics_url(&self) -> Option<String> {
        self.banner()
            .lines()
            .find_map(|l| l.trim().strip_prefix("metrics on "))
            .map(str::to_string)
    }

    /// Resident memory in bytes (`VmRSS`).
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        parse_vm_rss(&status).expect("VmRSS in /proc/PID/status")
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
        reply_of(&mut request.call().expect("GET")).expect("GET")
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
        crate::processes::end(&mut self.child);
    }
}

impl Launch {
    /// Starts the process, copies its output into `stdout` and `stderr`, and waits until it
    /// answers on `base`; when it exits first, returns its status and what it printed on
    /// stderr since this start.
    fn run(
        &self,
        base: &str,
        agent: &ureq::Agent,
        stdout: &Arc<Mutex<String>>,
        stderr: &Arc<Mutex<String>>,
    ) -> Result<Child, StartFailure> {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .env_remove("DAPR_API_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in &self.env {
            command.env(name, value);
        }
        if let Some(cpu) = self.cpu {
            pin_command(&mut command, cpu);
        }
        let printed_before = stderr.lock().unwrap().len();
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program.display()));
        drain(child.stdout.take().unwrap(), stdout.clone());
        drain(child.stderr.take().unwrap(), stderr.clone());
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let ready = if self.tls {
                let address = base.trim_start_matches("https://");
                std::net::TcpStream::connect(address).is_ok()
            } else {
                agent
                    .get(&format!("{base}/v1.0/healthz"))
                    .call()
                    .is_ok_and(|r| r.status() == 204)
            };
            if ready {
                return Ok(child);
            }
            if let Some(status) = child.try_wait().expect("wait for wasilock") {
                // Let the readers catch the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return Err(StartFailure {
                    status,
                    stderr: stderr.lock().unwrap()[printed_before..].to_string(),
                });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "{} was not ready within {START_TIMEOUT:?}; stderr:\n{}",
                    self.program.display(),
                    stderr.lock().unwrap()
                );
            }
            std::thread::sleep(READY_POLL);
        }
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

/// `output` with each JSON log line replaced by its `msg`.
pub fn plain_lines(output: &str) -> String {
    let mut plain = String::new();
    for line in output.lines() {
        let json = serde_json::from_str::<serde_json::Value>(line).ok();
        match json.as_ref().and_then(|v| v["msg"].as_str()) {
            Some(msg) => plain.push_str(msg),
            None => plain.push_str(line),
        }
        plain.push('\n');
    }
    plain
}

/// `VmRSS:  1234 kB` in bytes.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The [`Reply`] of a response `ureq` received.
pub fn reply_of(response: &mut ureq::http::Response<ureq::Body>) -> Result<Reply, ureq::Error> {
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    Ok(Reply {
        status: response.status().as_u16(),
        content_type,
        body: response.body_mut().read_to_string()?,
    })
}

/// POSTs `body` to `url` with `agent`.
pub fn post(agent: &ureq::Agent, url: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
    try_post(agent, url, body, headers).expect("POST")
}

/// POSTs `body` to `url` with `agent`; a connection that fails (refused, reset, timed out)
/// before the whole answer arrived is an error.
pub fn try_post(
    agent: &ureq::Agent,
    url: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> Result<Reply, ureq::Error> {
    let mut request = agent.post(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    reply_of(&mut request.send(body)?)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_log_lines_read_as_their_message() {
        let output = "{\"level\":\"info\",\"msg\":\"  store x\"}\n  plain\n";
        assert_eq!(plain_lines(output), "  store x\n  plain\n");
    }

    #[test]
    fn reads_resident_memory() {
        let status = "Name:\twasilock\nVmPeak:\t  9000 kB\nVmRSS:\t   1234 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss(status), Some(1234 * 1024));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
    }
}
