//! Per-call state of a guest instance and the host side of the WIT `store` import.
//!
//! [`add_to_linker`] adds everything a lock component may import: WASI 0.2 (with outgoing
//! HTTP denied) and `wasilock:lock/store`, whose buckets are opened on the calling tenant's
//! [`StoreView`], so a component reaches only its tenant's stores and keys.
//! [`super::sandbox::LinkedComponent`] links it for every component.

use super::bindings::wasilock::lock::store::{self as wit_store, CasOutcome};
use crate::stores::{Bucket, OpenError, StoreView};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

/// Per-call state of a guest instance: its WASI context, resources, memory cap, deadline,
/// and the stores its tenant sees.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    http_hooks: DenyOutgoing,
    table: ResourceTable,
    pub(crate) limits: MemoryCap,
    stores: Arc<StoreView>,
    /// When the current call must end.
    pub(crate) deadline: Instant,
    /// Epoch ticks the current call has computed through since it began or last called the
    /// store (time spent waiting for a store is not computing).
    pub(crate) ticks: u32,
}

impl HostState {
    /// State for an instance of a tenant that sees `stores`, with at most `memory_bytes` of
    /// linear memory. Only stderr is inherited from the host; no environment variables are
    /// set (settings reach the component through the WIT `settings` export).
    pub fn new(stores: Arc<StoreView>, memory_bytes: usize) -> Self {
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
            deadline: Instant::now(),
            ticks: 0,
        }
    }

    /// Whether a memory growth was refused since the state was made.
    pub fn memory_cap_reached(&self) -> bool {
        self.limits.reached
    }
}

/// Adds WASI 0.2 (outgoing HTTP denied) and `wasilock:lock/store` to `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    wit_store::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)
}

/// The memory cap of one instance ([`StoreLimits`]), remembering whether it was reached so
/// that the failure it causes can be named.
pub(crate) struct MemoryCap {
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
struct DenyOutgoing;

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

impl From<OpenError> for wit_store::Error {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::NotConfigured => wit_store::Error::NotConfigured,
            OpenError::NoSuchStore => wit_store::Error::NoSuchStore,
            OpenError::AccessDenied => wit_store::Error::AccessDenied,
        }
    }
}

impl wit_store::Host for HostState {}

impl wit_store::HostBucket for HostState {
    async fn open(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<Resource<Bucket>, wit_store::Error>> {
        Ok(match self.stores.bucket(&name) {
            Ok(bucket) => Ok(self.table.push(bucket)?),
            Err(e) => Err(e.into()),
        })
    }

    async fn get(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wit_store::Error>> {
        self.ticks = 0;
        let bucket = self.table.get(&bucket)?.clone();
        Ok(bucket.get(&key).await.map_err(wit_store::Error::Backend))
    }

    async fn compare_and_swap(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Result<CasOutcome, wit_store::Error>> {
        self.ticks = 0;
        let bucket = self.table.get(&bucket)?.clone();
        let outcome = bucket
            .compare_and_swap(
                &key,
                expected.as_deref(),
                new.as_deref(),
                ttl_ms.map(Duration::from_millis),
            )
            .await;
        Ok(match outcome {
            Ok(crate::stores::backend::CasOutcome::Swapped) => Ok(CasOutcome::Swapped),
            Ok(crate::stores::backend::CasOutcome::Conflict(live)) => {
                Ok(CasOutcome::Conflict(live))
            }
            Err(message) => Err(wit_store::Error::Backend(message)),
        })
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}
