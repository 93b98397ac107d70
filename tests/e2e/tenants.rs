//! End-to-end tests of tenants against the real `wasilock` binary: tokens select tenants (HTTP
//! and gRPC), scopes decide which stores a tenant sees, keys stay apart in a shared store,
//! bad Tenant files stop start-up, and a hostile tenant (a component that loops, exhausts
//! memory, recurses without end, answers a huge body, reaches for other tenants' keys) never
//! delays or fails a well-behaved tenant's requests; `maxConcurrency` answers 429 past a
//! bounded wait.

use wasilock_testkit as common;

use common::{Host, Options, component, resources, scoped_component, tenant};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use wasilock::api::grpc::proto::GetMetadataRequest;

fn as_tenant(token: &str) -> [(&str, &str); 1] {
    [("dapr-api-token", token)]
}

fn lock_body(resource: &str, owner: &str) -> String {
    format!(r#"{{"resourceId":"{resource}","lockOwner":"{owner}","expiryInSeconds":60}}"#)
}

fn unlock_body(resource: &str, owner: &str) -> String {
    format!(r#"{{"resourceId":"{resource}","lockOwner":"{owner}"}}"#)
}

#[test]
fn tokens_select_tenants_and_scopes_decide_their_stores() {
    let dir = resources(&[
        ("shared.yaml", &component("shared", "lock.in-memory", &[])),
        (
            "orders-only.yaml",
            &scoped_component("orders-only", "lock.in-memory", &["orders"]),
        ),
        ("orders.yaml", &tenant("orders", "t-orders", None, "{}")),
        ("billing.yaml", &tenant("billing", "t-billing", None, "{}")),
    ]);
    let host = Host::start_with(
        Options::new()
            .app_id("ops")
            .resources_path(&dir)
            .env("DAPR_API_TOKEN", "t-ops"),
    );
    let banner = host.banner();
    assert!(banner.contains("(3 tenants,"), "{banner}");
    for (app, stores) in [
        ("orders", "[orders-only, shared]"),
        ("billing", "[shared]"),
        ("ops", "[shared]"),
    ] {
        assert!(
            banner.contains(&format!("tenant \"{app}\": component built-in through wasilock:lock/http-api; stores {stores};")),
            "{banner}"
        );
    }
    assert!(
        !banner.contains("t-orders") && !banner.contains("t-ops"),
        "tokens are never printed"
    );

    // No token or an unknown one: daprd's 401, on every route but the health checks.
    for headers in [&[][..], &as_tenant("t-nobody")[..]] {
        let reply = host.post_with("/v1.0-alpha1/lock/shared", &lock_body("r", "a"), headers);
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (401, "invalid api token\n")
        );
    }
    assert_eq!(host.get("/v1.0/healthz").status, 204);

    // Each token is its own app: its metadata, its stores, its keys.
    for (token, app, components) in [
        ("t-orders", "orders", 2),
        ("t-billing", "billing", 1),
        ("t-ops", "ops", 1),
    ] {
        let reply = host.get_with("/v1.0/metadata", &as_tenant(token));
        let metadata: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(metadata["id"], app);
        assert_eq!(metadata["components"].as_array().unwrap().len(), components);
        // The same resource id in the shared store is a different lock per tenant.
        let reply = host.post_with(
            "/v1.0-alpha1/lock/shared",
            &lock_body("invoice", app),
            &as_tenant(token),
        );
        assert_eq!(reply.body, r#"{"success":true}"#, "{app}");
    }
    let reply = host.post_with(
        "/v1.0-alpha1/lock/orders-only",
        &lock_body("r", "a"),
        &as_tenant("t-billing"),
    );
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (
            400,
            r#"{"errorCode":"ERR_LOCK_STORE_NOT_FOUND","message":"lock store orders-only not found"}"#
        )
    );
    let reply = host.post_with(
        "/v1.0-alpha1/lock/orders-only",
        &lock_body("r", "a"),
        &as_tenant("t-orders"),
    );
    assert_eq!(reply.body, r#"{"success":true}"#);

    // Over gRPC the metadata token selects the tenant the same way.
    let ids = crate::grpc_client::runtime().block_on(async {
        let mut client = crate::grpc_client::dapr(&host.grpc).await;
        let mut ids = Vec::new();
        for token in ["t-orders", "t-billing", "t-nobody"] {
            let mut request = tonic::Request::new(GetMetadataRequest {});
            request
                .metadata_mut()
                .insert("dapr-api-token", token.parse().unwrap());
            ids.push(match client.get_metadata(request).await {
                Ok(metadata) => metadata.into_inner().id,
                Err(status) => format!("{:?}", status.code()),
            });
        }
        ids
    });
    assert_eq!(ids, ["orders", "billing", "Unauthenticated"]);
}

#[test]
fn bad_tenant_files_stop_start_up_naming_the_file_and_the_field() {
    let not_a_component = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(not_a_component.path(), b"not wasm").unwrap();
    let cases: [(&str, String, &str); 5] = [
        (
            "no token",
            "apiVersion: wasilock/v1alpha1\nkind: Tenant\nmetadata: {name: t}\nspec: {}\n".into(),
            r#"tenant "t": spec.apiToken is missing"#,
        ),
        (
            "duplicate token",
            format!(
                "{}---\n{}",
                tenant("a", "same", None, "{}"),
                tenant("b", "same", None, "{}")
            ),
            r#"tenant "b": spec.apiToken is already the token of tenant "a""#,
        ),
        (
            "duplicate app id",
            format!(
                "{}---\n{}",
                tenant("a", "x", None, "{}"),
                tenant("a", "y", None, "{}")
            ),
            r#"tenant "a": metadata.name is already the app id"#,
        ),
        (
            "unreadable component",
            tenant(
                "a",
                "x",
                Some(std::path::Path::new("/nonexistent/lock.wasm")),
                "{}",
            ),
            "spec.component: cannot read the component /nonexistent/lock.wasm",
        ),
        (
            "a component that is not one",
            tenant("a", "x", Some(not_a_component.path()), "{}"),
            "cannot compile the lock component",
        ),
    ];
    for (case, yaml, needle) in cases {
        let dir = resources(&[("tenants.yaml", &yaml)]);
        let file = dir.path().join("tenants.yaml").display().to_string();
        Host::refused(
            Options::new().resources_path(&dir),
            &format!("{case}: the host started"),
            &[&file, needle],
        );
    }
}

#[test]
fn a_hostile_tenant_never_delays_or_fails_a_healthy_one() {
    let guest = common::fault_injection_guest();
    let faults = ["fault-spin", "fault-oom", "fault-recurse", "fault-huge"];
    let mut files: Vec<(String, String)> = faults
        .iter()
        .map(|f| {
            (
                format!("{f}.yaml"),
                scoped_component(f, "lock.in-memory", &["hostile"]),
            )
        })
        .collect();
    files.push((
        "shared.yaml".into(),
        component("shared", "lock.in-memory", &[]),
    ));
    files.push((
        "healthy-only.yaml".into(),
        scoped_component("healthy-only", "lock.in-memory", &["healthy"]),
    ));
    files.push((
        "healthy.yaml".into(),
        tenant("healthy", "t-healthy", None, "{}"),
    ));
    files.push((
        "hostile.yaml".into(),
        tenant(
            "hostile",
            "t-hostile",
            Some(&guest),
            "{memory: 16Mi, timeout: 1s, maxConcurrency: 4}",
        ),
    ));
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, y)| (n.as_str(), y.as_str()))
        .collect();
    let host = Host::start_with(Options::new().resources(&files));

    // The hostile component reaches for the healthy tenant's lock and store: it cannot.
    let healthy = as_tenant("t-healthy");
    let hostile = as_tenant("t-hostile");
    assert_eq!(
        host.post_with(
            "/v1.0-alpha1/lock/shared",
            &lock_body("payroll", "h"),
            &healthy
        )
        .body,
        r#"{"success":true}"#
    );
    assert_eq!(
        host.post_with(
            "/v1.0-alpha1/unlock/shared",
            &unlock_body("payroll", "h"),
            &hostile
        )
        .body,
        r#"{"status":1}"#
    );
    assert_eq!(
        host.post_with(
            "/v1.0-alpha1/lock/healthy-only",
            &lock_body("r", "x"),
            &hostile
        )
        .status,
        400
    );
    assert_eq!(
        host.post_with(
            "/v1.0-alpha1/lock/shared",
            &lock_body("payroll", "x"),
            &healthy
        )
        .body,
        r#"{"success":false}"#
    );

    // Eight clients flood the hostile tenant with every misbehaviour while one client of
    // the healthy tenant takes and releases locks.
    let stop = AtomicBool::new(false);
    let (failures, slowest, served) = std::thread::scope(|scope| {
        for client in 0..8 {
            let (host, stop, fault) = (&host, &stop, faults[client % faults.len()]);
            scope.spawn(move || {
                let agent = common::agent();
                while !stop.load(Ordering::Relaxed) {
                    let reply = common::post(
                        &agent,
                        &format!("{}/v1.0-alpha1/lock/{fault}", host.base),
                        &lock_body("r", "x"),
                        &hostile,
                    );
                    assert!(matches!(reply.status, 500 | 429), "{fault}: {reply:?}");
                }
            });
        }
        std::thread::sleep(Duration::from_millis(300));
        let healthy_client = scope.spawn(|| {
            let agent = common::agent();
            let (mut failures, mut slowest, mut served) = (Vec::new(), Duration::ZERO, 0);
            let until = Instant::now() + Duration::from_secs(6);
            let mut round = 0;
            while Instant::now() < until {
                round += 1;
                let resource = format!("r{round}");
                for (path, body, expected) in [
                    ("lock", lock_body(&resource, "h"), r#"{"success":true}"#),
                    ("unlock", unlock_body(&resource, "h"), r#"{"status":0}"#),
                ] {
                    let sent = Instant::now();
                    let reply = common::post(
                        &agent,
                        &format!("{}/v1.0-alpha1/{path}/shared", host.base),
                        &body,
                        &healthy,
                    );
                    slowest = slowest.max(sent.elapsed());
                    served += 1;
                    if reply.status != 200 || reply.body != expected {
                        failures.push(reply);
                    }
                }
            }
            (failures, slowest, served)
        });
        let outcome = healthy_client.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        outcome
    });
    assert!(
        failures.is_empty(),
        "the healthy tenant failed: {failures:?}"
    );
    assert!(
        served > 100,
        "the healthy tenant was served only {served} requests"
    );
    assert!(
        slowest < Duration::from_millis(500),
        "a healthy request took {slowest:?} under the hostile load"
    );
    host.assert_logged(&[
        "ran past its execution deadline of 1s",
        "exceeded its memory limit of 16777216 bytes",
        "more than the 1048576 a lock answer may have",
    ]);
}

#[test]
fn past_max_concurrency_requests_wait_then_get_429() {
    let guest = common::fault_injection_guest();
    let limits = "{timeout: 600ms, maxConcurrency: 1}";
    let host = Host::start_with(Options::new().resources(&[
        ("spin.yaml", &component("fault-spin", "lock.in-memory", &[])),
        ("t.yaml", &tenant("t", "t", Some(&guest), limits)),
    ]));
    let replies: Vec<(u16, String, Duration)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3)
            .map(|i| {
                let host = &host;
                scope.spawn(move || {
                    // In order: the first runs, the second waits its turn, the third waits
                    // while the second runs and gives up when its wait ends.
                    std::thread::sleep(Duration::from_millis(100 * i));
                    let sent = Instant::now();
                    let reply =
                        host.post_with("/v1.0-alpha1/lock/fault-spin", "{}", &as_tenant("t"));
                    (reply.status, reply.body, sent.elapsed())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(replies[0].0, 500, "{replies:?}");
    assert_eq!(replies[1].0, 500, "{replies:?}");
    let (status, body, waited) = &replies[2];
    assert_eq!(*status, 429, "{replies:?}");
    assert!(
        body.starts_with(r#"{"errorCode":"ERR_TOO_MANY_REQUESTS","message":"too many requests for app \"t\": 1 requests (maxConcurrency) were inside the lock component for "#),
        "{body}"
    );
    assert!(
        *waited >= Duration::from_millis(550),
        "it waited only {waited:?}"
    );
}

/// Sets its flag when dropped, on success or panic.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Polls `check` every 50 ms until it holds, for at most 10 s.
fn eventually(what: &str, check: impl Fn() -> bool) {
    common::wait_until(what, Duration::from_secs(10), check);
}

#[test]
fn the_configuration_reloads_under_load_without_a_failed_request() {
    let guest = common::fault_injection_guest();
    let dir = resources(&[
        ("shared.yaml", &component("shared", "lock.in-memory", &[])),
        (
            "count.yaml",
            &component("fault-count", "lock.in-memory", &[]),
        ),
        ("a.yaml", &tenant("a", "t-a", None, "{}")),
    ]);
    let host = Host::start_with(Options::new().resources_path(&dir));
    let write = |name: &str, yaml: &str| std::fs::write(dir.path().join(name), yaml).unwrap();
    let status_of =
        |token: &str, path: &str| host.post_with(path, &lock_body("probe", "p"), &as_tenant(token));
    // A lock taken before any reload, held throughout.
    assert_eq!(
        status_of("t-a", "/v1.0-alpha1/lock/shared").body,
        r#"{"success":true}"#
    );

    let stop = AtomicBool::new(false);
    let (served, failures) = std::thread::scope(|scope| {
        let load = scope.spawn(|| {
            let agent = common::agent();
            let (mut served, mut failures) = (0u64, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                for (path, body, expected) in [
                    ("lock", lock_body("busy", "load"), r#"{"success":true}"#),
                    ("unlock", unlock_body("busy", "load"), r#"{"status":0}"#),
                ] {
                    let reply = common::post(
                        &agent,
                        &format!("{}/v1.0-alpha1/{path}/shared", host.base),
                        &body,
                        &as_tenant("t-a"),
                    );
                    served += 1;
                    if reply.status != 200 || reply.body != expected {
                        failures.push(reply);
                    }
                }
            }
            (served, failures)
        });

        // Whatever happens below, the load stops, so a failure is reported, not a hang.
        let _stop = StopOnDrop(&stop);
        // A new tenant serves at once.
        write("b.yaml", &tenant("b", "t-b", None, "{}"));
        eventually("tenant b is served", || {
            status_of("t-b", "/v1.0-alpha1/lock/shared").status == 200
        });
        // A changed component serves the next requests.
        assert_eq!(
            status_of("t-b", "/v1.0-alpha1/lock/fault-count").body,
            r#"{"success":true}"#
        );
        write("b.yaml", &tenant("b", "t-b", Some(&guest), "{}"));
        eventually("tenant b runs its new component", || {
            status_of("t-b", "/v1.0-alpha1/lock/fault-count")
                .body
                .starts_with(r#"{"calls":"#)
        });
        // A broken file keeps the running configuration, and says why.
        write(
            "broken.yaml",
            "apiVersion: wasilock/v1alpha1\nkind: Tenant\nmetadata: {name: c}\nspec: {}\n",
        );
        let broken = dir.path().join("broken.yaml").display().to_string();
        eventually("the broken file is reported", || {
            let log = host.stderr.lock().unwrap();
            log.contains("failed; the running configuration stays")
                && log.contains(&broken)
                && log.contains("spec.apiToken is missing")
        });
        assert_eq!(status_of("t-b", "/v1.0-alpha1/lock/shared").status, 200);
        // A removed tenant's token is refused.
        std::fs::remove_file(dir.path().join("broken.yaml")).unwrap();
        std::fs::remove_file(dir.path().join("b.yaml")).unwrap();
        eventually("tenant b is gone", || {
            status_of("t-b", "/v1.0-alpha1/lock/shared").status == 401
        });
        // SIGHUP reloads too.
        let sent = std::process::Command::new("kill")
            .args(["-HUP", &host.pid().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        eventually("SIGHUP reloads", || {
            host.stderr
                .lock()
                .unwrap()
                .contains("reloaded the configuration (SIGHUP): 1 tenants")
        });
        stop.store(true, Ordering::Relaxed);
        load.join().unwrap()
    });
    assert!(
        failures.is_empty(),
        "requests failed during reloads: {failures:?}"
    );
    assert!(served > 50, "only {served} requests during the reloads");
    // The store kept its backend, so the lock taken first is still held.
    assert_eq!(
        host.post_with(
            "/v1.0-alpha1/lock/shared",
            &lock_body("probe", "other"),
            &as_tenant("t-a")
        )
        .body,
        r#"{"success":false}"#
    );
}
