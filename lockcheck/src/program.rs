//! The `wasilock` binary the setups start: built by cargo for the profile this crate was
//! built with, so that it matches the sources (cargo does not build another package's
//! binaries for this crate's tests on its own).

use std::path::PathBuf;
use std::process::Command;

/// Runs `cargo build -p wasilock` (with `--release` in a release build of this crate) and
/// returns the binary beside the running executable ([`wasilock_testkit::binary`]).
pub fn build_wasilock() -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .current_dir(wasilock_testkit::workspace())
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
    let binary = wasilock_testkit::binary();
    if !binary.is_file() {
        return Err(format!("cargo built no {}", binary.display()));
    }
    Ok(binary)
}
