//! A tenant's sandbox: its lock component, its limits, its warm instances, and the one call
//! helper (`Sandbox::call`) that every entry into the component goes through (HTTP through
//! `http-api` or `wasi:http`, gRPC through the typed `lock` export).
//!
//! Instances of the pre-linked component ([`LinkedComponent`], compiled once and shared by
//! the tenants that run it) are kept warm and reused for up to
//! [`Limits::requests_per_instance`] requests of the same tenant, never across tenants; an
//! instance that failed is dropped. A call waits for one of [`Limits::max_concurrency`]
//! places (bounded by the timeout, else [`GuestFailure::Busy`]); once it has computed for a
//! full epoch tick it yields its executor thread at every tick, and calls still computing
//! after that take turns in their tenant's slow lane, one tick per ten, so a looping guest
//! never holds up other tenants' requests; it ends at its deadline ([`Limits::timeout`]);
//! its memory is capped ([`Limits::memory_bytes`]). An instance's exports are looked up
//! once, when it is made.

use super::bindings::exports::wasilock::lock::{http_api, lock as typed_lock, settings};
use super::engine::EPOCH_TICK;
use super::store_impl::{self, HostState};
use crate::answer::{HyperOutgoingBody, full_body, json_response};
use crate::stores::StoreView;
use anyhow::{Context, Result};
use http_body_util::{BodyExt, Limited};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use wasilock_rules::lease::{LockError, LockRequest, UnlockRequest, UnlockStatus};
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyIndices};

/// Warm instances kept for reuse by one tenant, at most.
const MAX_WARM_PER_TENANT: usize = 256;
/// Warm instances kept in the whole process, at most: the rest of the instance pool stays
/// for requests in flight.
const MAX_WARM_TOTAL: usize = super::engine::MAX_INSTANCES as usize / 2;
/// How long a call that computes past its first epoch tick holds its tenant's slow lane
/// before its next tick: such calls of one tenant run one tick per this pause, together.
const SLOW_LANE_PAUSE: Duration = Duration::from_millis(9 * EPOCH_TICK.as_millis() as u64);
/// The largest answer body a component may give.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Warm instances kept across every sandbox of the process.
static WARM_TOTAL: AtomicUsize = AtomicUsize::new(0);

/// A request body [`Sandbox::handle_http`] reads: hyper's `Incoming`, or any body of bytes
/// whose error converts as `wasi:http` needs (`String` and `Full<Bytes>` never fail).
pub trait HttpRequestBody:
    hyper::body::Body<Data = bytes::Bytes, Error: Into<wasmtime_wasi_http::Error> + Into<BoxError>>
    + Send
    + 'static
{
}

impl<B> HttpRequestBody for B where
    B: hyper::body::Body<
            Data = bytes::Bytes,
            Error: Into<wasmtime_wasi_http::Error> + Into<BoxError>,
        > + Send
        + 'static
{
}

/// The error type bodies are read with.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which export of the component answers HTTP requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpExport {
    /// `wasilock:lock/http-api` when the component has it, else `wasi:http/incoming-handler`.
    #[default]
    Auto,
    /// Always `wasi:http/incoming-handler`, as any WASI HTTP runtime calls it.
    WasiHttp,
}

/// The limits of one tenant's sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time a call may take before the guest is stopped.
    pub timeout: Duration,
    /// Linear memory a guest instance may use, in bytes.
    pub memory_bytes: usize,
    /// Calls inside the component at once; more wait, at most `timeout`.
    pub max_concurrency: u32,
    /// Requests one instance may serve before it is dropped; 1 gives every request a fresh
    /// instance (no state survives a request).
    pub requests_per_instance: u32,
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
}

/// The export through which HTTP requests enter the component.
enum HttpEntry {
    /// `wasilock:lock/http-api`: one call per request.
    Api(http_api::GuestIndices),
    /// `wasi:http/incoming-handler`: resources and streams.
    WasiHttp(ProxyIndices),
}

impl LinkedComponent {
    /// Compiles `component` (a `lock-service` or `lock-api` component's bytes, called `name`
    /// for people) and links it with the host's imports; `http_export` chooses the export
    /// that answers HTTP.
    pub fn new(
        engine: &Engine,
        name: &str,
        component: &[u8],
        http_export: HttpExport,
    ) -> Result<Self> {
        let component = Component::new(engine, component)
            .map_err(anyhow::Error::from)
            .context("cannot compile the lock component")?;
        Self::from_component(engine, name, &component, http_export)
    }

    /// Links a component already compiled for `engine` (one loaded from a cache of compiled
    /// components, say), as [`LinkedComponent::new`] does after compiling.
    pub fn from_component(
        engine: &Engine,
        name: &str,
        component: &Component,
        http_export: HttpExport,
    ) -> Result<Self> {
        let mut linker = Linker::<HostState>::new(engine);
        store_impl::add_to_linker(&mut linker)?;
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
        Ok(LinkedComponent {
            name: name.to_string(),
            pre,
            http,
            typed,
            settings,
        })
    }

    /// The name of the export that answers HTTP requests.
    pub fn http_export_name(&self) -> &'static str {
        match self.http {
            HttpEntry::Api(_) => "wasilock:lock/http-api",
            HttpEntry::WasiHttp(_) => "wasi:http/incoming-handler",
        }
    }
}

/// One tenant's component, stores, limits and warm instances.
pub struct Sandbox {
    component: Arc<LinkedComponent>,
    stores: Arc<StoreView>,
    limits: Limits,
    max_body_size: u64,
    warm: Mutex<Vec<WarmInstance>>,
    places: Semaphore,
    slow_lane: Arc<tokio::sync::Mutex<()>>,
}

/// An instance that served a request without failing, kept for this tenant's next one.
struct WarmInstance {
    store: Store<HostState>,
    exports: Exports,
    served: u32,
}

/// An instance's exports, looked up and type-checked once, when it is made: a call then
/// goes straight to its function.
struct Exports {
    http: HttpExports,
    typed: typed_lock::Guest,
}

/// The export of an instance through which HTTP requests enter.
enum HttpExports {
    /// `wasilock:lock/http-api`.
    Api(http_api::Guest),
    /// `wasi:http/incoming-handler`.
    WasiHttp(Proxy),
}

/// Why a call into a component gave no answer.
#[derive(Debug)]
pub enum GuestFailure {
    /// Every place of the tenant's `maxConcurrency` stayed taken for the whole timeout.
    Busy {
        /// The tenant's `maxConcurrency`.
        max_concurrency: u32,
        /// How long the call waited.
        waited: Duration,
    },
    /// The guest trapped, ran out of time or memory, or broke the protocol.
    Failed(anyhow::Error),
}

impl std::fmt::Display for GuestFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GuestFailure::Busy {
                max_concurrency,
                waited,
            } => write!(
                f,
                "{max_concurrency} requests (maxConcurrency) were inside the lock component for {waited:?}"
            ),
            GuestFailure::Failed(e) => write!(f, "{e:#}"),
        }
    }
}

impl std::error::Error for GuestFailure {}

impl From<wasmtime::Error> for GuestFailure {
    fn from(e: wasmtime::Error) -> Self {
        GuestFailure::Failed(e.into())
    }
}

impl Sandbox {
    /// A sandbox running `component` for a tenant that sees `stores`, within `limits`;
    /// `max_body_size` is the request body bound (`--max-body-size`).
    pub fn new(
        component: Arc<LinkedComponent>,
        stores: Arc<StoreView>,
        limits: Limits,
        max_body_size: u64,
    ) -> Self {
        Sandbox {
            places: Semaphore::new(limits.max_concurrency as usize),
            component,
            stores,
            limits,
            max_body_size,
            warm: Mutex::default(),
            slow_lane: Arc::default(),
        }
    }

    /// The tenant's lock stores.
    pub fn stores(&self) -> &StoreView {
        &self.stores
    }

    /// The tenant's limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The name of the export that answers HTTP requests.
    pub fn http_export_name(&self) -> &'static str {
        self.component.http_export_name()
    }

    /// The component's name: its file, or `built-in`.
    pub fn component_name(&self) -> &str {
        &self.component.name
    }

    fn new_store(&self) -> Store<HostState> {
        let state = HostState::new(self.stores.clone(), self.limits.memory_bytes);
        let mut store = Store::new(self.component.pre.engine(), state);
        store.limiter(|s| &mut s.limits);
        // At every tick of execution: past the deadline the call traps. Counting ticks
        // without a store call: at the first the call goes on (it may have begun just
        // before it), at the second it yields its thread, and from the third on it also
        // waits for its tenant's slow lane and holds it for `SLOW_LANE_PAUSE`. A lock call
        // computes for microseconds, so only a guest that computes for long gets that far,
        // and all such calls of one tenant together run one tick per `SLOW_LANE_PAUSE`,
        // however many there are. The wait ends at the deadline, so the call ends at most a
        // tick late.
        let lane = self.slow_lane.clone();
        store.epoch_deadline_callback(move |mut store| {
            let state = store.data_mut();
            if Instant::now() >= state.deadline {
                return Ok(UpdateDeadline::Interrupt);
            }
            state.ticks += 1;
            match state.ticks {
                // The first tick may come right after the call began: a lock call computes
                // for microseconds, and yielding it would send it behind every other
                // request on this thread, into the latency tail, for nothing.
                1 => return Ok(UpdateDeadline::Continue(1)),
                // A full tick of computing: let other requests run.
                2 => {
                    return Ok(UpdateDeadline::YieldCustom(
                        1,
                        Box::pin(tokio::task::yield_now()),
                    ));
                }
                _ => {}
            }
            let (lane, deadline) = (lane.clone(), state.deadline);
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(async move {
                    let turn = async {
                        let _turn = lane.lock().await;
                        tokio::time::sleep(SLOW_LANE_PAUSE).await;
                    };
                    let _ = tokio::time::timeout_at(deadline.into(), turn).await;
                }),
            ))
        });
        store
    }

    /// Gives the next call on `store` the full timeout.
    fn arm_deadline(&self, store: &mut Store<HostState>) {
        store.data_mut().deadline = Instant::now() + self.limits.timeout;
        store.data_mut().ticks = 0;
        store.set_epoch_deadline(1);
    }

    /// Runs `call` on an instance of this tenant's component: the one way into a component,
    /// for every export and transport.
    ///
    /// The call first waits for a place among the tenant's `maxConcurrency`, at most the
    /// timeout. The instance is a warm one when there is one, else a fresh one. It is kept
    /// warm afterwards when `call` returned `Ok` with `reusable` true and it has served
    /// fewer than [`Limits::requests_per_instance`] requests; an instance that failed is
    /// dropped. A failure names the limit it broke.
    async fn call<T>(
        &self,
        call: impl AsyncFnOnce(&mut Store<HostState>, &Exports) -> wasmtime::Result<Called<T>>,
    ) -> Result<T, GuestFailure> {
        // A free place is taken at once; only a call that must wait sets a timer.
        let _place = match self.places.try_acquire() {
            Ok(place) => place,
            Err(_) => {
                let waiting = Instant::now();
                match tokio::time::timeout(self.limits.timeout, self.places.acquire()).await {
                    Ok(Ok(place)) => place,
                    _ => {
                        return Err(GuestFailure::Busy {
                            max_concurrency: self.limits.max_concurrency,
                            waited: waiting.elapsed(),
                        });
                    }
                }
            }
        };
        let warm = self.warm.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let (mut store, warm) = match warm {
            Some(WarmInstance {
                store,
                exports,
                served,
            }) => {
                WARM_TOTAL.fetch_sub(1, Ordering::Relaxed);
                (store, Some((exports, served)))
            }
            None => (self.new_store(), None),
        };
        self.arm_deadline(&mut store);
        let called = async {
            let (exports, served) = match warm {
                Some(warm) => warm,
                None => (self.instantiate(&mut store).await?, 0),
            };
            let called = call(&mut store, &exports).await?;
            Ok::<_, wasmtime::Error>((exports, served + 1, called))
        }
        .await;
        match called {
            Ok((exports, served, Called { value, reusable })) => {
                if reusable {
                    self.keep_warm(store, exports, served);
                }
                Ok(value)
            }
            Err(e) => Err(self.failure(store.data().memory_cap_reached(), e)),
        }
    }

    /// A fresh instance, configured through `wasilock:lock/settings` when it exports it;
    /// returns its exports.
    async fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Exports> {
        let instance = self.component.pre.instantiate_async(&mut *store).await?;
        if let Some(settings) = &self.component.settings {
            let config = settings::Config {
                max_body_size: Some(self.max_body_size),
            };
            settings
                .load(&mut *store, &instance)?
                .call_configure(&mut *store, config)
                .await?;
        }
        let http = match &self.component.http {
            HttpEntry::Api(api) => HttpExports::Api(api.load(&mut *store, &instance)?),
            HttpEntry::WasiHttp(proxy) => {
                HttpExports::WasiHttp(proxy.load(&mut *store, &instance)?)
            }
        };
        let typed = self.component.typed.load(&mut *store, &instance)?;
        Ok(Exports { http, typed })
    }

    /// Serves one HTTP request through the component: a request as a hyper server receives
    /// it, or one made in memory (with a `String` or `Full<Bytes>` body).
    ///
    /// The call runs in the caller's task and the whole answer is gathered (it is small), so
    /// the server writes it in one go.
    pub async fn handle_http<B: HttpRequestBody>(
        &self,
        request: hyper::Request<B>,
    ) -> Result<hyper::Response<HyperOutgoingBody>, GuestFailure> {
        match &self.component.http {
            HttpEntry::Api(_) => self.handle_with_api(request).await,
            HttpEntry::WasiHttp(_) => self.handle_with_wasi_http(request).await,
        }
    }

    /// Serves one request with a single call of `wasilock:lock/http-api#handle`.
    async fn handle_with_api<B: HttpRequestBody>(
        &self,
        request: hyper::Request<B>,
    ) -> Result<hyper::Response<HyperOutgoingBody>, GuestFailure> {
        let (head, body) = request.into_parts();
        let request = http_api::Request {
            method: head.method.as_str().to_owned(),
            path_with_query: head
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned(),
            body: read_body(body, self.max_body_size).await,
        };
        self.call(async |store, exports| {
            let HttpExports::Api(api) = &exports.http else {
                return Err(wasmtime::Error::msg("the instance lacks wasilock:lock/http-api"));
            };
            let response = api.call_handle(&mut *store, &request).await?;
            let status = response.status;
            if response.body.len() > MAX_ANSWER_BYTES {
                return Err(wasmtime::Error::msg(format!(
                    "it answered with {} bytes, more than the {MAX_ANSWER_BYTES} a lock answer may have",
                    response.body.len()
                )));
            }
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
    async fn handle_with_wasi_http<B: HttpRequestBody>(
        &self,
        request: hyper::Request<B>,
    ) -> Result<hyper::Response<HyperOutgoingBody>, GuestFailure> {
        let timeout = self.limits.timeout;
        self.call(async |store, exports| {
            let HttpExports::WasiHttp(proxy) = &exports.http else {
                return Err(wasmtime::Error::msg(
                    "the instance lacks wasi:http/incoming-handler",
                ));
            };
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
            GuestFailure::Failed(anyhow::anyhow!(
                "it exceeded its memory limit of {} bytes",
                self.limits.memory_bytes
            ))
        } else if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            GuestFailure::Failed(anyhow::anyhow!(
                "it ran past its execution deadline of {:?} (interrupt)",
                self.limits.timeout
            ))
        } else {
            GuestFailure::Failed(anyhow::Error::from(e))
        }
    }

    /// Keeps an instance that served `served` requests cleanly, unless it has served enough
    /// or the tenant's or the process's warm pool is full.
    fn keep_warm(&self, store: Store<HostState>, exports: Exports, served: u32) {
        if served >= self.limits.requests_per_instance {
            return;
        }
        let mut pool = self.warm.lock().unwrap_or_else(|p| p.into_inner());
        let room = WARM_TOTAL
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |total| {
                (total < MAX_WARM_TOTAL).then_some(total + 1)
            })
            .is_ok();
        if room && pool.len() < MAX_WARM_PER_TENANT {
            pool.push(WarmInstance {
                store,
                exports,
                served,
            });
        } else if room {
            WARM_TOTAL.fetch_sub(1, Ordering::Relaxed);
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
        self.call(async |store, exports| {
            let outcome = exports
                .typed
                .call_try_lock(store, store_name, &request)
                .await?;
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
        self.call(async |store, exports| {
            let outcome = exports
                .typed
                .call_unlock(store, store_name, &request)
                .await?;
            Ok(Called::reusable(
                outcome.map(rule_status).map_err(rule_error),
            ))
        })
        .await
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let warm = self.warm.get_mut().unwrap_or_else(|p| p.into_inner()).len();
        WARM_TOTAL.fetch_sub(warm, Ordering::Relaxed);
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

/// Reads a request body for `http-api`, at most `limit` bytes.
async fn read_body<B: HttpRequestBody>(body: B, limit: u64) -> http_api::RequestBody {
    use http_body_util::LengthLimitError;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stores::StoreSet;
    use crate::stores::tests::specs;
    use crate::wasm::EMBEDDED_GUEST;
    use crate::wasm::engine::new_engine;
    use std::path::Path;

    fn limits() -> Limits {
        Limits {
            timeout: Duration::from_secs(10),
            memory_bytes: 64 << 20,
            max_concurrency: 16,
            requests_per_instance: 1,
        }
    }

    async fn runtime(store_names: &[&str]) -> Sandbox {
        let set = StoreSet::open(&specs(store_names, &[]), Path::new("unused"), None)
            .await
            .unwrap();
        let engine = new_engine(64 << 20).unwrap();
        let component =
            LinkedComponent::new(&engine, "built-in", EMBEDDED_GUEST, HttpExport::Auto).unwrap();
        Sandbox::new(
            Arc::new(component),
            Arc::new(set.view("app")),
            limits(),
            1 << 20,
        )
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
