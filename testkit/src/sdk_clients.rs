//! Dapr's own SDKs as test clients, at the versions pinned in `tests/clients/`
//! (`requirements.txt`, `package-lock.json`), installed through [`crate::installs`].

use crate::installs::{self, required};
use crate::workspace;
use std::path::PathBuf;
use std::process::Command;

/// The repository's `tests/clients/` folder: the scripts and their pins.
pub fn clients_dir() -> PathBuf {
    workspace().join("tests").join("clients")
}

/// A `python` with the pinned `dapr` package.
pub fn python() -> Option<PathBuf> {
    let requirements = clients_dir().join("requirements.txt");
    required(
        &installs::python_venv("dapr-sdk", &requirements),
        "the Python SDK",
    )
}

/// A folder with the pinned `@dapr/dapr` in `node_modules` and the JS test scripts (copied
/// there, since Node resolves packages next to the script).
pub fn node() -> Option<PathBuf> {
    let installed = installs::npm_folder("dapr-sdk-js", &clients_dir()).and_then(|dir| {
        for script in ["dapr_js.mjs", "dapr_js_upstream.mjs"] {
            std::fs::copy(clients_dir().join(script), dir.join(script))
                .map_err(|e| format!("cannot copy {script}: {e}"))?;
        }
        Ok(dir)
    });
    required(&installed, "the JavaScript SDK")
}

/// Runs a client script and checks that it exited 0 with `last_line` as its last line of
/// output (its output is in the failure message).
pub fn passes(command: &mut Command, last_line: &str) {
    let output = command.output().expect("run an SDK client script");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.trim_end().ends_with(last_line),
        "{command:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
}
