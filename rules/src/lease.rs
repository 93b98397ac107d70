//! Dapr's lock rules: validation order, messages, and the lease logic over a key-value store.
//!
//! Acquire is one compare-and-swap from "absent" to the owner with the lease as TTL; release
//! is one compare-and-swap from the owner to "deleted". Validation follows daprd's order
//! (`pkg/api/universal/lock.go`): expiry (try-lock only), stores configured, resource id,
//! owner, store exists, then the store call.

use std::fmt;

/// Why the host's store refused an operation (the WIT `store.error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The host has no lock store at all.
    NotConfigured,
    /// No lock store has the requested name.
    NoSuchStore,
    /// The lock store exists but is not visible to this tenant.
    AccessDenied,
    /// The backend failed; the text says why.
    Backend(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::NotConfigured => f.write_str("lock store is not configured"),
            StoreError::NoSuchStore => f.write_str("no such lock store"),
            StoreError::AccessDenied => f.write_str("access to the lock store is denied"),
            StoreError::Backend(message) => f.write_str(message),
        }
    }
}

/// The result of a compare-and-swap (the WIT `store.cas-outcome`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CasOutcome {
    /// The live value matched and was replaced.
    Swapped,
    /// The live value did not match; it is carried here (`None` = absent or expired).
    Conflict(Option<Vec<u8>>),
}

/// Key-value storage with an atomic compare-and-swap, as the host provides it.
pub trait LockStore {
    /// An opened lock store.
    type Bucket: LockBucket;

    /// Opens the lock store called `name`.
    fn open(&self, name: &str) -> Result<Self::Bucket, StoreError>;
}

/// One compare-and-swap request (the WIT `store` call's arguments): replace `key`'s live
/// value by `new` if it equals `expected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Swap<'a> {
    /// The key.
    pub key: &'a str,
    /// The live value it must have (`None` = absent or expired).
    pub expected: Option<&'a [u8]>,
    /// The value it gets (`None` deletes).
    pub new: Option<&'a [u8]>,
    /// The new value's lifetime in milliseconds (`None` = no expiry).
    pub ttl_ms: Option<u64>,
}

impl<'a> Swap<'a> {
    /// Deletes `key` if its live value is `expected`.
    pub fn delete(key: &'a str, expected: &'a [u8]) -> Self {
        Swap {
            key,
            expected: Some(expected),
            new: None,
            ttl_ms: None,
        }
    }
}

/// One opened lock store.
pub trait LockBucket {
    /// Atomically performs `swap`.
    fn compare_and_swap(&self, swap: Swap<'_>) -> Result<CasOutcome, StoreError>;
}

/// A try-lock request (Dapr's `TryLockRequest` without the store name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockRequest {
    /// The resource to lock.
    pub resource_id: String,
    /// The owner that will hold the lock.
    pub lock_owner: String,
    /// The lease in seconds.
    pub expiry_in_seconds: i32,
}

/// An unlock request (Dapr's `UnlockRequest` without the store name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnlockRequest {
    /// The locked resource.
    pub resource_id: String,
    /// The owner releasing it.
    pub lock_owner: String,
}

/// The outcome of an unlock, with Dapr's numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlockStatus {
    /// Released (0).
    Success = 0,
    /// No live lock for the resource (1).
    LockDoesNotExist = 1,
    /// Held by another owner (2).
    LockBelongsToOthers = 2,
    /// The store failed (3).
    InternalError = 3,
}

/// A request Dapr rejects, with its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockError {
    /// 400 `ERR_MALFORMED_REQUEST`.
    MalformedRequest(String),
    /// 500 `ERR_LOCK_STORE_NOT_CONFIGURED`.
    StoreNotConfigured(String),
    /// 400 `ERR_LOCK_STORE_NOT_FOUND`.
    StoreNotFound(String),
    /// 500 `ERR_TRY_LOCK`.
    TryLockFailed(String),
    /// 500 `ERR_UNLOCK`.
    UnlockFailed(String),
}

impl LockError {
    /// The HTTP status daprd answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            LockError::MalformedRequest(_) | LockError::StoreNotFound(_) => 400,
            LockError::StoreNotConfigured(_)
            | LockError::TryLockFailed(_)
            | LockError::UnlockFailed(_) => 500,
        }
    }

    /// daprd's `errorCode`.
    pub fn error_code(&self) -> &'static str {
        match self {
            LockError::MalformedRequest(_) => "ERR_MALFORMED_REQUEST",
            LockError::StoreNotConfigured(_) => "ERR_LOCK_STORE_NOT_CONFIGURED",
            LockError::StoreNotFound(_) => "ERR_LOCK_STORE_NOT_FOUND",
            LockError::TryLockFailed(_) => "ERR_TRY_LOCK",
            LockError::UnlockFailed(_) => "ERR_UNLOCK",
        }
    }

    /// daprd's `message`.
    pub fn message(&self) -> &str {
        match self {
            LockError::MalformedRequest(m)
            | LockError::StoreNotConfigured(m)
            | LockError::StoreNotFound(m)
            | LockError::TryLockFailed(m)
            | LockError::UnlockFailed(m) => m,
        }
    }
}

/// The separator of Dapr's lock keys (`lock||<prefix>||<resourceId>`), which a resource id
/// must not contain.
pub const KEY_SEPARATOR: &str = "||";

/// Prefix of every try-lock store failure message (daprd's `ERR_TRY_LOCK`).
pub const TRY_LOCK_FAILED_PREFIX: &str = "failed to try acquiring lock: ";
/// Prefix of every unlock store failure message (daprd's `ERR_UNLOCK`).
pub const UNLOCK_FAILED_PREFIX: &str = "failed to release lock: ";

/// Tries to acquire `request.resource_id` in `store_name` for `request.lock_owner`.
///
/// `Ok(false)` when a live lock exists, whoever holds it (not reentrant).
pub fn try_lock<S: LockStore>(
    store: &S,
    store_name: &str,
    request: &LockRequest,
) -> Result<bool, LockError> {
    if request.expiry_in_seconds <= 0 {
        return Err(LockError::MalformedRequest(format!(
            "ExpiryInSeconds is not positive in lock store {store_name}"
        )));
    }
    let bucket = open_validated(
        store,
        store_name,
        &request.resource_id,
        &request.lock_owner,
        TRY_LOCK_FAILED_PREFIX,
        LockError::TryLockFailed,
    )?;
    let ttl_ms = u64::from(request.expiry_in_seconds.unsigned_abs()) * 1000;
    let outcome = bucket
        .compare_and_swap(Swap {
            key: &request.resource_id,
            expected: None,
            new: Some(request.lock_owner.as_bytes()),
            ttl_ms: Some(ttl_ms),
        })
        .map_err(|e| LockError::TryLockFailed(format!("{TRY_LOCK_FAILED_PREFIX}{e}")))?;
    Ok(outcome == CasOutcome::Swapped)
}

/// Releases `request.resource_id` in `store_name` if `request.lock_owner` holds it.
pub fn unlock<S: LockStore>(
    store: &S,
    store_name: &str,
    request: &UnlockRequest,
) -> Result<UnlockStatus, LockError> {
    let bucket = open_validated(
        store,
        store_name,
        &request.resource_id,
        &request.lock_owner,
        UNLOCK_FAILED_PREFIX,
        LockError::UnlockFailed,
    )?;
    let outcome = bucket
        .compare_and_swap(Swap::delete(
            &request.resource_id,
            request.lock_owner.as_bytes(),
        ))
        .map_err(|e| LockError::UnlockFailed(format!("{UNLOCK_FAILED_PREFIX}{e}")))?;
    Ok(match outcome {
        CasOutcome::Swapped => UnlockStatus::Success,
        CasOutcome::Conflict(None) => UnlockStatus::LockDoesNotExist,
        CasOutcome::Conflict(Some(holder)) if holder != request.lock_owner.as_bytes() => {
            UnlockStatus::LockBelongsToOthers
        }
        // The store reported a conflict with our own value: it broke its contract.
        CasOutcome::Conflict(Some(_)) => UnlockStatus::InternalError,
    })
}

/// Runs the checks daprd makes before calling the store (rows 2 to 5 of its table, then the
/// key's `||` rule), in its order, and returns the opened bucket.
fn open_validated<S: LockStore>(
    store: &S,
    store_name: &str,
    resource_id: &str,
    lock_owner: &str,
    failure_prefix: &str,
    failure: fn(String) -> LockError,
) -> Result<S::Bucket, LockError> {
    let required = [("ResourceId", resource_id), ("LockOwner", lock_owner)];
    let bucket = check_open(store.open(store_name), store_name, &required)?
        .map_err(|backend| failure(format!("{failure_prefix}{backend}")))?;
    // daprd builds the lock key next and refuses a resource id that could forge one.
    if resource_id.contains(KEY_SEPARATOR) {
        return Err(failure(format!(
            "{failure_prefix}input key/keyPrefix '{resource_id}' can't contain '{KEY_SEPARATOR}'"
        )));
    }
    Ok(bucket)
}

/// daprd's checks on a request before any store call, in its order, up to the store itself:
/// a lock store configured at all; each `required` field (its name in daprd's message, its
/// value) not empty; the store `store_name` there. `Ok(Err(..))`: the store failed to open.
pub(crate) fn check_open<B>(
    opened: Result<B, StoreError>,
    store_name: &str,
    required: &[(&str, &str)],
) -> Result<Result<B, StoreError>, LockError> {
    if matches!(opened, Err(StoreError::NotConfigured)) {
        return Err(LockError::StoreNotConfigured(
            StoreError::NotConfigured.to_string(),
        ));
    }
    if let Some((name, _)) = required.iter().find(|(_, value)| value.is_empty()) {
        return Err(LockError::MalformedRequest(format!(
            "{name} is empty in lock store {store_name}"
        )));
    }
    match opened {
        Err(StoreError::NotConfigured | StoreError::NoSuchStore | StoreError::AccessDenied) => Err(
            LockError::StoreNotFound(format!("lock store {store_name} not found")),
        ),
        opened => Ok(opened),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_store::FakeStore;

    fn lock_req(resource: &str, owner: &str, expiry: i32) -> LockRequest {
        LockRequest {
            resource_id: resource.into(),
            lock_owner: owner.into(),
            expiry_in_seconds: expiry,
        }
    }

    fn unlock_req(resource: &str, owner: &str) -> UnlockRequest {
        UnlockRequest {
            resource_id: resource.into(),
            lock_owner: owner.into(),
        }
    }

    #[test]
    fn acquire_is_one_cas_from_absent_with_the_lease_as_ttl() {
        let store = FakeStore::new();
        assert_eq!(
            try_lock(&&store, "lockstore", &lock_req("r", "o", 15)),
            Ok(true)
        );
        assert_eq!(
            store.calls.borrow().as_slice(),
            &[("r".to_string(), None, Some(b"o".to_vec()), Some(15_000))]
        );
    }

    #[test]
    fn conformance_sequence_over_the_rules() {
        let store = FakeStore::new();
        let s = &&store;
        assert_eq!(
            try_lock(s, "lockstore", &lock_req("key1", "conftest", 15)),
            Ok(true)
        );
        assert_eq!(
            try_lock(s, "lockstore", &lock_req("key2", "conftest", 3)),
            Ok(true)
        );
        // Not reentrant: the same owner again gets false.
        assert_eq!(
            try_lock(s, "lockstore", &lock_req("key1", "conftest", 15)),
            Ok(false)
        );
        assert_eq!(
            unlock(s, "lockstore", &unlock_req("nonexistent", "conftest")),
            Ok(UnlockStatus::LockDoesNotExist)
        );
        assert_eq!(
            unlock(s, "lockstore", &unlock_req("key1", "nonowner")),
            Ok(UnlockStatus::LockBelongsToOthers)
        );
        assert_eq!(
            unlock(s, "lockstore", &unlock_req("key1", "conftest")),
            Ok(UnlockStatus::Success)
        );
        assert_eq!(
            try_lock(s, "lockstore", &lock_req("key1", "other", 15)),
            Ok(true)
        );
    }

    #[test]
    fn expiry_is_checked_first() {
        let store = FakeStore {
            stores: vec![],
            ..Default::default()
        };
        for expiry in [0, -1, i32::MIN] {
            let err = try_lock(&&store, "nope", &lock_req("", "", expiry)).unwrap_err();
            assert_eq!(err.http_status(), 400);
            assert_eq!(err.error_code(), "ERR_MALFORMED_REQUEST");
            assert_eq!(
                err.message(),
                "ExpiryInSeconds is not positive in lock store nope"
            );
        }
    }

    #[test]
    fn no_store_configured_comes_before_field_checks() {
        let store = FakeStore {
            stores: vec![],
            ..Default::default()
        };
        let err = try_lock(&&store, "x", &lock_req("", "", 1)).unwrap_err();
        assert_eq!(
            err,
            LockError::StoreNotConfigured("lock store is not configured".into())
        );
        assert_eq!(err.http_status(), 500);
        assert_eq!(err.error_code(), "ERR_LOCK_STORE_NOT_CONFIGURED");
        let err = unlock(&&store, "x", &unlock_req("", "")).unwrap_err();
        assert_eq!(err.error_code(), "ERR_LOCK_STORE_NOT_CONFIGURED");
    }

    #[test]
    fn empty_resource_then_empty_owner_then_unknown_store() {
        let store = FakeStore::new();
        let s = &&store;
        let err = try_lock(s, "missing", &lock_req("", "", 1)).unwrap_err();
        assert_eq!(
            err,
            LockError::MalformedRequest("ResourceId is empty in lock store missing".into())
        );
        let err = unlock(s, "missing", &unlock_req("r", "")).unwrap_err();
        assert_eq!(
            err,
            LockError::MalformedRequest("LockOwner is empty in lock store missing".into())
        );
        let err = try_lock(s, "missing", &lock_req("r", "o", 1)).unwrap_err();
        assert_eq!(
            err,
            LockError::StoreNotFound("lock store missing not found".into())
        );
        assert_eq!(
            (err.http_status(), err.error_code()),
            (400, "ERR_LOCK_STORE_NOT_FOUND")
        );
        assert!(
            store.calls.borrow().is_empty(),
            "no store call on a rejected request"
        );
    }

    #[test]
    fn whitespace_values_pass_validation() {
        let store = FakeStore::new();
        assert_eq!(
            try_lock(&&store, "lockstore", &lock_req(" ", " ", 1)),
            Ok(true)
        );
    }

    #[test]
    fn a_denied_store_looks_like_a_missing_one() {
        let store = FakeStore {
            denied: vec!["secret"],
            ..FakeStore::new()
        };
        let err = unlock(&&store, "secret", &unlock_req("r", "o")).unwrap_err();
        assert_eq!(
            err,
            LockError::StoreNotFound("lock store secret not found".into())
        );
    }

    #[test]
    fn backend_failures_carry_daprs_prefixes() {
        let store = FakeStore {
            failure: Some("boom".into()),
            ..FakeStore::new()
        };
        let err = try_lock(&&store, "lockstore", &lock_req("r", "o", 1)).unwrap_err();
        assert_eq!(
            err,
            LockError::TryLockFailed("failed to try acquiring lock: boom".into())
        );
        assert_eq!((err.http_status(), err.error_code()), (500, "ERR_TRY_LOCK"));
        let err = unlock(&&store, "lockstore", &unlock_req("r", "o")).unwrap_err();
        assert_eq!(
            err,
            LockError::UnlockFailed("failed to release lock: boom".into())
        );
        assert_eq!((err.http_status(), err.error_code()), (500, "ERR_UNLOCK"));
    }

    #[test]
    fn a_resource_id_with_the_key_separator_fails_after_the_store_checks() {
        let store = FakeStore::new();
        let err = try_lock(&&store, "lockstore", &lock_req("a||b", "o", 1)).unwrap_err();
        assert_eq!(
            err,
            LockError::TryLockFailed(
                "failed to try acquiring lock: input key/keyPrefix 'a||b' can't contain '||'"
                    .into()
            )
        );
        let err = unlock(&&store, "lockstore", &unlock_req("||", "o")).unwrap_err();
        assert_eq!(
            err,
            LockError::UnlockFailed(
                "failed to release lock: input key/keyPrefix '||' can't contain '||'".into()
            )
        );
        // An unknown store is named first, and the store is never called.
        let err = try_lock(&&store, "nope", &lock_req("a||b", "o", 1)).unwrap_err();
        assert_eq!(
            err,
            LockError::StoreNotFound("lock store nope not found".into())
        );
        assert!(store.calls.borrow().is_empty());
        // A single `|` is an ordinary character.
        assert_eq!(
            try_lock(&&store, "lockstore", &lock_req("a|b", "o", 1)),
            Ok(true)
        );
    }

    #[test]
    fn large_expiry_does_not_overflow_the_ttl() {
        let store = FakeStore::new();
        try_lock(&&store, "lockstore", &lock_req("r", "o", i32::MAX)).unwrap();
        assert_eq!(store.calls.borrow()[0].3, Some(i32::MAX as u64 * 1000));
    }
}
