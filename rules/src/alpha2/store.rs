//! What alpha2 asks of the host's storage: a compare-and-swap that answers the key's fencing
//! token, and inspection of a live value.

use crate::lease::{StoreError, Swap};

/// The result of a fenced compare-and-swap (the WIT `store.fenced-outcome`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FencedOutcome {
    /// Swapped; the key's fencing token (a fresh one on a grant).
    Swapped(u64),
    /// The live value did not match; it is carried here (`None` = absent or expired).
    Conflict(Option<Vec<u8>>),
}

/// A live value with its token and remaining lifetime (the WIT `store.entry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The value.
    pub value: Vec<u8>,
    /// The fencing token of the grant that wrote it.
    pub fencing_token: u64,
    /// What is left of its lifetime, in milliseconds (`None` = no expiry).
    pub ttl_ms: Option<u64>,
}

/// Storage with fencing tokens, as the host provides it.
pub trait FencedStore {
    /// An opened lock store.
    type Bucket: FencedBucket;

    /// Opens the lock store called `name`.
    fn open(&self, name: &str) -> Result<Self::Bucket, StoreError>;
}

/// One opened lock store with fencing tokens.
pub trait FencedBucket {
    /// Performs `swap` atomically, answering the key's fencing token.
    fn compare_and_swap_fenced(&self, swap: Swap<'_>) -> Result<FencedOutcome, StoreError>;

    /// The live value of `key`, its token and remaining lifetime.
    fn inspect(&self, key: &str) -> Result<Option<Entry>, StoreError>;
}
