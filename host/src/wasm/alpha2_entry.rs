//! The entry into a tenant's component for the alpha2 lock API: one call of the typed
//! `wasilock:lock/lock-alpha2` export through `Sandbox::call`, with the same warm
//! instances, limits and naming of a failure as every other entry. A component built before
//! WIT 0.1.2 lacks the export: the answer is then `ERR_NOT_SUPPORTED`, naming it.

use super::bindings::exports::wasilock::lock::lock_alpha2 as wit;
use super::component::HttpIndices;
use super::failure::GuestFailure;
use super::sandbox::{Called, Sandbox, WarmInstances};
use super::warm::WarmPool;
use std::time::Duration;
use wasilock_rules::alpha2::{
    Acquired, Alpha2Error, Alpha2Outcome, Alpha2Request, Grant, LockState,
};

/// The name of the export, as errors name it.
const EXPORT: &str = "wasilock:lock/lock-alpha2";

impl Sandbox {
    /// Runs one alpha2 request in `store_name` through the component.
    pub async fn alpha2(
        &self,
        store_name: &str,
        request: &Alpha2Request,
    ) -> Result<Result<Alpha2Outcome, Alpha2Error>, GuestFailure> {
        if !self.has_alpha2() {
            return Ok(Err(Alpha2Error::NotSupported(format!(
                "the lock component {} does not export {EXPORT} (built against WIT before 0.1.2)",
                self.component_name()
            ))));
        }
        match &self.warm {
            WarmInstances::Api(pool) => self.alpha2_call(pool, store_name, request).await,
            WarmInstances::WasiHttp(pool) => self.alpha2_call(pool, store_name, request).await,
        }
    }

    /// Calls the export on an instance from `pool`.
    async fn alpha2_call<H: HttpIndices>(
        &self,
        pool: &WarmPool<H>,
        store: &str,
        request: &Alpha2Request,
    ) -> Result<Result<Alpha2Outcome, Alpha2Error>, GuestFailure> {
        self.call(pool, async |instance, exports| {
            let export = exports
                .alpha2
                .as_ref()
                .ok_or_else(|| wasmtime::Error::msg(format!("no {EXPORT} export")))?;
            let outcome = match request {
                Alpha2Request::Acquire { resource_id, ttl } => export
                    .call_acquire(&mut *instance, store, resource_id, ttl.as_deref())
                    .await?
                    .map(|acquired| {
                        Alpha2Outcome::Acquired(match acquired {
                            wit::Acquired::Granted(grant) => Acquired::Granted(rule_grant(grant)),
                            wit::Acquired::Held => Acquired::Held,
                        })
                    }),
                Alpha2Request::Renew {
                    resource_id,
                    lock_id,
                    ttl,
                } => export
                    .call_renew(&mut *instance, store, resource_id, lock_id, ttl.as_deref())
                    .await?
                    .map(|grant| Alpha2Outcome::Renewed(rule_grant(grant))),
                Alpha2Request::Release {
                    resource_id,
                    lock_id,
                } => export
                    .call_release(&mut *instance, store, resource_id, lock_id)
                    .await?
                    .map(|()| Alpha2Outcome::Released),
                Alpha2Request::ForceRelease { resource_id } => export
                    .call_force_release(&mut *instance, store, resource_id)
                    .await?
                    .map(|()| Alpha2Outcome::Released),
                Alpha2Request::Inspect { resource_id } => export
                    .call_inspect(&mut *instance, store, resource_id)
                    .await?
                    .map(|state| {
                        Alpha2Outcome::State(state.map(|state| LockState {
                            fencing_token: state.fencing_token,
                            expires_in: state.expires_in_ms.map(Duration::from_millis),
                        }))
                    }),
            };
            Ok(Called::reusable(outcome.map_err(rule_error)))
        })
        .await
    }
}

/// The export's grant as the rules name it.
fn rule_grant(grant: wit::Grant) -> Grant {
    Grant {
        lock_id: grant.lock_id,
        fencing_token: grant.fencing_token,
        ttl: Duration::from_millis(grant.ttl_ms),
    }
}

/// The export's error as the rules name it.
fn rule_error(e: wit::LockError) -> Alpha2Error {
    match e {
        wit::LockError::MalformedRequest(m) => Alpha2Error::MalformedRequest(m),
        wit::LockError::StoreNotConfigured(m) => Alpha2Error::StoreNotConfigured(m),
        wit::LockError::StoreNotFound(m) => Alpha2Error::StoreNotFound(m),
        wit::LockError::LockNotFound(m) => Alpha2Error::LockNotFound(m),
        wit::LockError::TryLockFailed(m) => Alpha2Error::TryLockFailed(m),
        wit::LockError::UnlockFailed(m) => Alpha2Error::UnlockFailed(m),
    }
}
