//! `lock.in-memory`: a map behind a mutex, expiry by the monotonic clock; lost on exit.
//!
//! Fencing tokens are counted per key in a second map that release never shrinks: they
//! strictly increase for the life of the process, and start again after a restart.

use super::{Backend, CasOutcome, Inspected, OpenContext, Opened, StoreKind, Swap};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The kind `lock.in-memory`: no settings; a fresh map per store.
#[derive(Debug, Clone, Copy, Default)]
pub struct InMemoryKind;

#[async_trait]
impl StoreKind for InMemoryKind {
    const TYPE_NAME: &'static str = "lock.in-memory";
    type Settings = ();

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
    state: Mutex<State>,
}

/// The values and the fencing counters, under one mutex.
#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    /// The last fencing token granted per key; never removed.
    fences: HashMap<String, u64>,
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

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave an entry half-written: recover.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let now = Instant::now();
        Ok(self
            .state()
            .entries
            .get(key)
            .filter(|e| e.is_live(now))
            .map(|e| e.value.clone()))
    }

    async fn compare_and_swap(&self, swap: Swap<'_>) -> anyhow::Result<CasOutcome> {
        let key = swap.key;
        let now = Instant::now();
        let mut state = self.state();
        let State { entries, fences } = &mut *state;
        let live = entries
            .get(key)
            .filter(|e| e.is_live(now))
            .map(|e| e.value.as_slice());
        if live != swap.expected {
            return Ok(CasOutcome::Conflict(live.map(<[u8]>::to_vec)));
        }
        let granted = live.is_none() && swap.new.is_some();
        let token = match fences.get_mut(key) {
            Some(token) => {
                *token += u64::from(granted);
                *token
            }
            None if granted => *fences.entry(key.to_owned()).or_insert(1),
            None => 0,
        };
        match swap.new {
            Some(value) => {
                let entry = Entry {
                    value: value.to_vec(),
                    expires_at: swap.ttl.map(|ttl| now + ttl),
                };
                entries.insert(key.to_owned(), entry);
            }
            None => {
                entries.remove(key);
            }
        }
        Ok(CasOutcome::Swapped(token))
    }

    async fn inspect(&self, key: &str) -> anyhow::Result<Option<Inspected>> {
        let now = Instant::now();
        let state = self.state();
        Ok(state
            .entries
            .get(key)
            .filter(|e| e.is_live(now))
            .map(|e| Inspected {
                value: e.value.clone(),
                fencing_token: state.fences.get(key).copied().unwrap_or(0),
                ttl: e.expires_at.map(|at| at - now),
            }))
    }

    async fn purge_expired(&self) -> anyhow::Result<usize> {
        let now = Instant::now();
        let mut state = self.state();
        let before = state.entries.len();
        state.entries.retain(|_, e| e.is_live(now));
        Ok(before - state.entries.len())
    }
}
