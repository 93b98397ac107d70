//! The state of a sandbox's guest instance ([`HostState`]): its WASI context, resources,
//! memory cap, call clock, and the stores its tenant sees.
//!
//! [`add_to_linker`] adds everything a lock component may import: WASI 0.2 (with outgoing
//! HTTP denied) and `wasilock:lock/store` ([`super::store_import`]).
//! [`super::component::LinkedComponent`] links it for every component.

use super::schedule::CallClock;
use super::store_import::{self, LockStoreCtxView, LockStoreView};
use crate::stores::StoreView;
use prometheus::IntGauge;
use std::sync::Arc;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

/// The state of a guest instance: its WASI context, resources, memory cap, call clock, and
/// the stores its tenant sees.
pub(crate) struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    http_hooks: DenyOutgoing,
    table: ResourceTable,
    pub(super) limits: MemoryCap,
    stores: Arc<StoreView>,
    /// The clock of the current call.
    pub(super) clock: CallClock,
    /// Counts this instance among its tenant's live ones while it exists.
    _live: Option<LiveInstance>,
}

/// One count in a tenant's live-instance gauge, given back when the instance goes.
pub(super) struct LiveInstance(IntGauge);

impl LiveInstance {
    /// Counts one more instance in `gauge`.
    pub(super) fn new(gauge: IntGauge) -> Self {
        gauge.inc();
        LiveInstance(gauge)
    }
}

impl Drop for LiveInstance {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl HostState {
    /// State for an instance of a tenant that sees `stores`, with at most `memory_bytes` of
    /// linear memory, its calls timed by `clock`. Only stderr is inherited from the host; no
    /// environment variables are set (settings reach the component through the WIT
    /// `settings` export).
    pub(super) fn new(
        stores: Arc<StoreView>,
        memory_bytes: usize,
        clock: CallClock,
        live: Option<LiveInstance>,
    ) -> Self {
        let wasi = WasiCtx::builder().inherit_stderr().build();
        HostState {
            wasi,
            http: WasiHttpCtx::new(),
            http_hooks: DenyOutgoing,
            table: ResourceTable::new(),
            limits: MemoryCap {
                limits: StoreLimitsBuilder::new().memory_size(memory_bytes).build(),
                reached: false,
            },
            stores,
            clock,
            _live: live,
        }
    }

    /// Whether a memory growth was refused since the state was made.
    pub(super) fn memory_cap_reached(&self) -> bool {
        self.limits.reached
    }
}

/// Adds WASI 0.2 (outgoing HTTP denied) and `wasilock:lock/store` to `linker`.
pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    store_import::add_to_linker(linker)
}

/// The memory cap of one instance ([`StoreLimits`]), remembering whether it was reached so
/// that the failure it causes can be named.
pub(super) struct MemoryCap {
    limits: StoreLimits,
    reached: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        self.reached |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl LockStoreView for HostState {
    fn lock_stores(&mut self) -> LockStoreCtxView<'_> {
        LockStoreCtxView::clocked(&self.stores, &mut self.table, &mut self.clock)
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
}

/// Outgoing HTTP is not part of a lock component's job: every request is denied.
pub(super) struct DenyOutgoing;

impl WasiHttpHooks for DenyOutgoing {
    fn send_request(
        &mut self,
        _request: hyper::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        hyper::Response<wasmtime_wasi_http::WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}
