//! The process lifetime: one wasm engine, the lock stores, and the tenants built from the
//! configuration (flags and the resources path), rebuilt as a whole on reload.
//!
//! [`Process::start`] reads the configuration and builds everything; [`Process::reload`]
//! reads it again and puts the new tenants in force, keeping the backends of stores whose
//! data did not move (and so their locks) and reusing compiled components whose bytes did
//! not change. A broken configuration changes nothing. [`Process::watch`] reloads on SIGHUP
//! and when a resource file or a tenant's component changes.

use crate::config::tenants::{LimitOverrides, TenantSpec};
use crate::config::{self, Resources};
use crate::service::Tenant;
use crate::stores::StoreSet;
use crate::stores::default_store;
use crate::tenants::{Registry, Tenants};
use crate::wasm::EMBEDDED_GUEST;
use crate::wasm::compile_cache::CompileCache;
use crate::wasm::engine::new_engine;
use crate::wasm::sandbox::{HttpExport, Limits, LinkedComponent, Sandbox};
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;
use wasmtime::Engine;

/// How often the resource files and components are checked for changes.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

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
}

/// The process: its engine, its stores and its tenants.
pub struct Process {
    settings: Settings,
    engine: Engine,
    compile_cache: Option<CompileCache>,
    stores: Mutex<Arc<StoreSet>>,
    components: Mutex<HashMap<Option<PathBuf>, Compiled>>,
    /// The tenants in force, as the APIs select them.
    pub tenants: Arc<Registry>,
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

    /// Reads the configuration again and puts it in force; on error nothing changes.
    pub async fn reload(&self) -> Result<()> {
        let (stores, tenants) = self.configure().await?;
        *self.stores.lock().unwrap_or_else(|p| p.into_inner()) = stores;
        self.tenants.replace(tenants);
        Ok(())
    }

    /// Reloads on SIGHUP, and when a resource file or a tenant's component file is added,
    /// removed or changed (checked every `WATCH_INTERVAL`), until `stopped` turns true. A
    /// failed reload is logged and keeps the running configuration.
    pub async fn watch(&self, mut stopped: watch::Receiver<bool>) -> Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
        let mut ticker = tokio::time::interval(WATCH_INTERVAL);
        let mut seen = self.fingerprint();
        loop {
            let reason = tokio::select! {
                _ = hangup.recv() => {
                    seen = self.fingerprint();
                    "SIGHUP"
                }
                _ = ticker.tick() => {
                    let now = self.fingerprint();
                    if now == seen {
                        continue;
                    }
                    seen = now;
                    "a resource file changed"
                }
                _ = stopped.wait_for(|stop| *stop) => return Ok(()),
            };
            match self.reload().await {
                Ok(()) => tracing::info!(
                    "reloaded the configuration ({reason}): {} tenants",
                    self.tenants.current().iter().count()
                ),
                Err(e) => tracing::error!(
                    "reloading the configuration ({reason}) failed; the running configuration stays: {e:#}"
                ),
            }
        }
    }

    /// The resource files and component files, with their modification times and sizes.
    fn fingerprint(&self) -> Vec<(PathBuf, Option<(SystemTime, u64)>)> {
        let mut files: Vec<PathBuf> = self
            .settings
            .resources_paths
            .iter()
            .flat_map(|dir| config::components::resource_files(dir).unwrap_or_default())
            .collect();
        files.extend(
            self.components
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .keys()
                .flatten()
                .cloned(),
        );
        files
            .into_iter()
            .map(|file| {
                let stamp = std::fs::metadata(&file)
                    .ok()
                    .and_then(|m| Some((m.modified().ok()?, m.len())));
                (file, stamp)
            })
            .collect()
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
            config::load(&settings.resources_paths, &|name| std::env::var(name).ok())?
        };
        let mut specs = resources.tenants;
        let open = specs.is_empty() && settings.api_token.is_none();
        if let Some(token) = &settings.api_token {
            config::add_tenant(
                &mut specs,
                TenantSpec {
                    app_id: settings.app_id.clone(),
                    api_token: token.clone(),
                    client_identity: None,
                    component: None,
                    limits: LimitOverrides::default(),
                    source: None,
                },
            )?;
        }
        let previous = self.stores();
        let stores =
            Arc::new(StoreSet::open(&resources.stores, &settings.data_dir, Some(&previous)).await?);
        if open {
            let tenant =
                self.tenant(&settings.app_id, &None, &LimitOverrides::default(), &stores)?;
            return Ok((stores, Tenants::open(tenant)));
        }
        let identities: Vec<_> = specs
            .iter()
            .filter_map(|s| Some((s.client_identity.clone()?, s.app_id.clone())))
            .collect();
        let mut tenants = Vec::new();
        for spec in specs {
            let tenant = self
                .tenant(&spec.app_id, &spec.component, &spec.limits, &stores)
                .with_context(|| match &spec.source {
                    Some(file) => format!("tenant {:?} in {}", spec.app_id, file.display()),
                    None => format!("tenant {:?} (--app-id)", spec.app_id),
                })?;
            tenants.push((spec.api_token, tenant));
        }
        Ok((
            stores,
            Tenants::with_tokens(tenants).with_identities(identities),
        ))
    }

    /// One tenant's sandbox over `stores`.
    fn tenant(
        &self,
        app_id: &str,
        component: &Option<PathBuf>,
        overrides: &LimitOverrides,
        stores: &StoreSet,
    ) -> Result<Tenant> {
        let defaults = &self.settings.limits;
        let memory_bytes = match overrides.memory {
            None => defaults.memory_bytes,
            Some(memory) => {
                let memory = usize::try_from(memory).unwrap_or(usize::MAX);
                if memory > defaults.memory_bytes {
                    bail!(
                        "spec.limits.memory ({memory} bytes) is above --guest-memory ({} bytes), the most any instance may have",
                        defaults.memory_bytes
                    );
                }
                memory
            }
        };
        let limits = Limits {
            timeout: overrides.timeout.unwrap_or(defaults.timeout),
            memory_bytes,
            max_concurrency: overrides
                .max_concurrency
                .unwrap_or(defaults.max_concurrency),
            requests_per_instance: overrides
                .requests_per_instance
                .unwrap_or(defaults.requests_per_instance),
        };
        let path = component.as_ref().or(self.settings.component.as_ref());
        // Compiling takes a while: on a multi-threaded runtime, other tasks move off this
        // thread meanwhile.
        let component = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                tokio::task::block_in_place(|| self.component(path))?
            }
            _ => self.component(path)?,
        };
        Ok(Tenant {
            app_id: app_id.to_string(),
            service: Sandbox::new(
                component,
                Arc::new(stores.view(app_id)),
                limits,
                self.settings.max_body_size,
            ),
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
                .compile(&self.engine, &bytes)
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
