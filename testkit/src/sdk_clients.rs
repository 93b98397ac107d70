//! Dapr's own SDKs as test clients, installed by the tests themselves at the versions pinned
//! in `tests/clients/` (`requirements.txt`, `package-lock.json`): a Python venv and an npm
//! folder under `target/sdk-clients/`, reinstalled only when the pins change.
//!
//! A missing `python3` (with venv), `node` or `npm` is installed from Debian's packages when
//! this user can (root with `apt-get`). When that fails, or an install of the SDKs fails,
//! [`python`] and [`node`] fail the test under `CI=true` and otherwise return `None` after
//! saying so on stderr.

use crate::{apt, workspace};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The repository's `tests/clients/` folder: the scripts and their pins.
pub fn clients_dir() -> PathBuf {
    workspace().join("tests").join("clients")
}

/// The venv's `python` with the pinned `dapr` package, installed on first use.
pub fn python() -> Option<PathBuf> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    installed_or_skipped(PYTHON.get_or_init(install_python), "the Python SDK")
}

/// A folder with the pinned `@dapr/dapr` in `node_modules` and the JS test script, installed
/// on first use.
pub fn node() -> Option<PathBuf> {
    static NODE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    installed_or_skipped(NODE.get_or_init(install_node), "the JavaScript SDK")
}

fn installed_or_skipped(installed: &Result<PathBuf, String>, what: &str) -> Option<PathBuf> {
    match installed {
        Ok(path) => Some(path.clone()),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{what} is needed under CI=true: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED: {what} is not available: {why}");
            None
        }
    }
}

/// Whether `works`, after installing `packages` from Debian's if it did not.
fn installed(works: impl Fn() -> bool, packages: &[&str], why: &str) -> bool {
    works() || (apt::install(packages, why) && works())
}

fn install_python() -> Result<PathBuf, String> {
    let venv_works = || {
        Command::new("python3")
            .args(["-c", "import ensurepip, venv"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !installed(
        venv_works,
        &["python3", "python3-venv"],
        "for the Python SDK tests",
    ) {
        return Err("python3 with venv is not installed".into());
    }
    let requirements = std::fs::read(clients_dir().join("requirements.txt"))
        .map_err(|e| format!("cannot read tests/clients/requirements.txt: {e}"))?;
    let dir = workspace().join("target").join("sdk-clients").join("venv");
    let python = dir.join("bin").join("python");
    if up_to_date(&dir, &requirements) && python.exists() {
        return Ok(python);
    }
    let _ = std::fs::remove_dir_all(&dir);
    run(Command::new("python3").args(["-m", "venv"]).arg(&dir))?;
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .arg("-r")
        .arg(clients_dir().join("requirements.txt")))?;
    stamp(&dir, &requirements)?;
    Ok(python)
}

fn install_node() -> Result<PathBuf, String> {
    let node_works = || crate::available("node") && crate::available("npm");
    if !installed(
        node_works,
        &["nodejs", "npm"],
        "for the JavaScript SDK tests",
    ) {
        return Err("node and npm are not installed".into());
    }
    let lock = std::fs::read(clients_dir().join("package-lock.json"))
        .map_err(|e| format!("cannot read tests/clients/package-lock.json: {e}"))?;
    let dir = workspace().join("target").join("sdk-clients").join("js");
    // The script is copied every time: Node resolves `@dapr/dapr` next to it.
    let copy = |name: &str| {
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::copy(clients_dir().join(name), dir.join(name)))
            .map_err(|e| format!("cannot copy {name} to {}: {e}", dir.display()))
    };
    if !(up_to_date(&dir, &lock) && dir.join("node_modules").exists()) {
        let _ = std::fs::remove_dir_all(&dir);
        copy("package.json")?;
        copy("package-lock.json")?;
        run(Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir))?;
        stamp(&dir, &lock)?;
    }
    copy("dapr_js.mjs")?;
    Ok(dir)
}

/// Whether `dir` was installed from exactly `pins`.
fn up_to_date(dir: &Path, pins: &[u8]) -> bool {
    std::fs::read(dir.join(".pins")).is_ok_and(|installed| installed == pins)
}

fn stamp(dir: &Path, pins: &[u8]) -> Result<(), String> {
    std::fs::write(dir.join(".pins"), pins).map_err(|e| format!("cannot write the stamp: {e}"))
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
