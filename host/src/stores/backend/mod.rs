//! Storage backends behind the WIT `store` interface: one async compare-and-swap contract,
//! and the store kind that opens each from a component's settings.
//!
//! Keys arrive already laid out by [`super::keys`]; a backend only stores bytes with an
//! expiry, in its own clock. Every backend passes the same contract suite (`contract`).
//! A new kind is one module here (its backend and its [`StoreKind`]) and one line in
//! [`StoreKinds::builtin`](super::StoreKinds::builtin).

mod embedded;
mod etcd;
mod kind;
mod memory;
mod redis;

pub use self::redis::{RedisBackend, RedisKind, RedisSettings};
pub use embedded::{EmbeddedBackend, EmbeddedKind};
pub use etcd::api as etcd_api;
pub use etcd::{EtcdBackend, EtcdKind, EtcdSettings};
pub use kind::{Metadata, OpenContext, Opened, Remark, StoreKind};
pub use memory::{InMemoryKind, MemoryBackend};

use async_trait::async_trait;
use std::time::Duration;

/// The result of a compare-and-swap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CasOutcome {
    /// The live value matched `expected` and was replaced.
    Swapped,
    /// The live value did not match; it is carried here (`None` = absent or expired).
    Conflict(Option<Vec<u8>>),
}

/// A key-value store with per-key expiry and an atomic compare-and-swap.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The live value of `key`; `None` when absent or expired.
    async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>>;

    /// Atomically replaces the live value of `key` by `new` if it equals `expected`
    /// (`None` = absent or expired; `new = None` deletes). `ttl` is the new value's lifetime
    /// (`None` = no expiry).
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        ttl: Option<Duration>,
    ) -> anyhow::Result<CasOutcome>;

    /// Deletes expired entries so that storage does not grow without bound; returns how many.
    async fn purge_expired(&self) -> anyhow::Result<usize>;
}

#[cfg(test)]
mod contract;
