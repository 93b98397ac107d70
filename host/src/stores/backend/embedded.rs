//! `lock.embedded`: a durable store in a redb database file.
//!
//! Every write is committed with fsync before it is acknowledged, so a lock granted before a
//! crash is still held after a restart until its lease ends. Writes go through one writer
//! thread that applies every compare-and-swap waiting at that moment in one transaction and
//! commits them together (group commit): under concurrency one fsync serves many requests.
//! Expiry uses the wall clock (it must survive restarts); an index by expiry time lets
//! [`Backend::purge_expired`] delete expired entries without scanning the live ones.
//! Fencing tokens are a counter per key in a table of their own, written in the same
//! transaction as the lock, so a token survives `kill -9` exactly when its grant does.

use super::{Backend, CasOutcome, Inspected, OpenContext, Opened, StoreKind, Swap};
use anyhow::Context;
use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, Table, TableDefinition};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

/// Key -> (expiry in ms since the Unix epoch, 0 = never; value).
const ENTRIES: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("entries");
/// (expiry in ms, key) for every entry that expires.
const EXPIRY: TableDefinition<(u64, &str), ()> = TableDefinition::new("expiry");
/// Key -> the last fencing token granted for it; never removed.
const FENCES: TableDefinition<&str, u64> = TableDefinition::new("fences");
/// At most this many entries are purged per transaction, to keep writers moving.
const PURGE_BATCH: usize = 10_000;
/// At most this many compare-and-swaps share one commit.
const GROUP_COMMIT_MAX: usize = 1024;

/// The kind `lock.embedded`: no settings; the store's file is `<data dir>/<store name>.redb`.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmbeddedKind;

#[async_trait]
impl StoreKind for EmbeddedKind {
    const TYPE_NAME: &'static str = "lock.embedded";
    type Settings = ();

    async fn open(&self, _settings: &(), context: OpenContext<'_>) -> anyhow::Result<Opened> {
        let data_dir = context.data_dir;
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
        let path = data_dir.join(format!("{}.redb", file_stem(context.store_name)));
        let backend = EmbeddedBackend::open(&path)?;
        Ok(Opened {
            backend: Arc::new(backend),
            location: path.display().to_string(),
        })
    }
}

/// A file name for a store name: letters, digits, `-`, `_` and `.` kept, others as `_`.
fn file_stem(store_name: &str) -> String {
    store_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A durable store in one database file.
pub struct EmbeddedBackend {
    db: Arc<Database>,
    writes: Option<mpsc::Sender<Write>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

/// One compare-and-swap waiting for the writer thread, and where its outcome goes.
struct Write {
    key: String,
    expected: Option<Vec<u8>>,
    new: Option<Vec<u8>>,
    ttl: Option<Duration>,
    reply: oneshot::Sender<anyhow::Result<CasOutcome>>,
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
        txn.open_table(FENCES)?;
        txn.commit()?;
        let db = Arc::new(db);
        let (writes, queue) = mpsc::channel();
        let writer_db = db.clone();
        let writer = std::thread::Builder::new()
            .name("wasilock-embedded-writer".into())
            .spawn(move || run_writer(&writer_db, &queue))
            .context("cannot start the embedded store's writer thread")?;
        Ok(EmbeddedBackend {
            db,
            writes: Some(writes),
            writer: Some(writer),
        })
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

    async fn inspect(&self, key: &str) -> anyhow::Result<Option<Inspected>> {
        let key = key.to_owned();
        self.blocking(move |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(ENTRIES)?;
            let now = now_ms();
            let Some(entry) = table.get(key.as_str())? else {
                return Ok(None);
            };
            let (expires_at, value) = entry.value();
            if !is_live(expires_at, now) {
                return Ok(None);
            }
            let fences = txn.open_table(FENCES)?;
            let fencing_token = fences.get(key.as_str())?.map_or(0, |t| t.value());
            Ok(Some(Inspected {
                value: value.to_vec(),
                fencing_token,
                ttl: (expires_at != 0).then(|| Duration::from_millis(expires_at - now)),
            }))
        })
        .await
    }

    async fn compare_and_swap(&self, swap: Swap<'_>) -> anyhow::Result<CasOutcome> {
        let key = swap.key;
        let (reply, outcome) = oneshot::channel();
        let write = Write {
            key: key.to_owned(),
            expected: swap.expected.map(<[u8]>::to_vec),
            new: swap.new.map(<[u8]>::to_vec),
            ttl: swap.ttl,
            reply,
        };
        self.writes
            .as_ref()
            .expect("the writer lives as long as the backend")
            .send(write)
            .map_err(|_| anyhow::anyhow!("the embedded store's writer has stopped"))?;
        outcome
            .await
            .context("the embedded store's writer has stopped")?
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

impl Drop for EmbeddedBackend {
    /// Lets the writer finish its batch and close the database, so it can be opened again.
    fn drop(&mut self) {
        drop(self.writes.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The writer thread: takes every write waiting, applies them in order in one transaction,
/// commits once, then answers each. Ends when the backend is dropped.
fn run_writer(db: &Database, queue: &mpsc::Receiver<Write>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < GROUP_COMMIT_MAX {
            match queue.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        match apply_and_commit(db, &batch) {
            Ok(outcomes) => {
                for (write, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = write.reply.send(outcome);
                }
            }
            Err(e) => {
                // Nothing of this batch is durable: every caller hears why.
                let message = format!("{e:#}");
                for write in batch {
                    let _ = write.reply.send(Err(anyhow::anyhow!("{message}")));
                }
            }
        }
    }
}

/// Applies `batch` in order in one write transaction and commits it with fsync; a batch in
/// which no compare-and-swap succeeded wrote nothing, so it is aborted instead (no fsync):
/// its conflicts were read from what earlier commits had already made durable.
fn apply_and_commit(
    db: &Database,
    batch: &[Write],
) -> anyhow::Result<Vec<anyhow::Result<CasOutcome>>> {
    let txn = db.begin_write()?;
    let outcomes: Vec<anyhow::Result<CasOutcome>> = {
        let mut entries = txn.open_table(ENTRIES)?;
        let mut expiry = txn.open_table(EXPIRY)?;
        let mut fences = txn.open_table(FENCES)?;
        let now = now_ms();
        batch
            .iter()
            .map(|write| apply(&mut entries, &mut expiry, &mut fences, write, now))
            .collect()
    };
    let wrote = outcomes
        .iter()
        .any(|outcome| matches!(outcome, Ok(CasOutcome::Swapped(_))));
    if wrote {
        txn.commit()
            .context("cannot commit to the embedded lock database")?;
    } else {
        txn.abort()
            .context("cannot end a read-only batch of the embedded lock database")?;
    }
    Ok(outcomes)
}

/// One compare-and-swap inside the writer's transaction.
fn apply(
    entries: &mut Table<&str, (u64, &[u8])>,
    expiry: &mut Table<(u64, &str), ()>,
    fences: &mut Table<&str, u64>,
    write: &Write,
    now: u64,
) -> anyhow::Result<CasOutcome> {
    let key = write.key.as_str();
    let current = entries
        .get(key)?
        .map(|e| (e.value().0, e.value().1.to_vec()));
    let live = current
        .as_ref()
        .filter(|(expires_at, _)| is_live(*expires_at, now))
        .map(|(_, value)| value.as_slice());
    if live != write.expected.as_deref() {
        return Ok(CasOutcome::Conflict(live.map(<[u8]>::to_vec)));
    }
    let granted = live.is_none() && write.new.is_some();
    let mut token = fences.get(key)?.map_or(0, |t| t.value());
    if granted {
        token += 1;
        fences.insert(key, token)?;
    }
    if let Some((old_expiry, _)) = current.filter(|(e, _)| *e != 0) {
        expiry.remove((old_expiry, key))?;
    }
    match &write.new {
        Some(value) => {
            let expires_at = write.ttl.map_or(0, |ttl| now + ttl.as_millis() as u64);
            entries.insert(key, (expires_at, value.as_slice()))?;
            if expires_at != 0 {
                expiry.insert((expires_at, key), ())?;
            }
        }
        None => {
            entries.remove(key)?;
        }
    }
    Ok(CasOutcome::Swapped(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_stems_are_safe() {
        for (store_name, stem) in [
            ("lockstore", "lockstore"),
            ("Locks-2_v1.0", "Locks-2_v1.0"),
            ("../a b/c", ".._a_b_c"),
        ] {
            assert_eq!(file_stem(store_name), stem, "{store_name}");
        }
    }
}
