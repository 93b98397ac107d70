//! Beside daprd: the `wasilock` binary with `--dapr-upstream-http` / `--dapr-upstream-grpc`
//! (or a Tenant's `spec.upstream`) in front of a stand-in daprd
//! (`wasilock_testkit::standin_daprd`: the `dapr` package's own servicer stubs and a stdlib
//! HTTP server). Through wasilock's one address: Dapr's Python SDK (state, publish, a
//! server stream, a bidirectional stream, metadata, a lock) and JavaScript SDK (state and a
//! lock over HTTP), raw HTTP and raw gRPC to paths and methods wasilock has never heard of,
//! with headers, trailers, statuses and error details unchanged; lock calls never reach
//! daprd; health follows daprd, and with daprd down forwarded calls fail at once (502 /
//! UNAVAILABLE) while locks keep working.

use wasilock_testkit as common;
use wasilock_testkit::sdk_clients;
use wasilock_testkit::standin_daprd::StandinDaprd;

use common::{Host, Options};
use std::path::Path;
use std::process::Command;

const TOKEN: &str = "upstream-s3cret";

/// A host whose upstream is `standin`, requiring `token` if any.
fn host_in_front_of(standin: &StandinDaprd, token: Option<&str>) -> Host {
    let mut options = Options::new().args([
        "--dapr-upstream-http",
        &standin.http_url(),
        "--dapr-upstream-grpc",
        &standin.grpc_url(),
    ]);
    if let Some(token) = token {
        options = options.env("DAPR_API_TOKEN", token);
    }
    Host::start_with(options)
}

/// Runs `script` with the SDKs' environment pointed at `host` (and `token`, if any); checks
/// that it printed `last_line` last and exited 0.
fn passes(
    program: &Path,
    script: &Path,
    args: &[&str],
    (host, token, standin): (&Host, Option<&str>, &StandinDaprd),
    last_line: &str,
) {
    let port = |address: &str| address.rsplit(':').next().unwrap().to_string();
    let mut command = Command::new(program);
    command.arg(script).args(args);
    for name in ["DAPR_API_TOKEN", "DAPR_GRPC_ENDPOINT", "DAPR_HTTP_ENDPOINT"] {
        command.env_remove(name);
    }
    if let Some(token) = token {
        command.env("DAPR_API_TOKEN", token);
    }
    command
        .env("DAPR_RUNTIME_HOST", "127.0.0.1")
        .env("DAPR_HTTP_PORT", port(&host.base))
        .env("DAPR_GRPC_PORT", port(&host.grpc))
        .env("DAPR_HEALTH_TIMEOUT", "20")
        .env("WASILOCK_STORE", "lockstore")
        .env("STANDIN_HTTP", standin.http_url());
    sdk_clients::passes(&mut command, last_line);
}

/// Locks `resource` in `lockstore` through `host` with `headers`, over raw HTTP, and
/// checks that it was granted.
fn assert_locks(host: &Host, resource: &str, headers: &[(&str, &str)]) {
    let body = format!(r#"{{"resourceId":"{resource}","lockOwner":"o","expiryInSeconds":30}}"#);
    let lock = host.post_with("/v1.0-alpha1/lock/lockstore", &body, headers);
    assert_eq!(
        (lock.status, lock.body.as_str()),
        (200, r#"{"success":true}"#)
    );
}

/// A raw HTTP exchange: status, the headers named, body.
fn exchange(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
    names: &[&str],
) -> (u16, Vec<String>, String) {
    let agent = common::agent();
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(body.to_string()).expect("a request");
    let mut response = agent.run(request).expect("an answer");
    let seen = names
        .iter()
        .map(|n| {
            response
                .headers()
                .get(*n)
                .map_or(String::new(), |v| v.to_str().unwrap().to_string())
        })
        .collect();
    let body = response.body_mut().read_to_string().expect("a body");
    (response.status().as_u16(), seen, body)
}

/// The SDKs run without a token: the Python SDK sends none on streaming calls (its token
/// interceptor is for unary calls), so daprd would refuse those as wasilock does.
#[test]
fn sdks_and_raw_clients_reach_daprd_through_wasilock_and_locks_stay_local() {
    let Some(python) = sdk_clients::python() else {
        return;
    };
    let standin = StandinDaprd::start(&python);
    let host = host_in_front_of(&standin, None);
    let clients = sdk_clients::clients_dir();

    passes(
        &python,
        &clients.join("dapr_python_upstream.py"),
        &["through"],
        (&host, None, &standin),
        "python upstream (through): all checks passed",
    );
    if let Some(node_dir) = sdk_clients::node() {
        passes(
            Path::new("node"),
            &node_dir.join("dapr_js_upstream.mjs"),
            &[],
            (&host, None, &standin),
            "js sdk upstream (http): all checks passed",
        );
    }

    // Any method and path, headers, status and body; a token is passed on unchanged.
    let echoed = ["x-standin-method", "x-standin-path", "x-standin-token"];
    let url = format!("{}/v1.0/invoke/checkout/method/pay?x=1&y=%2F", host.base);
    let with_token = [
        ("dapr-api-token", TOKEN),
        ("x-standin-status", "418"),
        ("content-type", "text/x-test"),
    ];
    let (status, seen, body) = exchange("PATCH", &url, &with_token, "body bytes", &echoed);
    assert_eq!(status, 418);
    assert_eq!(
        seen,
        ["PATCH", "/v1.0/invoke/checkout/method/pay?x=1&y=%2F", TOKEN]
    );
    assert_eq!(body, "body bytes");
    // A lock path with another method is not a lock route: daprd answers it.
    let lock_path = format!("{}/v1.0-alpha1/lock/lockstore", host.base);
    let (status, seen, _) = exchange("PUT", &lock_path, &with_token, "", &echoed[..1]);
    assert_eq!((status, seen), (418, vec!["PUT".to_string()]));
    // The lock routes are wasilock's.
    let auth = [("dapr-api-token", TOKEN)];
    assert_locks(&host, "raw", &auth);

    // Metadata: daprd's, with wasilock's lock stores in place of daprd's.
    let metadata = host.get_with("/v1.0/metadata", &auth);
    assert_eq!(metadata.status, 200);
    let metadata: serde_json::Value = serde_json::from_str(&metadata.body).unwrap();
    assert_eq!(metadata["id"], "standin-app");
    assert_eq!(metadata["subscriptions"][0]["topic"], "orders");
    assert_eq!(metadata["extended"]["standin"], "yes");
    assert!(metadata["extended"]["wasilockVersion"].is_string());
    let components: Vec<(&str, &str)> = metadata["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        components,
        [
            ("statestore", "state.in-memory"),
            ("lockstore", "lock.embedded")
        ]
    );

    let calls = standin.calls();
    for expected in [
        "grpc /dapr.proto.runtime.v1.Dapr/SaveState",
        "grpc /dapr.proto.runtime.v1.Dapr/GetState",
        "grpc /dapr.proto.runtime.v1.Dapr/PublishEvent",
        "grpc /dapr.proto.runtime.v1.Dapr/SubscribeConfigurationAlpha1",
        "grpc /dapr.proto.runtime.v1.Dapr/SubscribeTopicEventsAlpha1",
        "processed event-1 status=0",
        "grpc /dapr.proto.runtime.v1.Dapr/GetMetadata",
        "grpc /wasilock.test.Echo/Echo",
        "grpc /wasilock.test.Echo/Concat",
        "http GET /v1.0/metadata",
        "http PATCH /v1.0/invoke/checkout/method/pay?x=1&y=%2F",
        "http PUT /v1.0-alpha1/lock/lockstore",
    ] {
        assert!(
            calls.iter().any(|c| c == expected),
            "{expected} missing: {calls:?}"
        );
    }
    let lock_calls: Vec<_> = calls
        .iter()
        .filter(|c| c.contains("LockAlpha1") || c.starts_with("http POST /v1.0-alpha1/"))
        .collect();
    assert!(
        lock_calls.is_empty(),
        "daprd saw lock calls: {lock_calls:?}"
    );
    assert!(
        !calls.iter().any(|c| c.contains("wrong")),
        "a refused request reached daprd"
    );
}

#[test]
fn health_follows_daprd_and_with_daprd_down_calls_fail_fast_but_locks_work() {
    let Some(python) = sdk_clients::python() else {
        return;
    };
    let mut standin = StandinDaprd::start(&python);
    let host = host_in_front_of(&standin, Some(TOKEN));
    let auth = [("dapr-api-token", TOKEN)];
    let banner = host.banner();
    let announced = format!(
        "upstream daprd: HTTP {}/, gRPC {}/",
        standin.http_url(),
        standin.grpc_url()
    );
    assert!(banner.contains(&announced), "{banner}");
    // A wrong token is refused by wasilock, before daprd; the right one is passed on.
    let url = format!("{}/v1.0/invoke/a/method/b", host.base);
    let refused = [("dapr-api-token", "wrong")];
    let (status, _, body) = exchange("GET", &url, &refused, "", &[]);
    assert_eq!((status, body.as_str()), (401, "invalid api token\n"));
    let (status, seen, _) = exchange("GET", &url, &auth, "", &["x-standin-token"]);
    assert_eq!((status, seen), (200, vec![TOKEN.to_string()]));
    assert_eq!(
        standin
            .calls()
            .iter()
            .filter(|c| c.contains("/invoke/"))
            .count(),
        1,
        "only the request with the right token reached daprd"
    );
    assert_eq!(host.get("/v1.0/healthz").status, 204);
    assert_eq!(host.get("/v1.0/healthz/outbound").status, 204);
    assert!(
        standin
            .calls()
            .iter()
            .any(|c| c == "http GET /v1.0/healthz"),
        "health was not asked of daprd"
    );

    standin.kill();
    let health = host.get("/v1.0/healthz");
    assert_eq!(health.status, 500);
    assert!(
        health.body.contains("ERR_HEALTH_NOT_READY"),
        "{}",
        health.body
    );
    assert_eq!(host.get("/v1.0/healthz/outbound").status, 500);
    let forwarded = host.get_with("/v1.0/state/statestore/k", &auth);
    assert_eq!(forwarded.status, 502);
    let error: serde_json::Value = serde_json::from_str(&forwarded.body).unwrap();
    assert_eq!(error["errorCode"], "ERR_UPSTREAM_UNAVAILABLE");
    let named = format!("the upstream daprd {} is unavailable", standin.http_url());
    assert!(
        error["message"].as_str().unwrap().starts_with(&named),
        "{error}"
    );
    assert_locks(&host, "down", &auth);
    let metadata = host.get_with("/v1.0/metadata", &auth);
    assert_eq!(metadata.status, 200, "{}", metadata.body);
    assert!(metadata.body.contains(r#""name":"lockstore""#));
    passes(
        &python,
        &sdk_clients::clients_dir().join("dapr_python_upstream.py"),
        &["down"],
        (&host, Some(TOKEN), &standin),
        "python upstream (down): all checks passed",
    );

    standin.restart();
    assert_eq!(host.get("/v1.0/healthz").status, 204);
    let state = host.get_with("/v1.0/state/statestore/missing", &auth);
    assert_eq!(state.status, 204, "{}", state.body);
}

#[test]
fn a_tenant_s_upstream_is_its_own_and_tenants_without_one_answer_as_before() {
    let Some(python) = sdk_clients::python() else {
        return;
    };
    let standin = StandinDaprd::start(&python);
    let with_upstream = format!(
        "{}  upstream:\n    http: \"{}\"\n    grpc: \"{}\"\n",
        common::tenant("orders", "t-orders", None, "{}"),
        standin.http_url(),
        standin.grpc_url()
    );
    let without = common::tenant("billing", "t-billing", None, "{}");
    let host = Host::start_with(Options::new().resources(&[
        ("orders.yaml", &with_upstream),
        ("billing.yaml", &without),
        (
            "lock.yaml",
            &common::component("lockstore", "lock.in-memory", &[]),
        ),
    ]));
    let echoed = ["x-standin-token"];
    let url = format!("{}/v1.0/invoke/a/method/b", host.base);
    let orders = [("dapr-api-token", "t-orders")];
    let (status, seen, _) = exchange("GET", &url, &orders, "", &echoed);
    assert_eq!((status, seen), (200, vec!["t-orders".to_string()]));
    let billing = host.get_with(
        "/v1.0/invoke/a/method/b",
        &[("dapr-api-token", "t-billing")],
    );
    assert_eq!(billing.status, 404);
    assert!(
        billing.body.contains("ERR_DIRECT_INVOKE"),
        "{}",
        billing.body
    );
    let billing_metadata = host.get_with("/v1.0/metadata", &[("dapr-api-token", "t-billing")]);
    assert!(billing_metadata.body.contains(r#""id":"billing""#));
    let orders_metadata = host.get_with("/v1.0/metadata", &orders);
    assert!(orders_metadata.body.contains(r#""id":"standin-app""#));
}
