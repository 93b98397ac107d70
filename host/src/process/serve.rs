//! The process serving the Dapr API: listeners bound, the banner printed, expired locks
//! purged and the configuration reloaded in the background, until SIGINT or SIGTERM.

use super::{Process, Settings, banner};
use crate::api;
use crate::api::connections::Connections;
use crate::telemetry::endpoint;
use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How often expired locks are purged from the stores.
const PURGE_INTERVAL: Duration = Duration::from_secs(5);

/// Where the Dapr API listens.
#[derive(Debug, Clone)]
pub struct Listen {
    /// `--dapr-listen-addresses`.
    pub addresses: Vec<String>,
    /// `--dapr-http-port` (0 picks a free port).
    pub http_port: u16,
    /// `--dapr-grpc-port` (0 picks a free port).
    pub grpc_port: u16,
    /// `--metrics-listen-address` and `--metrics-port` (0 picks a free port); `None` with
    /// `--enable-metrics=false`.
    pub metrics: Option<(String, u16)>,
}

/// Starts the process of `settings`, listens as `listen` says within `connections` (over TLS
/// when they have it, whose files are then watched), prints the banner (with the time since
/// `started`), and serves until SIGINT or SIGTERM; then finishes the requests in flight.
pub async fn run(
    settings: Settings,
    listen: &Listen,
    connections: Arc<Connections>,
    started: Instant,
) -> Result<()> {
    let process = Arc::new(Process::start(settings).await?);

    let http_listeners = bind(&listen.addresses, listen.http_port, "HTTP").await?;
    let grpc_listeners = bind(&listen.addresses, listen.grpc_port, "gRPC").await?;
    let tls = connections.tls().cloned();
    let telemetry = process.settings.telemetry.clone();
    let metrics_listener = match (&listen.metrics, &telemetry.metrics) {
        (Some((address, port)), Some(_)) => {
            let address = [address.clone()];
            bind(&address, *port, "metrics").await?.pop()
        }
        _ => None,
    };
    let listeners = banner::Listeners {
        http: &http_listeners,
        grpc: &grpc_listeners,
        metrics: metrics_listener.as_ref(),
        tls: tls.as_deref(),
    };
    banner::print(&process, &listeners, started.elapsed())?;

    let (stop, stopped) = watch::channel(false);
    if let (Some(listener), Some(metrics)) = (metrics_listener, &telemetry.metrics) {
        let connections = connections.clone();
        let open = Arc::new(move || connections.open());
        let serving = endpoint::serve(listener, metrics.clone(), open, stopped.clone());
        tokio::spawn(serving);
    }
    tokio::spawn(purge_expired_locks(process.clone(), stopped.clone()));
    let watcher = {
        let (process, stopped) = (process.clone(), stopped.clone());
        tokio::spawn(async move { process.watch(stopped).await })
    };
    if let Some(tls) = tls {
        let stopped = stopped.clone();
        tokio::spawn(async move { tls.watch(stopped).await });
    }
    let mut servers = tokio::task::JoinSet::new();
    // What each server shares: its own handles on the tenants, connections and telemetry.
    let shared = || {
        (
            process.tenants.clone(),
            connections.clone(),
            stopped.clone(),
            telemetry.clone(),
        )
    };
    for listener in http_listeners {
        let (tenants, connections, stopped, telemetry) = shared();
        servers.spawn(async move {
            api::http::serve_observed(listener, tenants, &connections, &telemetry, stopped).await;
        });
    }
    for listener in grpc_listeners {
        let (tenants, connections, stopped, telemetry) = shared();
        servers.spawn(async move {
            let served =
                api::grpc::serve_observed(listener, tenants, &connections, &telemetry, stopped);
            if let Err(e) = served.await {
                tracing::error!("the gRPC server stopped: {e:#}");
            }
        });
    }

    shutdown_signal().await?;
    tracing::info!("shutting down: finishing in-flight requests");
    stop.send_replace(true);
    while let Some(server) = servers.join_next().await {
        server.context("a listener task failed")?;
    }
    watcher.await.context("the reload watcher failed")??;
    if let Some(traces) = telemetry.traces.clone() {
        // Flushing waits for the exporter, which runs on this runtime.
        tokio::task::spawn_blocking(move || traces.shutdown()).await?;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Listens on `port` of every address.
async fn bind(addresses: &[String], port: u16, api: &str) -> Result<Vec<TcpListener>> {
    let mut listeners = Vec::new();
    for address in addresses {
        let listener = TcpListener::bind((address.as_str(), port))
            .await
            .with_context(|| format!("cannot listen for {api} on {address}:{port}"))?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// Deletes expired locks every [`PURGE_INTERVAL`] until shutdown.
async fn purge_expired_locks(process: Arc<Process>, mut stopped: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(PURGE_INTERVAL);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
        let purged = process.stores().purge_expired().await;
        if purged > 0 {
            tracing::debug!(purged, "purged expired locks");
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
