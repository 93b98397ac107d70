//! The store contract, run against every backend: absent and expired values, conflicts
//! carrying the live value, TTL, delete, purge, and atomicity under concurrency; fencing
//! tokens strictly increasing per grant (and per key), kept by renewal and release, read by
//! inspect. How exact the tokens are is the backend's ([`Tokens`]): a counter per key
//! (memory, embedded, Redis) is checked number by number; etcd's create revisions only as
//! the spec asks, strictly increasing per key.

use super::properties::{metadata_of, read_of};
use super::{
    Backend, CasOutcome, EmbeddedBackend, EtcdKind, FromMetadata, MemoryBackend, Metadata,
    OpenContext, RedisBackend, RedisKind, RedisSettings, StoreKind, swap,
};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wasilock_testkit::{etcd_cluster, redis_server};

const SHORT: Duration = Duration::from_millis(300);

/// What a backend's fencing tokens are.
#[derive(Clone, Copy, PartialEq)]
enum Tokens {
    /// A counter per key: 1 for its first grant, one more for each grant after.
    PerKeyCounter,
    /// Strictly increasing per key, above 0, but with gaps (etcd: the key's create
    /// revision, which the whole cluster shares).
    Increasing,
}

impl Tokens {
    /// The token a check expects of the grant `outcome`: for a counter, `counter` (checked
    /// where the check compares it); otherwise the token `outcome` carries, checked to be a
    /// grant above `earlier` (0 for a key's first grant).
    fn granted(self, outcome: &CasOutcome, counter: u64, earlier: u64) -> u64 {
        match (self, outcome) {
            (Tokens::PerKeyCounter, _) => counter,
            (Tokens::Increasing, CasOutcome::Swapped(token)) => {
                assert!(*token > earlier, "{token} after {earlier}");
                *token
            }
            (Tokens::Increasing, conflict) => panic!("not a grant: {conflict:?}"),
        }
    }
}

async fn absent_then_set_then_conflict(b: &dyn Backend, tokens: Tokens) {
    assert_eq!(b.get("k").await.unwrap(), None);
    let outcome = b
        .compare_and_swap(swap("k", None, Some(b"a"), None))
        .await
        .unwrap();
    assert_eq!(outcome, CasOutcome::Swapped(tokens.granted(&outcome, 1, 0)));
    assert_eq!(b.get("k").await.unwrap(), Some(b"a".to_vec()));
    assert_eq!(
        b.compare_and_swap(swap("k", None, Some(b"b"), None))
            .await
            .unwrap(),
        CasOutcome::Conflict(Some(b"a".to_vec()))
    );
    assert_eq!(
        b.compare_and_swap(swap("k", Some(b"x"), None, None))
            .await
            .unwrap(),
        CasOutcome::Conflict(Some(b"a".to_vec()))
    );
    assert_eq!(
        b.compare_and_swap(swap("other", Some(b"a"), None, None))
            .await
            .unwrap(),
        CasOutcome::Conflict(None)
    );
}

async fn swap_and_delete(b: &dyn Backend, tokens: Tokens) {
    let outcome = b
        .compare_and_swap(swap("k", None, Some(b"a"), None))
        .await
        .unwrap();
    let first = tokens.granted(&outcome, 1, 0);
    assert_eq!(
        b.compare_and_swap(swap("k", Some(b"a"), Some(b"b"), Some(SHORT * 10)))
            .await
            .unwrap(),
        CasOutcome::Swapped(first)
    );
    assert_eq!(b.get("k").await.unwrap(), Some(b"b".to_vec()));
    assert_eq!(
        b.compare_and_swap(swap("k", Some(b"b"), None, None))
            .await
            .unwrap(),
        CasOutcome::Swapped(first)
    );
    assert_eq!(b.get("k").await.unwrap(), None);
    let outcome = b
        .compare_and_swap(swap("k", None, Some(b"c"), None))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        CasOutcome::Swapped(tokens.granted(&outcome, 2, first))
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

    /// The most [`Backend::inspect`] may report as left of a value of TTL `asked` (whole
    /// seconds for etcd) right after its grant: etcd rounds a lease up to whole seconds and
    /// shares it for a second, so a lock may live a second longer than asked.
    fn longest_ttl(self, asked: Duration) -> Duration {
        match self {
            Expiry::ByEtcdLeases => asked + Duration::from_secs(1),
            Expiry::PurgedByHost | Expiry::ByServer => asked,
        }
    }
}

async fn ttl_expires_and_frees_the_key(b: &dyn Backend, expiry: Expiry, tokens: Tokens) {
    let short = expiry.short();
    let outcome = b
        .compare_and_swap(swap("t", None, Some(b"a"), Some(short)))
        .await
        .unwrap();
    let first = tokens.granted(&outcome, 1, 0);
    b.compare_and_swap(swap("forever", None, Some(b"f"), None))
        .await
        .unwrap();
    assert_eq!(b.get("t").await.unwrap(), Some(b"a".to_vec()), "not early");
    tokio::time::sleep(expiry.gone_after()).await;
    assert_eq!(b.get("t").await.unwrap(), None);
    assert_eq!(
        b.compare_and_swap(swap("t", Some(b"a"), None, None))
            .await
            .unwrap(),
        CasOutcome::Conflict(None),
        "an expired value is absent"
    );
    let expected = if expiry == Expiry::PurgedByHost { 1 } else { 0 };
    assert_eq!(b.purge_expired().await.unwrap(), expected);
    assert_eq!(b.purge_expired().await.unwrap(), 0);
    assert_eq!(b.get("forever").await.unwrap(), Some(b"f".to_vec()));
    let outcome = b
        .compare_and_swap(swap("t", None, Some(b"b"), Some(short)))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        CasOutcome::Swapped(tokens.granted(&outcome, 2, first))
    );
}

async fn renewal_replaces_the_expiry(b: &dyn Backend, expiry: Expiry) {
    let short = expiry.short();
    b.compare_and_swap(swap("r", None, Some(b"a"), Some(short)))
        .await
        .unwrap();
    b.compare_and_swap(swap("r", Some(b"a"), Some(b"a"), Some(short * 10)))
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

async fn one_winner_among_concurrent_acquirers(b: Arc<dyn Backend>, tokens: Tokens) {
    for round in 0..20 {
        let key = format!("race-{round}");
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let (b, key) = (b.clone(), key.clone());
                tokio::spawn(async move {
                    let owner = format!("owner-{i}");
                    b.compare_and_swap(swap(&key, None, Some(owner.as_bytes()), Some(SHORT * 100)))
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut winners = 0;
        for task in tasks {
            let outcome = task.await.unwrap();
            let won = match tokens {
                Tokens::PerKeyCounter => outcome == CasOutcome::Swapped(1),
                Tokens::Increasing => matches!(outcome, CasOutcome::Swapped(token) if token > 0),
            };
            if won {
                winners += 1;
            }
        }
        assert_eq!(winners, 1, "round {round}");
    }
}

async fn swapped(b: &dyn Backend, key: &str, expected: Option<&[u8]>, new: Option<&[u8]>) -> u64 {
    match b
        .compare_and_swap(swap(key, expected, new, Some(SHORT * 100)))
        .await
        .unwrap()
    {
        CasOutcome::Swapped(token) => token,
        conflict => panic!("{key}: {conflict:?}"),
    }
}

async fn tokens_strictly_increase_per_grant(b: &dyn Backend, expiry: Expiry, tokens: Tokens) {
    let mut last = 0;
    for round in 0..5 {
        let owner = format!("o{round}");
        let token = swapped(b, "f", None, Some(owner.as_bytes())).await;
        assert!(token > last, "round {round}: {token} after {last}");
        last = token;
        assert_eq!(
            b.compare_and_swap(swap("f", None, Some(b"x"), None))
                .await
                .unwrap(),
            CasOutcome::Conflict(Some(owner.clone().into_bytes())),
            "a refused grant takes no token"
        );
        swapped(b, "f", Some(owner.as_bytes()), None).await;
    }
    // An expired lock's successor gets the next token too.
    let outcome = b
        .compare_and_swap(swap("f", None, Some(b"short"), Some(expiry.short())))
        .await
        .unwrap();
    let expired = tokens.granted(&outcome, last + 1, last);
    tokio::time::sleep(expiry.gone_after()).await;
    if expiry == Expiry::PurgedByHost {
        b.purge_expired().await.unwrap();
    }
    let after_expiry = swapped(b, "f", None, Some(b"next")).await;
    assert_eq!(
        after_expiry,
        tokens.granted(&CasOutcome::Swapped(after_expiry), last + 2, expired)
    );
    // Per key: another key starts at its own first token.
    let other = swapped(b, "g", None, Some(b"o")).await;
    assert_eq!(other, tokens.granted(&CasOutcome::Swapped(other), 1, 0));
}

async fn renewal_and_release_keep_the_token(b: &dyn Backend, tokens: Tokens) {
    let token = swapped(b, "r", None, Some(b"id")).await;
    assert_eq!(
        swapped(b, "r", Some(b"id"), Some(b"id")).await,
        token,
        "renewal"
    );
    assert_eq!(swapped(b, "r", Some(b"id"), None).await, token, "release");
    assert_eq!(b.inspect("r").await.unwrap(), None);
    let next = swapped(b, "r", None, Some(b"id2")).await;
    assert_eq!(
        next,
        tokens.granted(&CasOutcome::Swapped(next), token + 1, token),
        "the counter outlives the release"
    );
}

async fn inspect_reads_value_token_and_ttl(b: &dyn Backend, expiry: Expiry, tokens: Tokens) {
    assert_eq!(b.inspect("i").await.unwrap(), None);
    let outcome = b
        .compare_and_swap(swap("i", None, Some(b"v"), Some(SHORT * 100)))
        .await
        .unwrap();
    let token = tokens.granted(&outcome, 1, 0);
    let seen = b.inspect("i").await.unwrap().expect("live");
    assert_eq!(
        (seen.value.as_slice(), seen.fencing_token),
        (b"v".as_slice(), token)
    );
    let ttl = seen.ttl.expect("an expiry");
    assert!(
        ttl <= expiry.longest_ttl(SHORT * 100) && ttl > SHORT * 50,
        "{ttl:?}"
    );
    b.compare_and_swap(swap("forever", None, Some(b"f"), None))
        .await
        .unwrap();
    assert_eq!(b.inspect("forever").await.unwrap().unwrap().ttl, None);
    b.compare_and_swap(swap("gone", None, Some(b"g"), Some(expiry.short())))
        .await
        .unwrap();
    tokio::time::sleep(expiry.gone_after()).await;
    assert_eq!(b.inspect("gone").await.unwrap(), None, "expired");
}

async fn concurrent_grants_take_distinct_increasing_tokens(b: Arc<dyn Backend>, tokens: Tokens) {
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let b = b.clone();
            tokio::spawn(async move {
                let owner = format!("owner-{i}");
                let mut tokens = Vec::new();
                for _ in 0..10 {
                    loop {
                        let outcome = b
                            .compare_and_swap(swap("busy", None, Some(owner.as_bytes()), None))
                            .await
                            .unwrap();
                        if let CasOutcome::Swapped(token) = outcome {
                            tokens.push(token);
                            b.compare_and_swap(swap("busy", Some(owner.as_bytes()), None, None))
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
    match tokens {
        Tokens::PerKeyCounter => {
            assert_eq!(all, (1..=80).collect::<Vec<u64>>(), "one token per grant")
        }
        Tokens::Increasing => {
            assert!(all[0] > 0, "{all:?}");
            all.dedup();
            assert_eq!(all.len(), 80, "one token per grant: {all:?}");
        }
    }
}

/// How many checks [`run_contract`] runs: it calls `make` once for each.
const CHECKS: usize = 9;

/// Runs every check on a backend of its own from `make`.
async fn run_contract(make: impl Fn() -> Arc<dyn Backend>, expiry: Expiry, tokens: Tokens) {
    absent_then_set_then_conflict(&*make(), tokens).await;
    swap_and_delete(&*make(), tokens).await;
    ttl_expires_and_frees_the_key(&*make(), expiry, tokens).await;
    renewal_replaces_the_expiry(&*make(), expiry).await;
    one_winner_among_concurrent_acquirers(make(), tokens).await;
    tokens_strictly_increase_per_grant(&*make(), expiry, tokens).await;
    renewal_and_release_keep_the_token(&*make(), tokens).await;
    inspect_reads_value_token_and_ttl(&*make(), expiry, tokens).await;
    concurrent_grants_take_distinct_increasing_tokens(make(), tokens).await;
}

/// Runs every check on a store of its own of `kind`, opened beforehand from the metadata
/// `metadata(check)` gives: a store apart from the others', so that each check starts empty.
async fn run_contract_on_stores<K: StoreKind>(
    kind: K,
    metadata: impl Fn(usize) -> Metadata,
    expiry: Expiry,
    tokens: Tokens,
) {
    let context = OpenContext {
        store_name: "contract",
        data_dir: Path::new("unused"),
    };
    let mut backends = Vec::new();
    for check in 0..CHECKS {
        let settings = kind.settings(&metadata(check)).unwrap();
        backends.push(kind.open(&settings, context).await.unwrap().backend);
    }
    let next = std::sync::Mutex::new(backends.into_iter());
    run_contract(
        || next.lock().unwrap().next().expect("one store per check"),
        expiry,
        tokens,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_backend_meets_the_contract() {
    run_contract(
        || Arc::new(MemoryBackend::new()),
        Expiry::PurgedByHost,
        Tokens::PerKeyCounter,
    )
    .await;
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
        Tokens::PerKeyCounter,
    )
    .await;
}

#[tokio::test]
async fn embedded_backend_keeps_values_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locks.redb");
    {
        let b = EmbeddedBackend::open(&path).unwrap();
        b.compare_and_swap(swap(
            "k",
            None,
            Some(b"owner"),
            Some(Duration::from_secs(60)),
        ))
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
    let host = server.address();
    // One database per check.
    let metadata = |db: usize| metadata_of(&[("redisHost", &host), ("redisDB", &db.to_string())]);
    run_contract_on_stores(RedisKind, metadata, Expiry::ByServer, Tokens::PerKeyCounter).await;
}

#[tokio::test]
async fn redis_backend_fails_fast_when_unreachable() {
    let Some(mut server) = redis_server::RedisServer::start() else {
        return;
    };
    let settings = read_of(
        RedisSettings::from_metadata,
        &[
            ("redisHost", server.address().as_str()),
            ("readTimeout", "500ms"),
            ("dialTimeout", "500ms"),
        ],
    )
    .unwrap();
    let backend = RedisBackend::connect(&settings).await.unwrap();
    server.stop();
    let started = std::time::Instant::now();
    let err = backend
        .compare_and_swap(swap("k", None, Some(b"o"), None))
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
        match backend
            .compare_and_swap(swap("k", None, Some(b"o"), None))
            .await
        {
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
    let endpoints = cluster.endpoints();
    // One key prefix path per check.
    let metadata = |check: usize| {
        let prefix = format!("check-{check}");
        metadata_of(&[("endpoints", &endpoints), ("keyPrefixPath", &prefix)])
    };
    run_contract_on_stores(EtcdKind, metadata, Expiry::ByEtcdLeases, Tokens::Increasing).await;
}
