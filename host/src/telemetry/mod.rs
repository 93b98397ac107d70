//! Observability in daprd's conventions, owned by the process and handed down:
//!
//! - [`metrics`]: the Prometheus registry (daprd's HTTP and gRPC series, `process_*`,
//!   `wasilock_*`) and the label handles resolved once per tenant and store;
//! - [`outcomes`]: the operations and outcomes the metrics name, with their labels;
//! - [`routes`]: the bounded `path` label of HTTP series;
//! - [`endpoint`]: Prometheus text at `/` and `/metrics` on the metrics port;
//! - [`logs`]: daprd's JSON log lines and its API log lines;
//! - [`traces`]: W3C trace context in and out, server and child spans, OTLP export.

pub mod endpoint;
pub mod logs;
pub mod metrics;
pub mod outcomes;
pub mod routes;
pub mod traces;

pub use metrics::{Metrics, StoreMetrics, StoreMetricsByName, TenantMetrics};
pub use outcomes::{
    LockOperation, LockOutcome, StoreOperation, StoreOutcome, TrapKind, WaitOutcome,
};

use std::sync::Arc;

/// What the process observes, handed down from the flags to the APIs and the tenants.
#[derive(Clone, Default)]
pub struct Telemetry {
    /// The registry; `None` with `--enable-metrics=false` (nothing is counted).
    pub metrics: Option<Arc<Metrics>>,
    /// `--enable-api-logging`: one log line per API call.
    pub api_logging: bool,
    /// `--log-as-json`: the banner too is printed as JSON lines.
    pub json_logs: Option<Arc<logs::DaprJson>>,
    /// The tracer, when the `--config` file traces (at a rate above 0 at start).
    pub traces: Option<Arc<traces::Tracing>>,
    /// `--config`: read again on reload (a new sampling rate applies at once).
    pub config_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("metrics", &self.metrics.is_some())
            .field("api_logging", &self.api_logging)
            .field("json_logs", &self.json_logs.is_some())
            .field("traces", &self.traces)
            .field("config_file", &self.config_file)
            .finish()
    }
}
