//! A [`LockStore`] and [`FencedStore`] fake for the unit tests and, behind the feature
//! `test-support`, the fuzz target: values without expiry, scripted failures.

use crate::alpha2::{Entry, FencedBucket, FencedOutcome, FencedStore};
use crate::lease::{CasOutcome, LockBucket, LockStore, StoreError, Swap};
use std::cell::RefCell;
use std::collections::HashMap;

/// The remaining lifetime [`FencedBucket::inspect`] reports for every value, in
/// milliseconds.
const INSPECTED_TTL_MS: u64 = 12_500;

/// A store fake: one bucket named "lockstore", values without expiry, optional failure.
#[derive(Default)]
pub struct FakeStore {
    /// Live values by key.
    pub values: RefCell<HashMap<String, Vec<u8>>>,
    /// The last fencing token granted per key; never removed.
    pub tokens: RefCell<HashMap<String, u64>>,
    /// Store names that open; empty = "not configured".
    pub stores: Vec<&'static str>,
    /// Store names that exist but are denied.
    pub denied: Vec<&'static str>,
    /// When set, every compare-and-swap fails with this backend message.
    pub failure: Option<String>,
    /// Every compare-and-swap: key, expected, new, ttl.
    pub calls: RefCell<Vec<CasCall>>,
}

/// One recorded compare-and-swap: key, expected, new, ttl.
pub type CasCall = (String, Option<Vec<u8>>, Option<Vec<u8>>, Option<u64>);

impl FakeStore {
    /// A fake with one store, `lockstore`.
    pub fn new() -> Self {
        FakeStore {
            stores: vec!["lockstore"],
            ..Default::default()
        }
    }

    /// One fake per situation an answer depends on: a store `lockstore` where `r` is held by
    /// `o` (beside a denied store `secret`), no store configured, and a failing backend.
    pub fn scenarios() -> [FakeStore; 3] {
        let held = FakeStore {
            values: RefCell::new(HashMap::from([("r".to_owned(), b"o".to_vec())])),
            stores: vec!["lockstore", "secret"],
            denied: vec!["secret"],
            ..FakeStore::default()
        };
        let failing = FakeStore {
            failure: Some("backend <down> & out".to_owned()),
            ..FakeStore::new()
        };
        [held, FakeStore::default(), failing]
    }
}

impl<'a> LockStore for &'a FakeStore {
    type Bucket = &'a FakeStore;
    fn open(&self, name: &str) -> Result<Self::Bucket, StoreError> {
        if self.stores.is_empty() {
            Err(StoreError::NotConfigured)
        } else if self.denied.contains(&name) {
            Err(StoreError::AccessDenied)
        } else if self.stores.contains(&name) {
            Ok(self)
        } else {
            Err(StoreError::NoSuchStore)
        }
    }
}

impl<'a> FencedStore for &'a FakeStore {
    type Bucket = &'a FakeStore;
    fn open(&self, name: &str) -> Result<Self::Bucket, StoreError> {
        LockStore::open(self, name)
    }
}

impl LockBucket for &FakeStore {
    fn compare_and_swap(&self, swap: Swap<'_>) -> Result<CasOutcome, StoreError> {
        Ok(match self.compare_and_swap_fenced(swap)? {
            FencedOutcome::Swapped(_) => CasOutcome::Swapped,
            FencedOutcome::Conflict(live) => CasOutcome::Conflict(live),
        })
    }
}

impl FencedBucket for &FakeStore {
    /// A grant (absent to a value) takes the key's next token; anything else answers the
    /// live value's (0 when there is none).
    fn compare_and_swap_fenced(&self, swap: Swap<'_>) -> Result<FencedOutcome, StoreError> {
        let Swap {
            key, expected, new, ..
        } = swap;
        self.calls.borrow_mut().push((
            key.to_owned(),
            expected.map(<[u8]>::to_vec),
            new.map(<[u8]>::to_vec),
            swap.ttl_ms,
        ));
        if let Some(message) = &self.failure {
            return Err(StoreError::Backend(message.clone()));
        }
        let mut values = self.values.borrow_mut();
        let live = values.get(key).cloned();
        if live.as_deref() != expected {
            return Ok(FencedOutcome::Conflict(live));
        }
        let token = match (&live, new) {
            (None, None) => 0,
            _ => {
                let mut tokens = self.tokens.borrow_mut();
                let token = tokens.entry(key.to_owned()).or_default();
                *token += u64::from(live.is_none());
                *token
            }
        };
        match new {
            Some(v) => values.insert(key.to_owned(), v.to_vec()),
            None => values.remove(key),
        };
        Ok(FencedOutcome::Swapped(token))
    }

    fn inspect(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        Ok(self.values.borrow().get(key).map(|value| Entry {
            value: value.clone(),
            fencing_token: self.tokens.borrow().get(key).copied().unwrap_or(0),
            ttl_ms: Some(INSPECTED_TTL_MS),
        }))
    }
}
