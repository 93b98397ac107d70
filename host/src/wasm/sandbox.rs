//! A tenant's sandbox: its lock component, its limits, its warm instances, and the one call
//! helper (`Sandbox::call`) that every entry into the component goes through (HTTP through
//! `http-api` or `wasi:http`, gRPC through the typed `lock` export; see `entries`).
//!
//! Instances of the pre-linked component ([`LinkedComponent`], compiled once and shared by
//! the tenants that run it) are kept warm and reused for up to
//! [`Limits::requests_per_instance`] requests of the same tenant, never across tenants; an
//! instance that failed is dropped. A call waits for one of [`Limits::max_concurrency`]
//! places (bounded by the timeout, else [`GuestFailure::Busy`]); it is scheduled by its
//! instance's call clock (`schedule`: it yields its thread while it computes for long, and
//! ends at its deadline, [`Limits::timeout`]); its memory is capped
//! ([`Limits::memory_bytes`]). An instance's exports are looked up once, when it is made.

use super::bindings::exports::wasilock::lock::http_api;
use super::component::LinkedComponent;
use super::component::{Exports, HttpEntry, HttpIndices};
use super::failure::{GuestFailure, trap_kind};
use super::host_state::{HostState, LiveInstance};
use super::schedule::{CallClock, SlowLane};
use super::warm::{WarmInstance, WarmPool};
use crate::stores::StoreView;
use crate::telemetry::{TenantMetrics, traces};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tracing::Instrument;
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::ProxyIndices;

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

/// One tenant's component, stores, limits and warm instances.
pub struct Sandbox {
    component: Arc<LinkedComponent>,
    stores: Arc<StoreView>,
    pub(super) limits: Limits,
    pub(super) max_body_size: u64,
    places: Semaphore,
    slow_lane: SlowLane,
    pub(super) warm: WarmInstances,
    /// The tenant's metric handles; `None` when nothing is counted.
    pub(super) metrics: Option<Arc<TenantMetrics>>,
}

/// A tenant's warm instances, typed by the export that answers HTTP (chosen once, when the
/// component was linked).
pub(super) enum WarmInstances {
    /// Instances answering HTTP through `wasilock:lock/http-api`.
    Api(WarmPool<http_api::GuestIndices>),
    /// Instances answering HTTP through `wasi:http/incoming-handler`.
    WasiHttp(WarmPool<ProxyIndices>),
}

/// What a call into an instance gave, and whether the instance may serve again.
pub(super) struct Called<T> {
    value: T,
    reusable: bool,
}

impl<T> Called<T> {
    /// `value`, from an instance that may serve again.
    pub(super) fn reusable(value: T) -> Self {
        Called {
            value,
            reusable: true,
        }
    }

    /// `value`, from an instance that must not serve again.
    pub(super) fn not_reusable(value: T) -> Self {
        Called {
            value,
            reusable: false,
        }
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
        let budget = component.warm_budget().clone();
        let warm = match component.http_entry().clone() {
            HttpEntry::Api(api) => WarmInstances::Api(WarmPool::new(api, budget)),
            HttpEntry::WasiHttp(proxy) => WarmInstances::WasiHttp(WarmPool::new(proxy, budget)),
        };
        Sandbox {
            places: Semaphore::new(limits.max_concurrency as usize),
            component,
            stores,
            limits,
            max_body_size,
            slow_lane: SlowLane::default(),
            warm,
            metrics: None,
        }
    }

    /// The sandbox counting its calls, traps, 429s, slow-lane waits and instances in
    /// `metrics` (lock outcomes and store latency are counted by its store view, when that
    /// is observed: [`crate::stores::StoreSet::observed_view`]).
    pub fn observed(mut self, metrics: Arc<TenantMetrics>) -> Self {
        self.slow_lane = SlowLane::counted(metrics.slow_lane_waits());
        match &mut self.warm {
            WarmInstances::Api(pool) => pool.counted(metrics.warm_instances()),
            WarmInstances::WasiHttp(pool) => pool.counted(metrics.warm_instances()),
        }
        self.metrics = Some(metrics);
        self
    }

    /// The tenant's metric handles, when it is observed.
    pub fn metrics(&self) -> Option<&TenantMetrics> {
        self.metrics.as_deref()
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

    /// Whether the component serves the alpha2 lock API (`wasilock:lock/lock-alpha2`).
    pub fn has_alpha2(&self) -> bool {
        self.component.has_alpha2()
    }

    /// The component's name: its file, or `built-in`.
    pub fn component_name(&self) -> &str {
        self.component.name()
    }

    /// A store for a fresh instance of this tenant, its calls timed by a clock of its own.
    fn new_store(&self) -> Store<HostState> {
        let clock = CallClock::new(self.slow_lane.clone());
        let live = (self.metrics.as_ref()).map(|m| LiveInstance::new(m.live_instances()));
        let state = HostState::new(self.stores.clone(), self.limits.memory_bytes, clock, live);
        let mut store = self.component.new_store(state);
        store.limiter(|s| &mut s.limits);
        CallClock::watch(&mut store);
        store
    }

    /// Runs `call` on an instance of this tenant's component from `pool`: the one way into a
    /// component, for every export and transport.
    ///
    /// The call first waits for a place among the tenant's `maxConcurrency`, at most the
    /// timeout. The instance is a warm one when there is one, else a fresh one. It is kept
    /// warm afterwards when `call` returned `Ok` with `reusable` true and it has served
    /// fewer than [`Limits::requests_per_instance`] requests; an instance that failed is
    /// dropped. A failure names the limit it broke.
    pub(super) async fn call<H: HttpIndices, T>(
        &self,
        pool: &WarmPool<H>,
        call: impl AsyncFnOnce(
            &mut Store<HostState>,
            &Exports<H::Export>,
        ) -> wasmtime::Result<Called<T>>,
    ) -> Result<T, GuestFailure> {
        // A free place is taken at once; only a call that must wait sets a timer.
        let _place = match self.places.try_acquire() {
            Ok(place) => place,
            Err(_) => {
                let waiting = Instant::now();
                match tokio::time::timeout(self.limits.timeout, self.places.acquire()).await {
                    Ok(Ok(place)) => place,
                    _ => {
                        if let Some(metrics) = &self.metrics {
                            metrics.too_many_requests();
                        }
                        return Err(GuestFailure::Busy {
                            max_concurrency: self.limits.max_concurrency,
                            waited: waiting.elapsed(),
                        });
                    }
                }
            }
        };
        if let Some(metrics) = &self.metrics {
            metrics.called();
        }
        let span = tracing::info_span!(
            target: traces::TARGET,
            "component call",
            app_id = self.stores.app_id(),
            component = self.component.name(),
            outcome = tracing::field::Empty,
        );
        let (mut store, warm) = match pool.take() {
            Some(WarmInstance {
                store,
                exports,
                served,
            }) => (store, Some((exports, served))),
            None => (self.new_store(), None),
        };
        // The epoch ticks while any call is in flight, so this call's deadline holds.
        let _ticking = self.component.ticking();
        CallClock::arm(&mut store, self.limits.timeout);
        let called = async {
            let (exports, served) = match warm {
                Some(warm) => warm,
                None => {
                    let exports = self
                        .component
                        .instantiate(&mut store, &pool.http, self.max_body_size)
                        .await?;
                    (exports, 0)
                }
            };
            let called = call(&mut store, &exports).await?;
            Ok::<_, wasmtime::Error>((exports, served + 1, called))
        }
        .instrument(span.clone())
        .await;
        match called {
            Ok((exports, served, Called { value, reusable })) => {
                span.record("outcome", "ok");
                if reusable && served < self.limits.requests_per_instance {
                    pool.keep(WarmInstance {
                        store,
                        exports,
                        served,
                    });
                }
                Ok(value)
            }
            Err(e) => {
                let memory_cap_reached = store.data().memory_cap_reached();
                let kind = trap_kind(memory_cap_reached, &e);
                span.record("outcome", kind.label());
                if let Some(metrics) = &self.metrics {
                    metrics.trapped(kind);
                }
                Err(GuestFailure::named(&self.limits, memory_cap_reached, e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stores::StoreSet;
    use crate::stores::tests::specs;
    use crate::wasm::engine::{WasmEngine, new_engine};
    use crate::wasm::{EMBEDDED_GUEST, HttpExport};
    use std::path::Path;
    use wasilock_rules::lease::{LockError, LockRequest, UnlockRequest, UnlockStatus};

    fn limits() -> Limits {
        Limits {
            timeout: Duration::from_secs(10),
            memory_bytes: 64 << 20,
            max_concurrency: 16,
            requests_per_instance: 1,
        }
    }

    async fn runtime(store_names: &[&str]) -> Sandbox {
        let engine = new_engine(64 << 20).unwrap();
        sandbox(&engine, store_names, limits()).await
    }

    async fn sandbox(engine: &WasmEngine, store_names: &[&str], limits: Limits) -> Sandbox {
        let set = StoreSet::open(&specs(store_names, &[]), Path::new("unused"), None)
            .await
            .unwrap();
        let component =
            LinkedComponent::new(engine, "built-in", EMBEDDED_GUEST, HttpExport::Auto).unwrap();
        Sandbox::new(
            Arc::new(component),
            Arc::new(set.view("app")),
            limits,
            1 << 20,
        )
    }

    /// `owner`'s `try-lock` of `resource` in `store` for `expiry` seconds, on `sandbox`.
    async fn try_lock(
        sandbox: &Sandbox,
        store: &str,
        resource: &str,
        owner: &str,
        expiry: i32,
    ) -> Result<bool, LockError> {
        let request = LockRequest {
            resource_id: resource.into(),
            lock_owner: owner.into(),
            expiry_in_seconds: expiry,
        };
        sandbox.try_lock(store, request).await.unwrap()
    }

    /// `owner`'s `unlock` of `resource` in `store`, on `sandbox`.
    async fn unlock(
        sandbox: &Sandbox,
        store: &str,
        resource: &str,
        owner: &str,
    ) -> Result<UnlockStatus, LockError> {
        let request = UnlockRequest {
            resource_id: resource.into(),
            lock_owner: owner.into(),
        };
        sandbox.unlock(store, request).await.unwrap()
    }

    #[tokio::test]
    async fn typed_exports_follow_daprs_rules() {
        let rt = runtime(&["lockstore"]).await;
        assert_eq!(try_lock(&rt, "lockstore", "r", "a", 30).await, Ok(true));
        assert_eq!(try_lock(&rt, "lockstore", "r", "a", 30).await, Ok(false));
        assert_eq!(
            unlock(&rt, "lockstore", "r", "b").await,
            Ok(UnlockStatus::LockBelongsToOthers)
        );
        assert_eq!(
            unlock(&rt, "lockstore", "r", "a").await,
            Ok(UnlockStatus::Success)
        );
        assert_eq!(
            unlock(&rt, "lockstore", "r", "a").await,
            Ok(UnlockStatus::LockDoesNotExist)
        );
        assert_eq!(
            try_lock(&rt, "lockstore", "r", "a", 0).await,
            Err(LockError::MalformedRequest(
                "ExpiryInSeconds is not positive in lock store lockstore".into()
            ))
        );
        assert_eq!(
            unlock(&rt, "other", "r", "a").await,
            Err(LockError::StoreNotFound(
                "lock store other not found".into()
            ))
        );
        assert_eq!(
            try_lock(&rt, "lockstore", "a||b", "a", 1).await,
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
            unlock(&rt, "lockstore", "", "").await,
            Err(LockError::StoreNotConfigured(
                "lock store is not configured".into()
            ))
        );
    }

    #[tokio::test]
    async fn each_engine_has_its_own_warm_budget_returned_when_a_sandbox_is_dropped() {
        let (first, second) = (new_engine(64 << 20).unwrap(), new_engine(64 << 20).unwrap());
        let reused = Limits {
            requests_per_instance: 10,
            ..limits()
        };
        let on_first = sandbox(&first, &["lockstore"], reused.clone()).await;
        let on_second = sandbox(&second, &["lockstore"], reused).await;
        assert_eq!(
            try_lock(&on_first, "lockstore", "r", "a", 30).await,
            Ok(true)
        );
        assert_eq!(first.warm_budget().kept(), 1);
        assert_eq!(second.warm_budget().kept(), 0);
        assert_eq!(
            try_lock(&on_second, "lockstore", "r", "a", 30).await,
            Ok(true)
        );
        assert_eq!(first.warm_budget().kept(), 1);
        assert_eq!(second.warm_budget().kept(), 1);
        drop(on_first);
        assert_eq!(first.warm_budget().kept(), 0);
        assert_eq!(second.warm_budget().kept(), 1);
    }
}
