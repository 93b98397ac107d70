//! Release events of one lock store: every compare-and-swap that deletes a live value through
//! this process tells the subscribers the lock key it freed, so a waiter for that key can
//! try again at once instead of polling. A backend shared by several hosts adds the releases
//! it hears of ([`crate::stores::backend::Backend::watch_releases`]: Redis pub/sub, an etcd
//! watch, which also sees expiries); otherwise an expiry is not an event (a waiter times it
//! from the lock's TTL).

use std::sync::Arc;
use tokio::sync::broadcast;

/// How many releases a slow subscriber may fall behind before it hears that it lagged (and
/// then tries again anyway).
const CAPACITY: usize = 256;

/// The release events of one store.
pub struct ReleaseEvents {
    sender: broadcast::Sender<Arc<str>>,
}

impl Default for ReleaseEvents {
    fn default() -> Self {
        ReleaseEvents {
            sender: broadcast::channel(CAPACITY).0,
        }
    }
}

impl ReleaseEvents {
    /// Tells the subscribers that `lock_key` was released. Costs nothing (no allocation)
    /// when no one listens.
    pub fn released(&self, lock_key: &str) {
        if self.sender.receiver_count() > 0 {
            let _ = self.sender.send(Arc::from(lock_key));
        }
    }

    /// A receiver of the lock keys released from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_hear_released_keys() {
        let events = ReleaseEvents::default();
        events.released("unheard");
        let mut receiver = events.subscribe();
        events.released("lock||a||r");
        assert_eq!(&*receiver.recv().await.unwrap(), "lock||a||r");
    }
}
