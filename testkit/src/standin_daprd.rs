//! A stand-in daprd (`tests/clients/standin_daprd.py`: the `dapr` package's own gRPC
//! servicer stubs and a stdlib HTTP server) on free loopback ports, for wasilock's upstream
//! flags; it records the calls it sees.

use crate::ports::free_port;
use crate::sdk_clients::clients_dir;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running stand-in daprd; killed when dropped.
pub struct StandinDaprd {
    child: Option<Child>,
    python: PathBuf,
    /// Its HTTP API's port.
    pub http_port: u16,
    /// Its gRPC API's port.
    pub grpc_port: u16,
}

impl StandinDaprd {
    /// Starts one with `python` (a venv with the pinned `dapr` package) on free ports.
    pub fn start(python: &Path) -> StandinDaprd {
        let mut standin = StandinDaprd {
            child: None,
            python: python.to_path_buf(),
            http_port: free_port(),
            grpc_port: free_port(),
        };
        standin.restart();
        standin
    }

    /// `http://127.0.0.1:PORT` of its HTTP API (`--dapr-upstream-http`).
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// `http://127.0.0.1:PORT` of its gRPC API (`--dapr-upstream-grpc`).
    pub fn grpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// Kills it (SIGKILL); its ports are free again.
    pub fn kill(&mut self) {
        crate::processes::end_taken(&mut self.child);
    }

    /// Starts it again on the same ports (after [`StandinDaprd::kill`]); returns once it
    /// listens. The calls it records start afresh.
    pub fn restart(&mut self) {
        self.kill();
        for attempt in 1.. {
            let mut child = Command::new(&self.python)
                .arg(clients_dir().join("standin_daprd.py"))
                .args([self.http_port.to_string(), self.grpc_port.to_string()])
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start the stand-in daprd");
            let mut line = String::new();
            let stdout = child.stdout.take().expect("piped");
            let _ = BufReader::new(stdout).read_line(&mut line);
            if line.trim() == "standin ready" {
                self.child = Some(child);
                return;
            }
            let status = child.wait();
            // A port may be held for a moment after the previous process died.
            assert!(
                attempt < 50,
                "the stand-in daprd did not start ({status:?})"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The calls it has seen: `grpc <path>`, `http <METHOD> <path>`, and `processed <id>
    /// status=<n>` for each event a subscriber acknowledged.
    pub fn calls(&self) -> Vec<String> {
        let url = format!("{}/standin/calls", self.http_url());
        let mut response = ureq::get(&url)
            .call()
            .expect("ask the stand-in for its calls");
        let body = response
            .body_mut()
            .read_to_string()
            .expect("the stand-in's calls");
        serde_json::from_str(&body).expect("a JSON list of calls")
    }
}

impl Drop for StandinDaprd {
    fn drop(&mut self) {
        self.kill();
    }
}
