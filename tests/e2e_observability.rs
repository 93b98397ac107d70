//! Observability against the real binary and real tools: the metrics endpoint read with a
//! Prometheus text parser, checked by `promtool check metrics`, scraped by a real Prometheus
//! server (and the Grafana dashboard's queries run there); daprd's JSON and API log lines.

use prom_text_format_parser::{Sample, Scrape, Type, ValueType};
use std::collections::HashMap;
use tonic::transport::Channel;
use wasilock::api::grpc::proto::dapr_client::DaprClient;
use wasilock::api::grpc::proto::{TryLockRequest, UnlockRequest};
use wasilock_testkit as common;

use common::prometheus::{PrometheusServer, promtool_check_metrics};
use common::{Host, Options, component, resources};

/// A host with one in-memory store, `lockstore`, for app id `orders`.
fn host(extra: &[&str]) -> (Host, tempfile::TempDir) {
    let dir = resources(&[(
        "lockstore.yaml",
        &component("lockstore", "lock.in-memory", &[]),
    )]);
    let options = Options::new()
        .args(["--app-id", "orders", "--resources-path"])
        .args([dir.path().to_str().unwrap()])
        .args(extra.iter().copied());
    (Host::start_with(options), dir)
}

/// GETs the metrics endpoint.
fn scrape_text(url: &str) -> String {
    common::agent()
        .get(url)
        .call()
        .expect("scrape")
        .body_mut()
        .read_to_string()
        .unwrap()
}

/// The samples of `name` whose labels include `labels`: counts for a histogram, values
/// otherwise.
fn samples<'a>(scrape: &'a Scrape, name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    let metric = scrape.metrics.iter().find(|m| m.name == name);
    let metric = metric.unwrap_or_else(|| panic!("no {name} in the scrape"));
    let wanted = match metric.kind {
        Type::Histogram => ValueType::Count,
        _ => ValueType::Sample,
    };
    metric
        .samples
        .iter()
        .filter(|s| s.value.value_type == wanted)
        .filter(|s| {
            let has = |(k, v): &(&str, &str)| s.labels.iter().any(|l| l.key == *k && l.value == *v);
            labels.iter().all(has)
        })
        .collect()
}

/// The value of the one sample of `name` whose labels include `labels` (a histogram's count).
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching = samples(scrape, name, labels);
    assert_eq!(matching.len(), 1, "{name} {labels:?}: {matching:?}");
    matching[0].value.value.as_f64()
}

/// Sends the HTTP requests the counts are checked against: 3 TryLock (1 granted, 2 held),
/// 2 Unlock (released, not found), 1 malformed TryLock, 1 unrouted path, 1 health check.
fn send_http_requests(host: &Host) {
    assert_eq!(host.lock("lockstore", "r", "a", 30), Ok(true));
    assert_eq!(host.lock("lockstore", "r", "b", 30), Ok(false));
    assert_eq!(host.lock("lockstore", "r", "c", 30), Ok(false));
    assert_eq!(host.unlock("lockstore", "r", "a"), Ok(0));
    assert_eq!(host.unlock("lockstore", "r", "a"), Ok(1));
    assert_eq!(host.lock("lockstore", "r", "a", 0).unwrap_err().status, 400);
    assert_eq!(host.post("/v1.0/state/x/y", "{}").status, 404);
    assert_eq!(host.get("/v1.0/healthz").status, 204);
}

/// Sends 2 gRPC calls: a granted TryLock and an Unlock of a lock that does not exist.
fn send_grpc_calls(host: &Host) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let channel = Channel::from_shared(format!("http://{}", host.grpc))
            .unwrap()
            .connect()
            .await
            .expect("connect to the gRPC API");
        let mut client = DaprClient::new(channel);
        let lock = TryLockRequest {
            store_name: "lockstore".into(),
            resource_id: "g".into(),
            lock_owner: "a".into(),
            expiry_in_seconds: 30,
        };
        assert!(
            client
                .try_lock_alpha1(lock)
                .await
                .unwrap()
                .into_inner()
                .success
        );
        let unlock = UnlockRequest {
            store_name: "lockstore".into(),
            resource_id: "none".into(),
            lock_owner: "a".into(),
        };
        let status = client
            .unlock_alpha1(unlock)
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, 1);
    });
}

#[test]
fn metrics_count_the_requests_sent_in_daprds_series_and_promtool_accepts_them() {
    let (host, _dir) = host(&[]);
    send_http_requests(&host);
    send_grpc_calls(&host);
    let url = host
        .metrics_url()
        .expect("the banner names the metrics endpoint");
    let text = scrape_text(&url);
    let root = scrape_text(&url.replace("/metrics", "/"));
    assert!(
        root.contains("# TYPE dapr_http_server_request_count counter"),
        "{root}"
    );
    let scrape = Scrape::parse(&text).expect("Prometheus text");

    let http = |path: &str, status: &str| {
        let labels = [
            ("app_id", "orders"),
            ("method", "POST"),
            ("path", path),
            ("status", status),
        ];
        value(&scrape, "dapr_http_server_request_count", &labels)
    };
    assert_eq!(http("/v1.0-alpha1/lock/{storeName}", "200"), 3.0);
    assert_eq!(http("/v1.0-alpha1/lock/{storeName}", "400"), 1.0);
    assert_eq!(http("/v1.0-alpha1/unlock/{storeName}", "200"), 2.0);
    assert_eq!(http("_", "404"), 1.0);
    let health = [("app_id", ""), ("method", "GET"), ("path", "/v1.0/healthz")];
    assert!(value(&scrape, "dapr_http_server_request_count", &health) >= 1.0);
    let latency = [
        ("app_id", "orders"),
        ("path", "/v1.0-alpha1/lock/{storeName}"),
        ("status", "200"),
    ];
    assert_eq!(value(&scrape, "dapr_http_server_latency", &latency), 3.0);

    let grpc = |method: &str| {
        let labels = [
            ("app_id", "orders"),
            ("grpc_server_method", method),
            ("grpc_server_status", "OK"),
        ];
        value(&scrape, "dapr_grpc_io_server_completed_rpcs", &labels)
    };
    assert_eq!(grpc("/dapr.proto.runtime.v1.Dapr/TryLockAlpha1"), 1.0);
    assert_eq!(grpc("/dapr.proto.runtime.v1.Dapr/UnlockAlpha1"), 1.0);

    let operations = |operation: &str, outcome: &str| {
        let labels = [
            ("app_id", "orders"),
            ("store", "lockstore"),
            ("operation", operation),
            ("outcome", outcome),
        ];
        value(&scrape, "wasilock_lock_operations_total", &labels)
    };
    assert_eq!(
        operations("trylock", "granted"),
        2.0,
        "1 over HTTP, 1 over gRPC"
    );
    assert_eq!(operations("trylock", "held"), 2.0);
    assert_eq!(operations("trylock", "error"), 1.0);
    assert_eq!(operations("unlock", "released"), 1.0);
    assert_eq!(
        operations("unlock", "not-found"),
        2.0,
        "1 over HTTP, 1 over gRPC"
    );
    let calls = value(
        &scrape,
        "wasilock_component_calls_total",
        &[("app_id", "orders")],
    );
    assert_eq!(
        calls, 9.0,
        "7 HTTP requests and 2 gRPC calls reach the component"
    );
    let traps = [("app_id", "orders"), ("kind", "deadline")];
    assert_eq!(
        value(&scrape, "wasilock_component_traps_total", &traps),
        0.0
    );
    let store_ops: f64 = samples(
        &scrape,
        "wasilock_store_latency_seconds",
        &[("store", "lockstore")],
    )
    .iter()
    .map(|s| s.value.value.as_f64())
    .sum();
    assert!(
        store_ops >= 7.0,
        "every lock outcome came from the store: {store_ops}"
    );
    assert!(value(&scrape, "wasilock_open_connections", &[]) >= 1.0);
    assert!(value(&scrape, "process_resident_memory_bytes", &[]) > 0.0);
    for forbidden in ["resourceId", "lock_owner", "\"r\"", "owner="] {
        assert!(!text.contains(forbidden), "{forbidden} in the metrics");
    }

    // The only lints allowed are those daprd's own counter names earn.
    if let Some(lints) = promtool_check_metrics(&text) {
        let daprds_names = |l: &str| {
            (l.starts_with("dapr_http_server_request_count ")
                || l.starts_with("dapr_grpc_io_server_completed_rpcs "))
                && (l.contains("counter metrics should have \"_total\" suffix")
                    || l.contains("metrics should not have \"_count\" suffix"))
        };
        let unexpected: Vec<&String> = lints.iter().filter(|l| !daprds_names(l)).collect();
        assert!(unexpected.is_empty(), "promtool: {unexpected:?}");
    }
}

#[test]
fn a_prometheus_server_scrapes_the_host_and_answers_the_dashboards_queries() {
    let (host, _dir) = host(&[]);
    send_http_requests(&host);
    let url = host
        .metrics_url()
        .expect("the banner names the metrics endpoint");
    let target = url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics");
    let Some(prometheus) = PrometheusServer::scraping(target) else {
        return;
    };
    let granted = prometheus.query_until_found(
        r#"wasilock_lock_operations_total{app_id="orders",store="lockstore",operation="trylock",outcome="granted"}"#,
    );
    assert_eq!(granted[0]["value"][1], "1");
    let requests = prometheus.query_until_found(
        r#"dapr_http_server_request_count{app_id="orders",path="/v1.0-alpha1/lock/{storeName}",status="200"}"#,
    );
    assert_eq!(requests[0]["value"][1], "3");

    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::workspace().join("deploy/grafana/wasilock.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("an expression");
            let answer = prometheus.query(&expr.replace("$__rate_interval", "1m"));
            assert_eq!(answer["status"], "success", "{expr}: {answer}");
            queries += 1;
        }
    }
    assert!(queries >= 10, "{queries} queries");
}

#[test]
fn json_logs_follow_daprds_schema_with_api_lines_and_never_a_token() {
    let token = "secret-token-of-orders";
    let dir = resources(&[(
        "lockstore.yaml",
        &component("lockstore", "lock.in-memory", &[]),
    )]);
    let host = Host::start_with(
        Options::new()
            .args([
                "--app-id",
                "orders",
                "--log-as-json",
                "--enable-api-logging",
            ])
            .args(["--resources-path", dir.path().to_str().unwrap()])
            .env("DAPR_API_TOKEN", token)
            .log_level("info"),
    );
    let banner = host.banner();
    assert!(banner.contains("serving the Dapr lock API"), "{banner}");
    let headers = [
        ("dapr-api-token", token),
        ("user-agent", "observability-test"),
    ];
    let body = r#"{"resourceId":"r","lockOwner":"a","expiryInSeconds":30}"#;
    let reply = host.post_with("/v1.0-alpha1/lock/lockstore", body, &headers);
    assert_eq!(reply.status, 200);
    assert_eq!(host.post("/v1.0-alpha1/lock/lockstore", body).status, 401);

    let api_line = wait_for_line(&host, |v| {
        v["msg"] == "HTTP API Called" && v["code"] == "200"
    });
    assert_eq!(api_line["method"], "POST /v1.0-alpha1/lock/lockstore");
    assert_eq!(api_line["useragent"], "observability-test");
    assert!(api_line["duration"].is_u64(), "{api_line}");
    let stdout = host.stdout.lock().unwrap().clone();
    let mut levels = HashMap::new();
    for line in stdout.lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        for key in [
            "time", "level", "type", "msg", "scope", "instance", "app_id", "ver",
        ] {
            assert!(value.get(key).is_some(), "{key} missing in {line}");
        }
        assert_eq!(value["type"], "log");
        assert_eq!(value["app_id"], "orders");
        *levels
            .entry(value["level"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    assert!(
        levels
            .keys()
            .all(|l| ["debug", "info", "warning", "error"].contains(&l.as_str())),
        "{levels:?}"
    );
    let stderr = host.stderr.lock().unwrap().clone();
    assert!(
        !stdout.contains(token) && !stderr.contains(token),
        "a token was logged"
    );
}

/// The first JSON line on the host's stdout that `matches`, within 10 s.
fn wait_for_line(host: &Host, matches: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let stdout = host.stdout.lock().unwrap().clone();
        let found = stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| matches(v));
        if let Some(found) = found {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no such line in {stdout}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn metrics_are_off_with_the_flag_or_the_configuration() {
    let (off, _dir) = host(&["--enable-metrics=false"]);
    assert_eq!(off.metrics_url(), None, "{}", off.banner());
    assert_eq!(off.lock("lockstore", "r", "a", 30), Ok(true));
    let config = tempfile::tempdir().unwrap();
    let file = config.path().join("config.yaml");
    std::fs::write(
        &file,
        "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: c\nspec:\n  metrics:\n    enabled: false\n",
    )
    .unwrap();
    let (configured, _dir) = host(&["--config", file.to_str().unwrap()]);
    assert_eq!(configured.metrics_url(), None, "{}", configured.banner());
}
