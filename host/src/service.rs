//! Lock operations of one app, independent of the transport: what HTTP and gRPC both call.
//!
//! [`LockService`] is the lock logic (the component, or the same rules natively for the
//! benchmark baseline); [`App`] adds what a sidecar knows of its app (id, API token). The
//! vocabulary is the component's own pure rules ([`wasilock_guest::lease`]): requests,
//! unlock statuses and daprd's errors. A component's failure becomes daprd's error here, in
//! one place ([`component_failed`]); each transport renders a [`LockError`] its own way.

use crate::answer::HyperOutgoingBody;
use crate::registry::LockStores;
use crate::runtime::{GuestFailure, GuestRuntime};
use hyper::body::Incoming;
use hyper::{Request, Response};
pub use wasilock_guest::lease::{LockError, LockRequest, UnlockRequest, UnlockStatus};

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

    /// The lock stores this app sees.
    fn stores(&self) -> &LockStores;
}

impl LockService for GuestRuntime {
    fn handle_http(
        &self,
        request: Request<Incoming>,
    ) -> impl Future<Output = Result<Response<HyperOutgoingBody>, GuestFailure>> + Send {
        GuestRuntime::handle_http(self, request)
    }

    fn try_lock(
        &self,
        store: &str,
        request: LockRequest,
    ) -> impl Future<Output = Result<Result<bool, LockError>, GuestFailure>> + Send {
        GuestRuntime::try_lock(self, store, request)
    }

    fn unlock(
        &self,
        store: &str,
        request: UnlockRequest,
    ) -> impl Future<Output = Result<Result<UnlockStatus, LockError>, GuestFailure>> + Send {
        GuestRuntime::unlock(self, store, request)
    }

    fn stores(&self) -> &LockStores {
        GuestRuntime::stores(self)
    }
}

/// One app as a sidecar serves it: its id, its API token and its lock logic.
pub struct App<S = GuestRuntime> {
    /// The app id (`--app-id`).
    pub app_id: String,
    /// `DAPR_API_TOKEN`: when set, every request but health checks must carry it.
    pub api_token: Option<String>,
    /// The lock logic.
    pub service: S,
}

impl<S: LockService> App<S> {
    /// Whether a request presenting `token` (or none) may be served.
    pub fn admits(&self, token: Option<&[u8]>) -> bool {
        match &self.api_token {
            None => true,
            Some(expected) => token == Some(expected.as_bytes()),
        }
    }

    /// Tries to acquire a lock; daprd's error on refusal or failure.
    pub async fn try_lock(&self, store: &str, request: LockRequest) -> Result<bool, LockError> {
        match self.service.try_lock(store, request).await {
            Ok(outcome) => outcome,
            Err(failure) => Err(component_failed(Operation::TryLock, &failure)),
        }
    }

    /// Releases a lock; daprd's error on refusal or failure.
    pub async fn unlock(
        &self,
        store: &str,
        request: UnlockRequest,
    ) -> Result<UnlockStatus, LockError> {
        match self.service.unlock(store, request).await {
            Ok(outcome) => outcome,
            Err(failure) => Err(component_failed(Operation::Unlock, &failure)),
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
                    component_type: store.store_type.name(),
                })
                .collect(),
        }
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

/// Daprd's error for a request the component could not answer (it trapped, or broke a
/// limit): `ERR_TRY_LOCK` / `ERR_UNLOCK` naming the cause in one line. Logged here.
pub fn component_failed(operation: Operation, failure: &GuestFailure) -> LockError {
    let root = failure.0.root_cause().to_string();
    let summary = root.lines().next().unwrap_or_default();
    tracing::warn!(?operation, "the lock component failed: {summary}");
    tracing::debug!(?operation, "the lock component failed: {failure}");
    match operation {
        Operation::TryLock => LockError::TryLockFailed(format!(
            "{}the lock component failed: {summary}",
            wasilock_guest::lease::TRY_LOCK_FAILED_PREFIX
        )),
        Operation::Unlock => LockError::UnlockFailed(format!(
            "{}the lock component failed: {summary}",
            wasilock_guest::lease::UNLOCK_FAILED_PREFIX
        )),
    }
}
