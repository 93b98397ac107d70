//! End-to-end: a lock component written in Python (componentize-py) running in our host.
//!
//! The test installs the pinned componentize-py (`examples/componentize-py/requirements.txt`),
//! builds the example into `target/componentize-py-example/policy.wasm`, and runs the
//! `wasilock` binary with `--component` on it, beside a host running the built-in component.
//! It checks that the host serves the Python component through `wasilock:lock/http-api`, that
//! every answer of the lock API (`common::http_cases`, plus more malformed and numeric bodies)
//! is the built-in component's byte for byte, that Dapr's conformance sequence passes, that
//! the host's body bound reaches the component through `settings`, and that the component's
//! own owner policy holds over HTTP and gRPC (the typed `lock` export).

use wasilock_testkit as common;

use crate::grpc_client::{dapr, runtime};
use common::http_cases::{self, HttpCase, http_cases, replay};
use common::installs::{python_venv, required, run};
use common::{Host, Options, component, resources};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use tonic::transport::Channel;
use tonic::{Code, Status};
use wasilock::api::grpc::proto::TryLockRequest;
use wasilock::api::grpc::proto::dapr_client::DaprClient;

/// The store whose owners the example's policy restricts (`policy.py`).
const POLICY_STORE: &str = "teamstore";
/// The answer the policy gives an owner of `POLICY_STORE` without the `team-a/` prefix
/// (`team-b/bob`), documented in the example's README.
const REFUSAL: &str = r#"{"errorCode":"ERR_MALFORMED_REQUEST","message":"LockOwner team-b/bob is not allowed in lock store teamstore: owners must start with team-a/"}"#;

/// The example's directory.
fn example() -> PathBuf {
    common::workspace().join("examples/componentize-py")
}

/// The example built with the pinned componentize-py, once per test process; `None` when
/// componentize-py is not installed and `CI` is not `true`.
fn python_component() -> Option<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let python = required(
        &python_venv("componentize-py", &example().join("requirements.txt")),
        "componentize-py",
    )?;
    let built = BUILT.get_or_init(|| build(&python.with_file_name("componentize-py")));
    Some(built.clone().unwrap_or_else(|e| panic!("{e}")))
}

/// Runs the README's build command on a copy of the example's sources (so the build leaves
/// no bytecode caches in the example), and gives the component's path.
fn build(componentize_py: &Path) -> Result<PathBuf, String> {
    let dir = common::workspace().join("target/componentize-py-example");
    let sources = dir.join("app");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&sources).map_err(|e| format!("cannot make {sources:?}: {e}"))?;
    for entry in std::fs::read_dir(example()).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|ext| ext == "py") {
            std::fs::copy(&path, sources.join(path.file_name().unwrap()))
                .map_err(|e| format!("cannot copy {path:?}: {e}"))?;
        }
    }
    let output = dir.join("policy.wasm");
    run(Command::new(componentize_py)
        .arg("-d")
        .arg(common::workspace().join("wit"))
        .args(["-w", "lock-api", "componentize", "app", "-o"])
        .arg(&output)
        .current_dir(&sources))?;
    Ok(output)
}

/// A resources directory with two empty in-memory stores: `lockstore` (no policy) and
/// `POLICY_STORE`.
fn two_stores() -> tempfile::TempDir {
    resources(&[
        (
            "lockstore.yaml",
            &component("lockstore", "lock.in-memory", &[]),
        ),
        (
            "teamstore.yaml",
            &component(POLICY_STORE, "lock.in-memory", &[]),
        ),
    ])
}

/// A host on `resources` with `extra` arguments, running `wasm` (or the built-in component).
fn start(resources: &tempfile::TempDir, wasm: Option<&Path>, extra: &[&str]) -> Host {
    let mut args = vec!["--resources-path", resources.path().to_str().unwrap()];
    if let Some(wasm) = wasm {
        args.extend(["--component", wasm.to_str().unwrap()]);
    }
    args.extend(extra);
    Host::start_with(Options::new().args(args))
}

/// A try-lock on `lockstore`'s path with this raw body.
fn lock_body(body: &str) -> HttpCase {
    HttpCase {
        method: "POST",
        path: "/v1.0-alpha1/lock/lockstore".into(),
        body: body.into(),
    }
}

/// Bodies beyond `http_cases` that exercise the JSON reader: every kind of syntax error (with
/// its line and column), numbers at the edges of int32, u64 and f64, and values quoted back in
/// error messages.
fn body_cases() -> Vec<HttpCase> {
    [
        " ",
        "{\"a\" 1}",
        "{\"a\":}",
        "{\"a\":1,}",
        "[1,",
        "[1 2]",
        "{\"a\":[1,]}",
        "{\"a\":tru}",
        "{\"a\":nul}",
        "not json",
        "{\"a\":\"\\x\"}",
        "\u{0}",
        "{\"a\":01}",
        "{\"a\":1.}",
        "{\"a\":-}",
        "{\"a\":1e}",
        "{\"a\":1e+}",
        "{1:2}",
        "{\"a\":1 \"b\":2}",
        "{\"a\":1,\"b\"",
        "{\"a\":\"x",
        "{\"a\":\"\\u12\"}",
        "{\"a\":\"\\ud800\"}",
        "{\"a\":\"\\ud800\\u0041\"}",
        "{\"a\":\"\\udc00\"}",
        "{\"a\":\"\t\"}",
        "{\"resourceId\":\"r\"}\n\n  x",
        "{\"a\":1}}",
        "\"s\"",
        "5",
        "true",
        r#"{"expiryInSeconds":1e400}"#,
        r#"{"expiryInSeconds":1e20}"#,
        r#"{"expiryInSeconds":1e16}"#,
        r#"{"expiryInSeconds":1e15}"#,
        r#"{"expiryInSeconds":1e-6}"#,
        r#"{"expiryInSeconds":0.00001}"#,
        r#"{"expiryInSeconds":-2.5e-300}"#,
        r#"{"expiryInSeconds":5e-324}"#,
        r#"{"expiryInSeconds":123456.789}"#,
        r#"{"expiryInSeconds":1.5e1}"#,
        r#"{"expiryInSeconds":0.1e2}"#,
        r#"{"expiryInSeconds":2147483648}"#,
        r#"{"expiryInSeconds":-2147483649}"#,
        r#"{"expiryInSeconds":18446744073709551615}"#,
        r#"{"expiryInSeconds":18446744073709551616}"#,
        r#"{"expiryInSeconds":-9223372036854775809}"#,
        r#"{"expiryInSeconds":123456789012345678901234567890.5e-20}"#,
        r#"{"expiryInSeconds":1e99999999999}"#,
        r#"{"expiryInSeconds":0e99999999999}"#,
        r#"{"expiryInSeconds":1e-99999999999}"#,
        r#"{"expiryInSeconds":"1e20"}"#,
        r#"{"expiryInSeconds":" 5"}"#,
        r#"{"expiryInSeconds":"-0"}"#,
        r#"{"expiryInSeconds":-0}"#,
        r#"{"expiryInSeconds":-0.0}"#,
        r#"{"expiryInSeconds":true}"#,
        r#"{"expiryInSeconds":[1, 2.50, "a", {"b": null}]}"#,
        r#"{"resourceId":{"z":1,"a":[true,false],"é":"<\u2028\n\u001f\"\\/"}}"#,
        r#"{"resourceId":"a","resource_id":"b"}"#,
        r#"{"storeName":3}"#,
        r#"{"resourceId":"\ud83d\ude00 <&>","lockOwner":"o","expiryInSeconds":"7"}"#,
        r#"{"resourceId":"x","lockOwner":"o","expiryInSeconds":7,"resourceId":"y"}"#,
        r#"{"lockOwner":"a","lock_owner":1e400}"#,
        // Unknown members are scanned, not read: other errors, and no limits on numbers or
        // nesting; their strings are checked for UTF-8 and lone surrogates afterwards.
        r#"{"x":1e400,"resourceId":"big","lockOwner":"o","expiryInSeconds":5}"#,
        r#"{"x":[1,]}"#,
        r#"{"x":[1 2]}"#,
        r#"{"x":{"a":1,}}"#,
        r#"{"x":{"a" 1}}"#,
        r#"{"x":{"a":1 "b":2}}"#,
        r#"{"x":{1:2}}"#,
        r#"{"x":-}"#,
        r#"{"x":-"#,
        r#"{"x":1.}"#,
        r#"{"x":1.e5}"#,
        r#"{"x":1e}"#,
        r#"{"x":1e+"#,
        r#"{"x":01}"#,
        r#"{"x":tru}"#,
        "{\"x\":\"\t\"}",
        r#"{"x":"\q"}"#,
        r#"{"x":"\u12"}"#,
        r#"{"x":"abc"#,
        r#"{"x":"#,
        r#"{"x":["#,
        r#"{"x":{"#,
        r#"{"x":{"a""#,
        r#"{"x":"\ud800"}"#,
        r#"{"x":"ok \ud83d\ude00 \udc00"}"#,
        r#"{"x":"\\ud800"}"#,
        r#"{"x":"\ud800","y":[}"#,
    ]
    .into_iter()
    .map(String::from)
    .chain([
        // serde_json's nesting limit (128) in a value that is read, none in one that is not.
        "[".repeat(128),
        format!(r#"{{"resourceId":{}}}"#, "[".repeat(127)),
        format!(
            r#"{{"resourceId":{}1{}}}"#,
            "[".repeat(126),
            "]".repeat(126)
        ),
        format!(r#"{{"x":{}1{}}}"#, "[".repeat(300), "]".repeat(300)),
    ])
    .map(|body| lock_body(&body))
    .collect()
}

/// `TryLockAlpha1` of resource `typed` in `POLICY_STORE` for `owner`: its `success`, or the
/// status it was refused with.
async fn typed_lock(client: &mut DaprClient<Channel>, owner: &str) -> Result<bool, Status> {
    client
        .try_lock_alpha1(TryLockRequest {
            store_name: POLICY_STORE.into(),
            resource_id: "typed".into(),
            lock_owner: owner.into(),
            expiry_in_seconds: 30,
        })
        .await
        .map(|reply| reply.into_inner().success)
}

/// Replays `cases` on both hosts and asserts that every answer is the same.
fn assert_same_answers(python: &Host, built_in: &Host, cases: &[HttpCase]) {
    http_cases::assert_same_answers(&python.base, &built_in.base, cases, String::new);
}

#[test]
fn answers_every_case_like_the_built_in_component() {
    let Some(wasm) = python_component() else {
        return;
    };
    let stores = two_stores();
    let python = start(&stores, Some(&wasm), &[]);
    let built_in = start(&stores, None, &[]);
    let banner = python.banner();
    assert!(
        banner.contains(&format!(
            "component {} through wasilock:lock/http-api",
            wasm.display()
        )),
        "{banner}"
    );
    assert_same_answers(&python, &built_in, &http_cases());
    assert_same_answers(&python, &built_in, &body_cases());
    common::conformance_sequence(&python, "lockstore");
}

#[test]
fn the_owner_policy_holds_over_http_and_grpc() {
    let Some(wasm) = python_component() else {
        return;
    };
    let stores = two_stores();
    let python = start(&stores, Some(&wasm), &["--max-body-size", "100"]);
    let built_in = start(&stores, None, &["--max-body-size", "100"]);

    // An allowed owner locks and unlocks.
    assert_eq!(python.lock(POLICY_STORE, "r", "team-a/alice", 30), Ok(true));
    assert_eq!(
        python.lock(POLICY_STORE, "r", "team-a/carol", 30),
        Ok(false)
    );
    // Another owner is refused, before the store is asked: even on a free resource.
    for reply in [
        python
            .lock(POLICY_STORE, "free", "team-b/bob", 30)
            .unwrap_err(),
        python
            .lock(POLICY_STORE, "r", "team-b/bob", 30)
            .unwrap_err(),
        python.unlock(POLICY_STORE, "r", "team-b/bob").unwrap_err(),
    ] {
        assert_eq!(reply.status, 400);
        assert_eq!(reply.content_type.as_deref(), Some("application/json"));
        assert_eq!(reply.body, REFUSAL);
    }
    assert_eq!(python.unlock(POLICY_STORE, "r", "team-a/alice"), Ok(0));
    // The policy is the component's: the built-in one takes that owner, and other stores
    // of the Python component take every owner.
    assert_eq!(built_in.lock(POLICY_STORE, "r", "team-b/bob", 30), Ok(true));
    assert_eq!(python.lock("lockstore", "r", "team-b/bob", 30), Ok(true));

    // The typed `lock` export (the host's gRPC API) applies the same policy.
    let (refused, allowed) = runtime().block_on(async {
        let mut client = dapr(&python.grpc).await;
        let refused = typed_lock(&mut client, "team-b/bob").await;
        let allowed = typed_lock(&mut client, "team-a/alice").await;
        (refused, allowed)
    });
    let refused = refused.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let expected: serde_json::Value = serde_json::from_str(REFUSAL).unwrap();
    assert_eq!(refused.message(), expected["message"]);
    assert_eq!(allowed.ok(), Some(true));

    // The host's body bound reaches the component through `settings`.
    let over_bound = lock_body(&format!(r#"{{"padding":"{}"}}"#, "x".repeat(120)));
    let answers = replay(&python.base, std::slice::from_ref(&over_bound));
    assert_eq!(answers[0].status, 413);
    assert!(
        answers[0].body.contains("larger than 100 bytes"),
        "{answers:?}"
    );
    assert_same_answers(&python, &built_in, &[over_bound]);
}
