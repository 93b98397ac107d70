//! Builds the guest component for `wasm32-wasip2` and hands its path to the host crate, so
//! the `wasilock` binary embeds it. Installs the `wasm32-wasip2` target with rustup when the
//! toolchain lacks it. Compiles Dapr's gRPC protos (`proto/third_party/dapr/`, trimmed) and
//! wasilock's alpha2 one (`proto/wasilock/`) with protox, in Rust, so no system `protoc` is
//! needed, and keeps their descriptor set for server reflection; and etcd's v3 protos
//! (`proto/third_party/etcd/`, trimmed) into the client `lock.etcd` uses. Other projects'
//! protos live under `proto/third_party/`, imported by the paths their projects give them.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir.parent().expect("host/ lives in the workspace");
    for input in [
        "guest/src",
        "guest/Cargo.toml",
        "rules/src",
        "rules/Cargo.toml",
        "wit",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", workspace.join(input).display());
    }

    compile_protos(&manifest_dir);
    compile_etcd_protos(&manifest_dir);
    ensure_target_installed();

    // A target directory of its own: the outer cargo holds the lock on the main one.
    let target_dir = workspace.join("target").join("guest-build");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace)
        .args(["build", "--package", "wasilock-guest", "--target", TARGET])
        .args(["--profile", "guest", "--target-dir"])
        .arg(&target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .status()
        .expect("run cargo to build the guest component");
    assert!(status.success(), "building the guest component failed");

    let wasm = target_dir
        .join(TARGET)
        .join("guest")
        .join("wasilock_guest.wasm");
    let embedded =
        PathBuf::from(env::var("OUT_DIR").expect("set by cargo")).join("wasilock_guest.wasm");
    std::fs::copy(&wasm, &embedded).expect("copy the guest component");
    println!("cargo:rustc-env=WASILOCK_GUEST_WASM={}", embedded.display());
}

/// Generates the gRPC server and client code for Dapr's API subset and wasilock's alpha2 lock
/// API, and writes the encoded descriptor set (`dapr_descriptor.bin`) that reflection serves.
fn compile_protos(manifest_dir: &Path) {
    let proto_dir = manifest_dir.join("proto");
    println!("cargo:rerun-if-changed={}", proto_dir.display());
    let files = protox::compile(
        [
            "dapr/proto/runtime/v1/dapr.proto",
            "wasilock/lock/v1alpha2/locks.proto",
        ],
        [proto_dir.clone(), proto_dir.join("third_party")],
    )
    .expect("compile the protos in host/proto");
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    std::fs::write(
        out_dir.join("dapr_descriptor.bin"),
        prost::Message::encode_to_vec(&files),
    )
    .expect("write the descriptor set");
    tonic_prost_build::configure()
        .build_transport(false)
        .compile_fds(files)
        .expect("generate the gRPC code");
}

/// Generates the gRPC client code for etcd's v3 API (`etcdserverpb`, `mvccpb`): clients
/// only, without tonic's transport helpers (the store makes its own channels).
fn compile_etcd_protos(manifest_dir: &Path) {
    let proto_dir = manifest_dir.join("proto").join("third_party");
    let files = protox::compile(["etcd/etcdserverpb/rpc.proto"], [&proto_dir])
        .expect("compile the etcd protos in host/proto/third_party/etcd");
    tonic_prost_build::configure()
        .build_server(false)
        .build_transport(false)
        .compile_fds(files)
        .expect("generate the etcd client code");
}

/// Adds the wasm target with rustup when the active toolchain does not have it.
fn ensure_target_installed() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .expect("run rustc --print sysroot");
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_string();
    if Path::new(&sysroot)
        .join("lib/rustlib")
        .join(TARGET)
        .exists()
    {
        return;
    }
    println!("cargo:warning=installing the {TARGET} target with rustup (needed for the guest)");
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", TARGET]);
    if let Ok(toolchain) = env::var("RUSTUP_TOOLCHAIN") {
        rustup.args(["--toolchain", &toolchain]);
    }
    let status = rustup.status().expect("run rustup target add");
    assert!(status.success(), "`rustup target add {TARGET}` failed");
}
