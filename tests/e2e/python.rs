//! End-to-end: Python (wasmtime-py) hosting the lock component.
//!
//! `examples/python/host.py` loads the built-in component (written by `wasilock component
//! --out`) with wasmtime-py's component API, over lock stores kept in memory by Python. Over
//! HTTP it must answer every case of `http_cases` exactly as our host does, pass Dapr's
//! conformance sequence, give one winner among concurrent callers, and read bodies within the
//! bound it hands the component through `settings`; through the typed `lock` export it must
//! pass the conformance sequence and give daprd's refusals. The venv comes from
//! `examples/python/requirements.txt`; under `CI=true` a missing Python or a failed install
//! fails these tests.

use common::http_cases::{HttpAnswer, assert_same_answers, http_cases};
use common::installs::{python_venv, required};
use common::python_host::{LockError, PythonHttpHost, PythonTypedCalls, requirements};
use common::sequences::{HttpLockClient, LockClient, conformance_sequence_with};
use common::{Host, Options, component, resources};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;
use tempfile::TempDir;
use wasilock_testkit as common;

/// The venv's `python`, or `None` (reported as skipped) outside CI when it cannot be made.
fn python() -> Option<PathBuf> {
    required(
        &python_venv("python-host", &requirements()),
        "wasmtime-py (examples/python/requirements.txt)",
    )
}

/// The built-in component in a temporary directory, as `wasilock component --out` writes it.
fn lock_component() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lock.wasm");
    common::installs::run(
        std::process::Command::new(common::binary())
            .arg("component")
            .arg("--out")
            .arg(&file),
    )
    .expect("wasilock component --out");
    (dir, file)
}

/// Our host with one empty in-memory store, `lockstore`, and `args`.
fn our_host(args: &[&str]) -> (Host, TempDir) {
    let dir = resources(&[(
        "lockstore.yaml",
        &component("lockstore", "lock.in-memory", &[]),
    )]);
    let options = Options::new()
        .resources_path(&dir)
        .args(args.iter().copied());
    (Host::start_with(options), dir)
}

#[test]
fn every_http_case_is_answered_like_our_host() {
    let Some(python) = python() else { return };
    let (_dir, wasm) = lock_component();
    let python_host = PythonHttpHost::start(&python, &wasm, &[]);
    let (ours, _resources) = our_host(&[]);
    assert_same_answers(&python_host.base, &ours.base, &http_cases(), String::new);
}

#[test]
fn passes_daprs_conformance_sequence_over_http() {
    let Some(python) = python() else { return };
    let (_dir, wasm) = lock_component();
    let host = PythonHttpHost::start(&python, &wasm, &["--stores", "lockstore,other"]);
    let client = HttpLockClient::new(&host.base);
    conformance_sequence_with(&client, "lockstore");
    conformance_sequence_with(&client, "other");
    // daprd's health checks, answered by the host itself (as ours does).
    let (ours, _resources) = our_host(&[]);
    for path in ["/v1.0/healthz", "/v1.0/healthz/outbound"] {
        let health = |base: &str| {
            let mut reply = common::agent()
                .get(&format!("{base}{path}"))
                .call()
                .expect("GET");
            let body = reply.body_mut().read_to_string().unwrap();
            (
                reply.status().as_u16(),
                reply.headers().get("content-type").cloned(),
                body,
            )
        };
        assert_eq!(health(&host.base), (204, None, String::new()), "{path}");
        assert_eq!(health(&host.base), health(&ours.base), "{path}");
    }
}

#[test]
fn concurrent_callers_over_http_get_one_winner_per_round() {
    let Some(python) = python() else { return };
    let (_dir, wasm) = lock_component();
    let host = PythonHttpHost::start(&python, &wasm, &[]);
    let bases = std::slice::from_ref(&host.base);
    common::one_winner_rounds(bases, "lockstore", "contended", 8, 5);
}

/// POSTs `body` to `path` with `Connection: close` on a raw socket, with a `Content-Length`
/// or else in chunks of 500 bytes; gives the status and the body.
fn raw_post(base: &str, path: &str, body: &str, chunked: bool) -> (u16, String) {
    let mut socket = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_string()
    } else {
        format!("Content-Length: {}", body.len())
    };
    let mut request =
        format!("POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{framing}\r\n\r\n");
    if chunked {
        for chunk in body.as_bytes().chunks(500) {
            request.push_str(&format!(
                "{:x}\r\n{}\r\n",
                chunk.len(),
                std::str::from_utf8(chunk).unwrap()
            ));
        }
        request.push_str("0\r\n\r\n");
    } else {
        request.push_str(body);
    }
    // The host may answer and close before it has read an oversized body.
    let _ = socket.write_all(request.as_bytes());
    let mut response = String::new();
    let _ = socket.read_to_string(&mut response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head: {response:?}"));
    (head[9..12].parse().unwrap(), body.to_string())
}

#[test]
fn reads_bodies_within_the_bound_it_hands_the_component() {
    let Some(python) = python() else { return };
    let (_dir, wasm) = lock_component();
    let python_host = PythonHttpHost::start(&python, &wasm, &["--max-body-size", "1024"]);
    let (ours, _resources) = our_host(&["--max-body-size", "1Ki"]);
    let padded = |resource: &str, size: usize| {
        let json = format!(r#"{{"resourceId":"{resource}","lockOwner":"a","expiryInSeconds":5}}"#);
        format!("{json}{}", " ".repeat(size - json.len()))
    };
    let lock = "/v1.0-alpha1/lock/lockstore";
    let too_large = (
        413,
        r#"{"errorCode":"ERR_MALFORMED_REQUEST","message":"failed deserializing HTTP body: request body larger than 1024 bytes"}"#.to_string(),
    );
    let ok = (200, r#"{"success":true}"#.to_string());
    for base in [&python_host.base, &ours.base] {
        assert_eq!(
            raw_post(base, lock, &padded("a", 1024), false),
            ok,
            "{base}"
        );
        assert_eq!(
            raw_post(base, lock, &padded("b", 1025), false),
            too_large,
            "{base}"
        );
        assert_eq!(raw_post(base, lock, &padded("c", 1024), true), ok, "{base}");
        assert_eq!(
            raw_post(base, lock, &padded("d", 4096), true),
            too_large,
            "{base}"
        );
    }
}

#[test]
fn no_stores_is_answered_like_our_host() {
    let Some(python) = python() else { return };
    let (_dir, wasm) = lock_component();
    let python_host = PythonHttpHost::start(&python, &wasm, &["--stores", ""]);
    let empty = tempfile::tempdir().unwrap();
    let ours = Host::start_with(Options::new().resources_path(&empty));
    let cases = http_cases();
    let not_configured = HttpAnswer {
        status: 500,
        content_type: Some("application/json".into()),
        body: r#"{"errorCode":"ERR_LOCK_STORE_NOT_CONFIGURED","message":"lock store is not configured"}"#.into(),
    };
    let answers = assert_same_answers(&python_host.base, &ours.base, &cases, String::new);
    assert_eq!(answers[0], not_configured, "{:?}", cases[0]);
}

#[test]
fn the_typed_lock_export_passes_the_conformance_sequence_and_gives_daprds_refusals() {
    let Some(python) = python() else { return };
    let (_dir, wasm) = lock_component();
    let calls = PythonTypedCalls::start(&python, &wasm, &[]);
    conformance_sequence_with(&calls, "lockstore");

    // Each refusal as `Some(lock-error)`; an answer that is `Ok` gives `None`.
    let try_lock = |store: &str, resource: &str, owner: &str, expiry: i32| {
        calls.try_lock(store, resource, owner, expiry).err()
    };
    let unlock =
        |store: &str, resource: &str, owner: &str| calls.unlock(store, resource, owner).err();
    let malformed = |message: &str| Some(LockError::new("malformed-request", message));
    let not_positive = "ExpiryInSeconds is not positive in lock store lockstore";
    assert_eq!(try_lock("lockstore", "r", "o", 0), malformed(not_positive));
    assert_eq!(try_lock("lockstore", "r", "o", -5), malformed(not_positive));
    // The expiry is checked first, even before the store is looked up.
    assert_eq!(
        try_lock("nope", "", "", 0),
        malformed("ExpiryInSeconds is not positive in lock store nope")
    );
    let empty_resource = malformed("ResourceId is empty in lock store lockstore");
    let empty_owner = malformed("LockOwner is empty in lock store lockstore");
    assert_eq!(try_lock("lockstore", "", "o", 10), empty_resource);
    assert_eq!(try_lock("lockstore", "r", "", 10), empty_owner);
    assert_eq!(unlock("lockstore", "", "o"), empty_resource);
    assert_eq!(unlock("lockstore", "r", ""), empty_owner);
    let not_found = Some(LockError::new(
        "store-not-found",
        "lock store nope not found",
    ));
    assert_eq!(try_lock("nope", "r", "o", 10), not_found);
    assert_eq!(unlock("nope", "r", "o"), not_found);
    let pipes = "input key/keyPrefix 'a||b' can't contain '||'";
    assert_eq!(
        try_lock("lockstore", "a||b", "o", 10),
        Some(LockError::new(
            "try-lock-failed",
            &format!("failed to try acquiring lock: {pipes}")
        ))
    );
    assert_eq!(
        unlock("lockstore", "a||b", "o"),
        Some(LockError::new(
            "unlock-failed",
            &format!("failed to release lock: {pipes}")
        ))
    );
    assert_eq!(calls.try_lock("lockstore", "a|b", "o", 10), Ok(true));

    let unconfigured = PythonTypedCalls::start(&python, &wasm, &["--stores", ""]);
    let not_configured = LockError::new("store-not-configured", "lock store is not configured");
    assert_eq!(
        unconfigured.try_lock("lockstore", "r", "o", 10).err(),
        Some(not_configured.clone())
    );
    assert_eq!(
        unconfigured.unlock("lockstore", "r", "o").err(),
        Some(not_configured)
    );
}
