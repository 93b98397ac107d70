//! The lock stores of one tenant (app id), and the bucket handles a guest opens on them.
//!
//! A [`Bucket`] is the host side of the WIT `bucket` resource: it applies the store's key
//! layout to every key, so a guest only ever names resource ids and can never reach keys of
//! another store or app id.

use crate::backend::{
    Backend, CasOutcome, EmbeddedBackend, MemoryBackend, RedisBackend, RedisSettings,
};
use crate::components::{Resources, StoreSpec, StoreType};
use crate::keys::KeyPrefix;
use anyhow::Context;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// One opened lock store.
pub struct LockStore {
    /// The store's name (`{store}` in the API paths).
    pub name: String,
    /// The component type.
    pub store_type: StoreType,
    /// Where the data lives, for people: a file path or "memory".
    pub location: String,
    key_prefix: KeyPrefix,
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

/// The lock stores visible to one app id.
pub struct LockStores {
    app_id: Arc<str>,
    stores: BTreeMap<String, Arc<LockStore>>,
    scoped_out: BTreeSet<String>,
}

impl LockStores {
    /// Creates the backends of `resources`; embedded stores live under `data_dir`. A store
    /// that cannot start is an error, unless it sets `ignoreErrors` (then it is left out).
    pub async fn open(
        resources: &Resources,
        app_id: &str,
        data_dir: &Path,
    ) -> anyhow::Result<Self> {
        let mut stores = BTreeMap::new();
        for spec in &resources.stores {
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
        Ok(LockStores {
            app_id: app_id.into(),
            stores,
            scoped_out: resources.scoped_out.iter().cloned().collect(),
        })
    }

    /// The stores, by name.
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
            let location = format!(
                "redis://{}:{}/{}",
                settings.host, settings.port, settings.db
            );
            (Arc::new(RedisBackend::connect(&settings).await?), location)
        }
    };
    Ok(LockStore {
        name: spec.name.clone(),
        store_type: spec.store_type,
        location,
        key_prefix: spec.key_prefix.clone(),
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
mod tests {
    use super::*;
    use crate::components::StoreSpec;

    fn resources(names: &[&str], scoped_out: &[&str]) -> Resources {
        Resources {
            stores: names
                .iter()
                .map(|name| StoreSpec {
                    name: name.to_string(),
                    store_type: StoreType::InMemory,
                    key_prefix: KeyPrefix::AppId,
                    metadata: Default::default(),
                    source: None,
                    ignore_errors: false,
                })
                .collect(),
            scoped_out: scoped_out.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[tokio::test]
    async fn open_errors() {
        let dir = Path::new("unused");
        let none = LockStores::open(&resources(&[], &["hidden"]), "app", dir)
            .await
            .unwrap();
        assert_eq!(none.bucket("x").err(), Some(OpenError::NotConfigured));
        let some = LockStores::open(&resources(&["a"], &["hidden"]), "app", dir)
            .await
            .unwrap();
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
    async fn buckets_apply_the_key_layout_and_keep_app_ids_apart() {
        let spec = resources(&["s"], &[]);
        let one = LockStores::open(&spec, "one", Path::new("unused"))
            .await
            .unwrap();
        let bucket = one.bucket("s").unwrap();
        bucket
            .compare_and_swap("r", None, Some(b"o"), None)
            .await
            .unwrap();
        let backend = &one.stores["s"].backend;
        assert_eq!(
            backend.get("lock||one||r").await.unwrap(),
            Some(b"o".to_vec())
        );
        assert_eq!(
            bucket
                .compare_and_swap("a||b", None, Some(b"o"), None)
                .await,
            Err("input key/keyPrefix 'a||b' can't contain '||'".into())
        );
        // Another app id on the same backend sees its own key space.
        let other = Bucket {
            store: one.stores["s"].clone(),
            app_id: "two".into(),
        };
        assert_eq!(other.get("r").await.unwrap(), None);
    }

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(file_stem("lockstore"), "lockstore");
        assert_eq!(file_stem("../a b/c"), ".._a_b_c");
    }

    fn redis_store(ignore_errors: bool) -> Resources {
        Resources {
            stores: vec![StoreSpec {
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
            }],
            scoped_out: Vec::new(),
        }
    }

    #[tokio::test]
    async fn an_unreachable_store_fails_start_up_unless_ignored() {
        let dir = Path::new("unused");
        let err = LockStores::open(&redis_store(false), "", dir)
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
        let stores = LockStores::open(&redis_store(true), "", dir).await.unwrap();
        assert_eq!(
            stores.bucket("shared").err(),
            Some(OpenError::NotConfigured)
        );
    }
}
