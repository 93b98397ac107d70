//! Waiting for a held lock without polling: FIFO queues per (store, resource) of the
//! requests one tenant of this host holds waiting.
//!
//! Only the head of a queue tries to acquire; it is woken by the store's release event for
//! its key ([`crate::stores::events`]) or by a timer at the holder's expiry, never by a poll
//! loop. The others wait on their own wake-up, given when the head leaves (granted, timed
//! out, or its client gone: a [`Ticket`] leaves its queue when dropped). A waiting request
//! holds no component instance and no `maxConcurrency` place: the service calls the
//! component only to try again.
//!
//! [`Queues`] is the pure queue logic; [`Waiters`] adds the wake-ups.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// A queue's key: the store's name and the resource id.
type QueueKey = (String, String);

/// FIFO queues of waiter ids, one per key; empty queues are dropped.
#[derive(Debug, Default)]
pub struct Queues {
    queues: HashMap<QueueKey, VecDeque<u64>>,
    next_id: u64,
}

impl Queues {
    /// Puts a new waiter at the end of `key`'s queue; returns its id.
    pub fn join(&mut self, key: &QueueKey) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.queues.entry(key.clone()).or_default().push_back(id);
        id
    }

    /// Whether `id` is at the head of `key`'s queue.
    pub fn is_head(&self, key: &QueueKey, id: u64) -> bool {
        self.queues
            .get(key)
            .and_then(|queue| queue.front())
            .is_some_and(|&head| head == id)
    }

    /// Takes `id` out of `key`'s queue; returns the new head when `id` was the head (it must
    /// be woken: it is its turn to try).
    pub fn leave(&mut self, key: &QueueKey, id: u64) -> Option<u64> {
        let queue = self.queues.get_mut(key)?;
        let was_head = queue.front() == Some(&id);
        queue.retain(|&waiter| waiter != id);
        let next = queue.front().copied();
        if queue.is_empty() {
            self.queues.remove(key);
        }
        next.filter(|_| was_head)
    }

    /// How many wait on `key`.
    pub fn len(&self, key: &QueueKey) -> usize {
        self.queues.get(key).map_or(0, VecDeque::len)
    }

    /// Whether no one waits anywhere.
    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }
}

/// The waiting requests of one tenant, with their wake-ups.
#[derive(Default)]
pub struct Waiters {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    queues: Queues,
    wakers: HashMap<u64, Arc<Notify>>,
}

impl Waiters {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Joins the queue of `resource_id` in `store`.
    pub fn join(self: &Arc<Self>, store: &str, resource_id: &str) -> Ticket {
        let key = (store.to_owned(), resource_id.to_owned());
        let wake = Arc::new(Notify::new());
        let mut state = self.state();
        let id = state.queues.join(&key);
        state.wakers.insert(id, wake.clone());
        Ticket {
            waiters: self.clone(),
            key,
            id,
            wake,
        }
    }

    /// How many wait on `resource_id` in `store`.
    pub fn waiting(&self, store: &str, resource_id: &str) -> usize {
        self.state()
            .queues
            .len(&(store.to_owned(), resource_id.to_owned()))
    }
}

/// A place in a queue; leaves it when dropped (granted, timed out, or the client gone).
pub struct Ticket {
    waiters: Arc<Waiters>,
    key: QueueKey,
    id: u64,
    wake: Arc<Notify>,
}

impl Ticket {
    /// Whether it is this waiter's turn to try.
    pub fn is_head(&self) -> bool {
        self.waiters.state().queues.is_head(&self.key, self.id)
    }

    /// Resolves when this waiter is woken (a wake-up given before is kept).
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Wakes this waiter (its lock may be free).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = self.waiters.state();
        state.wakers.remove(&self.id);
        if let Some(next) = state.queues.leave(&self.key, self.id)
            && let Some(wake) = state.wakers.get(&next)
        {
            wake.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(r: &str) -> QueueKey {
        ("s".into(), r.into())
    }

    #[test]
    fn first_in_first_out_per_key() {
        let mut q = Queues::default();
        let a = q.join(&key("r"));
        let b = q.join(&key("r"));
        let c = q.join(&key("r"));
        let other = q.join(&key("x"));
        assert!(q.is_head(&key("r"), a) && !q.is_head(&key("r"), b));
        assert!(q.is_head(&key("x"), other), "queues are per key");
        assert_eq!(q.leave(&key("r"), a), Some(b), "the next head is woken");
        assert!(q.is_head(&key("r"), b));
        assert_eq!(q.leave(&key("r"), c), None, "a non-head leaves quietly");
        assert_eq!(q.len(&key("r")), 1);
        assert_eq!(q.leave(&key("r"), b), None);
        assert_eq!(q.leave(&key("x"), other), None);
        assert!(q.is_empty(), "empty queues are dropped");
        assert_eq!(q.leave(&key("r"), a), None, "leaving twice is harmless");
    }

    #[tokio::test]
    async fn a_dropped_head_wakes_the_next() {
        let waiters = Arc::new(Waiters::default());
        let first = waiters.join("s", "r");
        let second = waiters.join("s", "r");
        assert!(first.is_head() && !second.is_head());
        assert_eq!(waiters.waiting("s", "r"), 2);
        drop(first);
        assert!(second.is_head());
        // The wake-up was given before anyone awaited it, and is kept.
        second.woken().await;
        drop(second);
        assert_eq!(waiters.waiting("s", "r"), 0);
        assert!(waiters.state().wakers.is_empty());
    }
}
