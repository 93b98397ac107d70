//! Node.js hosting the lock component through jco, exactly as `examples/node/` documents it:
//! the example's files in a temporary folder, its pinned packages from
//! [`npm_folder`], the built-in component written by
//! `wasilock component --out`, transpiled by `npm run transpile` and served by `server.js`.

use crate::host::{START_TIMEOUT, binary};
use crate::installs::{npm_folder, required, run};
use crate::processes::drain;
use crate::workspace;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The example's folder, `examples/node/`.
fn example_dir() -> PathBuf {
    workspace().join("examples").join("node")
}

/// A running `node server.js`, killed on drop.
pub struct NodeHost {
    child: Child,
    /// `http://127.0.0.1:PORT`, as the server printed it.
    pub base: String,
    /// Everything printed on stderr so far.
    pub stderr: Arc<Mutex<String>>,
    _app: tempfile::TempDir,
}

impl NodeHost {
    /// Starts `server.js` on a free port with the extra `args` (`--stores`,
    /// `--max-body-size`); `None` when Node.js or the pinned packages are missing (see
    /// [`required`]). Panics when transpiling or starting fails.
    pub fn start(args: &[&str]) -> Option<NodeHost> {
        let packages = required(
            &npm_folder("node-host", &example_dir()),
            "Node.js with the example's pinned packages (jco, preview2-shim)",
        )?;
        let app = tempfile::tempdir().expect("a temporary folder for the example");
        prepare(app.path(), &packages).unwrap_or_else(|e| panic!("{e}"));
        let mut child = Command::new("node")
            .arg("server.js")
            .args(["--port", "0"])
            .args(args)
            .current_dir(app.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start node");
        let stderr = Arc::new(Mutex::new(String::new()));
        drain(child.stderr.take().unwrap(), stderr.clone());
        let (address, printed) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some((_, base)) = line.split_once(" listening on ") {
                    let _ = address.send(base.trim().to_string());
                }
            }
        });
        let base = match printed.recv_timeout(START_TIMEOUT) {
            Ok(base) => base,
            Err(_) => {
                crate::processes::end(&mut child);
                // Let the reader catch the last lines.
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "server.js printed no address within {START_TIMEOUT:?} or exited; stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        Some(NodeHost {
            child,
            base,
            stderr,
            _app: app,
        })
    }
}

impl Drop for NodeHost {
    fn drop(&mut self) {
        crate::processes::end(&mut self.child);
    }
}

/// Fills `app` as a user of the example would: its files, its packages (a link to the
/// installed `node_modules`), `lock.wasm` from `wasilock component --out`, and
/// `npm run transpile`.
fn prepare(app: &Path, packages: &Path) -> Result<(), String> {
    let example = example_dir();
    let entries = std::fs::read_dir(&example)
        .map_err(|e| format!("cannot list {}: {e}", example.display()))?;
    for entry in entries.map_while(Result::ok) {
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            std::fs::copy(entry.path(), app.join(entry.file_name()))
                .map_err(|e| format!("cannot copy {}: {e}", entry.path().display()))?;
        }
    }
    std::os::unix::fs::symlink(packages.join("node_modules"), app.join("node_modules"))
        .map_err(|e| format!("cannot link node_modules: {e}"))?;
    run(Command::new(binary())
        .args(["component", "--out"])
        .arg(app.join("lock.wasm")))?;
    run(Command::new("npm")
        .args(["run", "transpile"])
        .current_dir(app))
}
