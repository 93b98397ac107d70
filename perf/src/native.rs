//! The native baseline: the component's own rules (`wasilock_rules::http`) compiled natively,
//! behind the host's HTTP server, over the host's in-memory store. No wasm.

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use std::sync::Arc;
use std::time::Duration;
use wasilock::GuestFailure;
use wasilock::answer::{HyperOutgoingBody, json_response};
use wasilock::service::{LockService, Tenant};
use wasilock::stores::backend::InMemoryKind;
use wasilock::stores::{Bucket, OpenError, StoreSet, StoreView};
use wasilock::stores::{StoreSettings, StoreSpec};
use wasilock::tenants::{Registry, Tenants};
use wasilock_rules::http::{self, Route};
use wasilock_rules::lease::{
    self, CasOutcome, LockBucket, LockError, LockRequest, LockStore, StoreError, Swap,
    UnlockRequest, UnlockStatus,
};

/// The largest request body read, as the host's default.
const MAX_BODY: usize = 4 << 20;

/// The lock rules called directly, over `lockstore` (`lock.in-memory`).
pub struct NativeService {
    stores: StoreView,
}

impl NativeService {
    /// One in-memory store named `lockstore`.
    pub async fn new() -> anyhow::Result<Self> {
        let spec = StoreSpec::new("lockstore", StoreSettings::new(InMemoryKind, ()));
        let set = StoreSet::open(&[spec], std::path::Path::new("."), None).await?;
        Ok(NativeService {
            stores: set.view(""),
        })
    }

    /// The service as the one tenant of the host's servers.
    pub fn into_tenants(self) -> Arc<Registry<NativeService>> {
        Arc::new(Registry::new(Tenants::open(Tenant {
            app_id: String::new(),
            service: self,
            alpha2: Default::default(),
        })))
    }
}

impl LockService for NativeService {
    async fn handle_http(
        &self,
        request: Request<Incoming>,
    ) -> Result<Response<HyperOutgoingBody>, GuestFailure> {
        let method = if request.method() == Method::POST {
            "POST"
        } else {
            "OTHER"
        };
        let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let route = http::route(method, path);
        let store = NativeStore(&self.stores);
        let answer = match route {
            Route::TryLock(_) | Route::Unlock(_) => {
                match Limited::new(request.into_body(), MAX_BODY).collect().await {
                    Ok(body) => http::respond(&store, &route, &body.to_bytes()),
                    Err(e) => http::body_unreadable(&e.to_string()),
                }
            }
            _ => http::respond(&store, &route, b""),
        };
        Ok(json_response(answer.status, answer.body).expect("a valid status"))
    }

    async fn try_lock(
        &self,
        store: &str,
        request: LockRequest,
    ) -> Result<Result<bool, LockError>, GuestFailure> {
        Ok(lease::try_lock(&NativeStore(&self.stores), store, &request))
    }

    async fn unlock(
        &self,
        store: &str,
        request: UnlockRequest,
    ) -> Result<Result<UnlockStatus, LockError>, GuestFailure> {
        Ok(lease::unlock(&NativeStore(&self.stores), store, &request))
    }

    fn stores(&self) -> &StoreView {
        &self.stores
    }
}

/// The host's stores as the guest rules see them.
struct NativeStore<'a>(&'a StoreView);

/// An opened store; its async calls complete at once for the in-memory backend.
struct NativeBucket(Bucket);

impl LockStore for NativeStore<'_> {
    type Bucket = NativeBucket;

    fn open(&self, name: &str) -> Result<NativeBucket, StoreError> {
        self.0.bucket(name).map(NativeBucket).map_err(|e| match e {
            OpenError::NotConfigured => StoreError::NotConfigured,
            OpenError::NoSuchStore => StoreError::NoSuchStore,
            OpenError::AccessDenied => StoreError::AccessDenied,
        })
    }
}

impl LockBucket for NativeBucket {
    fn compare_and_swap(&self, swap: Swap<'_>) -> Result<CasOutcome, StoreError> {
        let outcome = futures_executor::block_on(self.0.compare_and_swap(wasilock::Swap {
            key: swap.key,
            expected: swap.expected,
            new: swap.new,
            ttl: swap.ttl_ms.map(Duration::from_millis),
        }));
        match outcome {
            Ok(wasilock::stores::backend::CasOutcome::Swapped(_)) => Ok(CasOutcome::Swapped),
            Ok(wasilock::stores::backend::CasOutcome::Conflict(live)) => {
                Ok(CasOutcome::Conflict(live))
            }
            Err(message) => Err(StoreError::Backend(message)),
        }
    }
}
