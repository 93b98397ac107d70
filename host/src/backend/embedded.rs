//! `lock.embedded`: a durable store in a redb database file.
//!
//! Every write commits with fsync before it is acknowledged, so a lock granted before a
//! crash is still held after a restart until its lease ends. Expiry uses the wall clock (it
//! must survive restarts); an index by expiry time lets [`Backend::purge_expired`] delete
//! expired entries without scanning the live ones.

use super::{Backend, CasOutcome};
use anyhow::Context;
use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Key -> (expiry in ms since the Unix epoch, 0 = never; value).
const ENTRIES: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("entries");
/// (expiry in ms, key) for every entry that expires.
const EXPIRY: TableDefinition<(u64, &str), ()> = TableDefinition::new("expiry");
/// At most this many entries are purged per transaction, to keep writers moving.
const PURGE_BATCH: usize = 10_000;

/// A durable store in one database file.
pub struct EmbeddedBackend {
    db: Arc<Database>,
}

impl EmbeddedBackend {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let db = Database::create(path).with_context(|| {
            format!("cannot open the embedded lock database {}", path.display())
        })?;
        let txn = db.begin_write()?;
        txn.open_table(ENTRIES)?;
        txn.open_table(EXPIRY)?;
        txn.commit()?;
        Ok(EmbeddedBackend { db: Arc::new(db) })
    }

    /// Runs `f` on the blocking pool with the database.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .context("the embedded store's worker failed")?
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn is_live(expires_at: u64, now: u64) -> bool {
    expires_at == 0 || expires_at > now
}

#[async_trait]
impl Backend for EmbeddedBackend {
    async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let key = key.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(ENTRIES)?;
            let now = now_ms();
            Ok(table.get(key.as_str())?.and_then(|entry| {
                let (expires_at, value) = entry.value();
                is_live(expires_at, now).then(|| value.to_vec())
            }))
        })
        .await
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        ttl: Option<Duration>,
    ) -> anyhow::Result<CasOutcome> {
        let key = key.to_owned();
        let expected = expected.map(<[u8]>::to_vec);
        let new = new.map(<[u8]>::to_vec);
        self.blocking(move |db| {
            let txn = db.begin_write()?;
            let now = now_ms();
            let outcome = {
                let mut entries = txn.open_table(ENTRIES)?;
                let mut expiry = txn.open_table(EXPIRY)?;
                let current = entries
                    .get(key.as_str())?
                    .map(|e| (e.value().0, e.value().1.to_vec()));
                let live = current
                    .as_ref()
                    .filter(|(expires_at, _)| is_live(*expires_at, now))
                    .map(|(_, value)| value.as_slice());
                if live != expected.as_deref() {
                    return Ok(CasOutcome::Conflict(live.map(<[u8]>::to_vec)));
                }
                if let Some((old_expiry, _)) = current.filter(|(e, _)| *e != 0) {
                    expiry.remove((old_expiry, key.as_str()))?;
                }
                match &new {
                    Some(value) => {
                        let expires_at = ttl.map_or(0, |ttl| now + ttl.as_millis() as u64);
                        entries.insert(key.as_str(), (expires_at, value.as_slice()))?;
                        if expires_at != 0 {
                            expiry.insert((expires_at, key.as_str()), ())?;
                        }
                    }
                    None => {
                        entries.remove(key.as_str())?;
                    }
                }
                CasOutcome::Swapped
            };
            txn.commit()?;
            Ok(outcome)
        })
        .await
    }

    async fn purge_expired(&self) -> anyhow::Result<usize> {
        self.blocking(|db| {
            let mut purged = 0;
            loop {
                let txn = db.begin_write()?;
                let batch = {
                    let mut entries = txn.open_table(ENTRIES)?;
                    let mut expiry = txn.open_table(EXPIRY)?;
                    let due: Vec<(u64, String)> = expiry
                        .range(..(now_ms(), ""))?
                        .take(PURGE_BATCH)
                        .map(|item| item.map(|(k, _)| (k.value().0, k.value().1.to_owned())))
                        .collect::<Result<_, _>>()?;
                    for (expires_at, key) in &due {
                        expiry.remove((*expires_at, key.as_str()))?;
                        entries.remove(key.as_str())?;
                    }
                    due.len()
                };
                if batch == 0 {
                    return Ok(purged);
                }
                txn.commit()?;
                purged += batch;
            }
        })
        .await
    }
}
