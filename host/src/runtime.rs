//! The wasm side of the host: engine, linker, limits, and calls into the lock component.
//!
//! One [`GuestRuntime`] serves one tenant (app id) with its lock stores. HTTP requests run in
//! instances of the pre-linked component (pooling allocator) that are kept warm and reused for
//! up to [`GuestSettings::requests_per_instance`] requests of the same tenant, never across
//! tenants (the warm pool belongs to the runtime); an instance that trapped is dropped. Every
//! call is bounded by an execution deadline (epoch interruption, one shared ticker thread) and
//! a memory cap.
//!
//! A request enters the component through `wasilock:lock/http-api` (the whole request in, the
//! whole answer out, one call) when the component exports it, or through
//! `wasi:http/incoming-handler` (WASI resources and streams); both give the same answers, the
//! first with far fewer host calls ([`HttpExport`]).

use crate::answer::{HyperOutgoingBody, full_body, json_response};
use crate::registry::{Bucket, LockStores, OpenError};
use anyhow::{Context, Result};
use http_body_util::{BodyExt, Limited};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::{
    Component, HasSelf, Instance, InstancePre, Linker, Resource, ResourceTable,
};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    StoreLimits, StoreLimitsBuilder, Trap,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyIndices;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

/// Host bindings for the `lock-api` world (the `store` import, the typed `lock` and the
/// `http-api` exports).
mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "lock-api",
        imports: { default: async | trappable },
        exports: { default: async },
        with: { "wasilock:lock/store.bucket": crate::registry::Bucket },
        additional_derives: [PartialEq, Eq],
    });
}

use bindings::exports::wasilock::lock::{http_api, lock as typed_lock};
use bindings::wasilock::lock::store::{self as wit_store, CasOutcome};
use wasilock_guest::lease::{LockError, LockRequest, UnlockRequest, UnlockStatus};

/// The guest component built from `guest/` and embedded at build time.
pub const EMBEDDED_GUEST: &[u8] = include_bytes!(env!("WASILOCK_GUEST_WASM"));

/// How often the shared epoch ticker advances; the deadline's resolution.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Concurrent guest instances the pooling allocator has room for.
const MAX_INSTANCES: u32 = 1000;
/// Warm instances kept for reuse, at most; the rest of the pool stays for request peaks.
const MAX_WARM_INSTANCES: usize = 256;
/// The largest answer body a component may give.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Which export of the component answers HTTP requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpExport {
    /// `wasilock:lock/http-api` when the component has it, else `wasi:http/incoming-handler`.
    #[default]
    Auto,
    /// Always `wasi:http/incoming-handler`, as any WASI HTTP runtime calls it.
    WasiHttp,
}

/// How guest instances are run: their limits, and how requests enter them.
#[derive(Debug, Clone)]
pub struct GuestSettings {
    /// Wall-clock time a call may take before the guest is stopped.
    pub timeout: Duration,
    /// Linear memory a guest instance may use, in bytes.
    pub memory_bytes: usize,
    /// The request body bound handed to the guest (`--max-body-size`).
    pub max_body_size: u64,
    /// HTTP requests one instance may serve before it is dropped; 1 gives every request a
    /// fresh instance (no state survives a request).
    pub requests_per_instance: u32,
    /// Which export answers HTTP requests.
    pub http_export: HttpExport,
}

/// Per-call state of a guest instance.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    http_hooks: DenyOutgoing,
    table: ResourceTable,
    limits: MemoryCap,
    stores: Arc<LockStores>,
}

/// The lock component, compiled and linked, for one tenant.
pub struct GuestRuntime {
    engine: Engine,
    pre: InstancePre<HostState>,
    http: HttpEntry,
    typed: typed_lock::GuestIndices,
    stores: Arc<LockStores>,
    settings: GuestSettings,
    warm: Mutex<Vec<WarmInstance>>,
}

/// The export through which HTTP requests enter the component.
enum HttpEntry {
    /// `wasilock:lock/http-api`: one call per request.
    Api(http_api::GuestIndices),
    /// `wasi:http/incoming-handler`: resources and streams.
    WasiHttp(ProxyIndices),
}

/// An instance that served a request without failing, kept for this tenant's next one.
struct WarmInstance {
    store: Store<HostState>,
    instance: Instance,
    served: u32,
}

/// A guest call that did not produce an answer: it trapped, ran out of time or memory, or
/// broke the protocol.
#[derive(Debug)]
pub struct GuestFailure(pub anyhow::Error);

impl std::fmt::Display for GuestFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl From<wasmtime::Error> for GuestFailure {
    fn from(e: wasmtime::Error) -> Self {
        GuestFailure(e.into())
    }
}

impl GuestRuntime {
    /// Compiles `component` (a `lock-service` component's bytes) for `stores`.
    pub fn new(component: &[u8], stores: Arc<LockStores>, settings: GuestSettings) -> Result<Self> {
        let engine = new_engine(&settings)?;
        let component = Component::new(&engine, component)
            .map_err(anyhow::Error::from)
            .context("cannot compile the lock component")?;
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        wit_store::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .context("the component does not fit the lock-service world")?;
        let api = match settings.http_export {
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
        spawn_epoch_ticker(&engine);
        Ok(GuestRuntime {
            engine,
            pre,
            http,
            typed,
            stores,
            settings,
            warm: Mutex::default(),
        })
    }

    /// The tenant's lock stores.
    pub fn stores(&self) -> &LockStores {
        &self.stores
    }

    /// The name of the export that answers HTTP requests.
    pub fn http_export_name(&self) -> &'static str {
        match self.http {
            HttpEntry::Api(_) => "wasilock:lock/http-api",
            HttpEntry::WasiHttp(_) => "wasi:http/incoming-handler",
        }
    }

    fn new_store(&self) -> Store<HostState> {
        let wasi = WasiCtx::builder()
            .env(
                wasilock_guest::http::MAX_BODY_SIZE_ENV,
                self.settings.max_body_size.to_string(),
            )
            .inherit_stderr()
            .build();
        let limits = MemoryCap {
            limits: StoreLimitsBuilder::new()
                .memory_size(self.settings.memory_bytes)
                .build(),
            reached: false,
        };
        let state = HostState {
            wasi,
            http: WasiHttpCtx::new(),
            http_hooks: DenyOutgoing,
            table: ResourceTable::new(),
            limits,
            stores: self.stores.clone(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        self.arm_deadline(&mut store);
        store
    }

    /// Gives the next call on `store` the full timeout.
    fn arm_deadline(&self, store: &mut Store<HostState>) {
        let ticks = self
            .settings
            .timeout
            .as_millis()
            .div_ceil(EPOCH_TICK.as_millis())
            .max(1);
        store.set_epoch_deadline(ticks as u64);
    }

    /// Runs `call` on an instance of this tenant's component: the one way into a component,
    /// for every export and transport.
    ///
    /// The instance is a warm one when there is one (its deadline re-armed), else a fresh
    /// one. It is kept warm afterwards when `call` returned `Ok` with `reusable` true and it
    /// has served fewer than [`GuestSettings::requests_per_instance`] requests; an instance
    /// that failed is dropped. A failure names the limit it broke.
    async fn call<T>(
        &self,
        call: impl AsyncFnOnce(&mut Store<HostState>, Instance) -> wasmtime::Result<Called<T>>,
    ) -> Result<T, GuestFailure> {
        let warm = self.warm.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let (mut store, warm) = match warm {
            Some(WarmInstance {
                mut store,
                instance,
                served,
            }) => {
                self.arm_deadline(&mut store);
                (store, Some((instance, served)))
            }
            None => (self.new_store(), None),
        };
        let called = async {
            let (instance, served) = match warm {
                Some(warm) => warm,
                None => (self.pre.instantiate_async(&mut store).await?, 0),
            };
            let called = call(&mut store, instance).await?;
            Ok::<_, wasmtime::Error>((instance, served + 1, called))
        }
        .await;
        match called {
            Ok((instance, served, Called { value, reusable })) => {
                if reusable {
                    self.keep_warm(store, instance, served);
                }
                Ok(value)
            }
            Err(e) => Err(self.failure(store.data().limits.reached, e)),
        }
    }

    /// Serves one HTTP request through the component.
    ///
    /// The call runs in the caller's task and the whole answer is gathered (it is small), so
    /// the server writes it in one go.
    pub async fn handle_http(
        &self,
        request: hyper::Request<hyper::body::Incoming>,
    ) -> Result<hyper::Response<HyperOutgoingBody>, GuestFailure> {
        match &self.http {
            HttpEntry::Api(api) => self.handle_with_api(api, request).await,
            HttpEntry::WasiHttp(proxy) => self.handle_with_wasi_http(proxy, request).await,
        }
    }

    /// Serves one request with a single call of `wasilock:lock/http-api#handle`.
    async fn handle_with_api(
        &self,
        api: &http_api::GuestIndices,
        request: hyper::Request<hyper::body::Incoming>,
    ) -> Result<hyper::Response<HyperOutgoingBody>, GuestFailure> {
        let (head, body) = request.into_parts();
        let request = http_api::Request {
            method: head.method.as_str().to_owned(),
            path_with_query: head
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned(),
            body: read_body(body, self.settings.max_body_size).await,
        };
        self.call(async |store, instance| {
            let response = api
                .load(&mut *store, &instance)?
                .call_handle(&mut *store, &request)
                .await?;
            let status = response.status;
            let response = json_response(status, response.body).map_err(|e| {
                wasmtime::Error::msg(format!("the component answered with status {status}: {e}"))
            })?;
            Ok(Called::reusable(response))
        })
        .await
    }

    /// Serves one request through `wasi:http/incoming-handler`.
    ///
    /// The answer is gathered while the call runs (the guest may write more than a stream's
    /// buffer before it returns) and must be complete within the timeout. An answer given in
    /// full before the call failed stands, but the instance is not kept.
    async fn handle_with_wasi_http(
        &self,
        proxy: &ProxyIndices,
        request: hyper::Request<hyper::body::Incoming>,
    ) -> Result<hyper::Response<HyperOutgoingBody>, GuestFailure> {
        let timeout = self.settings.timeout;
        self.call(async |store, instance| {
            let (sender, receiver) = tokio::sync::oneshot::channel();
            let request = store
                .data_mut()
                .http()
                .new_incoming_request(Scheme::Http, request)?;
            let response_out = store.data_mut().http().new_response_outparam(sender)?;
            let answer = collect_answer(receiver);
            tokio::pin!(answer);
            let mut answered = None;
            let called = {
                let proxy = proxy.load(&mut *store, &instance)?;
                let call = proxy.wasi_http_incoming_handler().call_handle(
                    &mut *store,
                    request,
                    response_out,
                );
                tokio::pin!(call);
                loop {
                    tokio::select! {
                        called = &mut call => break called,
                        early = &mut answer, if answered.is_none() => answered = Some(early),
                    }
                }
            };
            match (called, answered) {
                (Ok(()), Some(answer)) => Ok(Called::reusable(
                    answer.map_err(wasmtime::Error::from_anyhow)?,
                )),
                (Ok(()), None) => {
                    let answer = tokio::time::timeout(timeout, answer).await.map_err(|_| {
                        wasmtime::Error::msg("the component returned without finishing its answer")
                    })?;
                    Ok(Called::reusable(
                        answer.map_err(wasmtime::Error::from_anyhow)?,
                    ))
                }
                (Err(_), Some(Ok(answer))) => Ok(Called::not_reusable(answer)),
                (Err(e), _) => Err(e),
            }
        })
        .await
    }

    /// A failed call as the client is told about it: a broken limit is named.
    fn failure(&self, memory_cap_reached: bool, e: wasmtime::Error) -> GuestFailure {
        if memory_cap_reached {
            GuestFailure(anyhow::anyhow!(
                "it exceeded its memory limit of {} bytes",
                self.settings.memory_bytes
            ))
        } else if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            GuestFailure(anyhow::anyhow!(
                "it ran past its execution deadline of {:?} (interrupt)",
                self.settings.timeout
            ))
        } else {
            GuestFailure(anyhow::Error::from(e))
        }
    }

    /// Keeps an instance that served `served` requests cleanly, unless it has served enough.
    fn keep_warm(&self, store: Store<HostState>, instance: Instance, served: u32) {
        if served >= self.settings.requests_per_instance {
            return;
        }
        let mut pool = self.warm.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < MAX_WARM_INSTANCES {
            pool.push(WarmInstance {
                store,
                instance,
                served,
            });
        }
    }

    /// Calls the typed `try-lock` export.
    pub async fn try_lock(
        &self,
        store_name: &str,
        request: LockRequest,
    ) -> Result<Result<bool, LockError>, GuestFailure> {
        let request = typed_lock::LockRequest {
            resource_id: request.resource_id,
            lock_owner: request.lock_owner,
            expiry_in_seconds: request.expiry_in_seconds,
        };
        self.call(async |store, instance| {
            let typed = self.typed.load(&mut *store, &instance)?;
            let outcome = typed.call_try_lock(store, store_name, &request).await?;
            Ok(Called::reusable(outcome.map_err(rule_error)))
        })
        .await
    }

    /// Calls the typed `unlock` export.
    pub async fn unlock(
        &self,
        store_name: &str,
        request: UnlockRequest,
    ) -> Result<Result<UnlockStatus, LockError>, GuestFailure> {
        let request = typed_lock::UnlockRequest {
            resource_id: request.resource_id,
            lock_owner: request.lock_owner,
        };
        self.call(async |store, instance| {
            let typed = self.typed.load(&mut *store, &instance)?;
            let outcome = typed.call_unlock(store, store_name, &request).await?;
            Ok(Called::reusable(
                outcome.map(rule_status).map_err(rule_error),
            ))
        })
        .await
    }
}

/// The typed export's error as the rules name it.
fn rule_error(e: typed_lock::LockError) -> LockError {
    match e {
        typed_lock::LockError::MalformedRequest(m) => LockError::MalformedRequest(m),
        typed_lock::LockError::StoreNotConfigured(m) => LockError::StoreNotConfigured(m),
        typed_lock::LockError::StoreNotFound(m) => LockError::StoreNotFound(m),
        typed_lock::LockError::TryLockFailed(m) => LockError::TryLockFailed(m),
        typed_lock::LockError::UnlockFailed(m) => LockError::UnlockFailed(m),
    }
}

/// The typed export's unlock status as the rules name it.
fn rule_status(status: typed_lock::UnlockStatus) -> UnlockStatus {
    match status {
        typed_lock::UnlockStatus::Success => UnlockStatus::Success,
        typed_lock::UnlockStatus::LockDoesNotExist => UnlockStatus::LockDoesNotExist,
        typed_lock::UnlockStatus::LockBelongsToOthers => UnlockStatus::LockBelongsToOthers,
        typed_lock::UnlockStatus::InternalError => UnlockStatus::InternalError,
    }
}

/// What a call into an instance gave, and whether the instance may serve again.
struct Called<T> {
    value: T,
    reusable: bool,
}

impl<T> Called<T> {
    fn reusable(value: T) -> Self {
        Called {
            value,
            reusable: true,
        }
    }

    fn not_reusable(value: T) -> Self {
        Called {
            value,
            reusable: false,
        }
    }
}

/// The memory cap of one instance ([`StoreLimits`]), remembering whether it was reached so
/// that the failure it causes can be named.
struct MemoryCap {
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

/// Reads a request body for `http-api`, at most `limit` bytes.
async fn read_body(body: hyper::body::Incoming, limit: u64) -> http_api::RequestBody {
    use http_body_util::LengthLimitError;
    use hyper::body::Body;
    if body.size_hint().lower() > limit {
        return http_api::RequestBody::TooLarge;
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    match Limited::new(body, limit).collect().await {
        Ok(collected) => http_api::RequestBody::Complete(collected.to_bytes().into()),
        Err(e) if e.is::<LengthLimitError>() => http_api::RequestBody::TooLarge,
        Err(e) => http_api::RequestBody::Unreadable(e.to_string()),
    }
}

/// Waits for the component's response and gathers its body (at most [`MAX_ANSWER_BYTES`]).
async fn collect_answer(
    receiver: tokio::sync::oneshot::Receiver<
        Result<
            hyper::Response<HyperOutgoingBody>,
            wasmtime_wasi_http::p2::bindings::http::types::ErrorCode,
        >,
    >,
) -> Result<hyper::Response<HyperOutgoingBody>> {
    let response = match receiver.await {
        Ok(Ok(response)) => response,
        Ok(Err(code)) => anyhow::bail!("the component answered with an error: {code:?}"),
        Err(_) => anyhow::bail!("the component set no response"),
    };
    let (head, body) = response.into_parts();
    let body = Limited::new(body, MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("the component's answer body failed: {e}"))?
        .to_bytes();
    Ok(hyper::Response::from_parts(head, full_body(body)))
}

fn new_engine(settings: &GuestSettings) -> Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(MAX_INSTANCES)
        .total_core_instances(MAX_INSTANCES)
        .total_memories(MAX_INSTANCES)
        .total_tables(MAX_INSTANCES)
        .total_stacks(MAX_INSTANCES)
        .max_memory_size(settings.memory_bytes)
        .linear_memory_keep_resident(1 << 20);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("cannot create the wasm engine")
}

/// Advances the engine's epoch every [`EPOCH_TICK`] for as long as the engine lives: one
/// thread for all deadlines.
fn spawn_epoch_ticker(engine: &Engine) {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("wasilock-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawn the epoch ticker thread");
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
            Ok(crate::backend::CasOutcome::Swapped) => Ok(CasOutcome::Swapped),
            Ok(crate::backend::CasOutcome::Conflict(live)) => Ok(CasOutcome::Conflict(live)),
            Err(message) => Err(wit_store::Error::Backend(message)),
        })
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::{Resources, StoreSpec, StoreType};
    use crate::keys::KeyPrefix;
    use std::path::Path;

    async fn runtime(store_names: &[&str]) -> GuestRuntime {
        let resources = Resources {
            stores: store_names
                .iter()
                .map(|name| StoreSpec {
                    name: name.to_string(),
                    store_type: StoreType::InMemory,
                    key_prefix: KeyPrefix::AppId,
                    metadata: Default::default(),
                    source: None,
                    ignore_errors: false,
                })
                .collect(),
            scoped_out: Vec::new(),
        };
        let stores = LockStores::open(&resources, "app", Path::new("unused"))
            .await
            .unwrap();
        let stores = Arc::new(stores);
        let settings = GuestSettings {
            timeout: Duration::from_secs(10),
            memory_bytes: 64 << 20,
            max_body_size: 1 << 20,
            requests_per_instance: 1,
            http_export: HttpExport::Auto,
        };
        GuestRuntime::new(EMBEDDED_GUEST, stores, settings).unwrap()
    }

    fn lock(resource: &str, owner: &str, expiry: i32) -> LockRequest {
        LockRequest {
            resource_id: resource.into(),
            lock_owner: owner.into(),
            expiry_in_seconds: expiry,
        }
    }

    fn unlock(resource: &str, owner: &str) -> UnlockRequest {
        UnlockRequest {
            resource_id: resource.into(),
            lock_owner: owner.into(),
        }
    }

    #[tokio::test]
    async fn typed_exports_follow_daprs_rules() {
        let rt = runtime(&["lockstore"]).await;
        assert_eq!(
            rt.try_lock("lockstore", lock("r", "a", 30)).await.unwrap(),
            Ok(true)
        );
        assert_eq!(
            rt.try_lock("lockstore", lock("r", "a", 30)).await.unwrap(),
            Ok(false)
        );
        assert_eq!(
            rt.unlock("lockstore", unlock("r", "b")).await.unwrap(),
            Ok(UnlockStatus::LockBelongsToOthers)
        );
        assert_eq!(
            rt.unlock("lockstore", unlock("r", "a")).await.unwrap(),
            Ok(UnlockStatus::Success)
        );
        assert_eq!(
            rt.unlock("lockstore", unlock("r", "a")).await.unwrap(),
            Ok(UnlockStatus::LockDoesNotExist)
        );
        assert_eq!(
            rt.try_lock("lockstore", lock("r", "a", 0)).await.unwrap(),
            Err(LockError::MalformedRequest(
                "ExpiryInSeconds is not positive in lock store lockstore".into()
            ))
        );
        assert_eq!(
            rt.unlock("other", unlock("r", "a")).await.unwrap(),
            Err(LockError::StoreNotFound(
                "lock store other not found".into()
            ))
        );
        assert_eq!(
            rt.try_lock("lockstore", lock("a||b", "a", 1))
                .await
                .unwrap(),
            Err(LockError::TryLockFailed(
                "failed to try acquiring lock: input key/keyPrefix 'a||b' can't contain '||'"
                    .into()
            ))
        );
    }

    #[tokio::test]
    async fn no_store_is_not_configured() {
        let rt = runtime(&[]).await;
        assert_eq!(
            rt.unlock("lockstore", unlock("", "")).await.unwrap(),
            Err(LockError::StoreNotConfigured(
                "lock store is not configured".into()
            ))
        );
    }

    #[tokio::test]
    async fn a_component_of_another_world_is_refused() {
        let stores = Arc::new(
            LockStores::open(&Resources::default(), "", Path::new("unused"))
                .await
                .unwrap(),
        );
        let settings = GuestSettings {
            timeout: Duration::from_secs(1),
            memory_bytes: 1 << 20,
            max_body_size: 1,
            requests_per_instance: 1,
            http_export: HttpExport::Auto,
        };
        let err = GuestRuntime::new(b"not wasm", stores, settings)
            .err()
            .unwrap();
        assert!(
            format!("{err:#}").contains("cannot compile the lock component"),
            "{err:#}"
        );
    }
}
