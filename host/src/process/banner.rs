//! The start-up banner on stdout: addresses (and whether they serve TLS), stores, tenants
//! (never their tokens) and their upstream daprd, and a request to paste; with
//! `--log-as-json`, each line is a JSON log line whose `msg` is it.

use super::Process;
use crate::api::tls::Tls;
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
    /// TLS on the HTTP and gRPC APIs, when they serve it.
    pub(super) tls: Option<&'a Tls>,
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
    let (scheme, security) = match listeners.tls {
        None => ("http", String::new()),
        Some(tls) => ("https", format!(" ({})", tls.describe())),
    };
    for listener in http_listeners {
        say(format!(
            "  listening on {scheme}://{}{security}",
            listener.local_addr()?
        ));
    }
    for listener in grpc_listeners {
        say(format!(
            "  gRPC API on {}{security}",
            listener.local_addr()?
        ));
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
        if let Some(upstream) = tenants.upstream(&tenant.app_id) {
            let address =
                |a: &Option<hyper::Uri>| a.as_ref().map_or("none".into(), |a| a.to_string());
            say(format!(
                "    upstream daprd: HTTP {}, gRPC {} (every other call goes there)",
                address(&upstream.http),
                address(&upstream.grpc)
            ));
        }
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
        let client_certificate = match listeners.tls {
            Some(tls) if tls.is_mutual() => " --cert client.crt --key client.key",
            _ => "",
        };
        say(format!(
            "  try: curl -s -X POST {scheme}://{first}/v1.0-alpha1/lock/{}{token_header}{client_certificate} -d '{{\"resourceId\":\"my-resource\",\"lockOwner\":\"me\",\"expiryInSeconds\":60}}'",
            store.name
        ));
    }
    Ok(())
}
