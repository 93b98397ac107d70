//! The `wasilock` binary: flags (daprd's where they overlap) → settings → the library's
//! [`process::serve::run`], which serves until SIGINT or SIGTERM.

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use sha2::Digest;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasilock::api::connections::{ConnectionLimits, Connections, descriptors};
use wasilock::api::tls::{Tls, TlsFiles};
use wasilock::config::dapr_configuration::DaprConfiguration;
use wasilock::config::quantity::parse_bytes;
use wasilock::process::serve::Listen;
use wasilock::process::{self, Settings};
use wasilock::stores::StoreKinds;
use wasilock::telemetry::logs::DaprJson;
use wasilock::telemetry::traces::{self, Tracing};
use wasilock::telemetry::{Metrics, Telemetry};
use wasilock::upstream::Upstream;
use wasilock::wasm::compile_cache::CompileCache;
use wasilock::{HttpExport, Limits};

/// Dapr's Distributed Lock API, served by sandboxed WebAssembly components, one per tenant.
///
/// Flags follow daprd where they overlap. The API token comes from DAPR_API_TOKEN; tenants
/// with tokens of their own come from `kind: Tenant` files in the resources path.
#[derive(Parser, Debug)]
#[command(
    name = "wasilock",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// Something other than serving.
    #[command(subcommand)]
    command: Option<Command>,

    /// The app id of the host's own tenant: the default key prefix of lock stores, and what
    /// component `scopes` match. With Tenant resources, that tenant exists only when
    /// DAPR_API_TOKEN is set.
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

    /// A directory (or file) of Dapr component YAML and Tenant YAML; repeatable. Without it,
    /// one `lock.embedded` store named `lockstore` exists.
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

    /// A lock component (`.wasm`) to run instead of the built-in one, for tenants that name
    /// none; it must target the
    /// `wasilock:lock/lock-service` world (or export `wasilock:lock/lock` and
    /// `wasi:http/incoming-handler`).
    #[arg(long)]
    component: Option<PathBuf>,

    /// Where compiled components are kept between runs, so that a start with the same
    /// component and the same wasmtime settings loads its machine code instead of compiling
    /// it (`off`: compile at every start). The directory must be this user's and writable by
    /// nobody else. [default: $XDG_CACHE_HOME/wasilock, else $HOME/.cache/wasilock]
    #[arg(long, value_name = "DIR|off")]
    compile_cache: Option<PathBuf>,

    /// Which export of the component answers HTTP: `auto` makes one `wasilock:lock/http-api`
    /// call per request when the component has it; `wasi-http` always goes through
    /// `wasi:http/incoming-handler`. The answers are the same.
    #[arg(long, value_enum, default_value_t = HttpExportArg::Auto)]
    http_export: HttpExportArg,

    /// Lets the `--app-id` tenant force an alpha2 release (`DELETE` with `"force":true`) of a
    /// lock it does not hold; Tenant resources say `allowForceUnlock: true` instead.
    #[arg(long)]
    allow_force_unlock: bool,

    /// The longest an alpha2 acquire waits for a held lock (`waitTimeout` above it, or none,
    /// is cut to it).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    max_lock_wait: Duration,

    /// How long one request may run inside the component (`500ms`, `10s`).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    guest_timeout: Duration,

    /// Linear memory one component instance may use (`64Mi`); also the most a tenant's
    /// `limits.memory` may be.
    #[arg(long, default_value = "64Mi", value_parser = parse_bytes)]
    guest_memory: u64,

    /// Requests one component instance may serve before it is replaced; instances are never
    /// shared across tenants, and 1 gives every request a fresh instance.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    requests_per_instance: u32,

    /// Requests of one tenant inside its component at once; more wait, at most the guest
    /// timeout, and then get 429.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    guest_max_concurrency: u32,

    /// How long a client may take to send a request's head: counted from connecting for a
    /// connection's first request (on gRPC, its first call), and on HTTP from the first byte
    /// for the next ones. As daprd's HTTP server. `0` disables it.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    read_header_timeout: Duration,

    /// How long a connection (HTTP keep-alive or gRPC) stays open with no request in flight.
    /// `0` keeps idle connections open for good, as daprd does.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    idle_timeout: Duration,

    /// Connections open at once, HTTP and gRPC together; more wait in the listen backlog
    /// until one closes. [default: 10000, or the descriptor limit (`ulimit -n`, raised to
    /// its hard limit at start-up) less 64 when that is lower]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: Option<u64>,

    /// Serves Prometheus metrics on the metrics port (`--enable-metrics=false` turns them
    /// off; so does `spec.metrics.enabled: false` in the `--config` file).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
        default_missing_value = "true", require_equals = true)]
    enable_metrics: bool,

    /// The port of the metrics endpoint (0 picks a free port, printed at start-up).
    #[arg(long, default_value_t = 9090)]
    metrics_port: u16,

    /// The address the metrics endpoint listens on.
    #[arg(long, default_value = "127.0.0.1")]
    metrics_listen_address: String,

    /// Logs as JSON lines on stdout, in daprd's schema (the banner too).
    #[arg(long)]
    log_as_json: bool,

    /// Logs one line per API call (`HTTP API Called`, `gRPC API Called`), as daprd does.
    #[arg(long)]
    enable_api_logging: bool,

    /// A Dapr `Configuration` resource (YAML): `spec.metrics.enabled` and `spec.tracing`
    /// (`samplingRate`, `otel.endpointAddress`, `otel.protocol`, `otel.isSecure`); reloaded
    /// with the resources (a new sampling rate applies at once).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// The certificate chain (PEM, the server's own first) of the HTTP and gRPC listeners,
    /// which then serve TLS 1.2/1.3 only (ALPN `h2`, `http/1.1`). Reloaded when it changes.
    #[arg(long, value_name = "FILE", requires = "api_tls_key")]
    api_tls_cert: Option<PathBuf>,

    /// The private key (PEM) of `--api-tls-cert`. Reloaded when it changes.
    #[arg(long, value_name = "FILE", requires = "api_tls_cert")]
    api_tls_key: Option<PathBuf>,

    /// Mutual TLS: clients must present a certificate of an authority in this file (PEM); a
    /// Tenant's `spec.clientIdentity` names the certificates that select it.
    #[arg(long, value_name = "FILE", requires = "api_tls_cert")]
    api_tls_client_ca: Option<PathBuf>,

    /// Daprd's HTTP API (`http://127.0.0.1:3501`): every HTTP request wasilock does not serve
    /// itself (the lock routes, health, metadata) is forwarded there, and health and metadata
    /// follow it. A Tenant's `spec.upstream` replaces it for that tenant.
    #[arg(long, value_name = "URL", value_parser = upstream_address)]
    dapr_upstream_http: Option<hyper::Uri>,

    /// Daprd's gRPC API (`http://127.0.0.1:50002`, HTTP/2 without TLS): every gRPC call but
    /// the lock methods, GetMetadata and reflection is forwarded there, streams included. A
    /// Tenant's `spec.upstream` replaces it for that tenant.
    #[arg(long, value_name = "URL", value_parser = upstream_address)]
    dapr_upstream_grpc: Option<hyper::Uri>,
}

/// An upstream flag's value, checked as [`wasilock::upstream::parse_address`] does.
fn upstream_address(text: &str) -> Result<hyper::Uri, String> {
    wasilock::upstream::parse_address(text).map_err(|e| format!("{e:#}"))
}

/// What `wasilock` does instead of serving.
#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Writes the built-in lock component: the exact bytes this binary runs, a
    /// `wasm32-wasip2` component of the `wasilock:lock/lock-service` world (its contract is
    /// the WIT in the repository's `wit/`), for other WASI hosts.
    Component {
        /// The file to write (`-` for stdout).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
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
    if let Some(Command::Component { out }) = &cli.command {
        if let Err(e) = write_component(out) {
            eprintln!("wasilock: error: {e:#}");
            std::process::exit(1);
        }
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("start the tokio runtime");
    // The trace exporter sends from the runtime: it is made inside it.
    let entered = runtime.enter();
    let telemetry = match start_telemetry(&cli) {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("wasilock: error: {e:#}");
            std::process::exit(1);
        }
    };
    drop(entered);
    if let Err(e) = runtime.block_on(run(cli, telemetry)) {
        eprintln!("wasilock: error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli, telemetry: Telemetry) -> Result<()> {
    let started = Instant::now();
    let settings = Settings {
        app_id: cli.app_id.clone(),
        api_token: std::env::var("DAPR_API_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
        resources_paths: cli.resources_paths.clone(),
        data_dir: cli.data_dir.clone(),
        store_kinds: StoreKinds::builtin(),
        component: cli.component.clone(),
        limits: Limits {
            timeout: cli.guest_timeout,
            memory_bytes: usize::try_from(cli.guest_memory)
                .context("--guest-memory is too large")?,
            max_concurrency: cli.guest_max_concurrency,
            requests_per_instance: cli.requests_per_instance,
        },
        max_body_size: cli.max_body_size,
        http_export: match cli.http_export {
            HttpExportArg::Auto => HttpExport::Auto,
            HttpExportArg::WasiHttp => HttpExport::WasiHttp,
        },
        compile_cache: compile_cache_dir(&cli),
        upstream: Upstream {
            http: cli.dapr_upstream_http.clone(),
            grpc: cli.dapr_upstream_grpc.clone(),
        },
        telemetry,
        allow_force_unlock: cli.allow_force_unlock,
        max_lock_wait: cli.max_lock_wait,
    };
    let limits = requested_limits(&cli);
    let tls = api_tls_files(&cli).map(Tls::load).transpose()?;
    let connections = Connections::with_tls(
        limits.fit_descriptor_limit(descriptors::raise_limit(), cli.max_connections.is_some()),
        tls.clone(),
    );
    let listen = Listen {
        addresses: cli.dapr_listen_addresses.clone(),
        http_port: cli.dapr_http_port,
        grpc_port: cli.dapr_grpc_port,
        metrics: Some((cli.metrics_listen_address.clone(), cli.metrics_port)),
    };
    process::serve::run(settings, &listen, connections, started).await
}

/// What the flags and the `--config` file say to observe, the tracer started; and the log
/// lines set up (text on stderr, or daprd's JSON on stdout), apart from the spans that
/// become traces.
fn start_telemetry(cli: &Cli) -> Result<Telemetry> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer, Registry};
    let configuration = configuration(cli)?;
    let mut telemetry = telemetry(cli, &configuration);
    let filter = EnvFilter::new(format!(
        "wasilock={0},wasilock_rules={0},warn,{1}=off",
        cli.log_level.filter(),
        traces::TARGET
    ));
    let logs: Box<dyn Layer<Registry> + Send + Sync> = if cli.log_as_json {
        let json = DaprJson::new(&cli.app_id);
        let layer = tracing_subscriber::fmt::layer().event_format(json);
        layer.with_writer(std::io::stdout).boxed()
    } else {
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let layer = tracing_subscriber::fmt::layer().with_ansi(ansi);
        layer.with_writer(std::io::stderr).boxed()
    };
    let started = match configuration.tracing()? {
        Some(settings) => Tracing::start(&settings, &cli.app_id)?,
        None => None,
    };
    // A list rather than an `Option` layer: an absent `Option` layer is interested in every
    // callsite, so every request's spans would be built only to be dropped.
    let mut layers = vec![logs.with_filter(filter).boxed()];
    if let Some((tracing, layer)) = started {
        telemetry.traces = Some(Arc::new(tracing));
        layers.push(layer.boxed());
    }
    tracing_subscriber::registry().with(layers).init();
    Ok(telemetry)
}

/// The `--config` file, or daprd's defaults without one.
fn configuration(cli: &Cli) -> Result<DaprConfiguration> {
    match &cli.config {
        Some(file) => DaprConfiguration::read(file),
        None => Ok(DaprConfiguration::default()),
    }
}

/// What the flags and `configuration` say to observe, before the tracer starts.
fn telemetry(cli: &Cli, configuration: &DaprConfiguration) -> Telemetry {
    let metrics_on = cli.enable_metrics && configuration.metrics_enabled();
    Telemetry {
        metrics: metrics_on.then(|| Arc::new(Metrics::new())),
        api_logging: cli.enable_api_logging,
        json_logs: cli
            .log_as_json
            .then(|| Arc::new(DaprJson::new(&cli.app_id))),
        traces: None,
        config_file: cli.config.clone(),
    }
}

/// The connection limits the flags ask for (`0` disables a timeout), before they are
/// fitted to the descriptor limit.
fn requested_limits(cli: &Cli) -> ConnectionLimits {
    let enabled = |timeout: Duration| (!timeout.is_zero()).then_some(timeout);
    ConnectionLimits {
        read_header_timeout: enabled(cli.read_header_timeout),
        idle_timeout: enabled(cli.idle_timeout),
        max_connections: cli
            .max_connections
            .map_or(ConnectionLimits::MAX_CONNECTIONS, |max| {
                usize::try_from(max).unwrap_or(usize::MAX)
            }),
    }
}

/// The files of the API's TLS, when `--api-tls-cert` is given (clap requires the key with it).
fn api_tls_files(cli: &Cli) -> Option<TlsFiles> {
    Some(TlsFiles {
        cert: cli.api_tls_cert.clone()?,
        key: cli.api_tls_key.clone()?,
        client_ca: cli.api_tls_client_ca.clone(),
    })
}

/// The directory `--compile-cache` names: none for `off`, the user's cache directory when
/// the flag is absent.
fn compile_cache_dir(cli: &Cli) -> Option<PathBuf> {
    match &cli.compile_cache {
        Some(off) if off.as_os_str() == "off" => None,
        Some(dir) => Some(dir.clone()),
        None => CompileCache::default_dir(),
    }
}

/// Writes the built-in component to `out` (`-` for stdout), and says what it wrote on stderr.
fn write_component(out: &std::path::Path) -> Result<()> {
    use std::io::Write;
    let bytes = wasilock::wasm::EMBEDDED_GUEST;
    if out.as_os_str() == "-" {
        std::io::stdout()
            .lock()
            .write_all(bytes)
            .context("cannot write the component to stdout")?;
        return Ok(());
    }
    std::fs::write(out, bytes)
        .with_context(|| format!("cannot write the component to {}", out.display()))?;
    let digest = sha2::Sha256::digest(bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    eprintln!(
        "wrote the wasilock lock component ({} bytes, sha256 {hex}) to {}",
        bytes.len(),
        out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_flags_default_to_the_library_defaults_and_0_disables_a_timeout() {
        let defaults = Cli::parse_from(["wasilock"]);
        assert_eq!(requested_limits(&defaults), ConnectionLimits::default());
        let set = Cli::parse_from([
            "wasilock",
            "--read-header-timeout",
            "0",
            "--idle-timeout",
            "0s",
            "--max-connections",
            "7",
        ]);
        let limits = requested_limits(&set);
        assert_eq!(limits.read_header_timeout, None);
        assert_eq!(limits.idle_timeout, None);
        assert_eq!(limits.max_connections, 7);
    }

    #[test]
    fn upstream_flags_take_http_origins() {
        let none = Cli::parse_from(["wasilock"]);
        assert_eq!(none.dapr_upstream_http, None);
        assert_eq!(none.dapr_upstream_grpc, None);
        let set = Cli::parse_from([
            "wasilock",
            "--dapr-upstream-http",
            "http://127.0.0.1:3501",
            "--dapr-upstream-grpc",
            "http://127.0.0.1:50002",
        ]);
        assert_eq!(
            set.dapr_upstream_grpc
                .unwrap()
                .authority()
                .unwrap()
                .as_str(),
            "127.0.0.1:50002"
        );
        let refused = Cli::try_parse_from(["wasilock", "--dapr-upstream-http", "https://x:1"]);
        assert!(
            refused
                .unwrap_err()
                .to_string()
                .contains("must start with http://")
        );
    }

    #[test]
    fn tls_needs_a_certificate_and_its_key() {
        assert_eq!(api_tls_files(&Cli::parse_from(["wasilock"])), None);
        let both = Cli::parse_from([
            "wasilock",
            "--api-tls-cert",
            "c.pem",
            "--api-tls-key",
            "k.pem",
        ]);
        assert_eq!(
            api_tls_files(&both),
            Some(TlsFiles {
                cert: "c.pem".into(),
                key: "k.pem".into(),
                client_ca: None
            })
        );
        for alone in [
            &["--api-tls-cert", "c.pem"][..],
            &["--api-tls-key", "k.pem"],
            &["--api-tls-client-ca", "ca.pem"],
        ] {
            let args = [&["wasilock"][..], alone].concat();
            assert!(Cli::try_parse_from(args).is_err(), "{alone:?}");
        }
    }

    #[test]
    fn metrics_are_on_by_default_and_off_with_false() {
        let defaults = Cli::parse_from(["wasilock"]);
        assert!(defaults.enable_metrics);
        assert_eq!(defaults.metrics_port, 9090);
        let configuration = DaprConfiguration::default();
        assert!(telemetry(&defaults, &configuration).metrics.is_some());
        let off = Cli::parse_from(["wasilock", "--enable-metrics=false"]);
        assert!(telemetry(&off, &configuration).metrics.is_none());
        let on = Cli::parse_from(["wasilock", "--enable-metrics", "--metrics-port", "0"]);
        assert!(on.enable_metrics);
    }

    #[test]
    fn the_compile_cache_is_on_by_default_and_off_turns_it_off() {
        let defaults = Cli::parse_from(["wasilock"]);
        assert_eq!(compile_cache_dir(&defaults), CompileCache::default_dir());
        let off = Cli::parse_from(["wasilock", "--compile-cache", "off"]);
        assert_eq!(compile_cache_dir(&off), None);
        let dir = Cli::parse_from(["wasilock", "--compile-cache", "/var/cache/wasilock"]);
        assert_eq!(
            compile_cache_dir(&dir),
            Some(PathBuf::from("/var/cache/wasilock"))
        );
    }
}
