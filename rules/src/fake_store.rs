//! A [`LockStore`] fake for the unit tests and, behind the feature `test-support`, the fuzz
//! target: values without expiry, scripted failures.

use crate::lease::{CasOutcome, LockBucket, LockStore, StoreError, Swap};
use std::cell::RefCell;
use std::collections::HashMap;

/// A store fake: one bucket named "lockstore", values without expiry, optional failure.
#[derive(Default)]
pub struct FakeStore {
    /// Live values by key.
    pub values: RefCell<HashMap<String, Vec<u8>>>,
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

impl LockBucket for &FakeStore {
    fn compare_and_swap(&self, swap: Swap<'_>) -> Result<CasOutcome, StoreError> {
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
            return Ok(CasOutcome::Conflict(live));
        }
        match new {
            Some(v) => values.insert(key.to_owned(), v.to_vec()),
            None => values.remove(key),
        };
        Ok(CasOutcome::Swapped)
    }
}
