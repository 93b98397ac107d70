//! The wasm32 binding: world `lock-service` over the pure rules.
//!
//! The host's `store` import is adapted to [`LockStore`]; the typed `lock` export and the two
//! HTTP exports (`wasilock:lock/http-api`, one call per request, and
//! `wasi:http/incoming-handler`, over WASI streams) all call [`wasilock_rules::lease`].

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use wasilock_rules::alpha2::{self, Alpha2Error, FencedBucket, FencedOutcome, FencedStore};
use wasilock_rules::http::{self, Response, Route};
use wasilock_rules::lease::{self, CasOutcome, LockBucket, LockError, LockStore, StoreError, Swap};

wit_bindgen::generate!({
    path: "../wit",
    world: "lock-service",
    with: {
        "wasi:http/types@0.2.12": wasip2::http::types,
        "wasi:io/streams@0.2.12": wasip2::io::streams,
        "wasi:io/error@0.2.12": wasip2::io::error,
        "wasi:io/poll@0.2.12": wasip2::io::poll,
        "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
    },
});

use exports::wasi::http::incoming_handler::Guest as IncomingHandler;
use exports::wasilock::lock::http_api::{self as wit_http_api, Guest as HttpApi, RequestBody};
use exports::wasilock::lock::lock as wit_lock;
use exports::wasilock::lock::lock_alpha2 as wit_alpha2;
use exports::wasilock::lock::settings::{self as wit_settings, Guest as Settings};
use wasilock::lock::store as wit_store;
use wasip2::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use wasip2::io::streams::StreamError;

/// The component's export implementations.
struct Component;

export!(Component);

/// The host's `store` import as a [`LockStore`].
struct HostStore;

thread_local! {
    /// The buckets this instance opened, by store name: a bucket stays valid for the
    /// instance's life, so each store is opened once, not on every request (two calls into
    /// the host saved per request). Only stores that opened are kept, so this holds at most
    /// the tenant's configured stores.
    static OPENED: RefCell<Vec<(String, HostBucket)>> = const { RefCell::new(Vec::new()) };
}

/// One of the host's buckets as a [`LockBucket`], shared by the requests of this instance.
#[derive(Clone)]
struct HostBucket(Rc<wit_store::Bucket>);

impl LockStore for HostStore {
    type Bucket = HostBucket;

    fn open(&self, name: &str) -> Result<Self::Bucket, StoreError> {
        OPENED.with_borrow_mut(|opened| {
            if let Some((_, bucket)) = opened.iter().find(|(n, _)| n == name) {
                return Ok(bucket.clone());
            }
            let bucket = HostBucket(Rc::new(wit_store::Bucket::open(name)?));
            opened.push((name.to_owned(), bucket.clone()));
            Ok(bucket)
        })
    }
}

impl LockBucket for HostBucket {
    fn compare_and_swap(&self, swap: Swap<'_>) -> Result<CasOutcome, StoreError> {
        match self
            .0
            .compare_and_swap(swap.key, swap.expected, swap.new, swap.ttl_ms)?
        {
            wit_store::CasOutcome::Swapped => Ok(CasOutcome::Swapped),
            wit_store::CasOutcome::Conflict(live) => Ok(CasOutcome::Conflict(live)),
        }
    }
}

impl FencedStore for HostStore {
    type Bucket = HostBucket;

    fn open(&self, name: &str) -> Result<Self::Bucket, StoreError> {
        LockStore::open(self, name)
    }
}

impl FencedBucket for HostBucket {
    fn compare_and_swap_fenced(&self, swap: Swap<'_>) -> Result<FencedOutcome, StoreError> {
        match self
            .0
            .compare_and_swap_fenced(swap.key, swap.expected, swap.new, swap.ttl_ms)?
        {
            wit_store::FencedOutcome::Swapped(token) => Ok(FencedOutcome::Swapped(token)),
            wit_store::FencedOutcome::Conflict(live) => Ok(FencedOutcome::Conflict(live)),
        }
    }

    fn inspect(&self, key: &str) -> Result<Option<alpha2::Entry>, StoreError> {
        Ok(self.0.inspect(key)?.map(|entry| alpha2::Entry {
            value: entry.value,
            fencing_token: entry.fencing_token,
            ttl_ms: entry.ttl_ms,
        }))
    }
}

impl From<wit_store::Error> for StoreError {
    fn from(e: wit_store::Error) -> Self {
        match e {
            wit_store::Error::NotConfigured => StoreError::NotConfigured,
            wit_store::Error::NoSuchStore => StoreError::NoSuchStore,
            wit_store::Error::AccessDenied => StoreError::AccessDenied,
            wit_store::Error::Backend(message) => StoreError::Backend(message),
        }
    }
}

impl From<LockError> for wit_lock::LockError {
    fn from(e: LockError) -> Self {
        match e {
            LockError::MalformedRequest(m) => Self::MalformedRequest(m),
            LockError::StoreNotConfigured(m) => Self::StoreNotConfigured(m),
            LockError::StoreNotFound(m) => Self::StoreNotFound(m),
            LockError::TryLockFailed(m) => Self::TryLockFailed(m),
            LockError::UnlockFailed(m) => Self::UnlockFailed(m),
        }
    }
}

impl wit_lock::Guest for Component {
    fn try_lock(
        store: String,
        request: wit_lock::LockRequest,
    ) -> Result<bool, wit_lock::LockError> {
        #[cfg(feature = "fault-injection")]
        if inject_fault(&store).is_some() {
            return Ok(true);
        }
        let request = lease::LockRequest {
            resource_id: request.resource_id,
            lock_owner: request.lock_owner,
            expiry_in_seconds: request.expiry_in_seconds,
        };
        Ok(lease::try_lock(&HostStore, &store, &request)?)
    }

    fn unlock(
        store: String,
        request: wit_lock::UnlockRequest,
    ) -> Result<wit_lock::UnlockStatus, wit_lock::LockError> {
        let request = lease::UnlockRequest {
            resource_id: request.resource_id,
            lock_owner: request.lock_owner,
        };
        Ok(match lease::unlock(&HostStore, &store, &request)? {
            lease::UnlockStatus::Success => wit_lock::UnlockStatus::Success,
            lease::UnlockStatus::LockDoesNotExist => wit_lock::UnlockStatus::LockDoesNotExist,
            lease::UnlockStatus::LockBelongsToOthers => wit_lock::UnlockStatus::LockBelongsToOthers,
            lease::UnlockStatus::InternalError => wit_lock::UnlockStatus::InternalError,
        })
    }
}

/// 128 bits from the host's CSPRNG (`wasi:random/random`), for a lock ID.
fn random_lock_id_bytes() -> [u8; alpha2::LOCK_ID_BYTES] {
    let mut bytes = [0; alpha2::LOCK_ID_BYTES];
    let random = wasip2::random::random::get_random_bytes(alpha2::LOCK_ID_BYTES as u64);
    bytes.copy_from_slice(&random[..alpha2::LOCK_ID_BYTES]);
    bytes
}

impl From<Alpha2Error> for wit_alpha2::LockError {
    fn from(e: Alpha2Error) -> Self {
        match e {
            Alpha2Error::MalformedRequest(m) => Self::MalformedRequest(m),
            Alpha2Error::StoreNotConfigured(m) => Self::StoreNotConfigured(m),
            Alpha2Error::StoreNotFound(m) => Self::StoreNotFound(m),
            Alpha2Error::LockNotFound(m) => Self::LockNotFound(m),
            Alpha2Error::UnlockFailed(m) => Self::UnlockFailed(m),
            Alpha2Error::TryLockFailed(m) => Self::TryLockFailed(m),
            // The rest are the host's answers; the rules give none of them.
            Alpha2Error::ResourceLocked(m)
            | Alpha2Error::PermissionDenied(m)
            | Alpha2Error::NotSupported(m)
            | Alpha2Error::TooManyRequests(m) => Self::TryLockFailed(m),
        }
    }
}

fn wit_grant(grant: alpha2::Grant) -> wit_alpha2::Grant {
    wit_alpha2::Grant {
        lock_id: grant.lock_id,
        fencing_token: grant.fencing_token,
        ttl_ms: u64::try_from(grant.ttl.as_millis()).unwrap_or(u64::MAX),
    }
}

impl wit_alpha2::Guest for Component {
    fn acquire(
        store: String,
        resource_id: String,
        ttl: Option<String>,
    ) -> Result<wit_alpha2::Acquired, wit_alpha2::LockError> {
        let acquired = alpha2::acquire(
            &HostStore,
            &store,
            &resource_id,
            ttl.as_deref(),
            random_lock_id_bytes,
        )?;
        Ok(match acquired {
            alpha2::Acquired::Granted(grant) => wit_alpha2::Acquired::Granted(wit_grant(grant)),
            alpha2::Acquired::Held => wit_alpha2::Acquired::Held,
        })
    }

    fn renew(
        store: String,
        resource_id: String,
        lock_id: String,
        ttl: Option<String>,
    ) -> Result<wit_alpha2::Grant, wit_alpha2::LockError> {
        let grant = alpha2::renew(&HostStore, &store, &resource_id, &lock_id, ttl.as_deref())?;
        Ok(wit_grant(grant))
    }

    fn release(
        store: String,
        resource_id: String,
        lock_id: String,
    ) -> Result<(), wit_alpha2::LockError> {
        Ok(alpha2::release(&HostStore, &store, &resource_id, &lock_id)?)
    }

    fn force_release(store: String, resource_id: String) -> Result<(), wit_alpha2::LockError> {
        Ok(alpha2::force_release(&HostStore, &store, &resource_id)?)
    }

    fn inspect(
        store: String,
        resource_id: String,
    ) -> Result<Option<wit_alpha2::LockState>, wit_alpha2::LockError> {
        let state = alpha2::inspect(&HostStore, &store, &resource_id)?;
        Ok(state.map(|state| wit_alpha2::LockState {
            fencing_token: state.fencing_token,
            expires_in_ms: state
                .expires_in
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }))
    }
}

impl HttpApi for Component {
    fn handle(request: wit_http_api::Request) -> wit_http_api::Response {
        let route = http::route(&request.method, &request.path_with_query);
        let response = answer(&route, move || match request.body {
            RequestBody::Complete(body) => Ok(body),
            RequestBody::TooLarge => Err(http::body_too_large(body_limit())),
            RequestBody::Unreadable(reason) => Err(http::body_unreadable(&reason)),
        });
        wit_http_api::Response {
            status: response.status,
            body: response.body,
        }
    }
}

impl IncomingHandler for Component {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let method = match request.method() {
            Method::Post => "POST",
            _ => "OTHER",
        };
        let path = request.path_with_query().unwrap_or_default();
        let route = http::route(method, &path);
        let response = answer(&route, || read_body(&request));
        send(response_out, &response);
    }
}

/// The answer to a routed request, whichever export it came through. The body is read for
/// every route, as daprd does: a body left unread would make the server close the
/// connection after the answer, failing the client's next request on it.
fn answer(route: &Route, read_body: impl FnOnce() -> Result<Vec<u8>, Response>) -> Response {
    #[cfg(feature = "fault-injection")]
    if let Route::TryLock(store) | Route::Unlock(store) = route
        && let Some(response) = inject_fault(store)
    {
        return response;
    }
    match route {
        Route::TryLock(_) | Route::Unlock(_) => match read_body() {
            Ok(body) => http::respond(&HostStore, route, &body),
            Err(response) => response,
        },
        Route::NotFound | Route::BadEscape => {
            // Drained and dropped: these answers do not depend on it.
            let _ = read_body();
            http::respond(&HostStore, route, b"")
        }
    }
}

/// The request body bound: the host's through `settings.configure`, else daprd's default.
static BODY_LIMIT: AtomicU64 = AtomicU64::new(http::DEFAULT_MAX_BODY_SIZE);

impl Settings for Component {
    fn configure(config: wit_settings::Config) {
        let limit = config.max_body_size.unwrap_or(http::DEFAULT_MAX_BODY_SIZE);
        BODY_LIMIT.store(limit, Ordering::Relaxed);
    }
}

/// The request body bound in force.
fn body_limit() -> u64 {
    BODY_LIMIT.load(Ordering::Relaxed)
}

/// Reads the whole request body, bounded by [`body_limit`].
fn read_body(request: &IncomingRequest) -> Result<Vec<u8>, Response> {
    let limit = body_limit();
    let declared = request
        .headers()
        .get("content-length")
        .first()
        .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(http::body_too_large(limit));
    }
    let unreadable = |_| http::body_unreadable("the request body could not be read");
    let incoming = request.consume().map_err(unreadable)?;
    let stream = incoming.stream().map_err(unreadable)?;
    let mut body = Vec::with_capacity(declared.unwrap_or(0) as usize);
    loop {
        // With a declared length, the body is whole once that much has arrived.
        if declared.is_some_and(|n| body.len() as u64 == n) {
            return Ok(body);
        }
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                body.extend_from_slice(&chunk);
                if body.len() as u64 > limit {
                    return Err(http::body_too_large(limit));
                }
            }
            Err(StreamError::Closed) => return Ok(body),
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(http::body_unreadable(&e.to_debug_string()));
            }
        }
    }
}

/// Sends `response` as `application/json`.
fn send(response_out: ResponseOutparam, response: &Response) {
    let headers = Fields::from_list(&[
        ("content-type".to_string(), b"application/json".to_vec()),
        (
            "content-length".to_string(),
            response.body.len().to_string().into_bytes(),
        ),
    ])
    .expect("valid headers");
    let outgoing = OutgoingResponse::new(headers);
    // Every status we produce is a valid HTTP status code.
    let _ = outgoing.set_status_code(response.status);
    let body = outgoing.body().expect("the body is taken once");
    ResponseOutparam::set(response_out, Ok(outgoing));
    if let Ok(stream) = body.write() {
        let bytes = response.body.as_bytes();
        // A small answer fits the stream's buffer: one write, and `finish` ends it.
        let fits = stream
            .check_write()
            .is_ok_and(|room| room >= bytes.len() as u64);
        if fits {
            let _ = stream.write(bytes);
        } else {
            for chunk in bytes.chunks(4096) {
                if stream.blocking_write_and_flush(chunk).is_err() {
                    break;
                }
            }
        }
    }
    // The client may have gone away; there is no one left to tell.
    let _ = OutgoingBody::finish(body, None);
}

/// Test-only misbehaviour, selected by store name (feature `fault-injection`): `fault-spin`
/// never returns, `fault-oom` allocates without end, `fault-recurse` recurses without end,
/// `fault-huge` answers with an 8 MiB body, `fault-count` answers how many requests this
/// instance has served (state kept between calls; the typed `try-lock` counts too and
/// answers `true`).
#[cfg(feature = "fault-injection")]
fn inject_fault(store: &str) -> Option<Response> {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    match store {
        "fault-spin" => loop {
            std::hint::black_box(());
        },
        "fault-oom" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "fault-recurse" => {
            #[allow(unconditional_recursion)]
            fn deeper(depth: u64) -> u64 {
                std::hint::black_box(deeper(std::hint::black_box(depth + 1))) + 1
            }
            Some(Response {
                status: 200,
                body: deeper(0).to_string(),
            })
        }
        "fault-huge" => Some(Response {
            status: 200,
            body: "x".repeat(8 << 20),
        }),
        "fault-count" => {
            let calls = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            Some(Response {
                status: 200,
                body: format!(r#"{{"calls":{calls}}}"#),
            })
        }
        _ => None,
    }
}
