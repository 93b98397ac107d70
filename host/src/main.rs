//! The `wasilock` binary: daprd-compatible flags, lock stores, the lock component, HTTP and
//! gRPC.

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use wasilock::api;
use wasilock::components::Resources;
use wasilock::quantity::parse_bytes;
use wasilock::registry::LockStores;
use wasilock::runtime::{EMBEDDED_GUEST, GuestRuntime, GuestSettings, HttpExport};
use wasilock::service::App;

/// How often expired locks are purged from the stores.
const PURGE_INTERVAL: Duration = Duration::from_secs(5);

/// Dapr's Distributed Lock API, served by a sandboxed WebAssembly component.
///
/// Flags follow daprd where they overlap. The API token comes from DAPR_API_TOKEN.
#[derive(Parser, Debug)]
#[command(name = "wasilock", version, about)]
struct Cli {
    /// The app id: the default key prefix of lock stores, and what component `scopes` match.
    #[arg(long, default_value = "")]
    app_id: String,

    /// The HTTP port of the Dapr API (0 picks a free port, printed at start-up).
    #[arg(long, default_value_t = 3500)]
    dapr_http_port: u16,

    /// The gRPC port of the Dapr API (0 picks a free port, printed at start-up).
    #[arg(long, default_value_t = 50001)]
    dapr_grpc_port: u16,

    /// Addresses to listen on, comma-separated.
    #[arg(long, default_value = "127.0.0.1", value_delimiter = ',')]
    dapr_listen_addresses: Vec<String>,

    /// A directory (or file) of Dapr component YAML; repeatable. Without it, one
    /// `lock.embedded` store named `lockstore` exists.
    #[arg(long = "resources-path")]
    resources_paths: Vec<PathBuf>,

    /// The largest request body accepted (`4Mi`, `512Ki`, `1048576`).
    #[arg(long, default_value = "4Mi", value_parser = parse_bytes)]
    max_body_size: u64,

    /// Log verbosity.
    #[arg(long, value_enum, default_value_t = LogLevel::Info)]
    log_level: LogLevel,

    /// Where `lock.embedded` stores keep their data.
    #[arg(long, default_value = ".wasilock")]
    data_dir: PathBuf,

    /// A lock component (`.wasm`) to run instead of the built-in one; it must target the
    /// `wasilock:lock/lock-service` world (or export `wasilock:lock/lock` and
    /// `wasi:http/incoming-handler`).
    #[arg(long)]
    component: Option<PathBuf>,

    /// Which export of the component answers HTTP: `auto` makes one `wasilock:lock/http-api`
    /// call per request when the component has it; `wasi-http` always goes through
    /// `wasi:http/incoming-handler`. The answers are the same.
    #[arg(long, value_enum, default_value_t = HttpExportArg::Auto)]
    http_export: HttpExportArg,

    /// How long one request may run inside the component (`500ms`, `10s`).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    guest_timeout: Duration,

    /// Linear memory one component instance may use (`64Mi`).
    #[arg(long, default_value = "64Mi", value_parser = parse_bytes)]
    guest_memory: u64,

    /// Requests one component instance may serve before it is replaced; instances are never
    /// shared across tenants, and 1 gives every request a fresh instance.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    requests_per_instance: u32,
}

/// The values of `--http-export`, mapped onto [`HttpExport`].
#[derive(Clone, Copy, Debug, ValueEnum)]
enum HttpExportArg {
    Auto,
    WasiHttp,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    fn filter(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(format!(
            "wasilock={0},wasilock_guest={0},warn",
            cli.log_level.filter()
        )))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Runtime::new().expect("start the tokio runtime");
    if let Err(e) = runtime.block_on(run(cli)) {
        eprintln!("wasilock: error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    let started = Instant::now();
    let resources = if cli.resources_paths.is_empty() {
        Resources::default_store()
    } else {
        wasilock::components::load(&cli.resources_paths, &cli.app_id)?
    };
    let stores = Arc::new(LockStores::open(&resources, &cli.app_id, &cli.data_dir).await?);

    let component = match &cli.component {
        Some(path) => std::fs::read(path)
            .with_context(|| format!("cannot read the component {}", path.display()))?,
        None => EMBEDDED_GUEST.to_vec(),
    };
    let settings = GuestSettings {
        timeout: cli.guest_timeout,
        memory_bytes: usize::try_from(cli.guest_memory).context("--guest-memory is too large")?,
        max_body_size: cli.max_body_size,
        requests_per_instance: cli.requests_per_instance,
        http_export: match cli.http_export {
            HttpExportArg::Auto => HttpExport::Auto,
            HttpExportArg::WasiHttp => HttpExport::WasiHttp,
        },
    };
    let runtime = GuestRuntime::new(&component, stores.clone(), settings)?;

    let http_listeners = bind(&cli.dapr_listen_addresses, cli.dapr_http_port, "HTTP").await?;
    let grpc_listeners = bind(&cli.dapr_listen_addresses, cli.dapr_grpc_port, "gRPC").await?;
    let api_token = std::env::var("DAPR_API_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    print_banner(
        &cli,
        &runtime,
        &http_listeners,
        &grpc_listeners,
        api_token.is_some(),
        started.elapsed(),
    )?;

    let app = Arc::new(App {
        app_id: cli.app_id.clone(),
        api_token,
        service: runtime,
    });
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(purge_expired_locks(stores, stopped.clone()));
    let mut servers = tokio::task::JoinSet::new();
    for listener in http_listeners {
        servers.spawn(api::http::serve(listener, app.clone(), stopped.clone()));
    }
    for listener in grpc_listeners {
        let (app, stopped) = (app.clone(), stopped.clone());
        servers.spawn(async move {
            if let Err(e) = api::grpc::serve(listener, app, stopped).await {
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

/// The start-up banner on stdout: addresses, stores, and a request to paste.
fn print_banner(
    cli: &Cli,
    runtime: &GuestRuntime,
    http_listeners: &[TcpListener],
    grpc_listeners: &[TcpListener],
    token: bool,
    startup: Duration,
) -> Result<()> {
    let first = http_listeners[0].local_addr()?;
    println!(
        "wasilock {} serving the Dapr lock API (app-id {:?}, started in {} ms)",
        env!("CARGO_PKG_VERSION"),
        cli.app_id,
        startup.as_millis()
    );
    for listener in http_listeners {
        println!("  listening on http://{}", listener.local_addr()?);
    }
    for listener in grpc_listeners {
        println!("  gRPC API on {}", listener.local_addr()?);
    }
    println!(
        "  requests enter the lock component through {}",
        runtime.http_export_name()
    );
    let mut stores = runtime.stores().iter().peekable();
    if stores.peek().is_none() {
        println!("  no lock stores: every lock request answers ERR_LOCK_STORE_NOT_CONFIGURED");
    }
    for store in stores {
        println!(
            "  store {:<16} {:<16} {}",
            store.name,
            store.store_type.name(),
            store.location
        );
    }
    if let Some(store) = runtime.stores().iter().next() {
        let token_header = if token {
            " -H \"dapr-api-token: $DAPR_API_TOKEN\""
        } else {
            ""
        };
        println!(
            "  try: curl -s -X POST http://{first}/v1.0-alpha1/lock/{}{token_header} -d '{{\"resourceId\":\"my-resource\",\"lockOwner\":\"me\",\"expiryInSeconds\":60}}'",
            store.name
        );
    }
    Ok(())
}

/// Deletes expired locks every [`PURGE_INTERVAL`] until shutdown.
async fn purge_expired_locks(stores: Arc<LockStores>, mut stopped: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(PURGE_INTERVAL);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
        let purged = stores.purge_expired().await;
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
