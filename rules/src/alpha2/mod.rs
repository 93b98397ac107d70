//! wasilock's lock API alpha2: lock IDs, TTLs as Go durations, renewal, release, force
//! release and inspection over a store that keeps a fencing token per key; and the JSON
//! bodies of its HTTP API.
//!
//! The component decides (these rules); the host waits, streams and renews around them.
//! The request and answer bodies of the HTTP API (and the stream's lines) are in `json`.
//! A lock's value in the store is its lock ID, under the same key as an alpha1 lock, so the
//! two exclude each other.

mod json;
mod limits;
mod store;

pub use json::*;
pub use limits::*;
pub use store::{Entry, FencedBucket, FencedOutcome, FencedStore};

use crate::lease::{
    KEY_SEPARATOR, LockError, StoreError, Swap, TRY_LOCK_FAILED_PREFIX, UNLOCK_FAILED_PREFIX,
    check_open,
};
use std::time::Duration;

/// The TTL of a lock whose request names none, unless its store's `defaultTTL` says
/// otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);
/// The longest TTL a lock may ask for: the default of a store's `maxTTL`, and its ceiling.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// Random bytes in a lock ID (128 bits).
pub const LOCK_ID_BYTES: usize = 16;

/// A granted or renewed lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The lock ID (proof of ownership).
    pub lock_id: String,
    /// The grant's fencing token.
    pub fencing_token: u64,
    /// The lease.
    pub ttl: Duration,
}

/// The outcome of one acquire attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// The lock is ours.
    Granted(Grant),
    /// A live lock exists.
    Held,
}

/// A live lock as anyone may see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockState {
    /// The token of its grant.
    pub fencing_token: u64,
    /// What is left of its lease (`None` = no expiry).
    pub expires_in: Option<Duration>,
}

/// Why an alpha2 request got no lock outcome, with its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alpha2Error {
    /// 400 `ERR_MALFORMED_REQUEST`.
    MalformedRequest(String),
    /// 500 `ERR_LOCK_STORE_NOT_CONFIGURED`.
    StoreNotConfigured(String),
    /// 400 `ERR_LOCK_STORE_NOT_FOUND`.
    StoreNotFound(String),
    /// 404 `ERR_LOCK_NOT_FOUND`.
    LockNotFound(String),
    /// 500 `ERR_TRY_LOCK`.
    TryLockFailed(String),
    /// 500 `ERR_UNLOCK`.
    UnlockFailed(String),
    /// 409 `ERR_RESOURCE_LOCKED` (the host's: `immediate`, or the wait ran out).
    ResourceLocked(String),
    /// 403 `ERR_PERMISSION_DENIED` (the host's: force release not allowed).
    PermissionDenied(String),
    /// 501 `ERR_NOT_SUPPORTED` (the host's: the component lacks `lock-alpha2`).
    NotSupported(String),
    /// 429 `ERR_TOO_MANY_REQUESTS` (the host's: the tenant's `maxConcurrency`).
    TooManyRequests(String),
}

impl Alpha2Error {
    /// The HTTP status.
    pub fn http_status(&self) -> u16 {
        match self {
            Alpha2Error::MalformedRequest(_) | Alpha2Error::StoreNotFound(_) => 400,
            Alpha2Error::PermissionDenied(_) => 403,
            Alpha2Error::LockNotFound(_) => 404,
            Alpha2Error::ResourceLocked(_) => 409,
            Alpha2Error::TooManyRequests(_) => 429,
            Alpha2Error::NotSupported(_) => 501,
            Alpha2Error::StoreNotConfigured(_)
            | Alpha2Error::TryLockFailed(_)
            | Alpha2Error::UnlockFailed(_) => 500,
        }
    }

    /// The `errorCode`.
    pub fn error_code(&self) -> &'static str {
        match self {
            Alpha2Error::MalformedRequest(_) => "ERR_MALFORMED_REQUEST",
            Alpha2Error::StoreNotConfigured(_) => "ERR_LOCK_STORE_NOT_CONFIGURED",
            Alpha2Error::StoreNotFound(_) => "ERR_LOCK_STORE_NOT_FOUND",
            Alpha2Error::LockNotFound(_) => "ERR_LOCK_NOT_FOUND",
            Alpha2Error::TryLockFailed(_) => "ERR_TRY_LOCK",
            Alpha2Error::UnlockFailed(_) => "ERR_UNLOCK",
            Alpha2Error::ResourceLocked(_) => "ERR_RESOURCE_LOCKED",
            Alpha2Error::PermissionDenied(_) => "ERR_PERMISSION_DENIED",
            Alpha2Error::NotSupported(_) => "ERR_NOT_SUPPORTED",
            Alpha2Error::TooManyRequests(_) => "ERR_TOO_MANY_REQUESTS",
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        match self {
            Alpha2Error::MalformedRequest(m)
            | Alpha2Error::StoreNotConfigured(m)
            | Alpha2Error::StoreNotFound(m)
            | Alpha2Error::LockNotFound(m)
            | Alpha2Error::TryLockFailed(m)
            | Alpha2Error::UnlockFailed(m)
            | Alpha2Error::ResourceLocked(m)
            | Alpha2Error::PermissionDenied(m)
            | Alpha2Error::NotSupported(m)
            | Alpha2Error::TooManyRequests(m) => m,
        }
    }

    /// The JSON error body (`{"errorCode":…,"message":…}`, daprd's escaping).
    pub fn body(&self) -> String {
        crate::http::error_body(self.error_code(), self.message())
    }
}

/// A lock ID from `random` ([`LOCK_ID_BYTES`] bytes from a CSPRNG): URL-safe base64
/// without padding (22 characters).
pub fn lock_id(random: &[u8; LOCK_ID_BYTES]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(22);
    for chunk in random.chunks(3) {
        let mut n = 0u32;
        for (i, byte) in chunk.iter().enumerate() {
            n |= u32::from(*byte) << (16 - 8 * i);
        }
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// The TTL asked for, within the default bounds ([`TtlLimits::default`]): a Go duration,
/// above zero and at most [`MAX_TTL`]; [`DEFAULT_TTL`] when absent.
pub fn ttl(text: Option<&str>) -> Result<Duration, Alpha2Error> {
    TtlLimits::default().ttl(text)
}

/// Tries once to acquire `resource_id` for `ttl`; the lock ID is made from `random`.
pub fn acquire<S: FencedStore>(
    store: &S,
    store_name: &str,
    resource_id: &str,
    ttl_text: Option<&str>,
    random: impl FnOnce() -> [u8; LOCK_ID_BYTES],
) -> Result<Acquired, Alpha2Error> {
    let ttl = ttl(ttl_text)?;
    let bucket = open_validated(store, store_name, resource_id, try_lock_failed)?;
    let lock_id = lock_id(&random());
    let outcome = bucket
        .compare_and_swap_fenced(Swap {
            key: resource_id,
            expected: None,
            new: Some(lock_id.as_bytes()),
            ttl_ms: Some(ttl_ms(ttl)),
        })
        .map_err(try_lock_failed)?;
    Ok(match outcome {
        FencedOutcome::Swapped(fencing_token) => Acquired::Granted(Grant {
            lock_id,
            fencing_token,
            ttl,
        }),
        FencedOutcome::Conflict(_) => Acquired::Held,
    })
}

/// Extends the lease of the lock `lock_id` holds to `ttl` from now, keeping its token.
pub fn renew<S: FencedStore>(
    store: &S,
    store_name: &str,
    resource_id: &str,
    lock_id: &str,
    ttl_text: Option<&str>,
) -> Result<Grant, Alpha2Error> {
    let ttl = ttl(ttl_text)?;
    let bucket = open_validated(store, store_name, resource_id, try_lock_failed)?;
    check_lock_id(lock_id)?;
    let id = lock_id.as_bytes();
    let outcome = bucket
        .compare_and_swap_fenced(Swap {
            key: resource_id,
            expected: Some(id),
            new: Some(id),
            ttl_ms: Some(ttl_ms(ttl)),
        })
        .map_err(try_lock_failed)?;
    match outcome {
        FencedOutcome::Swapped(fencing_token) => Ok(Grant {
            lock_id: lock_id.to_owned(),
            fencing_token,
            ttl,
        }),
        FencedOutcome::Conflict(_) => Err(not_held(store_name, resource_id)),
    }
}

/// Releases the lock `lock_id` holds.
pub fn release<S: FencedStore>(
    store: &S,
    store_name: &str,
    resource_id: &str,
    lock_id: &str,
) -> Result<(), Alpha2Error> {
    let bucket = open_validated(store, store_name, resource_id, unlock_failed)?;
    check_lock_id(lock_id)?;
    let outcome = bucket
        .compare_and_swap_fenced(Swap::delete(resource_id, lock_id.as_bytes()))
        .map_err(unlock_failed)?;
    match outcome {
        FencedOutcome::Swapped(_) => Ok(()),
        FencedOutcome::Conflict(_) => Err(not_held(store_name, resource_id)),
    }
}

/// One alpha2 call into the lock logic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alpha2Request {
    /// Try once to acquire, for `ttl` (a Go duration; `None` = the default).
    Acquire {
        /// The resource.
        resource_id: String,
        /// The TTL asked for.
        ttl: Option<String>,
    },
    /// Renew the lock `lock_id` holds.
    Renew {
        /// The resource.
        resource_id: String,
        /// The lock ID.
        lock_id: String,
        /// The new TTL.
        ttl: Option<String>,
    },
    /// Release the lock `lock_id` holds.
    Release {
        /// The resource.
        resource_id: String,
        /// The lock ID.
        lock_id: String,
    },
    /// Release the lock whoever holds it.
    ForceRelease {
        /// The resource.
        resource_id: String,
    },
    /// Read the live lock.
    Inspect {
        /// The resource.
        resource_id: String,
    },
}

impl Alpha2Request {
    /// The resource the request is about.
    pub fn resource_id(&self) -> &str {
        match self {
            Alpha2Request::Acquire { resource_id, .. }
            | Alpha2Request::Renew { resource_id, .. }
            | Alpha2Request::Release { resource_id, .. }
            | Alpha2Request::ForceRelease { resource_id }
            | Alpha2Request::Inspect { resource_id } => resource_id,
        }
    }

    /// Whether the request releases (its store failures are `ERR_UNLOCK`).
    pub fn releases(&self) -> bool {
        matches!(
            self,
            Alpha2Request::Release { .. } | Alpha2Request::ForceRelease { .. }
        )
    }
}

/// What an alpha2 call gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alpha2Outcome {
    /// An acquire's outcome.
    Acquired(Acquired),
    /// A renewal's grant.
    Renewed(Grant),
    /// A release (or force release) done.
    Released,
    /// The live lock, if any.
    State(Option<LockState>),
}

/// Runs `request` over `store`; `random` gives the bytes of a new lock ID.
pub fn run<S: FencedStore>(
    store: &S,
    store_name: &str,
    request: &Alpha2Request,
    random: impl FnOnce() -> [u8; LOCK_ID_BYTES],
) -> Result<Alpha2Outcome, Alpha2Error> {
    match request {
        Alpha2Request::Acquire { resource_id, ttl } => {
            acquire(store, store_name, resource_id, ttl.as_deref(), random)
                .map(Alpha2Outcome::Acquired)
        }
        Alpha2Request::Renew {
            resource_id,
            lock_id,
            ttl,
        } => renew(store, store_name, resource_id, lock_id, ttl.as_deref())
            .map(Alpha2Outcome::Renewed),
        Alpha2Request::Release {
            resource_id,
            lock_id,
        } => release(store, store_name, resource_id, lock_id).map(|()| Alpha2Outcome::Released),
        Alpha2Request::ForceRelease { resource_id } => {
            force_release(store, store_name, resource_id).map(|()| Alpha2Outcome::Released)
        }
        Alpha2Request::Inspect { resource_id } => {
            inspect(store, store_name, resource_id).map(Alpha2Outcome::State)
        }
    }
}

/// The prefix of every alpha2 path.
pub const PATH_PREFIX: &str = "/v1.0-alpha2/lock/";

/// The store and resource of an alpha2 path (`/v1.0-alpha2/lock/{store}/{resourceId}`,
/// both percent-decoded; the resource is everything after the store's `/`). `None` for a
/// path of another shape; an invalid escape is malformed.
pub fn route(path: &str) -> Option<Result<(String, String), Alpha2Error>> {
    let rest = path.strip_prefix(PATH_PREFIX)?;
    let (store, resource) = rest.split_once('/')?;
    if store.is_empty() {
        return None;
    }
    let decode = |segment: &str| {
        crate::http::query_unescape(segment).ok_or_else(|| {
            Alpha2Error::MalformedRequest(format!("invalid URL escape in {segment:?}"))
        })
    };
    Some(decode(store).and_then(|store| Ok((store, decode(resource)?))))
}

/// How often a force release reads the holder again when the lock changed hands between its
/// read and its delete.
const FORCE_ATTEMPTS: usize = 3;

/// Releases the live lock of `resource_id`, whoever holds it (alpha1 or alpha2).
pub fn force_release<S: FencedStore>(
    store: &S,
    store_name: &str,
    resource_id: &str,
) -> Result<(), Alpha2Error> {
    let bucket = open_validated(store, store_name, resource_id, unlock_failed)?;
    let mut holder = bucket
        .inspect(resource_id)
        .map_err(unlock_failed)?
        .map(|e| e.value);
    for _ in 0..FORCE_ATTEMPTS {
        let Some(value) = holder else {
            break;
        };
        match bucket
            .compare_and_swap_fenced(Swap::delete(resource_id, &value))
            .map_err(unlock_failed)?
        {
            FencedOutcome::Swapped(_) => return Ok(()),
            FencedOutcome::Conflict(live) => holder = live,
        }
    }
    Err(Alpha2Error::LockNotFound(format!(
        "no lock is held on {resource_id} in lock store {store_name}"
    )))
}

/// The live lock of `resource_id`, if any: its token and remaining lease, never its holder.
pub fn inspect<S: FencedStore>(
    store: &S,
    store_name: &str,
    resource_id: &str,
) -> Result<Option<LockState>, Alpha2Error> {
    let bucket = open_validated(store, store_name, resource_id, try_lock_failed)?;
    let entry = bucket.inspect(resource_id).map_err(try_lock_failed)?;
    Ok(entry.map(|entry| LockState {
        fencing_token: entry.fencing_token,
        expires_in: entry.ttl_ms.map(Duration::from_millis),
    }))
}

/// A refusal of the Dapr API's checks, answered with the same error code and message.
impl From<LockError> for Alpha2Error {
    fn from(refusal: LockError) -> Self {
        match refusal {
            LockError::MalformedRequest(m) => Alpha2Error::MalformedRequest(m),
            LockError::StoreNotConfigured(m) => Alpha2Error::StoreNotConfigured(m),
            LockError::StoreNotFound(m) => Alpha2Error::StoreNotFound(m),
            LockError::TryLockFailed(m) => Alpha2Error::TryLockFailed(m),
            LockError::UnlockFailed(m) => Alpha2Error::UnlockFailed(m),
        }
    }
}

/// A store failure while acquiring, renewing or inspecting (`ERR_TRY_LOCK`).
fn try_lock_failed(e: StoreError) -> Alpha2Error {
    Alpha2Error::TryLockFailed(format!("{TRY_LOCK_FAILED_PREFIX}{e}"))
}

/// A store failure while releasing (`ERR_UNLOCK`).
fn unlock_failed(e: StoreError) -> Alpha2Error {
    Alpha2Error::UnlockFailed(format!("{UNLOCK_FAILED_PREFIX}{e}"))
}

fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
}

fn check_lock_id(lock_id: &str) -> Result<(), Alpha2Error> {
    if lock_id.is_empty() {
        return Err(Alpha2Error::MalformedRequest("lockID is empty".into()));
    }
    Ok(())
}

fn not_held(store_name: &str, resource_id: &str) -> Alpha2Error {
    Alpha2Error::LockNotFound(format!(
        "lock ID does not hold {resource_id} in lock store {store_name} (expired, released or taken)"
    ))
}

/// The checks before any store call, in daprd's order where it has one: stores configured,
/// resource id, store exists, the key's `||` rule (a bad input here: 400).
fn open_validated<S: FencedStore>(
    store: &S,
    store_name: &str,
    resource_id: &str,
    failure: fn(StoreError) -> Alpha2Error,
) -> Result<S::Bucket, Alpha2Error> {
    let required = [("ResourceId", resource_id)];
    let bucket = check_open(store.open(store_name), store_name, &required)?.map_err(failure)?;
    if resource_id.contains(KEY_SEPARATOR) {
        return Err(Alpha2Error::MalformedRequest(format!(
            "input key/keyPrefix '{resource_id}' can't contain '{KEY_SEPARATOR}'"
        )));
    }
    Ok(bucket)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_store::FakeStore;

    fn granted(outcome: Result<Acquired, Alpha2Error>) -> Grant {
        match outcome {
            Ok(Acquired::Granted(grant)) => grant,
            other => panic!("not granted: {other:?}"),
        }
    }

    #[test]
    fn lock_ids_are_22_url_safe_characters_of_all_128_bits() {
        assert_eq!(lock_id(&[0; 16]), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(lock_id(&[255; 16]), "_____________________w");
        let id = lock_id(&[0xfb, 0xff, 0xbf, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
        assert_eq!(id.len(), 22);
        assert!(id.starts_with("-_-_"), "{id}");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(lock_id(&[1; 16]), lock_id(&[2; 16]));
    }

    #[test]
    fn ttls_are_go_durations_within_bounds() {
        assert_eq!(ttl(None), Ok(DEFAULT_TTL));
        assert_eq!(ttl(Some("1500ms")), Ok(Duration::from_millis(1500)));
        assert_eq!(ttl(Some("24h")), Ok(MAX_TTL));
        for bad in ["0s", "-1s", "25h", "30", "soon"] {
            let err = ttl(Some(bad)).unwrap_err();
            assert_eq!(err.error_code(), "ERR_MALFORMED_REQUEST", "{bad}");
            assert_eq!(err.http_status(), 400);
        }
    }

    #[test]
    fn tokens_increase_per_grant_and_renewal_keeps_them() {
        let store = FakeStore::new();
        let s = &&store;
        let first = granted(acquire(s, "lockstore", "r", None, || [1; 16]));
        assert_eq!(first.fencing_token, 1);
        assert_eq!(first.ttl, DEFAULT_TTL);
        assert_eq!(
            acquire(s, "lockstore", "r", Some("1s"), || [2; 16]),
            Ok(Acquired::Held)
        );
        let renewed = renew(s, "lockstore", "r", &first.lock_id, Some("1m")).unwrap();
        assert_eq!(renewed.fencing_token, 1);
        assert_eq!(renewed.ttl, Duration::from_secs(60));
        let state = inspect(s, "lockstore", "r").unwrap().unwrap();
        assert_eq!(state.fencing_token, 1);
        release(s, "lockstore", "r", &first.lock_id).unwrap();
        assert_eq!(inspect(s, "lockstore", "r"), Ok(None));
        let second = granted(acquire(s, "lockstore", "r", None, || [3; 16]));
        assert_eq!(second.fencing_token, 2);
        assert_ne!(second.lock_id, first.lock_id);
        let other = granted(acquire(s, "lockstore", "other", None, || [4; 16]));
        assert_eq!(other.fencing_token, 1, "per resource");
    }

    #[test]
    fn a_stale_lock_id_is_not_found() {
        let store = FakeStore::new();
        let s = &&store;
        let grant = granted(acquire(s, "lockstore", "r", None, || [1; 16]));
        force_release(s, "lockstore", "r").unwrap();
        for err in [
            renew(s, "lockstore", "r", &grant.lock_id, None).unwrap_err(),
            release(s, "lockstore", "r", &grant.lock_id).unwrap_err(),
            force_release(s, "lockstore", "r").unwrap_err(),
        ] {
            assert_eq!(
                (err.http_status(), err.error_code()),
                (404, "ERR_LOCK_NOT_FOUND")
            );
        }
    }

    #[test]
    fn validation_order_and_errors() {
        let store = FakeStore::new();
        let s = &&store;
        let err = acquire(s, "nope", "", Some("bad"), || [0; 16]).unwrap_err();
        assert!(err.message().starts_with("invalid ttl: "), "ttl first");
        let err = acquire(s, "nope", "", None, || [0; 16]).unwrap_err();
        assert_eq!(
            err,
            Alpha2Error::MalformedRequest("ResourceId is empty in lock store nope".into())
        );
        let err = inspect(s, "nope", "r").unwrap_err();
        assert_eq!(
            err,
            Alpha2Error::StoreNotFound("lock store nope not found".into())
        );
        let err = release(s, "lockstore", "a||b", "id").unwrap_err();
        assert_eq!(err.http_status(), 400);
        let err = release(s, "lockstore", "r", "").unwrap_err();
        assert_eq!(err, Alpha2Error::MalformedRequest("lockID is empty".into()));
        let failing = FakeStore {
            failure: Some("down".into()),
            ..FakeStore::new()
        };
        let err = acquire(&&failing, "lockstore", "r", None, || [0; 16]).unwrap_err();
        assert_eq!(
            err,
            Alpha2Error::TryLockFailed("failed to try acquiring lock: down".into())
        );
        let err = release(&&failing, "lockstore", "r", "id").unwrap_err();
        assert_eq!((err.http_status(), err.error_code()), (500, "ERR_UNLOCK"));
    }

    #[test]
    fn routes() {
        assert_eq!(
            route("/v1.0-alpha2/lock/lockstore/orders%2F42"),
            Some(Ok(("lockstore".into(), "orders/42".into())))
        );
        assert_eq!(
            route("/v1.0-alpha2/lock/s/a/b"),
            Some(Ok(("s".into(), "a/b".into())))
        );
        assert_eq!(
            route("/v1.0-alpha2/lock/s/"),
            Some(Ok(("s".into(), String::new())))
        );
        assert_eq!(route("/v1.0-alpha2/lock/s"), None);
        assert_eq!(route("/v1.0-alpha1/lock/s/r"), None);
        assert!(matches!(route("/v1.0-alpha2/lock/s/%zz"), Some(Err(_))));
    }

    #[test]
    fn run_dispatches() {
        let store = FakeStore::new();
        let s = &&store;
        let acquire = Alpha2Request::Acquire {
            resource_id: "r".into(),
            ttl: None,
        };
        let Ok(Alpha2Outcome::Acquired(Acquired::Granted(grant))) =
            run(s, "lockstore", &acquire, || [9; 16])
        else {
            panic!("not granted")
        };
        let inspect = Alpha2Request::Inspect {
            resource_id: "r".into(),
        };
        assert!(matches!(
            run(s, "lockstore", &inspect, || [0; 16]),
            Ok(Alpha2Outcome::State(Some(LockState {
                fencing_token: 1,
                ..
            })))
        ));
        let release = Alpha2Request::Release {
            resource_id: "r".into(),
            lock_id: grant.lock_id,
        };
        assert!(release.releases());
        assert_eq!(
            run(s, "lockstore", &release, || [0; 16]),
            Ok(Alpha2Outcome::Released)
        );
    }

    #[test]
    fn bodies() {
        assert_eq!(parse_body::<AcquireBody>(b""), Ok(AcquireBody::default()));
        assert_eq!(
            parse_body::<AcquireBody>(br#"{"ttl":"5s","immediate":true,"waitTimeout":"1s","x":1}"#),
            Ok(AcquireBody {
                ttl: Some("5s".into()),
                immediate: true,
                wait_timeout: Some("1s".into())
            })
        );
        assert_eq!(
            parse_body::<ReleaseBody>(br#"{"force":true}"#).unwrap(),
            ReleaseBody {
                lock_id: String::new(),
                force: true
            }
        );
        let err = parse_body::<RenewBody>(b"{").unwrap_err();
        assert_eq!(err.error_code(), "ERR_MALFORMED_REQUEST");
        let grant = Grant {
            lock_id: "id".into(),
            fencing_token: 17,
            ttl: DEFAULT_TTL,
        };
        assert_eq!(
            grant_body(&grant),
            r#"{"lockID":"id","fencingToken":"17","ttl":"30s"}"#
        );
        let state = LockState {
            fencing_token: 17,
            expires_in: Some(Duration::from_millis(12_500)),
        };
        assert_eq!(
            state_body(Some(&state)),
            r#"{"locked":true,"fencingToken":"17","expiresIn":"12.5s"}"#
        );
        assert_eq!(state_body(None), r#"{"locked":false}"#);
        assert_eq!(
            stream_error_line("ERR_LOCK_LOST", "gone"),
            r#"{"type":"error","errorCode":"ERR_LOCK_LOST","message":"gone"}"#
        );
    }
}
