//! The process's Prometheus registry ([`Metrics`]): daprd's HTTP and gRPC server series
//! under daprd's names, labels and millisecond buckets, `process_*`, and wasilock's own
//! `wasilock_*` series; and the label handles resolved once per tenant ([`TenantMetrics`])
//! and per tenant and store ([`StoreMetrics`]), so that the hot path only bumps atomics.
//!
//! Labels are bounded: app ids, store names (as configured), route templates, methods,
//! statuses and fixed outcome names; never resource ids, owners or tokens.

use super::outcomes::{
    LockOperation, LockOutcome, StoreOperation, StoreOutcome, TrapKind, WaitOutcome,
};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Daprd's latency buckets, in milliseconds (`defaultLatencyDistribution`).
pub const DAPR_LATENCY_BUCKETS_MS: [f64; 34] = [
    1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 13.0, 16.0, 20.0, 25.0, 30.0, 40.0, 50.0, 65.0, 80.0,
    100.0, 130.0, 160.0, 200.0, 250.0, 300.0, 400.0, 500.0, 650.0, 800.0, 1000.0, 2000.0, 5000.0,
    10000.0, 20000.0, 50000.0, 100000.0,
];

/// Store operation buckets, in seconds: 50 µs (in memory) to 5 s (a distant Redis).
const STORE_LATENCY_BUCKETS_S: [f64; 14] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];

/// Every series of the process, registered once in one registry.
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_latency: HistogramVec,
    grpc_completed: IntCounterVec,
    grpc_latency: HistogramVec,
    lock_operations: IntCounterVec,
    store_latency: HistogramVec,
    component_calls: IntCounterVec,
    traps: IntCounterVec,
    too_many_requests: IntCounterVec,
    slow_lane_waits: IntCounterVec,
    warm_instances: IntGaugeVec,
    live_instances: IntGaugeVec,
    waiters: IntGaugeVec,
    wait_latency: HistogramVec,
    reloads: IntCounterVec,
    open_connections: IntGauge,
}

/// An HTTP request's series handles: its count and its latency.
#[derive(Clone)]
pub struct HttpSeries {
    count: IntCounter,
    latency: Histogram,
}

impl HttpSeries {
    /// Records one request that took `elapsed`.
    pub fn observe(&self, elapsed: Duration) {
        self.count.inc();
        self.latency.observe(millis(elapsed));
    }
}

impl Metrics {
    /// A registry with every series, `process_*` included.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let vec = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid counter");
            registry.register(Box::new(vec.clone())).expect("unique");
            vec
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let vec = IntGaugeVec::new(Opts::new(name, help), labels).expect("a valid gauge");
            registry.register(Box::new(vec.clone())).expect("unique");
            vec
        };
        let histogram = |name: &str, help: &str, labels: &[&str], buckets: &[f64]| {
            let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
            let vec = HistogramVec::new(opts, labels).expect("a valid histogram");
            registry.register(Box::new(vec.clone())).expect("unique");
            vec
        };
        let http = ["app_id", "method", "path", "status"];
        let grpc = ["app_id", "grpc_server_method", "grpc_server_status"];
        let open_connections = IntGauge::new(
            "wasilock_open_connections",
            "Connections open now, HTTP and gRPC together.",
        )
        .expect("a valid gauge");
        registry
            .register(Box::new(open_connections.clone()))
            .expect("unique");
        let metrics = Metrics {
            http_requests: counter(
                "dapr_http_server_request_count",
                "The number of HTTP requests.",
                &http,
            ),
            http_latency: histogram(
                "dapr_http_server_latency",
                "Latency distribution of HTTP requests, in milliseconds.",
                &http,
                &DAPR_LATENCY_BUCKETS_MS,
            ),
            grpc_completed: counter(
                "dapr_grpc_io_server_completed_rpcs",
                "Count of RPCs by method and status.",
                &grpc,
            ),
            grpc_latency: histogram(
                "dapr_grpc_io_server_server_latency",
                "Distribution of server latency in milliseconds, by method.",
                &grpc,
                &DAPR_LATENCY_BUCKETS_MS,
            ),
            lock_operations: counter(
                "wasilock_lock_operations_total",
                "Lock operations by tenant, store, operation and outcome.",
                &["app_id", "store", "operation", "outcome"],
            ),
            store_latency: histogram(
                "wasilock_store_latency_seconds",
                "Latency of store operations by tenant, store, operation and outcome.",
                &["app_id", "store", "operation", "outcome"],
                &STORE_LATENCY_BUCKETS_S,
            ),
            component_calls: counter(
                "wasilock_component_calls_total",
                "Calls into a tenant's lock component.",
                &["app_id"],
            ),
            traps: counter(
                "wasilock_component_traps_total",
                "Component calls that failed, by kind: deadline, memory, other.",
                &["app_id", "kind"],
            ),
            too_many_requests: counter(
                "wasilock_too_many_requests_total",
                "Requests refused because the tenant's maxConcurrency stayed reached (429).",
                &["app_id"],
            ),
            slow_lane_waits: counter(
                "wasilock_slow_lane_waits_total",
                "Epoch ticks at which a long-computing call waited for its tenant's slow lane.",
                &["app_id"],
            ),
            warm_instances: gauge(
                "wasilock_warm_instances",
                "Component instances kept warm for a tenant's next calls.",
                &["app_id"],
            ),
            live_instances: gauge(
                "wasilock_live_instances",
                "Component instances that exist now (serving or warm).",
                &["app_id"],
            ),
            waiters: gauge(
                "wasilock_waiters",
                "alpha2 acquires waiting now for a held lock, by tenant and store.",
                &["app_id", "store"],
            ),
            wait_latency: histogram(
                "wasilock_wait_latency",
                "Time alpha2 waiters spent queued, in milliseconds, by tenant, store and outcome: granted, timeout, gone.",
                &["app_id", "store", "outcome"],
                &DAPR_LATENCY_BUCKETS_MS,
            ),
            reloads: counter(
                "wasilock_reloads_total",
                "Configuration reloads by outcome: ok, error.",
                &["outcome"],
            ),
            open_connections,
            registry,
        };
        let process = prometheus::process_collector::ProcessCollector::for_self();
        metrics
            .registry
            .register(Box::new(process))
            .expect("unique process_* series");
        metrics
    }

    /// The handles of one tenant, resolved once.
    pub fn tenant(&self, app_id: &str) -> TenantMetrics {
        let by_app = |vec: &IntCounterVec| vec.with_label_values(&[app_id]);
        let trap = |kind: &str| self.traps.with_label_values(&[app_id, kind]);
        TenantMetrics {
            app_id: app_id.into(),
            calls: by_app(&self.component_calls),
            traps: [TrapKind::Deadline, TrapKind::Memory, TrapKind::Other]
                .map(|kind| trap(kind.label())),
            too_many_requests: by_app(&self.too_many_requests),
            slow_lane_waits: by_app(&self.slow_lane_waits),
            warm_instances: self.warm_instances.with_label_values(&[app_id]),
            live_instances: self.live_instances.with_label_values(&[app_id]),
            lock_http: [
                self.http(app_id, "POST", super::routes::LOCK, "200"),
                self.http(app_id, "POST", super::routes::UNLOCK, "200"),
            ],
        }
    }

    /// The handles of one tenant's store `store` (`""` for a name it does not see).
    pub fn store(&self, app_id: &str, store: &str) -> StoreMetrics {
        let operations = LockOutcome::ALL.map(|outcome| {
            let op = |operation| {
                self.lock_operations
                    .with_label_values(&[app_id, store, operation, outcome.label()])
            };
            [op("trylock"), op("unlock")]
        });
        let latency = ["get", "compare_and_swap"].map(|operation| {
            ["ok", "conflict", "error"].map(|outcome| {
                self.store_latency
                    .with_label_values(&[app_id, store, operation, outcome])
            })
        });
        StoreMetrics {
            operations,
            latency,
            waiters: self.waiters.with_label_values(&[app_id, store]),
            wait_latency: WaitOutcome::ALL.map(|outcome| {
                self.wait_latency
                    .with_label_values(&[app_id, store, outcome.label()])
            }),
        }
    }

    /// The HTTP series of one request's labels.
    pub fn http(&self, app_id: &str, method: &str, path: &str, status: &str) -> HttpSeries {
        let labels = [app_id, method, path, status];
        HttpSeries {
            count: self.http_requests.with_label_values(&labels),
            latency: self.http_latency.with_label_values(&labels),
        }
    }

    /// Records one gRPC call of `method` (its full name) that ended with `status` (Go's
    /// name, such as `OK`) after `elapsed`.
    pub fn grpc(&self, app_id: &str, method: &str, status: &str, elapsed: Duration) {
        let labels = [app_id, method, status];
        self.grpc_completed.with_label_values(&labels).inc();
        self.grpc_latency
            .with_label_values(&labels)
            .observe(millis(elapsed));
    }

    /// Records a configuration reload.
    pub fn reloaded(&self, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.reloads.with_label_values(&[outcome]).inc();
    }

    /// The Prometheus text exposition of every series, with `open_connections` as now.
    pub fn render(&self, open_connections: usize) -> Vec<u8> {
        self.open_connections
            .set(i64::try_from(open_connections).unwrap_or(i64::MAX));
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut text)
            .expect("text encoding of gathered metrics");
        text
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// One tenant's handles: its component calls, traps, 429s, slow-lane waits, instances, and
/// its successful lock requests over HTTP.
pub struct TenantMetrics {
    app_id: Box<str>,
    calls: IntCounter,
    traps: [IntCounter; 3],
    too_many_requests: IntCounter,
    slow_lane_waits: IntCounter,
    warm_instances: IntGauge,
    live_instances: IntGauge,
    lock_http: [HttpSeries; 2],
}

impl TenantMetrics {
    /// The tenant's app id.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// A call entered the component.
    pub fn called(&self) {
        self.calls.inc();
    }

    /// A call failed with `kind`.
    pub fn trapped(&self, kind: TrapKind) {
        let index = match kind {
            TrapKind::Deadline => 0,
            TrapKind::Memory => 1,
            TrapKind::Other => 2,
        };
        self.traps[index].inc();
    }

    /// A request was refused with 429 (`RESOURCE_EXHAUSTED` on gRPC).
    pub fn too_many_requests(&self) {
        self.too_many_requests.inc();
    }

    /// The counter of slow-lane waits.
    pub fn slow_lane_waits(&self) -> IntCounter {
        self.slow_lane_waits.clone()
    }

    /// The gauge of warm instances.
    pub fn warm_instances(&self) -> IntGauge {
        self.warm_instances.clone()
    }

    /// The gauge of live instances.
    pub fn live_instances(&self) -> IntGauge {
        self.live_instances.clone()
    }

    /// The HTTP series of a `200` answer to `POST` on the lock (`unlock` false) or unlock
    /// route, resolved once.
    pub fn lock_http_ok(&self, unlock: bool) -> &HttpSeries {
        &self.lock_http[usize::from(unlock)]
    }
}

/// One tenant's handles for one store: lock operations by outcome, store latency, alpha2
/// waiters and their wait.
pub struct StoreMetrics {
    operations: [[IntCounter; 2]; 5],
    latency: [[Histogram; 3]; 2],
    waiters: IntGauge,
    wait_latency: [Histogram; 3],
}

impl StoreMetrics {
    /// Counts a lock operation that ended with `outcome`.
    pub fn lock_operation(&self, operation: LockOperation, outcome: LockOutcome) {
        let outcome = LockOutcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .expect("every outcome is listed");
        self.operations[outcome][usize::from(operation == LockOperation::Unlock)].inc();
    }

    /// Records a store operation that ended with `outcome` after `elapsed`.
    pub fn store_operation(
        &self,
        operation: StoreOperation,
        outcome: StoreOutcome,
        elapsed: Duration,
    ) {
        let operation = usize::from(operation == StoreOperation::CompareAndSwap);
        let outcome = match outcome {
            StoreOutcome::Ok => 0,
            StoreOutcome::Conflict => 1,
            StoreOutcome::Error => 2,
        };
        self.latency[operation][outcome].observe(elapsed.as_secs_f64());
    }

    /// An alpha2 waiter joined a queue.
    pub fn waiter_joined(&self) {
        self.waiters.inc();
    }

    /// An alpha2 waiter left its queue with `outcome` after waiting `waited`.
    pub fn waiter_left(&self, outcome: WaitOutcome, waited: Duration) {
        self.waiters.dec();
        let index = WaitOutcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .expect("every outcome is listed");
        self.wait_latency[index].observe(millis(waited));
    }
}

/// A tenant's handles for each store it sees, and for names it does not (`store=""`).
pub struct StoreMetricsByName {
    stores: HashMap<String, Arc<StoreMetrics>>,
    unknown: Arc<StoreMetrics>,
}

impl StoreMetricsByName {
    /// Handles of `app_id` for each of `stores`.
    pub fn new<'a>(
        metrics: &Metrics,
        app_id: &str,
        stores: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        StoreMetricsByName {
            stores: stores
                .into_iter()
                .map(|name| (name.to_string(), Arc::new(metrics.store(app_id, name))))
                .collect(),
            unknown: Arc::new(metrics.store(app_id, "")),
        }
    }

    /// The handles of the store called `name`.
    pub fn get(&self, name: &str) -> &Arc<StoreMetrics> {
        self.stores.get(name).unwrap_or(&self.unknown)
    }
}

/// `elapsed` in (fractional) milliseconds, daprd's unit.
fn millis(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(metrics: &Metrics) -> String {
        String::from_utf8(metrics.render(3)).unwrap()
    }

    #[test]
    fn daprd_series_keep_daprds_names_and_buckets() {
        let metrics = Metrics::new();
        metrics
            .http("orders", "POST", "/v1.0-alpha1/lock/{storeName}", "200")
            .observe(Duration::from_micros(2500));
        metrics.grpc(
            "orders",
            "/dapr.proto.runtime.v1.Dapr/TryLockAlpha1",
            "OK",
            Duration::from_millis(1),
        );
        let text = text(&metrics);
        assert!(text.contains("dapr_http_server_request_count{app_id=\"orders\",method=\"POST\",path=\"/v1.0-alpha1/lock/{storeName}\",status=\"200\"} 1\n"), "{text}");
        assert!(text.contains("dapr_http_server_latency_bucket{app_id=\"orders\",method=\"POST\",path=\"/v1.0-alpha1/lock/{storeName}\",status=\"200\",le=\"3\"} 1\n"), "{text}");
        assert!(text.contains("dapr_grpc_io_server_completed_rpcs{app_id=\"orders\",grpc_server_method=\"/dapr.proto.runtime.v1.Dapr/TryLockAlpha1\",grpc_server_status=\"OK\"} 1\n"), "{text}");
        assert!(text.contains("# TYPE dapr_grpc_io_server_server_latency histogram"));
        assert!(text.contains("wasilock_open_connections 3\n"));
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
        assert!(!text.contains("request_count_total"));
    }

    #[test]
    fn tenant_and_store_handles_count_under_bounded_labels() {
        let metrics = Metrics::new();
        let tenant = metrics.tenant("orders");
        tenant.called();
        tenant.trapped(TrapKind::Memory);
        tenant.too_many_requests();
        tenant.live_instances().inc();
        let stores = StoreMetricsByName::new(&metrics, "orders", ["lockstore"]);
        let store = stores.get("lockstore");
        store.lock_operation(LockOperation::Unlock, LockOutcome::NotFound);
        store.store_operation(
            StoreOperation::CompareAndSwap,
            StoreOutcome::Conflict,
            Duration::from_micros(80),
        );
        stores
            .get("no-such-store")
            .lock_operation(LockOperation::TryLock, LockOutcome::Error);
        store.waiter_joined();
        store.waiter_joined();
        store.waiter_left(WaitOutcome::Timeout, Duration::from_millis(12));
        let text = text(&metrics);
        for line in [
            "wasilock_component_calls_total{app_id=\"orders\"} 1\n",
            "wasilock_component_traps_total{app_id=\"orders\",kind=\"memory\"} 1\n",
            "wasilock_component_traps_total{app_id=\"orders\",kind=\"deadline\"} 0\n",
            "wasilock_too_many_requests_total{app_id=\"orders\"} 1\n",
            "wasilock_live_instances{app_id=\"orders\"} 1\n",
            "wasilock_lock_operations_total{app_id=\"orders\",operation=\"unlock\",outcome=\"not-found\",store=\"lockstore\"} 1\n",
            "wasilock_lock_operations_total{app_id=\"orders\",operation=\"trylock\",outcome=\"error\",store=\"\"} 1\n",
            "wasilock_store_latency_seconds_bucket{app_id=\"orders\",operation=\"compare_and_swap\",outcome=\"conflict\",store=\"lockstore\",le=\"0.0001\"} 1\n",
            "wasilock_waiters{app_id=\"orders\",store=\"lockstore\"} 1\n",
            "wasilock_wait_latency_bucket{app_id=\"orders\",outcome=\"timeout\",store=\"lockstore\",le=\"10\"} 0\n",
            "wasilock_wait_latency_bucket{app_id=\"orders\",outcome=\"timeout\",store=\"lockstore\",le=\"13\"} 1\n",
            "wasilock_wait_latency_count{app_id=\"orders\",outcome=\"granted\",store=\"lockstore\"} 0\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
