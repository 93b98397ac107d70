//! Lock stores: the backends (one per store, shared by every tenant that sees it), Dapr's
//! key layout, and each tenant's view of them.
//!
//! - [`backend`]: storage backends (embedded durable, in-memory, Redis) behind one contract;
//! - [`keys`]: Dapr's lock key layout, applied by the host;
//! - [`StoreSpec`]: what a store is, as configured.
//!
//! A [`StoreSet`] holds the process's stores. A [`StoreView`] is what one app id sees of
//! them (Dapr `scopes`), and a [`Bucket`] is the host side of the WIT `bucket` resource: it
//! applies the store's key layout to every key, so a guest only ever names resource ids and
//! can never reach keys of another store or app id.

pub mod backend;
pub mod keys;
mod spec;

use anyhow::Context;
use backend::{Backend, CasOutcome, EmbeddedBackend, MemoryBackend, RedisBackend, RedisSettings};
pub use spec::{StoreSpec, StoreType, default_store};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// One opened lock store.
#[derive(Clone)]
pub struct LockStore {
    /// The store's name (`{store}` in the API paths).
    pub name: String,
    /// The component type.
    pub store_type: StoreType,
    /// Where the data lives, for people: a file path or "memory".
    pub location: String,
    spec: StoreSpec,
    backend: Arc<dyn Backend>,
}

/// Why a bucket cannot be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// This tenant has no lock store at all.
    NotConfigured,
    /// No store has that name.
    NoSuchStore,
    /// The store exists but its `scopes` leave this app id out.
    AccessDenied,
}

/// The lock stores of the process, by name.
#[derive(Default)]
pub struct StoreSet {
    stores: BTreeMap<String, Arc<LockStore>>,
}

impl StoreSet {
    /// Creates the backends of `specs`; embedded stores live under `data_dir`. A store of
    /// `previous` with the same name, type and (for Redis) connection settings keeps its
    /// backend, and so its locks, whatever else changed. A store that cannot start is an
    /// error, unless it sets `ignoreErrors` (then it is left out).
    pub async fn open(
        specs: &[StoreSpec],
        data_dir: &Path,
        previous: Option<&StoreSet>,
    ) -> anyhow::Result<Self> {
        let mut stores = BTreeMap::new();
        for spec in specs {
            let kept = previous
                .and_then(|p| p.stores.get(&spec.name))
                .filter(|kept| same_backend(&kept.spec, spec));
            if let Some(kept) = kept {
                let store = LockStore {
                    spec: spec.clone(),
                    ..LockStore::clone(kept)
                };
                stores.insert(spec.name.clone(), Arc::new(store));
                continue;
            }
            let opened = open_store(spec, data_dir)
                .await
                .with_context(|| match &spec.source {
                    Some(file) => format!("lock store {:?} from {}", spec.name, file.display()),
                    None => format!("lock store {:?}", spec.name),
                });
            match opened {
                Ok(store) => {
                    stores.insert(spec.name.clone(), Arc::new(store));
                }
                Err(e) if spec.ignore_errors => {
                    tracing::warn!("{e:#}; running without it (ignoreErrors: true)");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(StoreSet { stores })
    }

    /// Adds the store `spec` with its data in `backend` (an embedder's own) instead of the
    /// backend its type names, which then only says how the store is listed; a store of the
    /// same name is replaced.
    pub fn insert(&mut self, spec: StoreSpec, backend: Arc<dyn Backend>) {
        let store = LockStore {
            name: spec.name.clone(),
            store_type: spec.store_type,
            location: "a backend of the embedder".into(),
            spec,
            backend,
        };
        self.stores.insert(store.name.clone(), Arc::new(store));
    }

    /// The stores, by name.
    pub fn iter(&self) -> impl Iterator<Item = &LockStore> {
        self.stores.values().map(|s| &**s)
    }

    /// What the app `app_id` sees: the stores its scopes admit; the others as denied.
    pub fn view(&self, app_id: &str) -> StoreView {
        let (visible, hidden): (BTreeMap<_, _>, BTreeMap<_, _>) = self
            .stores
            .iter()
            .map(|(name, store)| (name.clone(), store.clone()))
            .partition(|(_, store)| store.spec.visible_to(app_id));
        StoreView {
            app_id: app_id.into(),
            stores: visible,
            scoped_out: hidden.into_keys().collect(),
        }
    }

    /// Deletes expired entries in every store; returns how many.
    pub async fn purge_expired(&self) -> usize {
        let mut purged = 0;
        for store in self.stores.values() {
            match store.backend.purge_expired().await {
                Ok(n) => purged += n,
                Err(e) => {
                    tracing::warn!(store = %store.name, "purging expired locks failed: {e:#}")
                }
            }
        }
        purged
    }
}

/// The lock stores one app id sees.
pub struct StoreView {
    app_id: Arc<str>,
    stores: BTreeMap<String, Arc<LockStore>>,
    scoped_out: BTreeSet<String>,
}

impl StoreView {
    /// The visible stores, by name.
    pub fn iter(&self) -> impl Iterator<Item = &LockStore> {
        self.stores.values().map(|s| &**s)
    }

    /// Opens the store called `name` for a guest.
    pub fn bucket(&self, name: &str) -> Result<Bucket, OpenError> {
        if self.stores.is_empty() {
            return Err(OpenError::NotConfigured);
        }
        if self.scoped_out.contains(name) {
            return Err(OpenError::AccessDenied);
        }
        let store = self.stores.get(name).ok_or(OpenError::NoSuchStore)?;
        Ok(Bucket {
            store: store.clone(),
            app_id: self.app_id.clone(),
        })
    }
}

/// Whether a store specified as `old` can go on with its backend as `new`: the data is where
/// it was (an embedded store's file follows its name; a Redis store's its settings).
fn same_backend(old: &StoreSpec, new: &StoreSpec) -> bool {
    old.name == new.name
        && old.store_type == new.store_type
        && (new.store_type != StoreType::Redis || old.metadata == new.metadata)
}

async fn open_store(spec: &StoreSpec, data_dir: &Path) -> anyhow::Result<LockStore> {
    let (backend, location): (Arc<dyn Backend>, String) = match spec.store_type {
        StoreType::InMemory => (Arc::new(MemoryBackend::new()), "memory".into()),
        StoreType::Embedded => {
            std::fs::create_dir_all(data_dir).with_context(|| {
                format!("cannot create the data directory {}", data_dir.display())
            })?;
            let path = data_dir.join(format!("{}.redb", file_stem(&spec.name)));
            let backend = EmbeddedBackend::open(&path)?;
            (Arc::new(backend), path.display().to_string())
        }
        StoreType::Redis => {
            let settings = RedisSettings::from_metadata(&spec.metadata)?;
            let location = format!("redis {} db {}", settings.describe(), settings.db);
            (Arc::new(RedisBackend::connect(&settings).await?), location)
        }
    };
    Ok(LockStore {
        name: spec.name.clone(),
        store_type: spec.store_type,
        location,
        spec: spec.clone(),
        backend,
    })
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

/// A store opened by a guest (the WIT `bucket` resource).
#[derive(Clone)]
pub struct Bucket {
    store: Arc<LockStore>,
    app_id: Arc<str>,
}

impl Bucket {
    fn key(&self, resource_id: &str) -> Result<String, String> {
        self.store
            .spec
            .key_prefix
            .lock_key(&self.store.name, &self.app_id, resource_id)
    }

    /// The live value of `resource_id`.
    pub async fn get(&self, resource_id: &str) -> Result<Option<Vec<u8>>, String> {
        let key = self.key(resource_id)?;
        self.store
            .backend
            .get(&key)
            .await
            .map_err(|e| format!("{e:#}"))
    }

    /// Compare-and-swap on `resource_id` (see [`Backend::compare_and_swap`]).
    pub async fn compare_and_swap(
        &self,
        resource_id: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
        ttl: Option<Duration>,
    ) -> Result<CasOutcome, String> {
        let key = self.key(resource_id)?;
        self.store
            .backend
            .compare_and_swap(&key, expected, new, ttl)
            .await
            .map_err(|e| format!("{e:#}"))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use keys::KeyPrefix;

    /// In-memory stores named `names`; those in `scoped` are seen only by app id `owner`.
    pub(crate) fn specs(names: &[&str], scoped: &[&str]) -> Vec<StoreSpec> {
        names
            .iter()
            .chain(scoped)
            .map(|name| StoreSpec {
                name: name.to_string(),
                store_type: StoreType::InMemory,
                key_prefix: KeyPrefix::AppId,
                metadata: Default::default(),
                source: None,
                ignore_errors: false,
                scopes: if scoped.contains(name) {
                    vec!["owner".into()]
                } else {
                    Vec::new()
                },
            })
            .collect()
    }

    async fn open(specs: &[StoreSpec]) -> StoreSet {
        StoreSet::open(specs, Path::new("unused"), None)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn open_errors() {
        let none = open(&specs(&[], &["hidden"])).await.view("app");
        assert_eq!(none.bucket("x").err(), Some(OpenError::NotConfigured));
        let some = open(&specs(&["a"], &["hidden"])).await.view("app");
        assert_eq!(some.bucket("hidden").err(), Some(OpenError::AccessDenied));
        assert_eq!(some.bucket("b").err(), Some(OpenError::NoSuchStore));
        assert_eq!(
            some.bucket("A").err(),
            Some(OpenError::NoSuchStore),
            "case-sensitive"
        );
        assert!(some.bucket("a").is_ok());
    }

    #[tokio::test]
    async fn scopes_decide_the_view_and_backends_are_shared() {
        let set = open(&specs(&["shared"], &["private"])).await;
        let owner = set.view("owner");
        let other = set.view("other");
        assert!(owner.bucket("private").is_ok());
        assert_eq!(other.bucket("private").err(), Some(OpenError::AccessDenied));
        // One backend for both views; the default key prefix keeps app ids apart in it.
        owner
            .bucket("shared")
            .unwrap()
            .compare_and_swap("r", None, Some(b"o"), None)
            .await
            .unwrap();
        assert_eq!(
            other.bucket("shared").unwrap().get("r").await.unwrap(),
            None
        );
        let backend = &set.stores["shared"].backend;
        assert_eq!(
            backend.get("lock||owner||r").await.unwrap(),
            Some(b"o".to_vec())
        );
    }

    #[tokio::test]
    async fn a_reopened_set_keeps_the_backends_of_unchanged_stores() {
        let first = open(&specs(&["kept", "changed"], &[])).await;
        for name in ["kept", "changed"] {
            first
                .view("app")
                .bucket(name)
                .unwrap()
                .compare_and_swap("r", None, Some(b"o"), None)
                .await
                .unwrap();
        }
        let mut next = specs(&["kept", "changed"], &[]);
        next[1].key_prefix = KeyPrefix::StoreName;
        let second = StoreSet::open(&next, Path::new("unused"), Some(&first))
            .await
            .unwrap();
        let view = second.view("app");
        assert_eq!(
            view.bucket("kept").unwrap().get("r").await.unwrap(),
            Some(b"o".to_vec())
        );
        assert!(!Arc::ptr_eq(
            &first.stores["changed"],
            &second.stores["changed"]
        ));
        assert_eq!(
            view.bucket("changed").unwrap().get("r").await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn buckets_apply_the_key_layout() {
        let set = open(&specs(&["s"], &[])).await;
        let bucket = set.view("one").bucket("s").unwrap();
        assert_eq!(
            bucket
                .compare_and_swap("a||b", None, Some(b"o"), None)
                .await,
            Err("input key/keyPrefix 'a||b' can't contain '||'".into())
        );
    }

    #[tokio::test]
    async fn an_inserted_backend_serves_its_store_with_the_key_layout() {
        let mut set = open(&specs(&["configured"], &[])).await;
        let backend = Arc::new(MemoryBackend::new());
        let mut spec = StoreSpec::new("own", StoreType::Redis);
        spec.scopes = vec!["owner".into()];
        set.insert(spec, backend.clone());
        let names: Vec<_> = set.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["configured", "own"]);
        set.view("owner")
            .bucket("own")
            .unwrap()
            .compare_and_swap("r", None, Some(b"o"), None)
            .await
            .unwrap();
        assert_eq!(
            backend.get("lock||owner||r").await.unwrap(),
            Some(b"o".to_vec())
        );
        assert_eq!(
            set.view("other").bucket("own").err(),
            Some(OpenError::AccessDenied)
        );
    }

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(file_stem("lockstore"), "lockstore");
        assert_eq!(file_stem("../a b/c"), ".._a_b_c");
    }

    fn redis_store(ignore_errors: bool) -> Vec<StoreSpec> {
        vec![StoreSpec {
            name: "shared".into(),
            store_type: StoreType::Redis,
            key_prefix: KeyPrefix::AppId,
            metadata: [
                ("redisHost".to_string(), "127.0.0.1:1".to_string()),
                ("dialTimeout".to_string(), "300ms".to_string()),
            ]
            .into_iter()
            .collect(),
            source: Some("locks.yaml".into()),
            ignore_errors,
            scopes: Vec::new(),
        }]
    }

    #[tokio::test]
    async fn an_unreachable_store_fails_start_up_unless_ignored() {
        let dir = Path::new("unused");
        let err = StoreSet::open(&redis_store(false), dir, None)
            .await
            .err()
            .unwrap();
        let err = format!("{err:#}");
        assert!(
            err.contains(r#"lock store "shared" from locks.yaml"#),
            "{err}"
        );
        assert!(
            err.contains("cannot connect to Redis at 127.0.0.1:1"),
            "{err}"
        );
        let stores = StoreSet::open(&redis_store(true), dir, None).await.unwrap();
        assert_eq!(
            stores.view("").bucket("shared").err(),
            Some(OpenError::NotConfigured)
        );
    }
}
