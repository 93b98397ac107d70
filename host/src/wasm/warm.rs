//! Warm instances: those a tenant keeps for its next calls ([`WarmPool`]), within a budget
//! that all sandboxes of one engine share ([`WarmBudget`]).

use super::component::{Exports, HttpIndices};
use super::host_state::HostState;
use prometheus::IntGauge;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use wasmtime::Store;

/// Warm instances kept for reuse by one tenant, at most.
const MAX_WARM_PER_TENANT: usize = 256;

/// How many warm instances the sandboxes of one engine keep together, and how many they may.
pub(crate) struct WarmBudget {
    kept: AtomicUsize,
    max: usize,
}

impl WarmBudget {
    /// A budget of `max` warm instances, none kept.
    pub(super) fn new(max: usize) -> Self {
        WarmBudget {
            kept: AtomicUsize::new(0),
            max,
        }
    }

    /// Counts one more warm instance, unless `max` are kept already.
    fn take_one(&self) -> bool {
        self.kept
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |kept| {
                (kept < self.max).then_some(kept + 1)
            })
            .is_ok()
    }

    /// Counts `n` warm instances fewer.
    fn give_back(&self, n: usize) {
        self.kept.fetch_sub(n, Ordering::Relaxed);
    }

    /// Warm instances kept now.
    #[cfg(test)]
    pub(super) fn kept(&self) -> usize {
        self.kept.load(Ordering::Relaxed)
    }
}

/// An instance that served a request without failing, kept for its tenant's next one.
pub(super) struct WarmInstance<E> {
    /// The instance's store.
    pub(super) store: Store<HostState>,
    /// Its exports, looked up once.
    pub(super) exports: Exports<E>,
    /// Requests it served.
    pub(super) served: u32,
}

/// One tenant's warm instances of a component whose HTTP export `http` loads; the engine's
/// budget counts them until they are taken or the pool is dropped.
pub(super) struct WarmPool<H: HttpIndices> {
    /// Where the HTTP export is in an instance.
    pub(super) http: H,
    instances: Mutex<Vec<WarmInstance<H::Export>>>,
    budget: Arc<WarmBudget>,
    /// Counts the instances kept, when the tenant is observed.
    gauge: Option<IntGauge>,
}

impl<H: HttpIndices> WarmPool<H> {
    /// An empty pool counted in `budget`.
    pub(super) fn new(http: H, budget: Arc<WarmBudget>) -> Self {
        WarmPool {
            http,
            instances: Mutex::default(),
            budget,
            gauge: None,
        }
    }

    /// Counts the instances kept in `gauge`.
    pub(super) fn counted(&mut self, gauge: IntGauge) {
        self.gauge = Some(gauge);
    }

    /// A warm instance, when there is one.
    pub(super) fn take(&self) -> Option<WarmInstance<H::Export>> {
        let warm = self
            .instances
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop();
        if warm.is_some() {
            self.budget.give_back(1);
            if let Some(gauge) = &self.gauge {
                gauge.dec();
            }
        }
        warm
    }

    /// Keeps `instance` unless this pool or the engine's budget is full.
    pub(super) fn keep(&self, instance: WarmInstance<H::Export>) {
        let mut instances = self.instances.lock().unwrap_or_else(|p| p.into_inner());
        let room = self.budget.take_one();
        if room && instances.len() < MAX_WARM_PER_TENANT {
            instances.push(instance);
            if let Some(gauge) = &self.gauge {
                gauge.inc();
            }
        } else if room {
            self.budget.give_back(1);
        }
    }
}

impl<H: HttpIndices> Drop for WarmPool<H> {
    fn drop(&mut self) {
        let kept = self
            .instances
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .len();
        self.budget.give_back(kept);
        if let Some(gauge) = &self.gauge {
            gauge.sub(i64::try_from(kept).unwrap_or(i64::MAX));
        }
    }
}
