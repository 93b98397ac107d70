//! The Python example host (`examples/python/host.py`, wasmtime-py) as a child process: its
//! HTTP server on a free port, or its typed-calls mode driven line by line; killed on drop.

use crate::host::START_TIMEOUT;
use crate::processes::drain;
use crate::sequences::LockClient;
use crate::workspace;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// `examples/python/requirements.txt`: the pins of the host's venv.
pub fn requirements() -> PathBuf {
    workspace().join("examples/python/requirements.txt")
}

fn host_command(python: &Path, mode: &str, component: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(python);
    command
        .arg(workspace().join("examples/python/host.py"))
        .arg(mode)
        .arg("--component")
        .arg(component)
        .args(args)
        // No __pycache__ beside the example's sources.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// `host.py serve`: the lock API over HTTP, served by the component's `http-api` export.
pub struct PythonHttpHost {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl PythonHttpHost {
    /// Starts `host.py serve` with `python` on a free port (`--port 0`), plus `args`
    /// (`--stores`, `--max-body-size`), and waits for the address it prints.
    pub fn start(python: &Path, component: &Path, args: &[&str]) -> PythonHttpHost {
        let mut args = args.to_vec();
        args.extend(["--port", "0"]);
        let mut child = host_command(python, "serve", component, &args)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
        let stderr = collected_stderr(&mut child);
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (sender, first_line) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = sender.send(stdout.lines().next());
        });
        let line = first_line.recv_timeout(START_TIMEOUT);
        let Ok(Some(Ok(line))) = line else {
            crate::processes::end(&mut child);
            panic!(
                "host.py printed no address ({line:?}); stderr:\n{}",
                stderr.lock().unwrap()
            );
        };
        let base = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        PythonHttpHost { child, base }
    }
}

impl Drop for PythonHttpHost {
    fn drop(&mut self) {
        crate::processes::end(&mut self.child);
    }
}

/// `host.py calls`: the component's typed `lock` export, one JSON line per call.
pub struct PythonTypedCalls {
    child: Child,
    session: Mutex<(ChildStdin, BufReader<ChildStdout>)>,
    stderr: Arc<Mutex<String>>,
}

/// A refused typed call: the `lock-error` case and Dapr's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockError {
    /// The case, as named in the WIT (`malformed-request`, ...).
    pub case: String,
    /// The message it carries.
    pub message: String,
}

impl LockError {
    /// A `lock-error` with `case` and `message`.
    pub fn new(case: &str, message: &str) -> LockError {
        LockError {
            case: case.into(),
            message: message.into(),
        }
    }
}

impl PythonTypedCalls {
    /// Starts `host.py calls` with `python`, plus `args` (`--stores`).
    pub fn start(python: &Path, component: &Path, args: &[&str]) -> PythonTypedCalls {
        let mut child = host_command(python, "calls", component, args)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
        let stderr = collected_stderr(&mut child);
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        PythonTypedCalls {
            child,
            session: Mutex::new((stdin, stdout)),
            stderr,
        }
    }

    /// Sends one call (`["try_lock", ...]`) and gives the `ok` value or the `lock-error`.
    pub fn call(&self, call: serde_json::Value) -> Result<serde_json::Value, LockError> {
        let mut session = self.session.lock().unwrap();
        let (stdin, stdout) = &mut *session;
        let mut answer = String::new();
        let sent = writeln!(stdin, "{call}").and_then(|()| stdin.flush());
        if sent.is_err() || stdout.read_line(&mut answer).unwrap_or(0) == 0 {
            panic!(
                "host.py calls gave no answer to {call}; stderr:\n{}",
                self.stderr.lock().unwrap()
            );
        }
        let answer: serde_json::Value =
            serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer:?} for {call}"));
        match (&answer["ok"], &answer["error"]) {
            (serde_json::Value::Null, serde_json::Value::Array(error)) => Err(LockError::new(
                error[0].as_str().expect("a case"),
                error[1].as_str().expect("a message"),
            )),
            (ok, serde_json::Value::Null) if !ok.is_null() => Ok(ok.clone()),
            _ => panic!("unexpected answer {answer} to {call}"),
        }
    }
}

impl LockClient for PythonTypedCalls {
    type Error = LockError;
    fn try_lock(
        &self,
        store: &str,
        resource: &str,
        owner: &str,
        expiry: i32,
    ) -> Result<bool, LockError> {
        let answer = self.call(serde_json::json!([
            "try_lock", store, resource, owner, expiry
        ]))?;
        Ok(answer
            .as_bool()
            .unwrap_or_else(|| panic!("not a bool: {answer}")))
    }

    /// The `unlock-status` case, numbered as Dapr's `UnlockResponse.Status`.
    fn unlock(&self, store: &str, resource: &str, owner: &str) -> Result<i64, LockError> {
        let answer = self.call(serde_json::json!(["unlock", store, resource, owner]))?;
        let statuses = [
            "success",
            "lock-does-not-exist",
            "lock-belongs-to-others",
            "internal-error",
        ];
        let status = statuses.iter().position(|s| answer == *s);
        Ok(status.unwrap_or_else(|| panic!("not an unlock-status: {answer}")) as i64)
    }
}

impl Drop for PythonTypedCalls {
    fn drop(&mut self) {
        crate::processes::end(&mut self.child);
    }
}

/// The child's stderr, gathered as it comes.
fn collected_stderr(child: &mut Child) -> Arc<Mutex<String>> {
    let sink = Arc::new(Mutex::new(String::new()));
    drain(child.stderr.take().expect("a piped stderr"), sink.clone());
    sink
}
