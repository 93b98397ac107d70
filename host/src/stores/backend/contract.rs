//! The store contract, run against every backend: absent and expired values, conflicts
//! carrying the live value, TTL, delete, purge, and atomicity under concurrency.

use super::{
    Backend, CasOutcome, EmbeddedBackend, EtcdBackend, EtcdSettings, MemoryBackend, RedisBackend,
    RedisSettings,
};
use std::sync::Arc;
use std::time::Duration;
use wasilock_testkit::{etcd_cluster, redis_server};

const SHORT: Duration = Duration::from_millis(300);

async fn absent_then_set_then_conflict(b: &dyn Backend) {
    assert_eq!(b.get("k").await.unwrap(), None);
    assert_eq!(
        b.compare_and_swap("k", None, Some(b"a"), None)
            .await
            .unwrap(),
        CasOutcome::Swapped
    );
    assert_eq!(b.get("k").await.unwrap(), Some(b"a".to_vec()));
    assert_eq!(
        b.compare_and_swap("k", None, Some(b"b"), None)
            .await
            .unwrap(),
        CasOutcome::Conflict(Some(b"a".to_vec()))
    );
    assert_eq!(
        b.compare_and_swap("k", Some(b"x"), None, None)
            .await
            .unwrap(),
        CasOutcome::Conflict(Some(b"a".to_vec()))
    );
    assert_eq!(
        b.compare_and_swap("other", Some(b"a"), None, None)
            .await
            .unwrap(),
        CasOutcome::Conflict(None)
    );
}

async fn swap_and_delete(b: &dyn Backend) {
    b.compare_and_swap("k", None, Some(b"a"), None)
        .await
        .unwrap();
    assert_eq!(
        b.compare_and_swap("k", Some(b"a"), Some(b"b"), Some(SHORT * 10))
            .await
            .unwrap(),
        CasOutcome::Swapped
    );
    assert_eq!(b.get("k").await.unwrap(), Some(b"b".to_vec()));
    assert_eq!(
        b.compare_and_swap("k", Some(b"b"), None, None)
            .await
            .unwrap(),
        CasOutcome::Swapped
    );
    assert_eq!(b.get("k").await.unwrap(), None);
    assert_eq!(
        b.compare_and_swap("k", None, Some(b"c"), None)
            .await
            .unwrap(),
        CasOutcome::Swapped
    );
}

/// Whether `purge_expired` deletes and counts expired entries, or the server expires them
/// (etcd: on leases of whole seconds, shared for a second, checked every 500 ms).
#[derive(Clone, Copy, PartialEq)]
enum Expiry {
    PurgedByHost,
    ByServer,
    ByEtcdLeases,
}

impl Expiry {
    /// A short TTL the store can keep.
    fn short(self) -> Duration {
        match self {
            Expiry::ByEtcdLeases => Duration::from_secs(1),
            Expiry::PurgedByHost | Expiry::ByServer => SHORT,
        }
    }

    /// How long after its grant a value of TTL [`Expiry::short`] is surely gone.
    fn gone_after(self) -> Duration {
        match self {
            Expiry::ByEtcdLeases => Duration::from_secs(4),
            Expiry::PurgedByHost | Expiry::ByServer => SHORT + Duration::from_millis(100),
        }
    }
}

async fn ttl_expires_and_frees_the_key(b: &dyn Backend, expiry: Expiry) {
    let short = expiry.short();
    b.compare_and_swap("t", None, Some(b"a"), Some(short))
        .await
        .unwrap();
    b.compare_and_swap("forever", None, Some(b"f"), None)
        .await
        .unwrap();
    assert_eq!(b.get("t").await.unwrap(), Some(b"a".to_vec()), "not early");
    tokio::time::sleep(expiry.gone_after()).await;
    assert_eq!(b.get("t").await.unwrap(), None);
    assert_eq!(
        b.compare_and_swap("t", Some(b"a"), None, None)
            .await
            .unwrap(),
        CasOutcome::Conflict(None),
        "an expired value is absent"
    );
    let expected = if expiry == Expiry::PurgedByHost { 1 } else { 0 };
    assert_eq!(b.purge_expired().await.unwrap(), expected);
    assert_eq!(b.purge_expired().await.unwrap(), 0);
    assert_eq!(b.get("forever").await.unwrap(), Some(b"f".to_vec()));
    assert_eq!(
        b.compare_and_swap("t", None, Some(b"b"), Some(short))
            .await
            .unwrap(),
        CasOutcome::Swapped
    );
}

async fn renewal_replaces_the_expiry(b: &dyn Backend, expiry: Expiry) {
    let short = expiry.short();
    b.compare_and_swap("r", None, Some(b"a"), Some(short))
        .await
        .unwrap();
    b.compare_and_swap("r", Some(b"a"), Some(b"a"), Some(short * 10))
        .await
        .unwrap();
    tokio::time::sleep(expiry.gone_after()).await;
    assert_eq!(
        b.purge_expired().await.unwrap(),
        0,
        "the old expiry is forgotten"
    );
    assert_eq!(b.get("r").await.unwrap(), Some(b"a".to_vec()));
}

async fn one_winner_among_concurrent_acquirers(b: Arc<dyn Backend>) {
    for round in 0..20 {
        let key = format!("race-{round}");
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let (b, key) = (b.clone(), key.clone());
                tokio::spawn(async move {
                    let owner = format!("owner-{i}");
                    b.compare_and_swap(&key, None, Some(owner.as_bytes()), Some(SHORT * 100))
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut winners = 0;
        for task in tasks {
            if task.await.unwrap() == CasOutcome::Swapped {
                winners += 1;
            }
        }
        assert_eq!(winners, 1, "round {round}");
    }
}

async fn run_contract(make: impl Fn() -> Arc<dyn Backend>, expiry: Expiry) {
    absent_then_set_then_conflict(&*make()).await;
    swap_and_delete(&*make()).await;
    ttl_expires_and_frees_the_key(&*make(), expiry).await;
    renewal_replaces_the_expiry(&*make(), expiry).await;
    one_winner_among_concurrent_acquirers(make()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_backend_meets_the_contract() {
    run_contract(|| Arc::new(MemoryBackend::new()), Expiry::PurgedByHost).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_backend_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let counter = std::sync::atomic::AtomicUsize::new(0);
    run_contract(
        || {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Arc::new(EmbeddedBackend::open(&dir.path().join(format!("db-{n}.redb"))).unwrap())
        },
        Expiry::PurgedByHost,
    )
    .await;
}

#[tokio::test]
async fn embedded_backend_keeps_values_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locks.redb");
    {
        let b = EmbeddedBackend::open(&path).unwrap();
        b.compare_and_swap("k", None, Some(b"owner"), Some(Duration::from_secs(60)))
            .await
            .unwrap();
    }
    let b = EmbeddedBackend::open(&path).unwrap();
    assert_eq!(b.get("k").await.unwrap(), Some(b"owner".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_backend_meets_the_contract() {
    let Some(server) = redis_server::RedisServer::start() else {
        return;
    };
    // One database per check, so that each starts empty.
    let mut backends = Vec::new();
    for db in 0..5 {
        let metadata = [
            ("redisHost".to_string(), server.address()),
            ("redisDB".to_string(), db.to_string()),
        ]
        .into_iter()
        .collect();
        let settings = RedisSettings::from_metadata(&metadata).unwrap();
        backends
            .push(Arc::new(RedisBackend::connect(&settings).await.unwrap()) as Arc<dyn Backend>);
    }
    let next = std::sync::Mutex::new(backends.into_iter());
    run_contract(
        || next.lock().unwrap().next().expect("one database per check"),
        Expiry::ByServer,
    )
    .await;
}

#[tokio::test]
async fn redis_backend_fails_fast_when_unreachable() {
    let Some(mut server) = redis_server::RedisServer::start() else {
        return;
    };
    let metadata = [
        ("redisHost".to_string(), server.address()),
        ("readTimeout".to_string(), "500ms".to_string()),
        ("dialTimeout".to_string(), "500ms".to_string()),
    ]
    .into_iter()
    .collect();
    let settings = RedisSettings::from_metadata(&metadata).unwrap();
    let backend = RedisBackend::connect(&settings).await.unwrap();
    server.stop();
    let started = std::time::Instant::now();
    let err = backend
        .compare_and_swap("k", None, Some(b"o"), None)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains(&server.address()), "{err:#}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    server.restart();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match backend.compare_and_swap("k", None, Some(b"o"), None).await {
            Ok(outcome) => break assert_eq!(outcome, CasOutcome::Swapped),
            Err(e) => assert!(std::time::Instant::now() < deadline, "no recovery: {e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let err = RedisBackend::connect(&RedisSettings {
        port: 1,
        ..settings
    })
    .await
    .err()
    .unwrap();
    assert!(
        format!("{err:#}").contains("cannot connect to Redis at 127.0.0.1:1"),
        "{err:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn etcd_backend_meets_the_contract() {
    let Some(cluster) = etcd_cluster::EtcdCluster::start() else {
        return;
    };
    // One key prefix path per check, so that each starts empty.
    let mut backends = Vec::new();
    for check in 0..5 {
        let metadata = [
            ("endpoints".to_string(), cluster.endpoints()),
            ("keyPrefixPath".to_string(), format!("check-{check}")),
        ]
        .into_iter()
        .collect();
        let settings = EtcdSettings::from_metadata(&metadata).unwrap();
        backends.push(Arc::new(EtcdBackend::connect(&settings).await.unwrap()) as Arc<dyn Backend>);
    }
    let next = std::sync::Mutex::new(backends.into_iter());
    run_contract(
        || next.lock().unwrap().next().expect("one prefix per check"),
        Expiry::ByEtcdLeases,
    )
    .await;
}
