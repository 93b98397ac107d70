//! Lock components built for tests.

use crate::workspace;

/// Builds the guest with its test-only `fault-injection` feature, in its own target dir.
pub fn fault_injection_guest() -> std::path::PathBuf {
    let workspace = workspace();
    let target_dir = workspace.join("target").join("fault-guest");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .current_dir(&workspace)
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
