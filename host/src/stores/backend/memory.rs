//! `lock.in-memory`: a map behind a mutex, expiry by the monotonic clock; lost on exit.

use super::{Backend, CasOutcome, Metadata, OpenContext, Opened, StoreKind};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The kind `lock.in-memory`: no settings; a fresh map per store.
#[derive(Debug, Clone, Copy, Default)]
pub struct InMemoryKind;

#[async_trait]
impl StoreKind for InMemoryKind {
    const TYPE_NAME: &'static str = "lock.in-memory";
    type Settings = ();

    fn settings(&self, _metadata: &Metadata) -> anyhow::Result<()> {
        Ok(())
    }

    async fn open(&self, _settings: &(), _context: OpenContext<'_>) -> anyhow::Result<Opened> {
        Ok(Opened {
            backend: Arc::new(MemoryBackend::new()),
            location: "memory".into(),
        })
    }
}

/// An in-process store for ephemeral use and tests.
#[derive(Default)]
pub struct MemoryBackend {
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    value: Vec<u8>,
    expires_at: Option<Instant>,
}

impl Entry {
    fn is_live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}

impl MemoryBackend {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock cannot leave an entry half-written: recover.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let now = Instant::now();
        Ok(self
            .entries()
            .get(key)
            .filter(|e| e.is_live(now))
            .map(|e| e.value.clone()))
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        ttl: Option<Duration>,
    ) -> anyhow::Result<CasOutcome> {
        let now = Instant::now();
        let mut entries = self.entries();
        let live = entries
            .get(key)
            .filter(|e| e.is_live(now))
            .map(|e| e.value.as_slice());
        if live != expected {
            return Ok(CasOutcome::Conflict(live.map(<[u8]>::to_vec)));
        }
        match new {
            Some(value) => {
                let entry = Entry {
                    value: value.to_vec(),
                    expires_at: ttl.map(|ttl| now + ttl),
                };
                entries.insert(key.to_owned(), entry);
            }
            None => {
                entries.remove(key);
            }
        }
        Ok(CasOutcome::Swapped)
    }

    async fn purge_expired(&self) -> anyhow::Result<usize> {
        let now = Instant::now();
        let mut entries = self.entries();
        let before = entries.len();
        entries.retain(|_, e| e.is_live(now));
        Ok(before - entries.len())
    }
}
