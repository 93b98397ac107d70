//! Installs a missing Debian package for a test, when this user can (root with `apt-get`).

use std::process::{Command, Stdio};

/// Installs `packages` with `apt-get` (after an update); `false` when this user cannot or
/// the install failed. Says on stderr what it installs and why.
pub fn install(packages: &[&str], why: &str) -> bool {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let has_apt = Command::new("apt-get")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok();
    if !(is_root && has_apt) {
        return false;
    }
    eprintln!("installing {} with apt-get {why}", packages.join(" "));
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(["-o", "DPkg::Lock::Timeout=300", "-qq"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    apt(&["update"]) && apt(&[&["install", "-y"][..], packages].concat())
}
