//! Lock operations of one tenant, independent of the transport: what HTTP and gRPC both call.
//!
//! [`LockService`] is the lock logic (a tenant's [`Sandbox`], or the same rules natively for
//! the benchmark baseline); [`Tenant`] adds what a sidecar knows of its app (its id). The
//! vocabulary is the component's own pure rules ([`wasilock_rules::lease`]): requests,
//! unlock statuses and daprd's errors. A component's failure becomes daprd's error here, in
//! one place ([`Tenant::refusal`]); each transport renders a [`Refusal`] its own way.

use crate::answer::HyperOutgoingBody;
use crate::stores::StoreView;
use crate::telemetry::TenantMetrics;
use crate::waiting::Waiters;
use crate::wasm::{GuestFailure, Sandbox};
use hyper::body::Incoming;
use hyper::{Request, Response};
use std::sync::Arc;
use std::time::Duration;
pub use wasilock_rules::alpha2::{
    Acquired, Alpha2Error, Alpha2Outcome, Alpha2Request, Grant, LockState,
};
pub use wasilock_rules::lease::{LockError, LockRequest, UnlockRequest, UnlockStatus};

mod alpha2;
pub use alpha2::HoldEvent;

/// The Dapr runtime version whose lock API this host reproduces.
pub const DAPR_RUNTIME_VERSION: &str = "1.18.3";

/// What answers lock requests: the lock component, or, for benchmarks, the same rules
/// natively.
pub trait LockService: Send + Sync + 'static {
    /// Answers one HTTP request routed to the lock logic.
    fn handle_http(
        &self,
        request: Request<Incoming>,
    ) -> impl Future<Output = Result<Response<HyperOutgoingBody>, GuestFailure>> + Send;

    /// Tries to acquire a lock (`TryLockAlpha1`).
    fn try_lock(
        &self,
        store: &str,
        request: LockRequest,
    ) -> impl Future<Output = Result<Result<bool, LockError>, GuestFailure>> + Send;

    /// Releases a lock (`UnlockAlpha1`).
    fn unlock(
        &self,
        store: &str,
        request: UnlockRequest,
    ) -> impl Future<Output = Result<Result<UnlockStatus, LockError>, GuestFailure>> + Send;

    /// The lock stores this tenant sees.
    fn stores(&self) -> &StoreView;

    /// The tenant's metric handles, when it is observed.
    fn metrics(&self) -> Option<&TenantMetrics> {
        None
    }

    /// Runs one alpha2 request (`lock-alpha2`); lock logic without it answers
    /// `ERR_NOT_SUPPORTED`.
    fn alpha2(
        &self,
        store: &str,
        request: &Alpha2Request,
    ) -> impl Future<Output = Result<Result<Alpha2Outcome, Alpha2Error>, GuestFailure>> + Send {
        let _ = (store, request);
        async {
            Ok(Err(Alpha2Error::NotSupported(
                "this lock service does not serve the alpha2 lock API".into(),
            )))
        }
    }
}

impl LockService for Sandbox {
    fn handle_http(
        &self,
        request: Request<Incoming>,
    ) -> impl Future<Output = Result<Response<HyperOutgoingBody>, GuestFailure>> + Send {
        Sandbox::handle_http(self, request)
    }

    fn try_lock(
        &self,
        store: &str,
        request: LockRequest,
    ) -> impl Future<Output = Result<Result<bool, LockError>, GuestFailure>> + Send {
        Sandbox::try_lock(self, store, request)
    }

    fn unlock(
        &self,
        store: &str,
        request: UnlockRequest,
    ) -> impl Future<Output = Result<Result<UnlockStatus, LockError>, GuestFailure>> + Send {
        Sandbox::unlock(self, store, request)
    }

    fn stores(&self) -> &StoreView {
        Sandbox::stores(self)
    }

    fn metrics(&self) -> Option<&TenantMetrics> {
        Sandbox::metrics(self)
    }

    fn alpha2(
        &self,
        store: &str,
        request: &Alpha2Request,
    ) -> impl Future<Output = Result<Result<Alpha2Outcome, Alpha2Error>, GuestFailure>> + Send {
        Sandbox::alpha2(self, store, request)
    }
}

/// One tenant, served as a Dapr sidecar serves its app: its app id and its lock logic.
pub struct Tenant<S = Sandbox> {
    /// The app id.
    pub app_id: String,
    /// The lock logic.
    pub service: S,
    /// What the alpha2 API allows this tenant, and its waiting requests.
    pub alpha2: Alpha2Policy,
}

/// What the alpha2 lock API allows a tenant, and the requests it holds waiting.
pub struct Alpha2Policy {
    /// Whether it may release a lock it does not hold (`allowForceUnlock`).
    pub allow_force_unlock: bool,
    /// The longest an acquire may wait (`--max-lock-wait`).
    pub max_lock_wait: Duration,
    /// Its waiting acquires, FIFO per resource.
    pub waiters: Arc<Waiters>,
}

/// The default bound of a waiting acquire (`--max-lock-wait`).
pub const DEFAULT_MAX_LOCK_WAIT: Duration = Duration::from_secs(300);

impl Default for Alpha2Policy {
    fn default() -> Self {
        Alpha2Policy {
            allow_force_unlock: false,
            max_lock_wait: DEFAULT_MAX_LOCK_WAIT,
            waiters: Arc::default(),
        }
    }
}

/// Why a lock request got no lock outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Daprd's error for the request (a rule, a store failure, or the component's).
    Lock(LockError),
    /// The tenant's `maxConcurrency` stayed reached for the whole wait.
    Busy(String),
}

impl<S: LockService> Tenant<S> {
    /// Tries to acquire a lock; daprd's error on refusal or failure.
    pub async fn try_lock(&self, store: &str, request: LockRequest) -> Result<bool, Refusal> {
        let called = self.service.try_lock(store, request).await;
        self.answer(Operation::TryLock, called)
    }

    /// Releases a lock; daprd's error on refusal or failure.
    pub async fn unlock(
        &self,
        store: &str,
        request: UnlockRequest,
    ) -> Result<UnlockStatus, Refusal> {
        let called = self.service.unlock(store, request).await;
        self.answer(Operation::Unlock, called)
    }

    /// The answer of `operation` for what the call into the component gave.
    fn answer<T>(
        &self,
        operation: Operation,
        called: Result<Result<T, LockError>, GuestFailure>,
    ) -> Result<T, Refusal> {
        match called {
            Ok(outcome) => outcome.map_err(Refusal::Lock),
            Err(failure) => Err(self.refusal(operation, &failure)),
        }
    }

    /// What `GET /v1.0/metadata` and `GetMetadata` describe.
    pub fn metadata(&self) -> Metadata {
        Metadata {
            app_id: self.app_id.clone(),
            components: self
                .service
                .stores()
                .iter()
                .map(|store| RegisteredComponent {
                    name: store.name.clone(),
                    component_type: store.type_name(),
                })
                .collect(),
        }
    }

    /// The answer for a call into the component that failed: `Busy` as such, anything else
    /// as daprd's `ERR_TRY_LOCK` / `ERR_UNLOCK` naming the cause in one line. Logged here.
    pub fn refusal(&self, operation: Operation, failure: &GuestFailure) -> Refusal {
        let error = match failure {
            GuestFailure::Busy { .. } => {
                tracing::debug!(app_id = %self.app_id, ?operation, "the lock component is busy: {failure}");
                return Refusal::Busy(format!(
                    "too many requests for app {:?}: {failure}",
                    self.app_id
                ));
            }
            GuestFailure::Failed(error) => error,
        };
        let root = error.root_cause().to_string();
        let summary = root.lines().next().unwrap_or_default();
        tracing::warn!(app_id = %self.app_id, ?operation, "the lock component failed: {summary}");
        tracing::debug!(app_id = %self.app_id, ?operation, "the lock component failed: {failure}");
        Refusal::Lock(match operation {
            Operation::TryLock => LockError::TryLockFailed(format!(
                "{}the lock component failed: {summary}",
                wasilock_rules::lease::TRY_LOCK_FAILED_PREFIX
            )),
            Operation::Unlock => LockError::UnlockFailed(format!(
                "{}the lock component failed: {summary}",
                wasilock_rules::lease::UNLOCK_FAILED_PREFIX
            )),
        })
    }
}

/// The sidecar as `GetMetadata` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The app id.
    pub app_id: String,
    /// The lock stores the app sees.
    pub components: Vec<RegisteredComponent>,
}

impl Metadata {
    /// Daprd's `extended` metadata: the Dapr version served, and this host's own.
    pub fn extended(&self) -> [(&'static str, &'static str); 2] {
        [
            ("daprRuntimeVersion", DAPR_RUNTIME_VERSION),
            ("wasilockVersion", env!("CARGO_PKG_VERSION")),
        ]
    }
}

/// One component as `GetMetadata` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredComponent {
    /// Its name (the `{store}` of the API).
    pub name: String,
    /// Its type, such as `lock.redis`.
    pub component_type: &'static str,
}

impl RegisteredComponent {
    /// Its version: every lock store type here is `v1`.
    pub const VERSION: &'static str = "v1";
}

/// The two lock operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `TryLockAlpha1`, `POST /v1.0-alpha1/lock/{store}`.
    TryLock,
    /// `UnlockAlpha1`, `POST /v1.0-alpha1/unlock/{store}`.
    Unlock,
}
