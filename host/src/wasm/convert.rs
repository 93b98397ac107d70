//! Conversions between the types of the WIT bindings and the host's and the rules' own:
//! the typed `lock` export's requests and outcomes, and the `store` import's errors and
//! compare-and-swap outcomes.

use super::bindings::exports::wasilock::lock::lock as typed_lock;
use super::bindings::wasilock::lock::store as wit_store;
use crate::stores::OpenError;
use crate::stores::backend::CasOutcome;
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
        Ok(CasOutcome::Swapped) => Ok(wit_store::CasOutcome::Swapped),
        Ok(CasOutcome::Conflict(live)) => Ok(wit_store::CasOutcome::Conflict(live)),
        Err(message) => Err(wit_store::Error::Backend(message)),
    }
}
