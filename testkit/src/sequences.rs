//! Lock sequences run against a host: Dapr's conformance sequence (over HTTP, or through any
//! [`LockClient`]) and rounds of concurrent acquirers with exactly one winner.

use crate::host::{Host, Reply, agent, try_lock, unlock};
use std::fmt::Debug;
use std::time::{Duration, Instant};

/// Something that takes and releases locks: a host over HTTP, or a component's typed API.
pub trait LockClient {
    /// What a refused call gives.
    type Error: Debug + PartialEq;
    /// `TryLock`: `Ok(success)`, or the refusal.
    fn try_lock(
        &self,
        store: &str,
        resource: &str,
        owner: &str,
        expiry: i32,
    ) -> Result<bool, Self::Error>;
    /// `Unlock`: `Ok(status)` numbered as Dapr's `UnlockResponse.Status`, or the refusal.
    fn unlock(&self, store: &str, resource: &str, owner: &str) -> Result<i64, Self::Error>;
}

/// The lock API over HTTP at a base address: any host of the lock component, ours or another.
pub struct HttpLockClient {
    base: String,
    agent: ureq::Agent,
}

impl HttpLockClient {
    /// A client of the host at `base` (`http://HOST:PORT`), with keep-alive.
    pub fn new(base: &str) -> Self {
        HttpLockClient {
            base: base.to_string(),
            agent: agent(),
        }
    }
}

impl LockClient for HttpLockClient {
    type Error = Reply;
    fn try_lock(
        &self,
        store: &str,
        resource: &str,
        owner: &str,
        expiry: i32,
    ) -> Result<bool, Reply> {
        try_lock(&self.agent, &self.base, store, resource, owner, expiry)
    }
    fn unlock(&self, store: &str, resource: &str, owner: &str) -> Result<i64, Reply> {
        unlock(&self.agent, &self.base, store, resource, owner)
    }
}

/// Dapr's conformance sequence (components-contrib tests/conformance/lock), over HTTP.
pub fn conformance_sequence(host: &Host, store: &str) {
    conformance_sequence_with(&HttpLockClient::new(&host.base), store);
}

/// Dapr's conformance sequence through `client`, including a 3 s wait for a lock to expire.
pub fn conformance_sequence_with<C: LockClient + ?Sized>(client: &C, store: &str) {
    let run = format!("{:x}", std::process::id() as u64 * 1_000_003 + now_nanos());
    let (key1, key2) = (format!("key1-{run}"), format!("key2-{run}"));
    assert_eq!(client.try_lock(store, &key1, "conftest", 15), Ok(true));
    assert_eq!(client.try_lock(store, &key2, "conftest", 3), Ok(true));
    let expires = Instant::now() + Duration::from_secs(3);
    assert_eq!(
        client.try_lock(store, &key1, "conftest", 15),
        Ok(false),
        "not reentrant"
    );
    assert_eq!(client.unlock(store, "nonexistent", "conftest"), Ok(1));
    assert_eq!(client.unlock(store, &key1, "nonowner"), Ok(2));
    assert_eq!(client.unlock(store, &key1, "conftest"), Ok(0));
    std::thread::sleep(expires.saturating_duration_since(Instant::now()));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if client.try_lock(store, &key2, "conftest", 3) == Ok(true) {
            break;
        }
        assert!(Instant::now() < deadline, "key2 never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// `count` threads each try to lock `resource` through one of `bases` at once, `rounds`
/// times; exactly one wins every round, and then releases.
pub fn one_winner_rounds(
    bases: &[impl AsRef<str>],
    store: &str,
    resource: &str,
    count: usize,
    rounds: usize,
) {
    let agents: Vec<ureq::Agent> = (0..count).map(|_| agent()).collect();
    for round in 0..rounds {
        let barrier = std::sync::Barrier::new(count);
        let winners: Vec<(usize, String)> = std::thread::scope(|scope| {
            let handles: Vec<_> = agents
                .iter()
                .enumerate()
                .map(|(i, agent)| {
                    let base = bases[i % bases.len()].as_ref();
                    let barrier = &barrier;
                    scope.spawn(move || {
                        let owner = format!("owner-{round}-{i}");
                        barrier.wait();
                        let won = try_lock(agent, base, store, resource, &owner, 30)
                            .unwrap_or_else(|reply| panic!("TryLock failed: {reply:?}"));
                        won.then_some((i, owner))
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().unwrap())
                .collect()
        });
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let (i, owner) = &winners[0];
        let base = bases[i % bases.len()].as_ref();
        assert_eq!(unlock(&agents[*i], base, store, resource, owner), Ok(0));
    }
}
