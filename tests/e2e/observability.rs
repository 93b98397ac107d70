//! Observability against the real binary and real tools: the metrics endpoint read with a
//! Prometheus text parser, checked by `promtool check metrics`, scraped by a real Prometheus
//! server (and the Grafana dashboard's queries run there); daprd's JSON and API log lines.

use crate::grpc_client::{dapr, granted, runtime};
use prom_text_format_parser::{Sample, Scrape, Type, ValueType};
use std::collections::HashMap;
use wasilock::api::grpc::proto::{TryLockRequest, UnlockRequest};
use wasilock_testkit as common;

use common::prometheus::{PrometheusServer, promtool_check_metrics};
use common::{Host, Options, component};

/// How to start a host with one in-memory store, `lockstore`, for app id `orders`.
fn orders() -> Options {
    let store = component("lockstore", "lock.in-memory", &[]);
    Options::new()
        .app_id("orders")
        .resources(&[("lockstore.yaml", &store)])
}

/// A host with one in-memory store, `lockstore`, for app id `orders`.
fn host(extra: &[&str]) -> Host {
    Host::start_with(orders().args(extra.iter().copied()))
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
    runtime().block_on(async {
        let mut client = dapr(&host.grpc).await;
        let lock = TryLockRequest {
            store_name: "lockstore".into(),
            resource_id: "g".into(),
            lock_owner: "a".into(),
            expiry_in_seconds: 30,
        };
        assert!(granted(&mut client, lock).await);
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
    let host = host(&[]);
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

    // The value of `name` for the app `orders` and `labels`.
    let of_orders = |name: &str, labels: &[(&str, &str)]| {
        let labels = [&[("app_id", "orders")], labels].concat();
        value(&scrape, name, &labels)
    };
    let http = |path: &str, status: &str| {
        let labels = [("method", "POST"), ("path", path), ("status", status)];
        of_orders("dapr_http_server_request_count", &labels)
    };
    assert_eq!(http("/v1.0-alpha1/lock/{storeName}", "200"), 3.0);
    assert_eq!(http("/v1.0-alpha1/lock/{storeName}", "400"), 1.0);
    assert_eq!(http("/v1.0-alpha1/unlock/{storeName}", "200"), 2.0);
    assert_eq!(http("_", "404"), 1.0);
    let health = [("app_id", ""), ("method", "GET"), ("path", "/v1.0/healthz")];
    assert!(value(&scrape, "dapr_http_server_request_count", &health) >= 1.0);
    let latency = [("path", "/v1.0-alpha1/lock/{storeName}"), ("status", "200")];
    assert_eq!(of_orders("dapr_http_server_latency", &latency), 3.0);

    let grpc = |method: &str| {
        let labels = [("grpc_server_method", method), ("grpc_server_status", "OK")];
        of_orders("dapr_grpc_io_server_completed_rpcs", &labels)
    };
    assert_eq!(grpc("/dapr.proto.runtime.v1.Dapr/TryLockAlpha1"), 1.0);
    assert_eq!(grpc("/dapr.proto.runtime.v1.Dapr/UnlockAlpha1"), 1.0);

    let operations = |operation: &str, outcome: &str| {
        let labels = [
            ("store", "lockstore"),
            ("operation", operation),
            ("outcome", outcome),
        ];
        of_orders("wasilock_lock_operations_total", &labels)
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
    let calls = of_orders("wasilock_component_calls_total", &[]);
    assert_eq!(
        calls, 9.0,
        "7 HTTP requests and 2 gRPC calls reach the component"
    );
    let traps = [("kind", "deadline")];
    assert_eq!(of_orders("wasilock_component_traps_total", &traps), 0.0);
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
    let host = host(&[]);
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

/// The sum of the histogram `name` whose labels include `labels`.
fn histogram_sum(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let metric = scrape.metrics.iter().find(|m| m.name == name);
    let metric = metric.unwrap_or_else(|| panic!("no {name} in the scrape"));
    let sums: Vec<_> = metric
        .samples
        .iter()
        .filter(|s| s.value.value_type == ValueType::Sum)
        .filter(|s| {
            let has = |(k, v): &(&str, &str)| s.labels.iter().any(|l| l.key == *k && l.value == *v);
            labels.iter().all(has)
        })
        .collect();
    assert_eq!(sums.len(), 1, "{name} {labels:?}: {sums:?}");
    sums[0].value.value.as_f64()
}

#[test]
fn alpha2_waiters_are_a_gauge_and_their_wait_a_histogram_by_outcome() {
    let host = host(&[]);
    let url = host
        .metrics_url()
        .expect("the banner names the metrics endpoint");
    let scrape = || Scrape::parse(&scrape_text(&url)).expect("Prometheus text");
    let store = [("app_id", "orders"), ("store", "lockstore")];
    let outcome = |outcome: &'static str| [store[0], store[1], ("outcome", outcome)];
    let api = common::alpha2::Alpha2::new(&host.base);
    let holder = api.grant("lockstore", "job", "");
    let waiter = {
        let api = api.clone();
        std::thread::spawn(move || api.grant("lockstore", "job", r#"{"waitTimeout":"60s"}"#))
    };
    // The waiter is counted while it waits, and nothing is recorded of its wait yet.
    let queued = std::time::Instant::now();
    while value(&scrape(), "wasilock_waiters", &store) != 1.0 {
        assert!(
            queued.elapsed() < std::time::Duration::from_secs(10),
            "the waiter never showed in wasilock_waiters"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let waiting = scrape();
    assert_eq!(
        value(&waiting, "wasilock_wait_latency", &outcome("granted")),
        0.0
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(api.release("lockstore", "job", &holder.lock_id).status, 204);
    let granted = waiter.join().unwrap();
    assert!(granted.fencing_token > holder.fencing_token);
    let after = scrape();
    assert_eq!(value(&after, "wasilock_waiters", &store), 0.0);
    assert_eq!(
        value(&after, "wasilock_wait_latency", &outcome("granted")),
        1.0
    );
    let waited_ms = histogram_sum(&after, "wasilock_wait_latency", &outcome("granted"));
    assert!(
        (300.0..60_000.0).contains(&waited_ms),
        "waited {waited_ms} ms, in milliseconds"
    );
    // A wait that runs out is a timeout.
    let reply = api.acquire("lockstore", "job", r#"{"waitTimeout":"100ms"}"#);
    assert_eq!(reply.status, 409, "{reply:?}");
    let after = scrape();
    assert_eq!(value(&after, "wasilock_waiters", &store), 0.0);
    assert_eq!(
        value(&after, "wasilock_wait_latency", &outcome("timeout")),
        1.0
    );
    assert_eq!(
        value(&after, "wasilock_wait_latency", &outcome("granted")),
        1.0
    );
    assert_eq!(
        api.release("lockstore", "job", &granted.lock_id).status,
        204
    );
}

#[test]
fn json_logs_follow_daprds_schema_with_api_lines_and_never_a_token() {
    let token = "secret-token-of-orders";
    let host = Host::start_with(
        orders()
            .args(["--log-as-json", "--enable-api-logging"])
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
    let off = host(&["--enable-metrics=false"]);
    assert_eq!(off.metrics_url(), None, "{}", off.banner());
    assert_eq!(off.lock("lockstore", "r", "a", 30), Ok(true));
    let config = tempfile::tempdir().unwrap();
    let file = config.path().join("config.yaml");
    std::fs::write(
        &file,
        "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: c\nspec:\n  metrics:\n    enabled: false\n",
    )
    .unwrap();
    let configured = host(&["--config", file.to_str().unwrap()]);
    assert_eq!(configured.metrics_url(), None, "{}", configured.banner());
}

mod traces {
    //! Spans received by an OTLP receiver built from OpenTelemetry's published protos.

    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
        TraceService, TraceServiceServer,
    };
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use opentelemetry_proto::tonic::common::v1::any_value;
    use opentelemetry_proto::tonic::trace::v1::Span;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    /// The trace and parent span a `grpc-trace-bin` call carries.
    const BIN_TRACE: [u8; 16] = [7; 16];
    /// The caller's span in [`BIN_TRACE`].
    const BIN_PARENT: [u8; 8] = [9; 8];

    /// Keeps every span exported to it.
    #[derive(Clone, Default)]
    struct Receiver(Arc<Mutex<Vec<Span>>>);

    #[tonic::async_trait]
    impl TraceService for Receiver {
        async fn export(
            &self,
            request: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
            let mut spans = self.0.lock().unwrap();
            for resource in request.into_inner().resource_spans {
                for scope in resource.scope_spans {
                    spans.extend(scope.spans);
                }
            }
            Ok(tonic::Response::new(ExportTraceServiceResponse {
                partial_success: None,
            }))
        }
    }

    /// Starts a receiver on a free loopback port; returns it and the port.
    fn start_receiver() -> (Receiver, u16) {
        let receiver = Receiver::default();
        let serving = receiver.clone();
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                port_tx.send(listener.local_addr().unwrap().port()).unwrap();
                let incoming = futures_util::stream::unfold(listener, |listener| async move {
                    let accepted = listener.accept().await.map(|(stream, _)| stream);
                    Some((accepted, listener))
                });
                tonic::transport::Server::builder()
                    .add_service(TraceServiceServer::new(serving))
                    .serve_with_incoming(incoming)
                    .await
                    .unwrap();
            });
        });
        (receiver, port_rx.recv().unwrap())
    }

    /// The spans received once `done` holds of them, within 30 s.
    fn spans_once(receiver: &Receiver, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let spans = receiver.0.lock().unwrap().clone();
            if done(&spans) {
                return spans;
            }
            assert!(Instant::now() < deadline, "spans received: {spans:#?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a any_value::Value> {
        let found = span.attributes.iter().find(|a| a.key == key)?;
        found.value.as_ref()?.value.as_ref()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn spans_continue_the_callers_trace_reach_an_otlp_receiver_and_the_rate_reloads() {
        let (receiver, port) = start_receiver();
        let config = tempfile::tempdir().unwrap();
        let file = config.path().join("tracing.yaml");
        std::fs::write(
            &file,
            format!(
                "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: tracing\nspec:\n  tracing:\n    samplingRate: \"1\"\n    otel:\n      endpointAddress: \"127.0.0.1:{port}\"\n      protocol: grpc\n      isSecure: false\n"
            ),
        )
        .unwrap();
        let host = host(&["--config", file.to_str().unwrap()]);

        let (http_trace, http_parent) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
        let traceparent = format!("00-{http_trace}-{http_parent}-01");
        let body =
            r#"{"resourceId":"traced-resource","lockOwner":"traced-owner","expiryInSeconds":30}"#;
        let response = common::agent()
            .post(&format!("{}/v1.0-alpha1/lock/lockstore", host.base))
            .header("traceparent", &traceparent)
            .send(body)
            .expect("POST");
        assert_eq!(response.status(), 200);
        let answered = response
            .headers()
            .get("traceparent")
            .expect("a traceparent");
        let answered = answered.to_str().unwrap();
        assert!(
            answered.starts_with(&format!("00-{http_trace}-")),
            "{answered}"
        );
        assert!(
            !answered.contains(http_parent),
            "the host's own span id: {answered}"
        );

        let grpc_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        let grpc_answer = runtime().block_on(async {
            let mut request = tonic::Request::new(TryLockRequest {
                store_name: "lockstore".into(),
                resource_id: "traced-grpc".into(),
                lock_owner: "traced-owner".into(),
                expiry_in_seconds: 30,
            });
            let traceparent = format!("00-{grpc_trace}-00f067aa0ba902b7-01");
            request
                .metadata_mut()
                .insert("traceparent", traceparent.parse().unwrap());
            let mut client = dapr(&host.grpc).await;
            let answer = client.try_lock_alpha1(request).await.unwrap();
            // The binary context of older clients: trace id, span id, sampled.
            let mut unlock = tonic::Request::new(UnlockRequest {
                store_name: "lockstore".into(),
                resource_id: "traced-grpc".into(),
                lock_owner: "traced-owner".into(),
            });
            let mut bin = vec![0, 0];
            bin.extend(BIN_TRACE);
            bin.push(1);
            bin.extend(BIN_PARENT);
            bin.extend([2, 1]);
            unlock.metadata_mut().insert_bin(
                "grpc-trace-bin",
                tonic::metadata::MetadataValue::from_bytes(&bin),
            );
            client.unlock_alpha1(unlock).await.unwrap();
            answer
        });
        let grpc_traceparent = grpc_answer
            .metadata()
            .get("traceparent")
            .expect("a traceparent");
        assert!(
            grpc_traceparent
                .to_str()
                .unwrap()
                .starts_with(&format!("00-{grpc_trace}-"))
        );

        let server_named = |spans: &[Span], name: &str| -> Option<Span> {
            spans.iter().find(|s| s.name == name).cloned()
        };
        let spans = spans_once(&receiver, |spans| {
            spans
                .iter()
                .any(|s| s.name == "store operation" && hex(&s.trace_id) == http_trace)
                && server_named(spans, "/dapr.proto.runtime.v1.Dapr/TryLockAlpha1").is_some()
                && server_named(spans, "/dapr.proto.runtime.v1.Dapr/UnlockAlpha1").is_some()
        });
        let in_trace = |trace: &str| -> Vec<&Span> {
            spans.iter().filter(|s| hex(&s.trace_id) == trace).collect()
        };
        let http_spans = in_trace(http_trace);
        let server = http_spans
            .iter()
            .find(|s| s.name == "/v1.0-alpha1/lock/lockstore")
            .unwrap_or_else(|| panic!("no server span: {http_spans:#?}"));
        assert_eq!(
            hex(&server.parent_span_id),
            http_parent,
            "the caller's span is the parent"
        );
        assert_eq!(server.kind, 2, "SPAN_KIND_SERVER");
        assert!(answered.contains(&hex(&server.span_id)), "{answered}");
        // The span `name` under `parent`, and what its attribute `key` says.
        let child = |name: &str, parent: &Span| {
            http_spans
                .iter()
                .find(|s| s.name == name && s.parent_span_id == parent.span_id)
                .unwrap_or_else(|| panic!("no {name} under {}: {http_spans:#?}", parent.name))
        };
        let says = |span: &Span, key: &str| match attribute(span, key) {
            Some(any_value::Value::StringValue(value)) => value.clone(),
            other => panic!("{key}: {other:?}"),
        };
        let call = child("component call", server);
        assert_eq!(says(call, "app_id"), "orders");
        let store = child("store operation", call);
        assert_eq!(says(store, "store_type"), "lock.in-memory");
        assert!(attribute(store, "outcome").is_some(), "{store:#?}");

        let bin_server = in_trace(&hex(&BIN_TRACE))
            .into_iter()
            .find(|s| s.name == "/dapr.proto.runtime.v1.Dapr/UnlockAlpha1")
            .expect("the gRPC server span in the trace of grpc-trace-bin");
        assert_eq!(bin_server.parent_span_id, BIN_PARENT);
        let grpc_server = in_trace(grpc_trace)
            .into_iter()
            .find(|s| s.name == "/dapr.proto.runtime.v1.Dapr/TryLockAlpha1")
            .expect("the gRPC server span in the caller's trace");
        assert_eq!(hex(&grpc_server.parent_span_id), "00f067aa0ba902b7");

        let everything = format!("{spans:?}");
        for secret in ["traced-resource", "traced-owner", "traced-grpc"] {
            assert!(!everything.contains(secret), "{secret} in a span");
        }

        // The sampling rate reloads with the file: a new trace is then not sampled.
        let new_trace_flags = || {
            let response = common::agent()
                .post(&format!("{}/v1.0-alpha1/lock/lockstore", host.base))
                .send(body)
                .expect("POST");
            let traceparent = response
                .headers()
                .get("traceparent")
                .expect("a traceparent");
            traceparent
                .to_str()
                .unwrap()
                .rsplit('-')
                .next()
                .unwrap()
                .to_string()
        };
        assert_eq!(new_trace_flags(), "01", "sampled at rate 1");
        let yaml = std::fs::read_to_string(&file).unwrap();
        std::fs::write(
            &file,
            yaml.replace("samplingRate: \"1\"", "samplingRate: \"0.0\""),
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !host
            .stderr
            .lock()
            .unwrap()
            .contains("reloaded the configuration")
        {
            assert!(
                Instant::now() < deadline,
                "no reload: {}",
                host.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(new_trace_flags(), "00", "not sampled at rate 0");
    }
}
