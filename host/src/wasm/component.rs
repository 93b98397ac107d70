//! A lock component compiled and linked for an engine ([`LinkedComponent`]): its imports
//! linked, and its exports looked up and type-checked once, the one that answers HTTP among
//! them ([`HttpExport`]), so that a call goes straight to its function.

use super::bindings::exports::wasilock::lock::{
    http_api, lock as typed_lock, lock_alpha2, settings,
};
use super::engine::WasmEngine;
use super::host_state::{self, HostState};
use super::ticker::{EpochTicker, Ticking};
use super::warm::WarmBudget;
use anyhow::{Context, Result};
use std::sync::Arc;
use wasmtime::Store;
use wasmtime::component::{Component, Instance, InstancePre, Linker};
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyIndices};

/// Which export of the component answers HTTP requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpExport {
    /// `wasilock:lock/http-api` when the component has it, else `wasi:http/incoming-handler`.
    #[default]
    Auto,
    /// Always `wasi:http/incoming-handler`, as any WASI HTTP runtime calls it.
    WasiHttp,
}

/// A lock component compiled and linked for the process's engine: what tenants that run the
/// same component share. Instances are never shared.
pub struct LinkedComponent {
    name: String,
    pre: InstancePre<HostState>,
    http: HttpEntry,
    typed: typed_lock::GuestIndices,
    /// `wasilock:lock/settings`, which components built against WIT 0.1.0 lack.
    settings: Option<settings::GuestIndices>,
    /// `wasilock:lock/lock-alpha2`, which components built before WIT 0.1.2 lack.
    alpha2: Option<lock_alpha2::GuestIndices>,
    ticker: Arc<EpochTicker>,
    warm_budget: Arc<WarmBudget>,
}

/// The export through which HTTP requests enter the component, chosen once when it is linked.
#[derive(Clone)]
pub(super) enum HttpEntry {
    /// `wasilock:lock/http-api`: one call per request.
    Api(http_api::GuestIndices),
    /// `wasi:http/incoming-handler`: resources and streams.
    WasiHttp(ProxyIndices),
}

/// Where an HTTP export is in an instance of a linked component, and what it is once loaded.
pub(super) trait HttpIndices: Send + Sync + 'static {
    /// The export, loaded from an instance.
    type Export: Send + Sync + 'static;

    /// Loads the export from `instance`.
    fn load(
        &self,
        store: &mut Store<HostState>,
        instance: &Instance,
    ) -> wasmtime::Result<Self::Export>;
}

impl HttpIndices for http_api::GuestIndices {
    type Export = http_api::Guest;

    fn load(
        &self,
        store: &mut Store<HostState>,
        instance: &Instance,
    ) -> wasmtime::Result<http_api::Guest> {
        http_api::GuestIndices::load(self, store, instance)
    }
}

impl HttpIndices for ProxyIndices {
    type Export = Proxy;

    fn load(&self, store: &mut Store<HostState>, instance: &Instance) -> wasmtime::Result<Proxy> {
        ProxyIndices::load(self, store, instance)
    }
}

/// An instance's exports, looked up and type-checked once, when it is made: `http` is the one
/// that answers HTTP ([`HttpIndices::Export`]).
pub(super) struct Exports<E> {
    /// The export that answers HTTP.
    pub(super) http: E,
    /// `wasilock:lock/lock`.
    pub(super) typed: typed_lock::Guest,
    /// `wasilock:lock/lock-alpha2`, when the component has it.
    pub(super) alpha2: Option<lock_alpha2::Guest>,
}

impl LinkedComponent {
    /// Compiles `component` (a `lock-service` or `lock-api` component's bytes, called `name`
    /// for people) and links it with the host's imports; `http_export` chooses the export
    /// that answers HTTP.
    pub fn new(
        engine: &WasmEngine,
        name: &str,
        component: &[u8],
        http_export: HttpExport,
    ) -> Result<Self> {
        let component = Component::new(engine.wasmtime(), component)
            .map_err(anyhow::Error::from)
            .context("cannot compile the lock component")?;
        Self::from_component(engine, name, &component, http_export)
    }

    /// Links a component already compiled for `engine` (one loaded from a cache of compiled
    /// components, say), as [`LinkedComponent::new`] does after compiling.
    pub fn from_component(
        engine: &WasmEngine,
        name: &str,
        component: &Component,
        http_export: HttpExport,
    ) -> Result<Self> {
        let mut linker = Linker::<HostState>::new(engine.wasmtime());
        host_state::add_to_linker(&mut linker)?;
        let pre = linker
            .instantiate_pre(component)
            .map_err(anyhow::Error::from)
            .context("the component does not fit the lock-service world")?;
        let api = match http_export {
            HttpExport::Auto => http_api::GuestIndices::new(&pre).ok(),
            HttpExport::WasiHttp => None,
        };
        let http = match api {
            Some(api) => HttpEntry::Api(api),
            None => HttpEntry::WasiHttp(
                ProxyIndices::new(&pre)
                    .map_err(anyhow::Error::from)
                    .context("the component exports neither wasilock:lock/http-api nor wasi:http/incoming-handler")?,
            ),
        };
        let typed = typed_lock::GuestIndices::new(&pre)
            .map_err(anyhow::Error::from)
            .context("the component does not export wasilock:lock/lock")?;
        let settings = settings::GuestIndices::new(&pre).ok();
        let alpha2 = lock_alpha2::GuestIndices::new(&pre).ok();
        Ok(LinkedComponent {
            name: name.to_string(),
            pre,
            http,
            typed,
            settings,
            alpha2,
            ticker: engine.ticker().clone(),
            warm_budget: engine.warm_budget().clone(),
        })
    }

    /// The component's name: its file, or `built-in`.
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// Whether the component exports `wasilock:lock/lock-alpha2`.
    pub fn has_alpha2(&self) -> bool {
        self.alpha2.is_some()
    }

    /// The name of the export that answers HTTP requests.
    pub fn http_export_name(&self) -> &'static str {
        match self.http {
            HttpEntry::Api(_) => "wasilock:lock/http-api",
            HttpEntry::WasiHttp(_) => "wasi:http/incoming-handler",
        }
    }

    /// The export that answers HTTP requests.
    pub(super) fn http_entry(&self) -> &HttpEntry {
        &self.http
    }

    /// The budget of warm instances of the engine the component was linked for.
    pub(super) fn warm_budget(&self) -> &Arc<WarmBudget> {
        &self.warm_budget
    }

    /// Marks a call of this component in flight until the guard drops: the engine's epoch
    /// ticks meanwhile.
    pub(super) fn ticking(&self) -> Ticking {
        self.ticker.ticking()
    }

    /// A store for an instance of this component, holding `state`.
    pub(super) fn new_store(&self, state: HostState) -> Store<HostState> {
        Store::new(self.pre.engine(), state)
    }

    /// A fresh instance in `store`, configured through `wasilock:lock/settings` (with
    /// `max_body_size`) when it exports it; returns its exports, the HTTP one found by `http`.
    pub(super) async fn instantiate<H: HttpIndices>(
        &self,
        store: &mut Store<HostState>,
        http: &H,
        max_body_size: u64,
    ) -> wasmtime::Result<Exports<H::Export>> {
        let instance = self.pre.instantiate_async(&mut *store).await?;
        if let Some(settings) = &self.settings {
            let config = settings::Config {
                max_body_size: Some(max_body_size),
            };
            settings
                .load(&mut *store, &instance)?
                .call_configure(&mut *store, config)
                .await?;
        }
        let http = http.load(store, &instance)?;
        let typed = self.typed.load(&mut *store, &instance)?;
        let alpha2 = match &self.alpha2 {
            Some(indices) => Some(indices.load(&mut *store, &instance)?),
            None => None,
        };
        Ok(Exports {
            http,
            typed,
            alpha2,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wasm::engine::new_engine;

    #[test]
    fn a_component_of_another_world_is_refused() {
        let engine = new_engine(1 << 20).unwrap();
        let err = LinkedComponent::new(&engine, "junk", b"not wasm", HttpExport::Auto)
            .err()
            .unwrap();
        assert!(
            format!("{err:#}").contains("cannot compile the lock component"),
            "{err:#}"
        );
    }
}
