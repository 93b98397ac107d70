//! The start-up banner on stdout: addresses (and whether they serve TLS), stores, tenants
//! (never their tokens) and their upstream daprd, and a request to paste.

use super::Process;
use crate::api::tls::Tls;
use anyhow::Result;
use std::time::Duration;
use tokio::net::TcpListener;

/// Prints the banner of `process` listening on `http_listeners` (at least one) and
/// `grpc_listeners` (with `tls`, if any), started in `startup`.
pub(super) fn print(
    process: &Process,
    http_listeners: &[TcpListener],
    grpc_listeners: &[TcpListener],
    tls: Option<&Tls>,
    startup: Duration,
) -> Result<()> {
    let first = http_listeners[0].local_addr()?;
    let tenants = process.tenants.current();
    let count = tenants.iter().count();
    println!(
        "wasilock {} serving the Dapr lock API ({count} tenant{}, started in {} ms)",
        env!("CARGO_PKG_VERSION"),
        if count == 1 { "" } else { "s" },
        startup.as_millis()
    );
    let (scheme, security) = match tls {
        None => ("http", String::new()),
        Some(tls) => ("https", format!(" ({})", tls.describe())),
    };
    for listener in http_listeners {
        println!(
            "  listening on {scheme}://{}{security}",
            listener.local_addr()?
        );
    }
    for listener in grpc_listeners {
        println!("  gRPC API on {}{security}", listener.local_addr()?);
    }
    let stores = process.stores();
    for store in stores.iter() {
        println!(
            "  store {:<16} {:<16} {}",
            store.name,
            store.type_name(),
            store.location
        );
    }
    for tenant in tenants.iter() {
        let sandbox = &tenant.service;
        let limits = sandbox.limits();
        let visible: Vec<_> = sandbox.stores().iter().map(|s| s.name.as_str()).collect();
        println!(
            "  tenant {:?}: component {} through {}; stores [{}]; limits memory {} B, timeout {:?}, maxConcurrency {}, requestsPerInstance {}",
            tenant.app_id,
            sandbox.component_name(),
            sandbox.http_export_name(),
            visible.join(", "),
            limits.memory_bytes,
            limits.timeout,
            limits.max_concurrency,
            limits.requests_per_instance
        );
        if let Some(upstream) = tenants.upstream(&tenant.app_id) {
            let address =
                |a: &Option<hyper::Uri>| a.as_ref().map_or("none".into(), |a| a.to_string());
            println!(
                "    upstream daprd: HTTP {}, gRPC {} (every other call goes there)",
                address(&upstream.http),
                address(&upstream.grpc)
            );
        }
    }
    if stores.iter().next().is_none() {
        println!("  no lock stores: every lock request answers ERR_LOCK_STORE_NOT_CONFIGURED");
    }
    if let Some(store) = stores.iter().next() {
        let token_header = if tenants.need_tokens() {
            " -H \"dapr-api-token: $DAPR_API_TOKEN\""
        } else {
            ""
        };
        let client_certificate = match tls {
            Some(tls) if tls.is_mutual() => " --cert client.crt --key client.key",
            _ => "",
        };
        println!(
            "  try: curl -s -X POST {scheme}://{first}/v1.0-alpha1/lock/{}{token_header}{client_certificate} -d '{{\"resourceId\":\"my-resource\",\"lockOwner\":\"me\",\"expiryInSeconds\":60}}'",
            store.name
        );
    }
    Ok(())
}
