//! End-to-end tests against the real `wasilock` binary: Dapr's conformance sequence, every
//! error row of the spec, concurrency, lease timing, durability across `kill -9`, the API
//! token, health checks, body bounds, component files, and the guest's resource limits.

use wasilock_testkit as common;

use common::{Host, Options, Reply, component, conformance_sequence, resources, resources_path};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const LOCK: &str = "/v1.0-alpha1/lock/lockstore";
const UNLOCK: &str = "/v1.0-alpha1/unlock/lockstore";

/// Every `--http-export` setting, with the export the banner names for it: the tests that
/// check answers byte for byte run through both, since both must answer the same.
const HTTP_EXPORTS: [(&str, &str); 2] = [
    ("auto", "wasilock:lock/http-api"),
    ("wasi-http", "wasi:http/incoming-handler"),
];

/// Starts a host with `options` plus `--http-export setting`, checking it uses `export`.
fn start_through(setting: &str, export: &str, options: Options) -> Host {
    let host = Host::start_with(options.args(["--http-export", setting]));
    let banner = host.banner();
    assert!(banner.contains(&format!("through {export};")), "{banner}");
    host
}

fn error(status: u16, code: &str, message: &str) -> Reply {
    Reply {
        status,
        content_type: Some("application/json".into()),
        body: serde_json::json!({ "errorCode": code, "message": message }).to_string(),
    }
}

fn ok(body: &str) -> Reply {
    Reply {
        status: 200,
        content_type: Some("application/json".into()),
        body: body.into(),
    }
}

#[test]
fn conformance_sequence_on_the_default_embedded_store() {
    let host = Host::start();
    assert!(host.banner().contains("lockstore"));
    conformance_sequence(&host, "lockstore");
}

#[test]
fn conformance_sequence_on_an_in_memory_store() {
    let dir = resources(&[("memory.yaml", &component("fast", "lock.in-memory", &[]))]);
    for (setting, export) in HTTP_EXPORTS {
        let options = Options::new().resources_path(&dir);
        conformance_sequence(&start_through(setting, export, options), "fast");
    }
}

#[test]
fn success_bodies_and_every_error_row_in_daprs_order() {
    for (setting, export) in HTTP_EXPORTS {
        every_error_row(&start_through(setting, export, Options::new()));
    }
}

fn every_error_row(host: &Host) {
    let lock = |body: &str| host.post(LOCK, body);
    // Success bodies, exactly.
    assert_eq!(
        lock(r#"{"resourceId":"r","lockOwner":"a","expiryInSeconds":30}"#),
        ok(r#"{"success":true}"#)
    );
    assert_eq!(
        lock(r#"{"resource_id":"r","lock_owner":"b","expiry_in_seconds":"30","x":1}"#),
        ok(r#"{"success":false}"#)
    );
    assert_eq!(
        host.post(UNLOCK, r#"{"resourceId":"r","lockOwner":"b"}"#),
        ok(r#"{"status":2}"#)
    );
    assert_eq!(
        host.post(UNLOCK, r#"{"resourceId":"r","lockOwner":"a"}"#),
        ok(r#"{"status":0}"#)
    );
    assert_eq!(
        host.post(UNLOCK, r#"{"resourceId":"r","lockOwner":"a"}"#),
        ok(r#"{"status":1}"#)
    );
    // Row 0: not JSON, or a non-integer expiry.
    let reply = lock("{");
    assert_eq!(
        (reply.status, reply.content_type.as_deref()),
        (400, Some("application/json"))
    );
    assert!(
        reply.body.starts_with(
            r#"{"errorCode":"ERR_MALFORMED_REQUEST","message":"failed deserializing HTTP body: "#
        ),
        "{}",
        reply.body
    );
    assert_eq!(lock(r#"{"expiryInSeconds":1.5}"#).status, 400);
    assert_eq!(lock(r#"{"expiryInSeconds":4294967296}"#).status, 400);
    // Row 1: the expiry is checked first, even on an empty body.
    let not_positive = error(
        400,
        "ERR_MALFORMED_REQUEST",
        "ExpiryInSeconds is not positive in lock store lockstore",
    );
    assert_eq!(lock(""), not_positive);
    assert_eq!(lock("null"), not_positive);
    assert_eq!(
        lock(r#"{"resourceId":"r","lockOwner":"a","expiryInSeconds":-1}"#),
        not_positive
    );
    // Row 3 and 4.
    assert_eq!(
        lock(r#"{"lockOwner":"a","expiryInSeconds":1}"#),
        error(
            400,
            "ERR_MALFORMED_REQUEST",
            "ResourceId is empty in lock store lockstore"
        )
    );
    assert_eq!(
        host.post(UNLOCK, r#"{"resourceId":"r"}"#),
        error(
            400,
            "ERR_MALFORMED_REQUEST",
            "LockOwner is empty in lock store lockstore"
        )
    );
    // Whitespace passes rows 3 and 4.
    assert_eq!(
        lock(r#"{"resourceId":" ","lockOwner":" ","expiryInSeconds":1}"#),
        ok(r#"{"success":true}"#)
    );
    // Row 5: an unknown store, percent-decoded in the message.
    assert_eq!(
        host.post(
            "/v1.0-alpha1/lock/no%20such",
            r#"{"resourceId":"r","lockOwner":"a","expiryInSeconds":1}"#
        ),
        error(
            400,
            "ERR_LOCK_STORE_NOT_FOUND",
            "lock store no such not found"
        )
    );
    // Row 6: `||` in the resource id.
    assert_eq!(
        lock(r#"{"resourceId":"a||b","lockOwner":"a","expiryInSeconds":1}"#),
        error(
            500,
            "ERR_TRY_LOCK",
            "failed to try acquiring lock: input key/keyPrefix 'a||b' can't contain '||'"
        )
    );
    assert_eq!(
        host.post(UNLOCK, r#"{"resourceId":"a||b","lockOwner":"a"}"#),
        error(
            500,
            "ERR_UNLOCK",
            "failed to release lock: input key/keyPrefix 'a||b' can't contain '||'"
        )
    );
    // Anything else is daprd's service-invocation 404.
    let not_found = error(
        404,
        "ERR_DIRECT_INVOKE",
        "failed getting app id either from the URL path or the header dapr-app-id",
    );
    assert_eq!(host.get(LOCK), not_found);
    assert_eq!(host.post("/v1.0-alpha/lock/lockstore", "{}"), not_found);
    assert_eq!(host.post("/v1.0-alpha1/lock", "{}"), not_found);
}

#[test]
fn without_stores_lock_requests_are_not_configured_and_scopes_hide_stores() {
    let scoped = format!(
        "{}scopes:\n  - another-app\n",
        component("hidden", "lock.in-memory", &[])
    );
    let only_hidden = resources(&[("hidden.yaml", &scoped)]);
    let host = Host::start_with(Options::new().app_id("me").resources_path(&only_hidden));
    let not_configured = error(
        500,
        "ERR_LOCK_STORE_NOT_CONFIGURED",
        "lock store is not configured",
    );
    let body = r#"{"resourceId":"r","lockOwner":"a","expiryInSeconds":1}"#;
    assert_eq!(host.post("/v1.0-alpha1/lock/hidden", body), not_configured);
    // Row 1 still comes first.
    assert_eq!(host.post("/v1.0-alpha1/lock/hidden", "{}").status, 400);
    drop(host);

    let visible = component("visible", "lock.in-memory", &[]);
    let both = resources(&[("hidden.yaml", &scoped), ("visible.yaml", &visible)]);
    let host = Host::start_with(Options::new().app_id("me").resources_path(&both));
    assert_eq!(
        host.post("/v1.0-alpha1/lock/hidden", body),
        error(
            400,
            "ERR_LOCK_STORE_NOT_FOUND",
            "lock store hidden not found"
        )
    );
    assert_eq!(host.lock("visible", "r", "a", 1), Ok(true));
}

#[test]
fn key_prefixes_keep_app_ids_apart_on_one_data_dir() {
    let data = tempfile::tempdir().unwrap();
    let shared = component("shared", "lock.embedded", &[("keyPrefix", "name")]);
    let dir = resources(&[("shared.yaml", &shared)]);
    // A host as the app `app` on the resources in `dir`, all on one data directory.
    let on = |dir: &tempfile::TempDir, app: &str| {
        Host::start_with(
            Options::new()
                .app_id(app)
                .resources_path(dir)
                .data_dir(data.path()),
        )
    };
    let start = |app: &str| on(&dir, app);
    let one = start("one");
    assert_eq!(
        one.lock("lockstore", "r", "a", 30).map_err(|r| r.status),
        Err(400)
    );
    assert_eq!(one.lock("shared", "r", "a", 30), Ok(true));
    drop(one);
    // keyPrefix `name`: another app id sees the same lock.
    let two = start("two");
    assert_eq!(two.lock("shared", "r", "b", 30), Ok(false));
    drop(two);
    // The default `appid` prefix: each app id has its own locks.
    let apart = resources(&[("own.yaml", &component("own", "lock.embedded", &[]))]);
    let start = |app: &str| on(&apart, app);
    assert_eq!(start("one").lock("own", "r", "a", 30), Ok(true));
    assert_eq!(start("two").lock("own", "r", "b", 30), Ok(true));
    assert_eq!(start("one").lock("own", "r", "b", 30), Ok(false));
}

#[test]
fn many_concurrent_acquirers_have_exactly_one_winner() {
    let host = Host::start();
    common::one_winner_rounds(
        std::slice::from_ref(&host.base),
        "lockstore",
        "contended",
        16,
        40,
    );
}

#[test]
fn a_lease_ends_neither_early_nor_late() {
    let host = Host::start();
    let sent = Instant::now();
    assert_eq!(host.lock("lockstore", "lease", "first", 2), Ok(true));
    let acknowledged = Instant::now();
    loop {
        let attempt = Instant::now();
        if host.lock("lockstore", "lease", "second", 30) == Ok(true) {
            let elapsed = attempt.duration_since(sent);
            assert!(elapsed >= Duration::from_secs(2), "early: {elapsed:?}");
            break;
        }
        let late = attempt.duration_since(acknowledged);
        assert!(late < Duration::from_millis(2_400), "late: {late:?}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn locks_acknowledged_before_kill_9_are_held_after_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let host = Host::start_with(Options::new().data_dir(data.path()));
    for i in 0..50 {
        assert_eq!(
            host.lock("lockstore", &format!("held-{i}"), "owner", 60),
            Ok(true)
        );
    }
    assert_eq!(host.lock("lockstore", "short", "owner", 2), Ok(true));
    let short_acquired = Instant::now();
    host.kill9();

    let host = Host::start_with(Options::new().data_dir(data.path()));
    for i in 0..50 {
        assert_eq!(
            host.lock("lockstore", &format!("held-{i}"), "thief", 60),
            Ok(false)
        );
    }
    assert_eq!(host.unlock("lockstore", "held-0", "thief"), Ok(2));
    assert_eq!(host.unlock("lockstore", "held-0", "owner"), Ok(0));
    std::thread::sleep(Duration::from_secs(2).saturating_sub(short_acquired.elapsed()));
    common::wait_until(
        "the short lease's end after restart",
        Duration::from_secs(2),
        || host.lock("lockstore", "short", "next", 30) == Ok(true),
    );
}

#[test]
fn the_api_token_guards_everything_but_health_checks() {
    let host = Host::start_with(Options::new().env("DAPR_API_TOKEN", "s3cret"));
    let body = r#"{"resourceId":"r","lockOwner":"a","expiryInSeconds":5}"#;
    let denied = Reply {
        status: 401,
        content_type: Some("text/plain; charset=utf-8".into()),
        body: "invalid api token\n".into(),
    };
    assert_eq!(host.post(LOCK, body), denied);
    assert_eq!(
        host.post_with(LOCK, body, &[("dapr-api-token", "wrong")]),
        denied
    );
    assert_eq!(host.get("/anything").status, 401);
    assert_eq!(host.get("/v1.0/metadata"), denied);
    assert_eq!(
        host.post_with(LOCK, body, &[("dapr-api-token", "s3cret")]),
        ok(r#"{"success":true}"#)
    );
    assert_eq!(host.get("/v1.0/healthz").status, 204);
    assert_eq!(host.get("/v1.0/healthz/outbound").status, 204);
    assert!(host.banner().contains("dapr-api-token: $DAPR_API_TOKEN"));
}

#[test]
fn metadata_answers_as_daprd_with_the_lock_stores() {
    let dir = resources(&[("orders.yaml", &component("orders", "lock.in-memory", &[]))]);
    let host = Host::start_with(Options::new().app_id("checkout").resources_path(&dir));
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        host.get("/v1.0/metadata"),
        ok(&format!(
            concat!(
                r#"{{"id":"checkout","runtimeVersion":"1.18.3","enabledFeatures":[],"actors":[],"#,
                r#""components":[{{"name":"orders","type":"lock.in-memory","version":"v1","capabilities":[]}}],"#,
                r#""extended":{{"daprRuntimeVersion":"1.18.3","wasilockVersion":"{version}"}},"#,
                r#""subscriptions":[],"httpEndpoints":[],"appConnectionProperties":{{}},"#,
                r#""actorRuntime":{{"runtimeStatus":"DISABLED","hostReady":false}}}}"#
            ),
            version = version
        ))
    );
    // Only GET is the metadata call; other methods go where daprd sends them.
    assert_eq!(host.post("/v1.0/metadata", "").status, 404);
}

#[test]
fn health_checks_answer_204_with_an_empty_body() {
    let host = Host::start();
    for path in ["/v1.0/healthz", "/v1.0/healthz/outbound"] {
        let reply = host.get(path);
        assert_eq!((reply.status, reply.body.as_str()), (204, ""), "{path}");
    }
}

#[test]
fn bodies_over_the_bound_are_refused_whether_sized_or_chunked() {
    for (setting, export) in HTTP_EXPORTS {
        let options = Options::new().args(["--max-body-size", "1Ki"]);
        body_bound(&start_through(setting, export, options));
    }
}

fn body_bound(host: &Host) {
    let padded = |size: usize| {
        let json = r#"{"resourceId":"r","lockOwner":"a","expiryInSeconds":5}"#;
        format!("{json}{}", " ".repeat(size - json.len()))
    };
    assert_eq!(host.post(LOCK, &padded(1024)), ok(r#"{"success":true}"#));
    let too_large = error(
        413,
        "ERR_MALFORMED_REQUEST",
        "failed deserializing HTTP body: request body larger than 1024 bytes",
    );
    assert_eq!(host.post(LOCK, &padded(1025)), too_large);
    // A declared length over the bound is refused before the body is read.
    let mut socket = TcpStream::connect(host.base.trim_start_matches("http://")).unwrap();
    write!(
        socket,
        "POST {LOCK} HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n"
    )
    .unwrap();
    assert_eq!(read_response(&mut socket), (413, too_large.body.clone()));
    let (status, body) = raw_chunked_post(&host.base, LOCK, &padded(4096));
    assert_eq!((status, body), (413, too_large.body.clone()));
    // The host still answers.
    assert_eq!(host.unlock("lockstore", "r", "a"), Ok(0));
}

#[test]
fn one_connection_serves_many_requests() {
    for (setting, export) in HTTP_EXPORTS {
        let host = start_through(setting, export, Options::new());
        let address = host.base.trim_start_matches("http://");
        let mut socket = TcpStream::connect(address).unwrap();
        let body = r#"{"resourceId":"k","lockOwner":"a","expiryInSeconds":5}"#;
        // A request daprd does not route, with a body the answer does not need, in between:
        // its body is drained, so the connection goes on.
        let steps = [
            (LOCK, 200, r#"{"success":true}"#),
            ("/v1.0/nowhere", 404, ""),
            ("/v1.0-alpha1/lock/%zz", 400, ""),
            (LOCK, 200, r#"{"success":false}"#),
        ];
        for (path, status, expected) in steps {
            write!(
                socket,
                "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .unwrap();
            // The body follows the head in a separate write, as many clients send it.
            socket.flush().unwrap();
            std::thread::sleep(Duration::from_millis(20));
            socket.write_all(body.as_bytes()).unwrap();
            let (got_status, got_body) = read_response(&mut socket);
            assert_eq!(got_status, status, "{setting}: {path}: {got_body}");
            if !expected.is_empty() {
                assert_eq!(got_body, expected, "{setting}: {path}");
            }
        }
    }
}

#[test]
fn bad_component_files_stop_start_up_with_a_clear_error() {
    Host::refused(
        Options::new().resources(&[("broken.yaml", "kind: Component\nmetadata: [\n")]),
        "a broken file must stop start-up",
        &["broken.yaml"],
    );
    let zookeeper = component("coordination", "lock.zookeeper", &[]);
    Host::refused(
        Options::new().resources(&[("zookeeper.yaml", &zookeeper)]),
        "an unsupported lock type must stop start-up",
        &["zookeeper.yaml", "coordination", "lock.zookeeper"],
    );
    Host::refused(
        Options::new().resources_path("/no/such/dir"),
        "a missing resources path must stop start-up",
        &["/no/such/dir"],
    );

    // Components of other kinds are skipped.
    let state = component("cache", "state.redis", &[("redisHost", "127.0.0.1:1")]);
    let mixed = resources(&[
        ("state.yaml", &state),
        ("lock.yaml", &component("locks", "lock.in-memory", &[])),
    ]);
    let host = Host::start_with(Options::new().resources_path(&mixed));
    assert_eq!(host.lock("locks", "r", "a", 1), Ok(true));
    assert!(host.stderr.lock().unwrap().contains("cache"));
}

#[test]
fn sigterm_stops_the_host_cleanly() {
    let host = Host::start();
    assert_eq!(host.lock("lockstore", "r", "a", 30), Ok(true));
    let stderr = host.stderr.clone();
    let status = host.terminate();
    assert!(status.success(), "{status}: {}", stderr.lock().unwrap());
    assert!(stderr.lock().unwrap().contains("stopped"));
}

#[test]
fn a_guest_over_its_time_or_memory_limit_gets_a_500_and_the_host_keeps_serving() {
    let component = common::fault_injection_guest();
    let dir = resources(&[
        ("spin.yaml", &component_named("fault-spin")),
        ("oom.yaml", &component_named("fault-oom")),
        ("ok.yaml", &component_named("fine")),
    ]);
    for (setting, export) in HTTP_EXPORTS {
        let options = Options::new().args([
            "--resources-path",
            resources_path(&dir),
            "--component",
            component.to_str().unwrap(),
            "--guest-timeout",
            "500ms",
            "--guest-memory",
            "16Mi",
        ]);
        guest_limits(&start_through(setting, export, options));
    }
}

fn guest_limits(host: &Host) {
    let body = r#"{"resourceId":"r","lockOwner":"a","expiryInSeconds":5}"#;
    // One warm instance with state: the next request would run in it.
    let agent = common::agent();
    assert_eq!(instance_call_counts(&agent, &host.base, 2), [1, 2]);
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    let reply = host.post("/v1.0-alpha1/lock/fault-spin", body);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(reply.status, 500);
    assert!(
        reply.body.starts_with(r#"{"errorCode":"ERR_TRY_LOCK","message":"failed to try acquiring lock: the lock component failed: "#),
        "{}",
        reply.body
    );
    assert!(
        reply
            .body
            .contains("ran past its execution deadline of 500ms"),
        "{}",
        reply.body
    );
    // The instance that trapped (it had served 2) was dropped, not reused.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(instance_calls(&agent, &host.base), 1);
    let reply = host.post("/v1.0-alpha1/unlock/fault-oom", body);
    assert_eq!(reply.status, 500);
    assert!(
        reply
            .body
            .contains("exceeded its memory limit of 16777216 bytes"),
        "{}",
        reply.body
    );
    assert!(
        reply.body.starts_with(r#"{"errorCode":"ERR_UNLOCK","message":"failed to release lock: the lock component failed: "#),
        "{}",
        reply.body
    );
    assert_eq!(host.lock("fine", "r", "a", 5), Ok(true));
    assert_eq!(host.unlock("fine", "r", "a"), Ok(0));
}

/// `requests` `fault-count` answers in a row, each after a pause that gives the previous
/// request's instance time to return to the warm pool.
fn instance_call_counts(agent: &ureq::Agent, base: &str, requests: usize) -> Vec<u64> {
    (0..requests)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(20));
            instance_calls(agent, base)
        })
        .collect()
}

/// The `fault-count` answer of `base`: how many requests the instance has served.
fn instance_calls(agent: &ureq::Agent, base: &str) -> u64 {
    let reply = common::post(
        agent,
        &format!("{base}/v1.0-alpha1/lock/fault-count"),
        "{}",
        &[],
    );
    counted_calls(&reply)
}

/// The count in a `fault-count` answer.
fn counted_calls(reply: &Reply) -> u64 {
    assert_eq!(reply.status, 200, "{}", reply.body);
    let value: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    value["calls"].as_u64().expect("a count")
}

/// A host running the fault-injection guest with this `--requests-per-instance`.
fn fault_injection_host(requests_per_instance: &str) -> Host {
    let component = common::fault_injection_guest();
    Host::start_with(Options::new().args([
        "--component",
        component.to_str().unwrap(),
        "--requests-per-instance",
        requests_per_instance,
    ]))
}

#[test]
fn with_one_request_per_instance_no_state_survives_a_request() {
    let host = fault_injection_host("1");
    let agent = common::agent();
    for _ in 0..30 {
        assert_eq!(instance_calls(&agent, &host.base), 1);
    }
}

#[test]
fn instances_are_reused_up_to_the_setting() {
    let host = fault_injection_host("5");
    let agent = common::agent();
    let counts = instance_call_counts(&agent, &host.base, 40);
    assert!(counts.iter().all(|&c| (1..=5).contains(&c)), "{counts:?}");
    assert!(
        counts.contains(&5),
        "no instance served 5 requests: {counts:?}"
    );
}

#[test]
fn tenants_in_one_process_never_share_an_instance() {
    let guest = common::fault_injection_guest();
    let tenant = |name: &str| common::tenant(name, &format!("t-{name}"), Some(&guest), "{}");
    let dir = resources(&[
        ("count.yaml", &component_named("fault-count")),
        ("zero.yaml", &tenant("tenant-0")),
        ("one.yaml", &tenant("tenant-1")),
    ]);
    let host = Host::start_with(Options::new().resources_path(&dir));
    let mut served = [0u64; 2];
    let mut highest = [0u64; 2];
    // Tenant 0 first warms its instance, then both alternate.
    for step in 0..60 {
        let tenant = if step < 20 { 0 } else { step % 2 };
        std::thread::sleep(Duration::from_millis(5));
        let token = format!("t-tenant-{tenant}");
        let reply = host.post_with(
            "/v1.0-alpha1/lock/fault-count",
            "{}",
            &[("dapr-api-token", &token)],
        );
        let calls = counted_calls(&reply);
        served[tenant] += 1;
        assert!(
            calls <= served[tenant],
            "tenant {tenant} saw {calls} calls after only {} of its own requests",
            served[tenant]
        );
        highest[tenant] = highest[tenant].max(calls);
    }
    assert!(
        highest.iter().all(|&h| h > 1),
        "no reuse at all: {highest:?}"
    );
}

fn component_named(name: &str) -> String {
    component(name, "lock.in-memory", &[])
}

/// POSTs `body` with `Transfer-Encoding: chunked` on a raw socket; returns status and body.
fn raw_chunked_post(base: &str, path: &str, body: &str) -> (u16, String) {
    let mut socket = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    write!(
        socket,
        "POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .unwrap();
    for chunk in body.as_bytes().chunks(500) {
        write!(socket, "{:x}\r\n", chunk.len()).unwrap();
        socket.write_all(chunk).unwrap();
        socket.write_all(b"\r\n").unwrap();
    }
    // The host may answer before it has read everything.
    let _ = socket.write_all(b"0\r\n\r\n");
    read_response(&mut socket)
}

/// Reads one response with a `Content-Length` body.
fn read_response(socket: &mut TcpStream) -> (u16, String) {
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        socket.read_exact(&mut byte).expect("a response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let status = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    socket.read_exact(&mut body).unwrap();
    (status, String::from_utf8(body).unwrap())
}

/// A component built against WIT 0.1.0 (`tests/fixtures/`, as released before `settings`
/// existed) still runs in this host and answers every case exactly as the built-in one,
/// through both HTTP exports.
#[test]
fn a_component_built_against_wit_0_1_0_answers_like_the_built_in_one() {
    let fixture = common::workspace().join("tests/fixtures/wasilock-lock-0.1.0.wasm");
    let dir = resources(&[(
        "lockstore.yaml",
        &component("lockstore", "lock.in-memory", &[]),
    )]);
    let cases = common::http_cases::http_cases();
    for (setting, export) in HTTP_EXPORTS {
        let options = || Options::new().resources_path(&dir);
        let built_in = start_through(setting, export, options());
        let old = start_through(
            setting,
            export,
            options().args(["--component", fixture.to_str().unwrap()]),
        );
        assert!(
            old.banner().contains("wasilock-lock-0.1.0.wasm"),
            "{}",
            old.banner()
        );
        common::http_cases::assert_same_answers(&old.base, &built_in.base, &cases, String::new);
    }
}

/// A component that answers through `wasi:http` without reading the request body (the
/// 0.1.0 fixture does so for paths it does not route) leaves the connection usable: the
/// host reads the rest of the body itself, so a keep-alive client's next request is
/// answered on the same connection, even when the body arrives after the answer.
#[test]
fn a_body_the_component_leaves_unread_does_not_cost_the_connection() {
    let fixture = common::workspace().join("tests/fixtures/wasilock-lock-0.1.0.wasm");
    let host = start_through(
        "wasi-http",
        "wasi:http/incoming-handler",
        Options::new().args(["--component", fixture.to_str().unwrap()]),
    );
    let mut socket = TcpStream::connect(host.base.trim_start_matches("http://")).unwrap();
    for round in 0..3 {
        write!(
            socket,
            "POST /v1.0/lock/lockstore HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n"
        )
        .unwrap();
        // The body comes late: the component has answered by then.
        std::thread::sleep(Duration::from_millis(200));
        socket.write_all(b"{}").unwrap();
        let (status, _) = read_response(&mut socket);
        assert_eq!(status, 404, "round {round}");
    }
}
