//! Dapr's own SDKs as test clients, at the versions pinned in `tests/clients/`
//! (`requirements.txt`, `package-lock.json`), installed through [`crate::installs`].

use crate::installs::{self, required};
use crate::workspace;
use std::path::PathBuf;

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
