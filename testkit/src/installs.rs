//! Pinned third-party tools for the tests, installed by the tests themselves: Python packages
//! into a venv from a `requirements.txt`, npm packages from a `package-lock.json`, each under
//! `target/installs/<name>/` and reinstalled only when its pins change.
//!
//! A missing `python3` (with venv), `node` or `npm` is installed from Debian's packages when
//! this user can (root with `apt-get`). When that fails, or an install fails, [`required`]
//! fails the test under `CI=true` and otherwise says so on stderr and gives `None`.

use crate::{apt, workspace};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

/// The result of an install: where it is, or why it is missing.
pub type Installed = Result<PathBuf, String>;

/// `installed`'s path; under `CI=true` a missing install fails the test, otherwise it is
/// reported on stderr as skipped and `None` is returned.
pub fn required(installed: &Installed, what: &str) -> Option<PathBuf> {
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

/// The `python` of a venv called `name` with the packages pinned in `requirements`
/// installed; made once per process and name.
pub fn python_venv(name: &str, requirements: &Path) -> Installed {
    once(&format!("venv:{name}"), || install_venv(name, requirements))
}

/// A folder called `name` holding `package.json` and `package-lock.json` from `source` and
/// the `node_modules` they pin (`npm ci`); made once per process and name.
pub fn npm_folder(name: &str, source: &Path) -> Installed {
    once(&format!("npm:{name}"), || install_npm(name, source))
}

/// Whether `node` and `npm` work, installing Debian's packages when they do not.
pub fn node_available() -> bool {
    let works = || crate::available("node") && crate::available("npm");
    works() || (apt::install(&["nodejs", "npm"], "for the Node.js tests") && works())
}

/// Runs `install` once per process for `key`, and remembers its result.
fn once(key: &str, install: impl FnOnce() -> Installed) -> Installed {
    static DONE: OnceLock<Mutex<HashMap<String, Arc<OnceLock<Installed>>>>> = OnceLock::new();
    let cell = DONE
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(key.to_string())
        .or_default()
        .clone();
    cell.get_or_init(install).clone()
}

fn installs_dir(name: &str) -> PathBuf {
    workspace().join("target").join("installs").join(name)
}

fn install_venv(name: &str, requirements: &Path) -> Installed {
    let venv_works = || {
        Command::new("python3")
            .args(["-c", "import ensurepip, venv"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !(venv_works()
        || (apt::install(&["python3", "python3-venv"], "for the Python tests") && venv_works()))
    {
        return Err("python3 with venv is not installed".into());
    }
    let pins = std::fs::read(requirements)
        .map_err(|e| format!("cannot read {}: {e}", requirements.display()))?;
    let dir = installs_dir(name);
    let python = dir.join("bin").join("python");
    if up_to_date(&dir, &pins) && python.exists() {
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
        .arg(requirements))?;
    stamp(&dir, &pins)?;
    Ok(python)
}

fn install_npm(name: &str, source: &Path) -> Installed {
    if !node_available() {
        return Err("node and npm are not installed".into());
    }
    let lock = std::fs::read(source.join("package-lock.json"))
        .map_err(|e| format!("cannot read {}/package-lock.json: {e}", source.display()))?;
    let dir = installs_dir(name);
    if up_to_date(&dir, &lock) && dir.join("node_modules").exists() {
        return Ok(dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(source.join(file), dir.join(file))
            .map_err(|e| format!("cannot copy {file} to {}: {e}", dir.display()))?;
    }
    run(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir))?;
    stamp(&dir, &lock)?;
    Ok(dir)
}

/// Whether `dir` was installed from exactly `pins`.
fn up_to_date(dir: &Path, pins: &[u8]) -> bool {
    std::fs::read(dir.join(".pins")).is_ok_and(|installed| installed == pins)
}

fn stamp(dir: &Path, pins: &[u8]) -> Result<(), String> {
    std::fs::write(dir.join(".pins"), pins).map_err(|e| format!("cannot write the stamp: {e}"))
}

/// Runs `command`, with its output in the error when it fails.
pub fn run(command: &mut Command) -> Result<(), String> {
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
