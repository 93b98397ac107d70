//! Storage backends behind the WIT `store` interface: one async compare-and-swap contract,
//! and the store kind that opens each from a component's settings.
//!
//! Keys arrive already laid out by [`super::keys`]; a backend only stores bytes with an
//! expiry, in its own clock, and a fencing token per key that every grant (a swap from
//! absent to a value) advances and nothing ever lowers: a counter kept beside the value
//! (never deleted on release), or etcd's create revision. Every backend passes the same
//! contract suite (`contract`).
//! A new kind is one module here (its backend and its [`StoreKind`]) and one line in
//! [`StoreKinds::builtin`](super::StoreKinds::builtin).

mod embedded;
mod etcd;
mod kind;
mod memory;
mod properties;
mod redis;

pub use self::redis::{RedisBackend, RedisKind, RedisSettings};
pub use embedded::{EmbeddedBackend, EmbeddedKind};
pub use etcd::api as etcd_api;
pub use etcd::{EtcdBackend, EtcdKind, EtcdSettings};
pub use kind::{FromMetadata, Metadata, OpenContext, Opened, Remark, StoreKind};
pub use memory::{InMemoryKind, MemoryBackend};

use super::events::ReleaseEvents;
use async_trait::async_trait;
use std::sync::Weak;
use std::time::Duration;

/// The result of a compare-and-swap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CasOutcome {
    /// The live value matched `expected` and was replaced. Carries the key's fencing token:
    /// on a grant (absent to a value) the next one, strictly above every earlier token of the
    /// key; otherwise (renewal, delete) the live value's, unchanged.
    Swapped(u64),
    /// The live value did not match; it is carried here (`None` = absent or expired).
    Conflict(Option<Vec<u8>>),
}

/// One compare-and-swap request: replace the live value of `key` by `new` if it equals
/// `expected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Swap<'a> {
    /// The key.
    pub key: &'a str,
    /// The live value it must have (`None` = absent or expired).
    pub expected: Option<&'a [u8]>,
    /// The value it gets (`None` deletes).
    pub new: Option<&'a [u8]>,
    /// The new value's lifetime (`None` = no expiry).
    pub ttl: Option<Duration>,
}

/// A live value as [`Backend::inspect`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspected {
    /// The value.
    pub value: Vec<u8>,
    /// The fencing token of the grant that wrote it.
    pub fencing_token: u64,
    /// What is left of its lifetime (`None` = no expiry).
    pub ttl: Option<Duration>,
}

/// A key-value store with per-key expiry and an atomic compare-and-swap.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The live value of `key`; `None` when absent or expired.
    async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>>;

    /// Atomically performs `swap`.
    async fn compare_and_swap(&self, swap: Swap<'_>) -> anyhow::Result<CasOutcome>;

    /// The live value of `key` with its fencing token and remaining lifetime; `None` when
    /// absent or expired.
    async fn inspect(&self, key: &str) -> anyhow::Result<Option<Inspected>>;

    /// Forwards releases made by other processes on the same data (another host on one
    /// Redis or one etcd cluster) to `events`, for as long as they live, so that this host's
    /// waiters wake. A backend only this process writes has nothing to forward (the default).
    fn watch_releases(&self, events: Weak<ReleaseEvents>) {
        let _ = events;
    }

    /// Deletes expired entries so that storage does not grow without bound; returns how many.
    async fn purge_expired(&self) -> anyhow::Result<usize>;
}

/// `Swap { key, expected, new, ttl }` in one line, for tests.
#[cfg(test)]
pub(crate) fn swap<'a>(
    key: &'a str,
    expected: Option<&'a [u8]>,
    new: Option<&'a [u8]>,
    ttl: Option<Duration>,
) -> Swap<'a> {
    Swap {
        key,
        expected,
        new,
        ttl,
    }
}

#[cfg(test)]
mod contract;
