//! Conversions between the types of the WIT bindings and the host's and the rules' own:
//! the typed `lock` export's requests and outcomes, and the `store` import's errors and
//! compare-and-swap outcomes.

use super::bindings::exports::wasilock::lock::lock as typed_lock;
use super::bindings::wasilock::lock::store as wit_store;
use crate::stores::OpenError;
use crate::stores::backend::{CasOutcome, Inspected};
use wasilock_rules::lease::{LockError, LockRequest, UnlockRequest, UnlockStatus};

/// A lock request as the typed export takes it.
pub(super) fn lock_request(request: LockRequest) -> typed_lock::LockRequest {
    typed_lock::LockRequest {
        resource_id: request.resource_id,
        lock_owner: request.lock_owner,
        expiry_in_seconds: request.expiry_in_seconds,
    }
}

/// An unlock request as the typed export takes it.
pub(super) fn unlock_request(request: UnlockRequest) -> typed_lock::UnlockRequest {
    typed_lock::UnlockRequest {
        resource_id: request.resource_id,
        lock_owner: request.lock_owner,
    }
}

/// The typed export's error as the rules name it.
pub(super) fn rule_error(e: typed_lock::LockError) -> LockError {
    match e {
        typed_lock::LockError::MalformedRequest(m) => LockError::MalformedRequest(m),
        typed_lock::LockError::StoreNotConfigured(m) => LockError::StoreNotConfigured(m),
        typed_lock::LockError::StoreNotFound(m) => LockError::StoreNotFound(m),
        typed_lock::LockError::TryLockFailed(m) => LockError::TryLockFailed(m),
        typed_lock::LockError::UnlockFailed(m) => LockError::UnlockFailed(m),
    }
}

/// The typed export's unlock status as the rules name it.
pub(super) fn rule_status(status: typed_lock::UnlockStatus) -> UnlockStatus {
    match status {
        typed_lock::UnlockStatus::Success => UnlockStatus::Success,
        typed_lock::UnlockStatus::LockDoesNotExist => UnlockStatus::LockDoesNotExist,
        typed_lock::UnlockStatus::LockBelongsToOthers => UnlockStatus::LockBelongsToOthers,
        typed_lock::UnlockStatus::InternalError => UnlockStatus::InternalError,
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

/// A backend's compare-and-swap outcome (or error message) as the `store` import gives it.
pub(super) fn cas_outcome(
    outcome: Result<CasOutcome, String>,
) -> Result<wit_store::CasOutcome, wit_store::Error> {
    match outcome {
        Ok(CasOutcome::Swapped(_)) => Ok(wit_store::CasOutcome::Swapped),
        Ok(CasOutcome::Conflict(live)) => Ok(wit_store::CasOutcome::Conflict(live)),
        Err(message) => Err(wit_store::Error::Backend(message)),
    }
}

/// A backend's compare-and-swap outcome (or error message) with its fencing token, as
/// `compare-and-swap-fenced` gives it.
pub(super) fn fenced_outcome(
    outcome: Result<CasOutcome, String>,
) -> Result<wit_store::FencedOutcome, wit_store::Error> {
    match outcome {
        Ok(CasOutcome::Swapped(token)) => Ok(wit_store::FencedOutcome::Swapped(token)),
        Ok(CasOutcome::Conflict(live)) => Ok(wit_store::FencedOutcome::Conflict(live)),
        Err(message) => Err(wit_store::Error::Backend(message)),
    }
}

/// A backend's inspection (or error message) as `inspect` gives it.
pub(super) fn entry(
    inspected: Result<Option<Inspected>, String>,
) -> Result<Option<wit_store::Entry>, wit_store::Error> {
    match inspected {
        Ok(entry) => Ok(entry.map(|entry| wit_store::Entry {
            value: entry.value,
            fencing_token: entry.fencing_token,
            ttl_ms: entry
                .ttl
                .map(|ttl| u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)),
        })),
        Err(message) => Err(wit_store::Error::Backend(message)),
    }
}
