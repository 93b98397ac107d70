//! The process lifetime: one wasm engine, the lock stores, and the tenants built from the
//! configuration (flags and the resources path), rebuilt as a whole on reload.
//!
//! [`Process::start`] reads the configuration and builds everything; [`Process::reload`]
//! reads it again and puts the new tenants in force, keeping the backends of stores whose
//! data did not move (and so their locks) and reusing compiled components whose bytes did
//! not change. A broken configuration changes nothing. [`Process::watch`] reloads on SIGHUP
//! and when a resource file or a tenant's component changes.
//!
//! - [`serve`]: the process serving the Dapr API on its listeners until SIGINT or SIGTERM;
//! - `banner`: what the binary prints once it listens.

mod banner;
pub mod serve;

use crate::config::dapr_configuration::DaprConfiguration;
use crate::config::tenants::{LimitOverrides, TenantSpec};
use crate::config::watch::ReloadTriggers;
use crate::config::{self, Resources};
use crate::service::{Alpha2Policy, Tenant};
use crate::stores::{StoreKinds, StoreSet, default_store};
use crate::telemetry::Telemetry;
use crate::tenants::{Registry, Tenants};
use crate::upstream::Upstream;
use crate::wasm::EMBEDDED_GUEST;
use crate::wasm::compile_cache::CompileCache;
use crate::wasm::{HttpExport, Limits, LinkedComponent, Sandbox, WasmEngine, new_engine};
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// What the flags and the environment say.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--app-id`: the tenant of a host without `Tenant` resources, or the extra tenant that
    /// `DAPR_API_TOKEN` selects.
    pub app_id: String,
    /// `DAPR_API_TOKEN`.
    pub api_token: Option<String>,
    /// `--resources-path`; none gives one `lock.embedded` store named `lockstore`.
    pub resources_paths: Vec<PathBuf>,
    /// `--data-dir`: where `lock.embedded` stores keep their data.
    pub data_dir: PathBuf,
    /// The store kinds components may name (the binary registers the built-in ones).
    pub store_kinds: StoreKinds,
    /// `--component`: the component of tenants that name none; `None` = the built-in one.
    pub component: Option<PathBuf>,
    /// The limits of tenants that set none (`--guest-*` flags); `memory_bytes` is also the
    /// largest memory any tenant may have.
    pub limits: Limits,
    /// `--max-body-size`.
    pub max_body_size: u64,
    /// `--http-export`.
    pub http_export: HttpExport,
    /// `--compile-cache`: where compiled components are kept between runs; `None` compiles
    /// every component at every start.
    pub compile_cache: Option<PathBuf>,
    /// `--dapr-upstream-http` and `--dapr-upstream-grpc`: the daprd of tenants that name
    /// none; empty serves only the lock API, as without a daprd.
    pub upstream: Upstream,
    /// What is observed (metrics, API log lines, the log format), for every tenant.
    pub telemetry: Telemetry,
    /// `--allow-force-unlock`: whether the `--app-id` tenant may force an alpha2 release.
    pub allow_force_unlock: bool,
    /// `--max-lock-wait`: the longest an alpha2 acquire waits.
    pub max_lock_wait: Duration,
}

/// The process: its engine, its stores and its tenants.
pub struct Process {
    settings: Settings,
    engine: WasmEngine,
    compile_cache: Option<CompileCache>,
    stores: Mutex<Arc<StoreSet>>,
    components: Mutex<HashMap<Option<PathBuf>, Compiled>>,
    /// The tenants in force, as the APIs select them.
    pub tenants: Arc<Registry>,
}

/// The tenant of the flags' app id (`--app-id`, `--allow-force-unlock`) with `api_token`:
/// the embedded component, the process's limits and upstream.
fn app_tenant(settings: &Settings, api_token: String) -> TenantSpec {
    TenantSpec {
        app_id: settings.app_id.clone(),
        api_token,
        client_identity: None,
        component: None,
        limits: LimitOverrides::default(),
        upstream: None,
        source: None,
        allow_force_unlock: settings.allow_force_unlock,
    }
}

/// A component compiled from bytes with this SHA-256 digest.
struct Compiled {
    digest: [u8; 32],
    linked: Arc<LinkedComponent>,
}

impl Process {
    /// Reads the configuration and builds the stores and tenants.
    pub async fn start(settings: Settings) -> Result<Self> {
        let engine = new_engine(settings.limits.memory_bytes)?;
        let process = Process {
            compile_cache: settings.compile_cache.clone().map(CompileCache::new),
            settings,
            engine,
            stores: Mutex::default(),
            components: Mutex::default(),
            tenants: Arc::new(Registry::new(Tenants::with_tokens([]))),
        };
        let (stores, tenants) = process.configure().await?;
        *process.stores.lock().unwrap_or_else(|p| p.into_inner()) = stores;
        process.tenants.replace(tenants);
        Ok(process)
    }

    /// Reads the configuration again and puts it in force; on error nothing changes. The
    /// `--config` file's sampling rate applies at once; its other settings at the next start.
    pub async fn reload(&self) -> Result<()> {
        let telemetry = &self.settings.telemetry;
        let configuration = match &telemetry.config_file {
            Some(file) => Some(DaprConfiguration::read(file)?),
            None => None,
        };
        let tracing = configuration.as_ref().map(|c| c.tracing()).transpose()?;
        let (stores, tenants) = self.configure().await?;
        *self.stores.lock().unwrap_or_else(|p| p.into_inner()) = stores;
        self.tenants.replace(tenants);
        if let (Some(traces), Some(settings)) = (&telemetry.traces, tracing.flatten()) {
            traces.set_sampling_rate(settings.sampling_rate);
        }
        Ok(())
    }

    /// Reloads on SIGHUP, and when a resource file, a tenant's component file or the
    /// `--config` file is added, removed or changed (see [`config::watch`]), until `stopped` turns true. A failed reload
    /// is logged and keeps the running configuration.
    pub async fn watch(&self, stopped: watch::Receiver<bool>) -> Result<()> {
        let config_file = self.settings.telemetry.config_file.clone();
        let components = move || -> Vec<PathBuf> {
            let compiled = self.components.lock().unwrap_or_else(|p| p.into_inner());
            let components = compiled.keys().flatten().cloned();
            components.chain(config_file.clone()).collect()
        };
        let resources_paths = self.settings.resources_paths.clone();
        let mut triggers = ReloadTriggers::new(resources_paths, components, stopped)?;
        while let Some(reason) = triggers.next().await {
            let reloaded = self.reload().await;
            if let Some(metrics) = &self.settings.telemetry.metrics {
                metrics.reloaded(reloaded.is_ok());
            }
            match reloaded {
                Ok(()) => tracing::info!(
                    "reloaded the configuration ({reason}): {} tenants",
                    self.tenants.current().iter().count()
                ),
                Err(e) => tracing::error!(
                    "reloading the configuration ({reason}) failed; the running configuration stays: {e:#}"
                ),
            }
        }
        Ok(())
    }

    /// The lock stores in force.
    pub fn stores(&self) -> Arc<StoreSet> {
        self.stores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Builds stores and tenants from the configuration as it is now.
    async fn configure(&self) -> Result<(Arc<StoreSet>, Tenants)> {
        let settings = &self.settings;
        let resources = if settings.resources_paths.is_empty() {
            Resources {
                stores: vec![default_store()],
                tenants: Vec::new(),
            }
        } else {
            config::load(&settings.resources_paths, &settings.store_kinds, &|name| {
                std::env::var(name).ok()
            })?
        };
        let mut specs = resources.tenants;
        let open = specs.is_empty() && settings.api_token.is_none();
        if let Some(token) = &settings.api_token {
            config::add_tenant(&mut specs, app_tenant(settings, token.clone()))?;
        }
        let previous = self.stores();
        let stores =
            Arc::new(StoreSet::open(&resources.stores, &settings.data_dir, Some(&previous)).await?);
        let default_upstream = Some(settings.upstream.clone());
        if open {
            let default = app_tenant(settings, String::new());
            let tenant = self.tenant(&default, &stores)?;
            let upstreams = [(settings.app_id.clone(), settings.upstream.clone())];
            let tenants = Tenants::open(tenant).with_upstreams(upstreams, default_upstream);
            return Ok((stores, tenants));
        }
        let identities: Vec<_> = specs
            .iter()
            .filter_map(|s| Some((s.client_identity.clone()?, s.app_id.clone())))
            .collect();
        let mut tenants = Vec::new();
        let mut upstreams = Vec::new();
        for spec in specs {
            let upstream = spec.upstream.as_ref().unwrap_or(&settings.upstream);
            upstreams.push((spec.app_id.clone(), upstream.clone()));
            let tenant = self
                .tenant(&spec, &stores)
                .with_context(|| match &spec.source {
                    Some(file) => format!("tenant {:?} in {}", spec.app_id, file.display()),
                    None => format!("tenant {:?} (--app-id)", spec.app_id),
                })?;
            tenants.push((spec.api_token, tenant));
        }
        let tenants = Tenants::with_tokens(tenants)
            .with_upstreams(upstreams, default_upstream)
            .with_identities(identities);
        Ok((stores, tenants))
    }

    /// The sandbox of the tenant `spec` declares, over `stores`.
    fn tenant(&self, spec: &TenantSpec, stores: &StoreSet) -> Result<Tenant> {
        let app_id = spec.app_id.as_str();
        let limits = spec.limits.over(&self.settings.limits)?;
        let path = spec.component.as_ref().or(self.settings.component.as_ref());
        // Compiling takes a while: on a multi-threaded runtime, other tasks move off this
        // thread meanwhile.
        let component = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                tokio::task::block_in_place(|| self.component(path))?
            }
            _ => self.component(path)?,
        };
        let metrics = self.settings.telemetry.metrics.as_deref();
        let view = match metrics {
            Some(metrics) => stores.observed_view(app_id, metrics),
            None => stores.view(app_id),
        };
        let sandbox = Sandbox::new(
            component,
            Arc::new(view),
            limits,
            self.settings.max_body_size,
        );
        Ok(Tenant {
            app_id: app_id.to_string(),
            service: match metrics {
                Some(metrics) => sandbox.observed(Arc::new(metrics.tenant(app_id))),
                None => sandbox,
            },
            alpha2: Alpha2Policy {
                allow_force_unlock: spec.allow_force_unlock,
                max_lock_wait: self.settings.max_lock_wait,
                ..Alpha2Policy::default()
            },
        })
    }

    /// The component at `path` (the built-in one for `None`), compiled once per content (or
    /// loaded from the compile cache).
    fn component(&self, path: Option<&PathBuf>) -> Result<Arc<LinkedComponent>> {
        let bytes = match path {
            None => EMBEDDED_GUEST.to_vec(),
            Some(path) => std::fs::read(path).with_context(|| {
                format!(
                    "spec.component: cannot read the component {}",
                    path.display()
                )
            })?,
        };
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        let mut cache = self.components.lock().unwrap_or_else(|p| p.into_inner());
        let key = path.cloned();
        if let Some(compiled) = cache.get(&key)
            && compiled.digest == digest
        {
            return Ok(compiled.linked.clone());
        }
        let name = path.map_or("built-in".to_string(), |p| p.display().to_string());
        let http_export = self.settings.http_export;
        let linked = match &self.compile_cache {
            None => LinkedComponent::new(&self.engine, &name, &bytes, http_export),
            Some(cache) => cache
                .compile(self.engine.wasmtime(), &bytes)
                .context("cannot compile the lock component")
                .and_then(|(component, _)| {
                    LinkedComponent::from_component(&self.engine, &name, &component, http_export)
                }),
        }
        .with_context(|| format!("spec.component {name}"))?;
        let linked = Arc::new(linked);
        cache.insert(
            key,
            Compiled {
                digest,
                linked: linked.clone(),
            },
        );
        Ok(linked)
    }
}
