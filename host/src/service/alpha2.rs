//! A tenant's alpha2 lock operations, transport-free: one call into the lock logic per
//! try, the force-release permission, and the waiting acquire (FIFO per resource among
//! this tenant's waiters, woken by the store's release events or a timer at the holder's
//! expiry: see [`crate::waiting`]), its waiters counted in the store's metrics here (the
//! waiting module knows no telemetry).

use super::{
    Acquired, Alpha2Error, Alpha2Outcome, Alpha2Request, Grant, LockService, Operation, Refusal,
    Tenant,
};
use crate::telemetry::{StoreMetrics, WaitOutcome};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Instant;
use wasilock_rules::duration;

impl<S: LockService> Tenant<S> {
    /// Runs one alpha2 request: a force release only when the tenant may; an acquire or
    /// renewal with its TTL held to the store's `defaultTTL` and `maxTTL` (a TTL above the
    /// maximum is `ERR_MALFORMED_REQUEST` naming it).
    pub async fn alpha2(
        &self,
        store: &str,
        request: &Alpha2Request,
    ) -> Result<Alpha2Outcome, Alpha2Error> {
        if matches!(request, Alpha2Request::ForceRelease { .. }) && !self.alpha2.allow_force_unlock
        {
            return Err(Alpha2Error::PermissionDenied(format!(
                "app {:?} may not force a release: its Tenant resource needs allowForceUnlock: true",
                self.app_id
            )));
        }
        let bounded = self.within_ttl_limits(store, request)?;
        match self
            .service
            .alpha2(store, bounded.as_ref().unwrap_or(request))
            .await
        {
            Ok(outcome) => outcome,
            Err(failure) => {
                let operation = if request.releases() {
                    Operation::Unlock
                } else {
                    Operation::TryLock
                };
                Err(match self.refusal(operation, &failure) {
                    Refusal::Busy(message) => Alpha2Error::TooManyRequests(message),
                    Refusal::Lock(error) => match operation {
                        Operation::Unlock => Alpha2Error::UnlockFailed(error.message().into()),
                        Operation::TryLock => Alpha2Error::TryLockFailed(error.message().into()),
                    },
                })
            }
        }
    }

    /// `request` with the TTL its store's `defaultTTL` and `maxTTL` give it, as a Go duration
    /// the component reads (`None` for a request that takes no TTL, or for a store this
    /// tenant does not see: the component answers that). A TTL above the store's maximum is
    /// refused here, before the component, which knows only the default bounds.
    fn within_ttl_limits(
        &self,
        store: &str,
        request: &Alpha2Request,
    ) -> Result<Option<Alpha2Request>, Alpha2Error> {
        let (Alpha2Request::Acquire { ttl, .. } | Alpha2Request::Renew { ttl, .. }) = request
        else {
            return Ok(None);
        };
        let Ok(bucket) = self.service.stores().bucket(store) else {
            return Ok(None);
        };
        let resolved = Some(duration::format(bucket.ttl_limits().ttl(ttl.as_deref())?));
        let mut bounded = request.clone();
        if let Alpha2Request::Acquire { ttl, .. } | Alpha2Request::Renew { ttl, .. } = &mut bounded
        {
            *ttl = resolved;
        }
        Ok(Some(bounded))
    }

    /// Acquires `resource_id` for `ttl`: at once or `ERR_RESOURCE_LOCKED` when `wait` is
    /// `None`, else waiting at most `wait` (bounded by `--max-lock-wait`) behind the
    /// tenant's earlier waiters for it. Dropping the future leaves the queue at once.
    pub async fn acquire(
        &self,
        store: &str,
        resource_id: &str,
        ttl: Option<String>,
        wait: Option<Duration>,
    ) -> Result<Grant, Alpha2Error> {
        let request = Alpha2Request::Acquire {
            resource_id: resource_id.to_owned(),
            ttl,
        };
        let waiters = &self.alpha2.waiters;
        // Nobody queued (or no wait): try at once. With a queue, a newcomer waits its turn.
        if (wait.is_none() || waiters.waiting(store, resource_id) == 0)
            && let Some(grant) = self.try_acquire(store, &request).await?
        {
            return Ok(grant);
        }
        let Some(wait) = wait else {
            return Err(Alpha2Error::ResourceLocked(format!(
                "lock {resource_id} is held in lock store {store}"
            )));
        };
        let wait = wait.min(self.alpha2.max_lock_wait);
        let deadline = Instant::now() + wait;
        let timed_out = || {
            Alpha2Error::ResourceLocked(format!(
                "lock {resource_id} in lock store {store} is still held after waiting {}",
                duration::format(wait)
            ))
        };
        let ticket = waiters.join(store, resource_id);
        // The acquire above validated the store and resource: they open and have a key.
        let bucket = self
            .service
            .stores()
            .bucket(store)
            .map_err(|_| Alpha2Error::StoreNotFound(format!("lock store {store} not found")))?;
        let key: Arc<str> = bucket
            .key(resource_id)
            .map_err(Alpha2Error::MalformedRequest)?
            .into();
        let mut record = WaitRecord::join(self.service.stores().metrics(store).cloned());
        loop {
            if !ticket.is_head() {
                tokio::select! {
                    () = ticket.woken() => continue,
                    () = tokio::time::sleep_until(deadline) => {
                        record.outcome = WaitOutcome::Timeout;
                        return Err(timed_out());
                    }
                }
            }
            // Listen before trying, so that a release in between is not missed.
            let mut released = bucket.release_events().subscribe();
            if let Some(grant) = self.try_acquire(store, &request).await? {
                record.outcome = WaitOutcome::Granted;
                return Ok(grant);
            }
            let expires_in = match self
                .alpha2(
                    store,
                    &Alpha2Request::Inspect {
                        resource_id: resource_id.to_owned(),
                    },
                )
                .await?
            {
                Alpha2Outcome::State(Some(state)) => state.expires_in,
                // Freed since the try: try again at once.
                _ => continue,
            };
            let expiry = async {
                match expires_in {
                    Some(left) => tokio::time::sleep(left).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = released_key(&mut released, &key) => {}
                () = expiry => {}
                () = ticket.woken() => {}
                () = tokio::time::sleep_until(deadline) => {
                    record.outcome = WaitOutcome::Timeout;
                    return Err(timed_out());
                }
            }
        }
    }

    /// One acquire attempt: the grant, or `None` when held.
    async fn try_acquire(
        &self,
        store: &str,
        request: &Alpha2Request,
    ) -> Result<Option<Grant>, Alpha2Error> {
        match self.alpha2(store, request).await? {
            Alpha2Outcome::Acquired(Acquired::Granted(grant)) => Ok(Some(grant)),
            Alpha2Outcome::Acquired(Acquired::Held) => Ok(None),
            other => Err(Alpha2Error::TryLockFailed(format!(
                "the lock component answered an acquire with {other:?}"
            ))),
        }
    }
}

/// A waiter as the metrics see it: counted in `wasilock_waiters` from its joining until it
/// is dropped, its wait then recorded under its outcome (`gone` unless set: the client went
/// away, or a try failed).
struct WaitRecord {
    metrics: Option<Arc<StoreMetrics>>,
    joined: Instant,
    outcome: WaitOutcome,
}

impl WaitRecord {
    /// A waiter joining now, counted in `metrics` (nothing when `None`).
    fn join(metrics: Option<Arc<StoreMetrics>>) -> Self {
        if let Some(metrics) = &metrics {
            metrics.waiter_joined();
        }
        WaitRecord {
            metrics,
            joined: Instant::now(),
            outcome: WaitOutcome::Gone,
        }
    }
}

impl Drop for WaitRecord {
    fn drop(&mut self) {
        if let Some(metrics) = &self.metrics {
            metrics.waiter_left(self.outcome, self.joined.elapsed());
        }
    }
}

/// Resolves when `key` is released (or events were missed: then it may have been).
async fn released_key(released: &mut broadcast::Receiver<Arc<str>>, key: &str) {
    loop {
        match released.recv().await {
            Ok(k) if &*k == key => return,
            Ok(_) => {}
            Err(RecvError::Lagged(_)) => return,
            Err(RecvError::Closed) => std::future::pending().await,
        }
    }
}

/// What a lock held by a stream tells its client after the grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldEvent {
    /// Renewed; still held.
    Ping,
    /// The lock is lost (force release, expiry, store failure); the stream ends.
    Lost(String),
}

impl<S: LockService> Tenant<S> {
    /// Holds `grant` on `resource_id` while `events` is open: renews it every third of its
    /// TTL (telling the client [`HoldEvent::Ping`]), checks it at once when the store
    /// reports the key released (a force release), and releases it as soon as the client
    /// closes `events`. Ends after [`HoldEvent::Lost`] when the lock cannot be kept.
    pub async fn hold(
        &self,
        store: &str,
        resource_id: &str,
        grant: Grant,
        events: tokio::sync::mpsc::Sender<HoldEvent>,
    ) {
        let interval = (grant.ttl / 3).max(Duration::from_millis(1));
        let key = self
            .service
            .stores()
            .bucket(store)
            .ok()
            .and_then(|bucket| Some((bucket.key(resource_id).ok()?, bucket)));
        let mut released = key
            .as_ref()
            .map(|(_, bucket)| bucket.release_events().subscribe());
        let renew = Alpha2Request::Renew {
            resource_id: resource_id.to_owned(),
            lock_id: grant.lock_id.clone(),
            ttl: Some(duration::format(grant.ttl)),
        };
        let mut next = Instant::now() + interval;
        loop {
            let key_released = async {
                match (&mut released, &key) {
                    (Some(released), Some((key, _))) => released_key(released, key).await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                () = events.closed() => break,
                () = tokio::time::sleep_until(next) => next = Instant::now() + interval,
                () = key_released => {}
            }
            match self.alpha2(store, &renew).await {
                Ok(_) => {
                    if events.send(HoldEvent::Ping).await.is_err() {
                        break;
                    }
                }
                Err(error) => {
                    let message = match error {
                        Alpha2Error::LockNotFound(_) => format!(
                            "the lock on {resource_id} in lock store {store} was lost (released by force, or expired)"
                        ),
                        other => format!(
                            "the lock on {resource_id} in lock store {store} could not be renewed: {}",
                            other.message()
                        ),
                    };
                    let _ = events.send(HoldEvent::Lost(message)).await;
                    return;
                }
            }
        }
        // The client went away: release at once.
        let release = Alpha2Request::Release {
            resource_id: resource_id.to_owned(),
            lock_id: grant.lock_id,
        };
        if let Err(e) = self.alpha2(store, &release).await {
            tracing::debug!(app_id = %self.app_id, store, resource_id, "releasing a streamed lock: {}", e.message());
        }
    }
}
