//! The store contract, run against every backend: absent and expired values, conflicts
//! carrying the live value, TTL, delete, purge, and atomicity under concurrency; fencing
//! tokens strictly increasing per grant (and per key), kept by renewal and release, read by
//! inspect.

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
        CasOutcome::Swapped(1)
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
        CasOutcome::Swapped(1)
    );
    assert_eq!(b.get("k").await.unwrap(), Some(b"b".to_vec()));
    assert_eq!(
        b.compare_and_swap("k", Some(b"b"), None, None)
            .await
            .unwrap(),
        CasOutcome::Swapped(1)
    );
    assert_eq!(b.get("k").await.unwrap(), None);
    assert_eq!(
        b.compare_and_swap("k", None, Some(b"c"), None)
            .await
            .unwrap(),
        CasOutcome::Swapped(2)
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
        CasOutcome::Swapped(2)
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
            if task.await.unwrap() == CasOutcome::Swapped(1) {
                winners += 1;
            }
        }
        assert_eq!(winners, 1, "round {round}");
    }
}

async fn swapped(b: &dyn Backend, key: &str, expected: Option<&[u8]>, new: Option<&[u8]>) -> u64 {
    match b
        .compare_and_swap(key, expected, new, Some(SHORT * 100))
        .await
        .unwrap()
    {
        CasOutcome::Swapped(token) => token,
        conflict => panic!("{key}: {conflict:?}"),
    }
}

async fn tokens_strictly_increase_per_grant(b: &dyn Backend, expiry: Expiry) {
    let mut last = 0;
    for round in 0..5 {
        let owner = format!("o{round}");
        let token = swapped(b, "f", None, Some(owner.as_bytes())).await;
        assert!(token > last, "round {round}: {token} after {last}");
        last = token;
        assert_eq!(
            b.compare_and_swap("f", None, Some(b"x"), None)
                .await
                .unwrap(),
            CasOutcome::Conflict(Some(owner.clone().into_bytes())),
            "a refused grant takes no token"
        );
        swapped(b, "f", Some(owner.as_bytes()), None).await;
    }
    // An expired lock's successor gets the next token too.
    b.compare_and_swap("f", None, Some(b"short"), Some(SHORT))
        .await
        .unwrap();
    tokio::time::sleep(SHORT + Duration::from_millis(100)).await;
    if expiry == Expiry::PurgedByHost {
        b.purge_expired().await.unwrap();
    }
    let after_expiry = swapped(b, "f", None, Some(b"next")).await;
    assert_eq!(after_expiry, last + 2);
    // Per key: another key starts at its own first token.
    assert_eq!(swapped(b, "g", None, Some(b"o")).await, 1);
}

async fn renewal_and_release_keep_the_token(b: &dyn Backend) {
    let token = swapped(b, "r", None, Some(b"id")).await;
    assert_eq!(
        swapped(b, "r", Some(b"id"), Some(b"id")).await,
        token,
        "renewal"
    );
    assert_eq!(swapped(b, "r", Some(b"id"), None).await, token, "release");
    assert_eq!(b.inspect("r").await.unwrap(), None);
    assert_eq!(
        swapped(b, "r", None, Some(b"id2")).await,
        token + 1,
        "the counter outlives the release"
    );
}

async fn inspect_reads_value_token_and_ttl(b: &dyn Backend) {
    assert_eq!(b.inspect("i").await.unwrap(), None);
    b.compare_and_swap("i", None, Some(b"v"), Some(SHORT * 100))
        .await
        .unwrap();
    let seen = b.inspect("i").await.unwrap().expect("live");
    assert_eq!(
        (seen.value.as_slice(), seen.fencing_token),
        (b"v".as_slice(), 1)
    );
    let ttl = seen.ttl.expect("an expiry");
    assert!(ttl <= SHORT * 100 && ttl > SHORT * 50, "{ttl:?}");
    b.compare_and_swap("forever", None, Some(b"f"), None)
        .await
        .unwrap();
    assert_eq!(b.inspect("forever").await.unwrap().unwrap().ttl, None);
    b.compare_and_swap("gone", None, Some(b"g"), Some(SHORT))
        .await
        .unwrap();
    tokio::time::sleep(SHORT + Duration::from_millis(100)).await;
    assert_eq!(b.inspect("gone").await.unwrap(), None, "expired");
}

async fn concurrent_grants_take_distinct_increasing_tokens(b: Arc<dyn Backend>) {
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let b = b.clone();
            tokio::spawn(async move {
                let owner = format!("owner-{i}");
                let mut tokens = Vec::new();
                for _ in 0..10 {
                    loop {
                        let outcome = b
                            .compare_and_swap("busy", None, Some(owner.as_bytes()), None)
                            .await
                            .unwrap();
                        if let CasOutcome::Swapped(token) = outcome {
                            tokens.push(token);
                            b.compare_and_swap("busy", Some(owner.as_bytes()), None, None)
                                .await
                                .unwrap();
                            break;
                        }
                        tokio::task::yield_now().await;
                    }
                }
                tokens
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        let tokens = task.await.unwrap();
        assert!(tokens.windows(2).all(|w| w[0] < w[1]), "{tokens:?}");
        all.extend(tokens);
    }
    all.sort_unstable();
    assert_eq!(all, (1..=80).collect::<Vec<u64>>(), "one token per grant");
}

async fn run_contract(make: impl Fn() -> Arc<dyn Backend>, expiry: Expiry) {
    absent_then_set_then_conflict(&*make()).await;
    swap_and_delete(&*make()).await;
    ttl_expires_and_frees_the_key(&*make(), expiry).await;
    renewal_replaces_the_expiry(&*make(), expiry).await;
    one_winner_among_concurrent_acquirers(make()).await;
    tokens_strictly_increase_per_grant(&*make(), expiry).await;
    renewal_and_release_keep_the_token(&*make()).await;
    inspect_reads_value_token_and_ttl(&*make()).await;
    concurrent_grants_take_distinct_increasing_tokens(make()).await;
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

#[tokio::test]
async fn embedded_backend_keeps_tokens_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locks.redb");
    {
        let b = EmbeddedBackend::open(&path).unwrap();
        assert_eq!(swapped(&b, "k", None, Some(b"a")).await, 1);
        assert_eq!(swapped(&b, "k", Some(b"a"), None).await, 1);
        assert_eq!(swapped(&b, "k", None, Some(b"b")).await, 2);
    }
    let b = EmbeddedBackend::open(&path).unwrap();
    assert_eq!(b.inspect("k").await.unwrap().unwrap().fencing_token, 2);
    assert_eq!(swapped(&b, "k", Some(b"b"), None).await, 2);
    assert_eq!(swapped(&b, "k", None, Some(b"c")).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_backend_meets_the_contract() {
    let Some(server) = redis_server::RedisServer::start() else {
        return;
    };
    // One database per check, so that each starts empty.
    let mut backends = Vec::new();
    for db in 0..9 {
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
            Ok(outcome) => break assert!(matches!(outcome, CasOutcome::Swapped(_)), "{outcome:?}"),
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
