//! The start-up banner on stdout: addresses, stores, tenants (never their tokens), and a
//! request to paste; with `--log-as-json`, each line is a JSON log line whose `msg` is it.

use super::Process;
use crate::telemetry::logs::banner_line;
use anyhow::Result;
use std::time::Duration;
use tokio::net::TcpListener;

/// What the process listens on.
pub(super) struct Listeners<'a> {
    /// The HTTP API (at least one).
    pub(super) http: &'a [TcpListener],
    /// The gRPC API.
    pub(super) grpc: &'a [TcpListener],
    /// The metrics endpoint, when metrics are on.
    pub(super) metrics: Option<&'a TcpListener>,
}

/// Prints the banner of `process` on `listeners`, started in `startup`.
pub(super) fn print(process: &Process, listeners: &Listeners<'_>, startup: Duration) -> Result<()> {
    let json = process.settings.telemetry.json_logs.as_deref();
    let say = |line: String| println!("{}", banner_line(json, &line));
    let (http_listeners, grpc_listeners) = (listeners.http, listeners.grpc);
    let first = http_listeners[0].local_addr()?;
    let tenants = process.tenants.current();
    let count = tenants.iter().count();
    say(format!(
        "wasilock {} serving the Dapr lock API ({count} tenant{}, started in {} ms)",
        env!("CARGO_PKG_VERSION"),
        if count == 1 { "" } else { "s" },
        startup.as_millis()
    ));
    for listener in http_listeners {
        say(format!("  listening on http://{}", listener.local_addr()?));
    }
    for listener in grpc_listeners {
        say(format!("  gRPC API on {}", listener.local_addr()?));
    }
    if let Some(listener) = listeners.metrics {
        say(format!(
            "  metrics on http://{}/metrics",
            listener.local_addr()?
        ));
    }
    let stores = process.stores();
    for store in stores.iter() {
        say(format!(
            "  store {:<16} {:<16} {}",
            store.name,
            store.type_name(),
            store.location
        ));
    }
    for tenant in tenants.iter() {
        let sandbox = &tenant.service;
        let limits = sandbox.limits();
        let visible: Vec<_> = sandbox.stores().iter().map(|s| s.name.as_str()).collect();
        say(format!(
            "  tenant {:?}: component {} through {}; stores [{}]; limits memory {} B, timeout {:?}, maxConcurrency {}, requestsPerInstance {}",
            tenant.app_id,
            sandbox.component_name(),
            sandbox.http_export_name(),
            visible.join(", "),
            limits.memory_bytes,
            limits.timeout,
            limits.max_concurrency,
            limits.requests_per_instance
        ));
    }
    if stores.iter().next().is_none() {
        say(
            "  no lock stores: every lock request answers ERR_LOCK_STORE_NOT_CONFIGURED"
                .to_string(),
        );
    }
    if let Some(store) = stores.iter().next() {
        let token_header = if tenants.need_tokens() {
            " -H \"dapr-api-token: $DAPR_API_TOKEN\""
        } else {
            ""
        };
        say(format!(
            "  try: curl -s -X POST http://{first}/v1.0-alpha1/lock/{}{token_header} -d '{{\"resourceId\":\"my-resource\",\"lockOwner\":\"me\",\"expiryInSeconds\":60}}'",
            store.name
        ));
    }
    Ok(())
}
