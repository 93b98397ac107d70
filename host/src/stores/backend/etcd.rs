//! `lock.etcd`: locks in an etcd v3 cluster, which keeps them through the loss of a machine
//! (a majority of members suffices) and orders every grant by its revision.
//!
//! A lock is the key `<keyPrefixPath>/lock||<prefix>||<resourceId>` (Dapr's layout, as
//! Dapr's `state.etcd` places keys under `keyPrefixPath`) with the owner as value, on an
//! etcd lease. Every grant, renewal and release is one linearizable `Txn` ([`txn`]);
//! locks granted in one short window share a lease ([`leases`]), so the common acquire and
//! release are one round trip each. A lock never expires before its TTL: etcd leases are
//! whole seconds, so a TTL is rounded up, and the shared lease adds at most the window
//! (one second) to it. The key's create revision is the lock's fencing token: it strictly
//! increases with every grant of the resource, across hosts and across leader changes
//! ([`EtcdBackend::compare_and_swap_with_revision`], [`EtcdBackend::fencing_token`]).
//!
//! A request cut off (lost connection, leader change, timeout) has an unknown outcome: the
//! key is read back to decide it, and the request is sent again (to the next endpoint)
//! while the compare still holds. Each attempt is bounded by the dial timeout, and none
//! starts once twice the dial timeout has passed (a proposal a follower forwarded to a
//! leader that died can hang a whole attempt), so a call fails within three dial timeouts,
//! naming etcd's error. It is never answered as "not held" or "released" unseen.
//!
//! - [`settings`]: the component metadata, name by name;
//! - [`client`]: the connection (endpoints, failover, auth token);
//! - [`api`]: etcd's v3 gRPC API, generated from `host/proto/third_party/etcd`.
//!
//! Waiters are woken by one etcd watch per store on its key prefix: every lock key deleted
//! (released by any host, or expired with its lease) is a release event.

pub mod api;
mod client;
mod leases;
mod settings;
mod txn;
mod watch;

pub use settings::EtcdSettings;

use super::{Backend, CasOutcome, Inspected, OpenContext, Opened, StoreKind, Swap};
use crate::stores::events::ReleaseEvents;
use anyhow::Context;
use async_trait::async_trait;
use client::{Client, Failure};
use leases::{LeasePool, lease_seconds};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use txn::{Applied, Cas, ReadBack, fencing_token, range};

/// How long a new lease takes new locks: the most a lock can outlive its TTL by sharing.
const LEASE_WINDOW: Duration = Duration::from_secs(1);

/// The first pause between attempts after a failure worth retrying; it doubles up to
/// [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(25);
const MAX_PAUSE: Duration = Duration::from_millis(400);

/// The kind `lock.etcd`: [`EtcdSettings`] from the metadata; one connection per store,
/// kept on reload while the settings stay equal.
#[derive(Debug, Clone, Copy, Default)]
pub struct EtcdKind;

#[async_trait]
impl StoreKind for EtcdKind {
    const TYPE_NAME: &'static str = "lock.etcd";
    type Settings = EtcdSettings;

    async fn open(
        &self,
        settings: &EtcdSettings,
        _context: OpenContext<'_>,
    ) -> anyhow::Result<Opened> {
        Ok(Opened {
            backend: Arc::new(EtcdBackend::connect(settings).await?),
            location: format!("etcd {}", settings.describe()),
        })
    }
}

/// A lock store in etcd.
pub struct EtcdBackend {
    client: Arc<Client>,
    settings: EtcdSettings,
    leases: Mutex<LeasePool>,
    /// One lease grant at a time: concurrent acquires wait for it and share the lease.
    granting: tokio::sync::Mutex<()>,
}

impl EtcdBackend {
    /// Connects, logs in when `username` is set, and reads once: fails when no endpoint
    /// answers within the dial timeout, or when etcd refuses the credentials.
    pub async fn connect(settings: &EtcdSettings) -> anyhow::Result<Self> {
        let backend = EtcdBackend {
            client: Arc::new(Client::new(settings)?),
            settings: settings.clone(),
            leases: Mutex::new(LeasePool::new(LEASE_WINDOW)),
            granting: tokio::sync::Mutex::new(()),
        };
        let deadline = Instant::now() + settings.dial_timeout;
        let probe = settings.etcd_key("");
        backend
            .retrying(deadline, || async {
                backend.client.authenticate().await?;
                backend.client.range(range(&probe)).await
            })
            .await
            .with_context(|| format!("cannot connect to etcd at {}", settings.describe()))?;
        Ok(backend)
    }

    /// The compare-and-swap of [`Backend::compare_and_swap`], with the create revision of
    /// the key as it now is: the fencing token of the lock it holds (`None` when absent).
    pub async fn compare_and_swap_with_revision(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        ttl: Option<Duration>,
    ) -> anyhow::Result<(CasOutcome, Option<u64>)> {
        let key = self.settings.etcd_key(key);
        let deadline = self.deadline();
        let mut expected = expected;
        let mut fresh_lease = false;
        loop {
            let lease = match (new, ttl) {
                (Some(_), Some(ttl)) => Some(self.lease_for(ttl, deadline, fresh_lease).await?),
                _ => None,
            };
            let cas = Cas {
                key: &key,
                expected,
                new,
                lease: lease.map_or(0, |l| l.id),
            };
            let applied = match self.apply(&cas, deadline).await {
                Err(e) => {
                    if let Some(lease) = lease {
                        self.pool().uncertain(lease.id);
                    }
                    return Err(e);
                }
                Ok(None) => {
                    // The lease expired or was revoked before the Txn: it applied nothing.
                    if let Some(lease) = lease {
                        self.pool().lost(lease.id);
                    }
                    fresh_lease = true;
                    continue;
                }
                Ok(Some(applied)) => applied,
            };
            self.account(&cas, lease, &applied);
            if let (CasOutcome::Swapped(_), Some(lease), Some(ttl)) = (&applied.outcome, lease, ttl)
                && Instant::now() > lease.covers_until(ttl)
            {
                // Applied so late in the window that the lease may end before the TTL:
                // move the lock to a fresh lease (it is ours, so the compare holds).
                expected = new;
                fresh_lease = true;
                continue;
            }
            let revision = applied.revision.and_then(|r| u64::try_from(r).ok());
            return Ok((applied.outcome, revision));
        }
    }

    /// The fencing token of the lock on `key`: its create revision; `None` when unlocked.
    pub async fn fencing_token(&self, key: &str) -> anyhow::Result<Option<u64>> {
        let key = self.settings.etcd_key(key);
        let answer = self
            .retrying(self.deadline(), || self.client.range(range(&key)))
            .await?;
        Ok(answer
            .kvs
            .first()
            .and_then(|kv| u64::try_from(kv.create_revision).ok()))
    }

    /// The Txn of `cas`, sent again after lost answers while the key read back says it did
    /// not apply; `None` when etcd no longer knows its lease.
    async fn apply(&self, cas: &Cas<'_>, deadline: Instant) -> anyhow::Result<Option<Applied>> {
        let mut pause = FIRST_PAUSE;
        let mut lost: Option<Failure> = None;
        loop {
            if let Some(failure) = &lost {
                match self.client.range(range(cas.key)).await {
                    Ok(answer) => match cas.read_back(answer.kvs.first()) {
                        ReadBack::Applied(applied) => return Ok(Some(applied)),
                        ReadBack::Resend => {}
                    },
                    Err(read) if read.retry() && Instant::now() < deadline => {
                        pause = self.pause(pause).await;
                        continue;
                    }
                    Err(read) => {
                        anyhow::bail!("{read} (after {failure}: the outcome is unknown)")
                    }
                }
            }
            match self.client.txn(cas.request()).await {
                Ok(answer) => return cas.applied(&answer).map(Some),
                Err(failure)
                    if cas.lease != 0 && failure.status.code() == tonic::Code::NotFound =>
                {
                    return Ok(None);
                }
                Err(failure) if failure.retry() && Instant::now() < deadline => {
                    lost = Some(failure);
                    pause = self.pause(pause).await;
                }
                Err(failure) if failure.retry() => {
                    anyhow::bail!("{failure} (the outcome is unknown)")
                }
                Err(failure) => anyhow::bail!("{failure}"),
            }
        }
    }

    /// Settles the lease `lease` taken for `cas` after `applied`, and the lease the key
    /// left; revokes those left empty.
    fn account(&self, cas: &Cas<'_>, lease: Option<Lease>, applied: &Applied) {
        let swapped = matches!(applied.outcome, CasOutcome::Swapped(_));
        let revoke: Vec<i64> = {
            let mut pool = self.pool();
            let settled =
                lease.and_then(|lease| pool.settle(lease.id, swapped && cas.new.is_some()));
            let left = applied
                .left_lease
                .filter(|_| swapped)
                .and_then(|left| pool.detached(left));
            settled.into_iter().chain(left).collect()
        };
        for id in revoke {
            self.revoke_later(id);
        }
    }

    /// A lease of this process that keeps a lock of `ttl` granted now at least `ttl`.
    async fn lease_for(
        &self,
        ttl: Duration,
        deadline: Instant,
        fresh: bool,
    ) -> anyhow::Result<Lease> {
        let seconds = lease_seconds(ttl, LEASE_WINDOW);
        let reusable = |backend: &Self| {
            if fresh {
                return None;
            }
            backend
                .pool()
                .take(seconds, Instant::now())
                .map(|(id, asked_at)| Lease {
                    id,
                    asked_at,
                    seconds,
                })
        };
        if let Some(lease) = reusable(self) {
            return Ok(lease);
        }
        let _granting = self.granting.lock().await;
        if let Some(lease) = reusable(self) {
            return Ok(lease);
        }
        let asked_at = Instant::now();
        let id = self
            .retrying(deadline, || self.client.grant(seconds))
            .await?;
        let replaced = self.pool().granted(seconds, id, asked_at);
        if let Some(old) = replaced {
            self.revoke_later(old);
        }
        Ok(Lease {
            id,
            asked_at,
            seconds,
        })
    }

    fn revoke_later(&self, id: i64) {
        let client = self.client.clone();
        tokio::spawn(async move {
            if let Err(e) = client.revoke(id).await {
                tracing::debug!("revoking an empty etcd lease failed (it expires anyway): {e}");
            }
        });
    }

    /// `call` until it succeeds, fails for good, or `deadline` passes.
    async fn retrying<T, F, Fut>(&self, deadline: Instant, call: F) -> anyhow::Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut pause = FIRST_PAUSE;
        loop {
            match call().await {
                Ok(answer) => return Ok(answer),
                Err(failure) if failure.retry() && Instant::now() < deadline => {
                    pause = self.pause(pause).await;
                }
                Err(failure) => anyhow::bail!("{failure}"),
            }
        }
    }

    async fn pause(&self, pause: Duration) -> Duration {
        tokio::time::sleep(pause).await;
        (pause * 2).min(MAX_PAUSE)
    }

    /// When a call stops retrying: after two dial timeouts (each attempt is bounded by one,
    /// so a call ends within three).
    fn deadline(&self) -> Instant {
        Instant::now() + self.client.timeout() * 2
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, LeasePool> {
        self.leases.lock().expect("lease pool lock")
    }
}

/// A lease a lock goes on.
#[derive(Debug, Clone, Copy)]
struct Lease {
    id: i64,
    asked_at: Instant,
    seconds: i64,
}

impl Lease {
    /// The latest moment a lock of `ttl` can be granted on it and still live `ttl`.
    fn covers_until(&self, ttl: Duration) -> Instant {
        (self.asked_at + Duration::from_secs(self.seconds.unsigned_abs()))
            .checked_sub(ttl)
            .unwrap_or(self.asked_at)
    }
}

#[async_trait]
impl Backend for EtcdBackend {
    async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let key = self.settings.etcd_key(key);
        let answer = self
            .retrying(self.deadline(), || self.client.range(range(&key)))
            .await?;
        Ok(answer.kvs.into_iter().next().map(|kv| kv.value))
    }

    async fn compare_and_swap(&self, swap: Swap<'_>) -> anyhow::Result<CasOutcome> {
        let (outcome, _) = self
            .compare_and_swap_with_revision(swap.key, swap.expected, swap.new, swap.ttl)
            .await?;
        Ok(outcome)
    }

    /// The lock with its create revision as token and, as its remaining lifetime, what is
    /// left of the lease it is on: whole seconds, rounded down as etcd reports them. The
    /// lock lives at least that long; it may be longer than the TTL asked for (a lease is
    /// rounded up to whole seconds and shared for `LEASE_WINDOW`), never shorter.
    async fn inspect(&self, key: &str) -> anyhow::Result<Option<Inspected>> {
        let key = self.settings.etcd_key(key);
        let answer = self
            .retrying(self.deadline(), || self.client.range(range(&key)))
            .await?;
        let Some(kv) = answer.kvs.into_iter().next() else {
            return Ok(None);
        };
        let ttl = match kv.lease {
            0 => None,
            lease => {
                let left = self
                    .retrying(self.deadline(), || self.client.time_to_live(lease))
                    .await?;
                // A lease gone since the read took the lock with it.
                let Some(seconds) = left else {
                    return Ok(None);
                };
                Some(Duration::from_secs(seconds))
            }
        };
        Ok(Some(Inspected {
            fencing_token: fencing_token(Some(kv.create_revision)),
            value: kv.value,
            ttl,
        }))
    }

    fn watch_releases(&self, events: Weak<ReleaseEvents>) {
        let prefix = self.settings.etcd_key("");
        tokio::spawn(watch::forward_releases(self.client.clone(), prefix, events));
    }

    async fn purge_expired(&self) -> anyhow::Result<usize> {
        // etcd deletes a lease's keys when it expires.
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_covers_a_lock_granted_within_its_window() {
        let asked_at = Instant::now();
        let ttl = Duration::from_millis(2500);
        let lease = Lease {
            id: 1,
            asked_at,
            seconds: lease_seconds(ttl, LEASE_WINDOW),
        };
        assert_eq!(lease.seconds, 4);
        assert!(lease.covers_until(ttl) >= asked_at + LEASE_WINDOW);
        assert_eq!(
            lease.covers_until(ttl),
            asked_at + Duration::from_millis(1500)
        );
        assert!(lease.covers_until(Duration::from_secs(10)) < asked_at + LEASE_WINDOW);
    }
}

#[cfg(test)]
mod cluster_tests {
    use super::super::properties::read_of;
    use super::super::{FromMetadata, swap};
    use super::*;
    use wasilock_testkit::etcd_cluster::EtcdCluster;

    const LONG: Option<Duration> = Some(Duration::from_secs(60));

    async fn backend(cluster: &EtcdCluster) -> EtcdBackend {
        let endpoints = cluster.endpoints();
        let settings = read_of(EtcdSettings::from_metadata, &[("endpoints", &endpoints)]).unwrap();
        EtcdBackend::connect(&settings).await.unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_create_revision_is_a_fencing_token_across_hosts_and_leaders() {
        let Some(mut cluster) = EtcdCluster::start() else {
            return;
        };
        let (a, b) = (backend(&cluster).await, backend(&cluster).await);
        let (outcome, first) = a
            .compare_and_swap_with_revision("r", None, Some(b"a"), LONG)
            .await
            .unwrap();
        let first = first.unwrap();
        assert_eq!(outcome, CasOutcome::Swapped(first));
        assert_eq!(a.fencing_token("r").await.unwrap(), Some(first));
        assert_eq!(b.fencing_token("r").await.unwrap(), Some(first));
        // A renewal keeps the token; a refused grant shows the holder's.
        assert_eq!(
            a.compare_and_swap_with_revision("r", Some(b"a"), Some(b"a"), LONG)
                .await
                .unwrap(),
            (CasOutcome::Swapped(first), Some(first))
        );
        assert_eq!(
            b.compare_and_swap_with_revision("r", None, Some(b"b"), LONG)
                .await
                .unwrap(),
            (CasOutcome::Conflict(Some(b"a".to_vec())), Some(first))
        );
        assert_eq!(
            a.compare_and_swap_with_revision("r", Some(b"a"), None, None)
                .await
                .unwrap(),
            (CasOutcome::Swapped(first), None)
        );
        assert_eq!(a.fencing_token("r").await.unwrap(), None);
        let (_, second) = b
            .compare_and_swap_with_revision("r", None, Some(b"b"), LONG)
            .await
            .unwrap();
        let second = second.unwrap();
        assert!(second > first, "{second} > {first}");
        b.compare_and_swap(swap("r", Some(b"b"), None, None))
            .await
            .unwrap();
        // A new leader keeps counting up.
        let leader = cluster.leader();
        cluster.kill(leader);
        let (outcome, third) = a
            .compare_and_swap_with_revision("r", None, Some(b"a"), LONG)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        let third = third.unwrap();
        assert_eq!(outcome, CasOutcome::Swapped(third));
        assert!(third > second);
    }

    #[tokio::test]
    async fn no_answer_within_the_timeouts_fails_naming_etcd() {
        let Some(mut cluster) = EtcdCluster::start() else {
            return;
        };
        let settings = read_of(
            EtcdSettings::from_metadata,
            &[
                ("endpoints", cluster.endpoints().as_str()),
                ("dialTimeout", "500ms"),
            ],
        )
        .unwrap();
        let backend = EtcdBackend::connect(&settings).await.unwrap();
        cluster.kill_all();
        let err = backend
            .compare_and_swap(swap("k", None, Some(b"o"), LONG))
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("etcd at 127.0.0.1:"), "{err:#}");
        let err = EtcdBackend::connect(&settings).await.err().unwrap();
        assert!(
            format!("{err:#}").starts_with(&format!(
                "cannot connect to etcd at {}",
                cluster.endpoints()
            )),
            "{err:#}"
        );
    }
}
