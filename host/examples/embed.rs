//! Embedding wasilock: the built-in lock component over a store kind of our own,
//! `lock.btreemap` (a sorted map with expiry), called through its typed exports and its HTTP
//! API.
//!
//! `cargo run -p wasilock --example embed` prints each call and its outcome;
//! `cargo test -p wasilock --example embed` checks what it prints.

use anyhow::Context;
use http_body_util::BodyExt;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasilock::stores::backend::Metadata;
use wasilock::{
    Backend, CasOutcome, EMBEDDED_GUEST, HttpExport, Inspected, Limits, LinkedComponent,
};
use wasilock::{LockRequest, OpenContext, Opened, Sandbox, StoreKind, StoreKinds, StoreSet};
use wasilock::{StoreSpec, Swap, UnlockRequest, async_trait, new_engine};

/// The maps our kind opened, by store name.
type Maps = Arc<Mutex<BTreeMap<String, Arc<MapBackend>>>>;

/// Our store kind, `lock.btreemap`: no settings, a fresh map per store, kept in `opened` so
/// that we can look inside.
struct MapKind {
    opened: Maps,
}

#[async_trait]
impl StoreKind for MapKind {
    const TYPE_NAME: &'static str = "lock.btreemap";
    type Settings = ();

    async fn open(&self, _settings: &(), context: OpenContext<'_>) -> anyhow::Result<Opened> {
        let backend = Arc::new(MapBackend::default());
        let mut opened = self.opened.lock().unwrap();
        opened.insert(context.store_name.to_string(), backend.clone());
        Ok(Opened {
            backend,
            location: "a sorted map".into(),
        })
    }
}

/// The backend of one store of our kind: entries by key, and the last fencing token
/// granted per key (never removed, so tokens only grow).
#[derive(Default)]
struct MapBackend {
    entries: Mutex<BTreeMap<String, Entry>>,
    fences: Mutex<BTreeMap<String, u64>>,
}

/// A value and the instant it expires, if it does.
struct Entry {
    value: Vec<u8>,
    expires: Option<Instant>,
}

impl MapBackend {
    /// The keys that hold a value, expired or not.
    fn keys(&self) -> Vec<String> {
        self.entries.lock().unwrap().keys().cloned().collect()
    }
}

/// The value of `entry` if it has not expired at `now`.
fn live(entry: Option<&Entry>, now: Instant) -> Option<&[u8]> {
    entry
        .filter(|entry| entry.expires.is_none_or(|at| at > now))
        .map(|entry| entry.value.as_slice())
}

#[async_trait]
impl Backend for MapBackend {
    async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let entries = self.entries.lock().unwrap();
        Ok(live(entries.get(key), Instant::now()).map(<[u8]>::to_vec))
    }

    // Atomic: the mutex is held from the comparison to the write.
    async fn compare_and_swap(&self, swap: Swap<'_>) -> anyhow::Result<CasOutcome> {
        let key = swap.key;
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap();
        let current = live(entries.get(key), now);
        if current != swap.expected {
            return Ok(CasOutcome::Conflict(current.map(<[u8]>::to_vec)));
        }
        // A grant (absent to a value) takes the next token; anything else keeps it.
        let mut fences = self.fences.lock().unwrap();
        let token = fences.entry(key.into()).or_default();
        if current.is_none() && swap.new.is_some() {
            *token += 1;
        }
        let token = *token;
        match swap.new {
            Some(value) => {
                let entry = Entry {
                    value: value.to_vec(),
                    expires: swap.ttl.map(|ttl| now + ttl),
                };
                entries.insert(key.into(), entry);
            }
            None => {
                entries.remove(key);
            }
        }
        Ok(CasOutcome::Swapped(token))
    }

    async fn inspect(&self, key: &str) -> anyhow::Result<Option<Inspected>> {
        let now = Instant::now();
        let entries = self.entries.lock().unwrap();
        let Some(entry) = entries.get(key).filter(|e| live(Some(e), now).is_some()) else {
            return Ok(None);
        };
        Ok(Some(Inspected {
            value: entry.value.clone(),
            fencing_token: self.fences.lock().unwrap().get(key).copied().unwrap_or(0),
            ttl: entry.expires.map(|at| at - now),
        }))
    }

    async fn purge_expired(&self) -> anyhow::Result<usize> {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap();
        let before = entries.len();
        entries.retain(|_, entry| live(Some(entry), now).is_some());
        Ok(before - entries.len())
    }
}

fn lock(owner: &str, expiry_in_seconds: i32) -> LockRequest {
    LockRequest {
        resource_id: "order-1".into(),
        lock_owner: owner.into(),
        expiry_in_seconds,
    }
}

fn unlock(owner: &str) -> UnlockRequest {
    UnlockRequest {
        resource_id: "order-1".into(),
        lock_owner: owner.into(),
    }
}

/// Posts `body` to `path` through the sandbox's HTTP API; gives the status and the body.
async fn post(sandbox: &Sandbox, path: &str, body: &str) -> anyhow::Result<String> {
    let request = hyper::Request::post(path).body(body.to_string())?;
    let response = sandbox.handle_http(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok(format!("{status} {}", String::from_utf8_lossy(&body)))
}

/// Runs the embedding, writing each call and its outcome to `out`.
async fn run(out: &mut impl Write) -> anyhow::Result<()> {
    // The process: the engine and the built-in component, compiled once; our kind
    // registered beside the built-in ones, and a store `lockstore` of it.
    let limits = Limits {
        timeout: Duration::from_secs(1),
        memory_bytes: 16 << 20,
        max_concurrency: 4,
        requests_per_instance: 100,
    };
    let engine = new_engine(limits.memory_bytes)?;
    let component = LinkedComponent::new(&engine, "built-in", EMBEDDED_GUEST, HttpExport::Auto)?;
    let opened = Maps::default();
    let mut kinds = StoreKinds::builtin();
    kinds.register(MapKind {
        opened: opened.clone(),
    });
    // As a component with `type: lock.btreemap` and no metadata declares it.
    let kind = kinds.get("lock.btreemap").context("lock.btreemap")?;
    let (settings, _) = kind.read(&Metadata::new())?;
    let spec = StoreSpec::new("lockstore", settings);
    let stores = StoreSet::open(&[spec], Path::new("unused"), None).await?;
    for store in stores.iter() {
        let (name, type_name) = (&store.name, store.type_name());
        writeln!(out, "store {name}: {type_name} in {}", store.location)?;
    }
    let backend = opened.lock().unwrap()["lockstore"].clone();

    // The tenant: the app `orders`, its view of the stores, its sandbox.
    let view = Arc::new(stores.view("orders"));
    let orders = Sandbox::new(Arc::new(component), view, limits, 4 << 20);

    // Typed calls: the outcome, or daprd's error for a refused request.
    let outcome = orders.try_lock("lockstore", lock("worker-a", 60)).await?;
    writeln!(out, "try_lock by worker-a: {outcome:?}")?;
    let outcome = orders.try_lock("lockstore", lock("worker-b", 60)).await?;
    writeln!(out, "try_lock by worker-b: {outcome:?}")?;
    let outcome = orders.unlock("lockstore", unlock("worker-b")).await?;
    writeln!(out, "unlock by worker-b: {outcome:?}")?;
    let outcome = orders.try_lock("nostore", lock("worker-b", 60)).await?;
    writeln!(out, "try_lock in nostore: {outcome:?}")?;
    writeln!(out, "keys in the backend: {:?}", backend.keys())?;

    // Dapr's HTTP API, answered by the component.
    let unlocked = r#"{"resourceId":"order-1","lockOwner":"worker-a"}"#;
    let answer = post(&orders, "/v1.0-alpha1/unlock/lockstore", unlocked).await?;
    writeln!(out, "HTTP unlock by worker-a: {answer}")?;
    let locked = r#"{"resourceId":"order-1","lockOwner":"worker-a","expiryInSeconds":1}"#;
    let answer = post(&orders, "/v1.0-alpha1/lock/lockstore", locked).await?;
    writeln!(out, "HTTP lock by worker-a for 1 s: {answer}")?;

    // Our backend's clock expires worker-a's lock.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let outcome = orders.try_lock("lockstore", lock("worker-b", 60)).await?;
    writeln!(out, "1.1 s later, try_lock by worker-b: {outcome:?}")?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    run(&mut std::io::stdout()).await
}

#[cfg(test)]
mod tests {
    /// The example prints Dapr's outcomes: our backend served the component as a store must.
    #[tokio::test]
    async fn the_embedding_answers_as_daprd() {
        let mut out = Vec::new();
        super::run(&mut out).await.unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"store lockstore: lock.btreemap in a sorted map
try_lock by worker-a: Ok(true)
try_lock by worker-b: Ok(false)
unlock by worker-b: Ok(LockBelongsToOthers)
try_lock in nostore: Err(StoreNotFound("lock store nostore not found"))
keys in the backend: ["lock||orders||order-1"]
HTTP unlock by worker-a: 200 OK {"status":0}
HTTP lock by worker-a for 1 s: 200 OK {"success":true}
1.1 s later, try_lock by worker-b: Ok(true)
"#
        );
    }
}
