//! Which etcd lease a new lock goes on: locks granted within one short window share a
//! lease, so that the common acquire is one round trip (the `Txn`), not two.
//!
//! etcd leases count whole seconds. A lock of TTL `t` goes on a lease of
//! `ceil(t + window)` seconds granted at most `window` before the lock's `Txn`: the lease
//! outlives the lock's TTL whatever moment of the window the lock came in, so a lock never
//! expires early; it may expire late, by the rounding up and by at most `window` (and by
//! etcd's own slack: the leader checks expiries every 500 ms, and a new leader restarts
//! every lease's clock). The pool counts the locks this process put on each lease, and the
//! requests on their way to put one; a lease whose window closed and that has neither any
//! more is revoked. A lease that may hold a lock whose fate is unknown is never revoked (it
//! just expires).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The whole seconds of the lease that carries locks of `ttl` granted within `window` of
/// the lease's grant: `ttl + window` rounded up, at least 1.
pub fn lease_seconds(ttl: Duration, window: Duration) -> i64 {
    let total = ttl + window;
    let secs = total.as_secs() + u64::from(total.subsec_nanos() > 0);
    i64::try_from(secs.max(1)).unwrap_or(i64::MAX)
}

/// The lease currently handed out for one lease length.
#[derive(Debug, Clone, Copy)]
struct Current {
    id: i64,
    /// When the grant was asked for: etcd's clock for it started later.
    asked_at: Instant,
}

/// What this process knows of a lease it granted.
#[derive(Debug, Default, Clone, Copy)]
struct Held {
    /// Locks this process put on it and has not seen leave it.
    locks: usize,
    /// Requests taking it that have not settled yet.
    pending: usize,
    /// Its window closed: no new lock goes on it.
    closed: bool,
    /// A lock may be on it that the count does not know of.
    uncertain: bool,
}

/// The leases this process hands out, by length, and the locks it put on each.
#[derive(Debug)]
pub struct LeasePool {
    window: Duration,
    current: HashMap<i64, Current>,
    held: HashMap<i64, Held>,
}

impl LeasePool {
    /// An empty pool whose leases take new locks for `window` after their grant.
    pub fn new(window: Duration) -> Self {
        LeasePool {
            window,
            current: HashMap::new(),
            held: HashMap::new(),
        }
    }

    /// Takes a lease of `seconds` that can still take a lock at `now`, with when its grant
    /// was asked for; the request must [`LeasePool::settle`] it.
    pub fn take(&mut self, seconds: i64, now: Instant) -> Option<(i64, Instant)> {
        let current = *self
            .current
            .get(&seconds)
            .filter(|c| now < c.asked_at + self.window)?;
        self.held.get_mut(&current.id)?.pending += 1;
        Some((current.id, current.asked_at))
    }

    /// Records the lease `id` of `seconds`, asked for at `asked_at`, as the one new locks of
    /// that length go on, taken by the request that asked for it; returns the lease it
    /// replaces if it can be revoked now.
    pub fn granted(&mut self, seconds: i64, id: i64, asked_at: Instant) -> Option<i64> {
        let held = Held {
            pending: 1,
            ..Held::default()
        };
        self.held.insert(id, held);
        let previous = self.current.insert(seconds, Current { id, asked_at })?;
        self.close(previous.id)
    }

    /// A request that took lease `id` is done: it put a lock on it (`attached`) or not;
    /// returns the lease if it can be revoked now.
    pub fn settle(&mut self, id: i64, attached: bool) -> Option<i64> {
        let held = self.held.get_mut(&id)?;
        held.pending = held.pending.saturating_sub(1);
        if attached {
            held.locks += 1;
        }
        self.revocable(id)
    }

    /// Forgets the lease `id` as a current lease (etcd no longer knows it).
    pub fn lost(&mut self, id: i64) {
        self.current.retain(|_, c| c.id != id);
        self.held.remove(&id);
    }

    /// A request that took lease `id` failed: a lock may or may not be on it, so it is
    /// never revoked.
    pub fn uncertain(&mut self, id: i64) {
        if let Some(held) = self.held.get_mut(&id) {
            held.pending = held.pending.saturating_sub(1);
            held.uncertain = true;
        }
    }

    /// A lock of this process left lease `id` (released, or moved by a renewal); returns
    /// the lease if it can be revoked now.
    pub fn detached(&mut self, id: i64) -> Option<i64> {
        let held = self.held.get_mut(&id)?;
        held.locks = held.locks.saturating_sub(1);
        self.revocable(id)
    }

    fn close(&mut self, id: i64) -> Option<i64> {
        self.held.get_mut(&id)?.closed = true;
        self.revocable(id)
    }

    fn revocable(&mut self, id: i64) -> Option<i64> {
        let held = *self.held.get(&id)?;
        if held.closed && held.locks == 0 && held.pending == 0 {
            self.held.remove(&id);
            if held.uncertain {
                return None;
            }
            return Some(id);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(1);

    #[test]
    fn leases_round_up_and_cover_the_window() {
        assert_eq!(lease_seconds(Duration::from_secs(3), WINDOW), 4);
        assert_eq!(lease_seconds(Duration::from_millis(2001), WINDOW), 4);
        assert_eq!(lease_seconds(Duration::from_millis(300), Duration::ZERO), 1);
        assert_eq!(lease_seconds(Duration::ZERO, Duration::ZERO), 1);
        // Whatever moment of the window a lock comes in, its lease outlives its TTL.
        for ttl_ms in [1, 999, 1000, 1500, 29_999] {
            let ttl = Duration::from_millis(ttl_ms);
            let lease = Duration::from_secs(lease_seconds(ttl, WINDOW) as u64);
            assert!(lease >= ttl + WINDOW, "{ttl:?}");
            assert!(lease < ttl + WINDOW + Duration::from_secs(1), "{ttl:?}");
        }
    }

    #[test]
    fn a_lease_takes_locks_during_its_window_only() {
        let mut pool = LeasePool::new(WINDOW);
        let t0 = Instant::now();
        assert_eq!(pool.take(4, t0), None);
        assert_eq!(pool.granted(4, 7, t0), None);
        assert_eq!(pool.take(4, t0 + WINDOW / 2), Some((7, t0)));
        assert_eq!(pool.take(5, t0), None, "one lease per length");
        assert_eq!(pool.take(4, t0 + WINDOW), None);
        pool.lost(7);
        assert_eq!(pool.take(4, t0), None);
    }

    #[test]
    fn a_lease_is_revoked_once_closed_and_empty() {
        let mut pool = LeasePool::new(WINDOW);
        let t0 = Instant::now();
        pool.granted(4, 1, t0);
        assert_eq!(pool.settle(1, true), None);
        pool.take(4, t0);
        assert_eq!(pool.settle(1, true), None);
        assert_eq!(pool.detached(1), None, "its window is still open");
        assert_eq!(
            pool.granted(4, 2, t0 + WINDOW),
            None,
            "one lock still on it"
        );
        assert_eq!(pool.detached(1), Some(1));
        assert_eq!(pool.detached(1), None, "revoked once");
        // Empty when its window closes: revoked when the next one replaces it.
        assert_eq!(pool.settle(2, false), None);
        assert_eq!(pool.granted(4, 3, t0 + WINDOW * 2), Some(2));
        // A request on its way to put a lock keeps the lease.
        pool.take(4, t0 + WINDOW * 2);
        assert_eq!(pool.settle(3, false), None);
        assert_eq!(
            pool.granted(4, 4, t0 + WINDOW * 3),
            None,
            "one request on its way"
        );
        assert_eq!(pool.settle(3, false), Some(3));
        // A lease that may hold a lock of unknown fate is never revoked.
        pool.uncertain(4);
        assert_eq!(pool.granted(4, 5, t0 + WINDOW * 4), None);
        assert_eq!(pool.detached(4), None);
        // Leases of other processes are none of the pool's business.
        assert_eq!(pool.detached(99), None);
    }
}
