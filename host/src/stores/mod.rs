//! Lock stores: the backends (one per store, shared by every tenant that sees it), the kinds
//! that open them, Dapr's key layout, and each tenant's view of them.
//!
//! - [`backend`]: storage backends (embedded durable, in-memory, Redis, etcd) behind one contract,
//!   each with the [`StoreKind`](backend::StoreKind) that opens it;
//! - [`StoreKinds`]: the kinds a process can open, by type name; [`StoreSettings`]: a kind
//!   with the settings it read from a component;
//! - [`keys`]: Dapr's lock key layout, applied by the host;
//! - [`events`]: release events, which wake waiters without polling;
//! - [`StoreSpec`]: what a store is, as configured.
//!
//! A [`StoreSet`] holds the process's stores. A [`StoreView`] is what one app id sees of
//! them (Dapr `scopes`), and a [`Bucket`] is the host side of the WIT `bucket` resource: it
//! applies the store's key layout to every key, so a guest only ever names resource ids and
//! can never reach keys of another store or app id.

pub mod backend;
pub mod events;
pub mod keys;
mod kinds;
mod spec;

use crate::telemetry::{Metrics, StoreMetrics, StoreMetricsByName, StoreOperation, StoreOutcome};
use anyhow::Context;
use backend::{Backend, CasOutcome, Inspected, OpenContext, Swap};
pub use kinds::{RegisteredKind, StoreKinds, StoreSettings};
pub use spec::{StoreSpec, default_store};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;
use wasilock_rules::alpha2::TtlLimits;

/// A lock store opened: its spec and its backend.
#[derive(Clone)]
pub struct OpenedStore {
    /// The store's name (`{store}` in the API paths).
    pub name: String,
    /// Where the data lives, for people: a file path, a server, or "memory".
    pub location: String,
    spec: StoreSpec,
    backend: Arc<dyn Backend>,
    events: Arc<events::ReleaseEvents>,
}

impl OpenedStore {
    /// The component type (`lock.redis`).
    pub fn type_name(&self) -> &'static str {
        self.spec.settings.type_name()
    }
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
    stores: BTreeMap<String, Arc<OpenedStore>>,
}

impl StoreSet {
    /// Opens the backends of `specs`; stores that keep files keep them under `data_dir`. A
    /// store of `previous` with the same name and kind, and settings its kind deems the same
    /// data, keeps its backend, and so its locks, whatever else changed. A store that cannot start is an
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
                .filter(|kept| kept.spec.settings.same_data(&spec.settings));
            if let Some(kept) = kept {
                let store = OpenedStore {
                    spec: spec.clone(),
                    ..OpenedStore::clone(kept)
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

    /// The stores, by name.
    pub fn iter(&self) -> impl Iterator<Item = &OpenedStore> {
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
            metrics: None,
        }
    }

    /// What the app `app_id` sees, as [`StoreSet::view`], its store operations and lock
    /// outcomes counted in `metrics` under handles resolved here, once.
    pub fn observed_view(&self, app_id: &str, metrics: &Metrics) -> StoreView {
        let mut view = self.view(app_id);
        let names = view.stores.keys().map(String::as_str);
        view.metrics = Some(StoreMetricsByName::new(metrics, app_id, names));
        view
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
    stores: BTreeMap<String, Arc<OpenedStore>>,
    scoped_out: BTreeSet<String>,
    metrics: Option<StoreMetricsByName>,
}

impl StoreView {
    /// The visible stores, by name.
    pub fn iter(&self) -> impl Iterator<Item = &OpenedStore> {
        self.stores.values().map(|s| &**s)
    }

    /// The app id whose view this is.
    pub fn app_id(&self) -> &str {
        &self.app_id
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
            metrics: self.metrics(name).cloned(),
        })
    }

    /// The metric handles of the store called `name` (of no store, for a name this app does
    /// not see); `None` when nothing is counted.
    pub fn metrics(&self, name: &str) -> Option<&Arc<StoreMetrics>> {
        self.metrics.as_ref().map(|metrics| metrics.get(name))
    }
}

async fn open_store(spec: &StoreSpec, data_dir: &Path) -> anyhow::Result<OpenedStore> {
    let context = OpenContext {
        store_name: &spec.name,
        data_dir,
    };
    let opened = spec.settings.open(context).await?;
    let events = Arc::default();
    opened.backend.watch_releases(Arc::downgrade(&events));
    Ok(OpenedStore {
        name: spec.name.clone(),
        location: opened.location,
        spec: spec.clone(),
        backend: opened.backend,
        events,
    })
}

/// A store opened by a guest (the WIT `bucket` resource).
#[derive(Clone)]
pub struct Bucket {
    store: Arc<OpenedStore>,
    app_id: Arc<str>,
    metrics: Option<Arc<StoreMetrics>>,
}

impl Bucket {
    /// The span of a store `operation` (nothing when traces are off): tenant, store and
    /// type; never a key, a resource id or an owner.
    fn span(&self, operation: &'static str) -> tracing::Span {
        tracing::info_span!(
            target: crate::telemetry::traces::TARGET,
            "store operation",
            app_id = &*self.app_id,
            store = self.store.name.as_str(),
            store_type = self.store.type_name(),
            operation,
            outcome = tracing::field::Empty,
        )
    }

    /// The store's name.
    pub fn store_name(&self) -> &str {
        &self.store.name
    }

    /// The store's alpha2 TTL bounds (its component's `defaultTTL` and `maxTTL`).
    pub fn ttl_limits(&self) -> TtlLimits {
        self.store.spec.ttl_limits
    }

    /// The backend key of `resource_id` (Dapr's layout), or daprd's error for a `||` in it.
    pub fn key(&self, resource_id: &str) -> Result<String, String> {
        self.store
            .spec
            .key_prefix
            .lock_key(&self.store.name, &self.app_id, resource_id)
    }

    /// The live value of `resource_id`.
    pub async fn get(&self, resource_id: &str) -> Result<Option<Vec<u8>>, String> {
        let key = self.key(resource_id)?;
        let started = self.metrics.as_ref().map(|_| Instant::now());
        let span = self.span("get");
        let value = self.store.backend.get(&key).instrument(span.clone()).await;
        span.record("outcome", if value.is_ok() { "ok" } else { "error" });
        if let (Some(metrics), Some(started)) = (&self.metrics, started) {
            let outcome = match value {
                Ok(_) => StoreOutcome::Ok,
                Err(_) => StoreOutcome::Error,
            };
            metrics.store_operation(StoreOperation::Get, outcome, started.elapsed());
        }
        value.map_err(|e| format!("{e:#}"))
    }

    /// The live value of `resource_id` with its fencing token and remaining lifetime.
    pub async fn inspect(&self, resource_id: &str) -> Result<Option<Inspected>, String> {
        let key = self.key(resource_id)?;
        self.store
            .backend
            .inspect(&key)
            .await
            .map_err(|e| format!("{e:#}"))
    }

    /// Compare-and-swap on the resource `swap.key` names (see [`Backend::compare_and_swap`]).
    pub async fn compare_and_swap(&self, swap: Swap<'_>) -> Result<CasOutcome, String> {
        let key = self.key(swap.key)?;
        let started = self.metrics.as_ref().map(|_| Instant::now());
        let span = self.span("compare_and_swap");
        let outcome = self
            .store
            .backend
            .compare_and_swap(Swap { key: &key, ..swap })
            .instrument(span.clone())
            .await;
        span.record(
            "outcome",
            match outcome {
                Ok(CasOutcome::Swapped(_)) => "ok",
                Ok(CasOutcome::Conflict(_)) => "conflict",
                Err(_) => "error",
            },
        );
        if let (Some(metrics), Some(started)) = (&self.metrics, started) {
            let counted = match outcome {
                Ok(CasOutcome::Swapped(_)) => StoreOutcome::Ok,
                Ok(CasOutcome::Conflict(_)) => StoreOutcome::Conflict,
                Err(_) => StoreOutcome::Error,
            };
            let operation = StoreOperation::CompareAndSwap;
            metrics.store_operation(operation, counted, started.elapsed());
        }
        let outcome = outcome.map_err(|e| format!("{e:#}"))?;
        if swap.new.is_none()
            && swap.expected.is_some()
            && matches!(outcome, CasOutcome::Swapped(_))
        {
            self.store.events.released(&key);
        }
        Ok(outcome)
    }

    /// The release events of the store (lock keys, see [`Bucket::key`]).
    pub fn release_events(&self) -> &events::ReleaseEvents {
        &self.store.events
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use backend::{InMemoryKind, MemoryBackend, Metadata, Opened, RedisKind, StoreKind, swap};
    use keys::KeyPrefix;

    /// In-memory stores named `names`; those in `scoped` are seen only by app id `owner`.
    pub(crate) fn specs(names: &[&str], scoped: &[&str]) -> Vec<StoreSpec> {
        names
            .iter()
            .chain(scoped)
            .map(|name| StoreSpec {
                name: name.to_string(),
                settings: StoreSettings::new(InMemoryKind, ()),
                key_prefix: KeyPrefix::AppId,
                ttl_limits: Default::default(),
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

    /// Sets `r` to `o` in the store `name`, as the app `app` sees it.
    async fn set_r(set: &StoreSet, app: &str, name: &str) {
        set.view(app)
            .bucket(name)
            .unwrap()
            .compare_and_swap(swap("r", None, Some(b"o"), None))
            .await
            .unwrap();
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
        set_r(&set, "owner", "shared").await;
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
            set_r(&first, "app", name).await;
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
                .compare_and_swap(swap("a||b", None, Some(b"o"), None))
                .await,
            Err("input key/keyPrefix 'a||b' can't contain '||'".into())
        );
    }

    /// A kind of the embedder's: every store of it is the backend it holds.
    struct Given(Arc<MemoryBackend>);

    #[async_trait::async_trait]
    impl StoreKind for Given {
        const TYPE_NAME: &'static str = "lock.given";
        type Settings = ();

        async fn open(&self, _: &(), _: OpenContext<'_>) -> anyhow::Result<Opened> {
            Ok(Opened {
                backend: self.0.clone(),
                location: "given".into(),
            })
        }
    }

    #[tokio::test]
    async fn a_kind_of_the_embedder_serves_its_store_with_the_key_layout() {
        let backend = Arc::new(MemoryBackend::new());
        let mut kinds = StoreKinds::builtin();
        kinds.register(Given(backend.clone()));
        let (settings, _) = kinds
            .get("lock.given")
            .unwrap()
            .read(&Metadata::new())
            .unwrap();
        let mut own = StoreSpec::new("own", settings);
        own.scopes = vec!["owner".into()];
        let mut specs = specs(&["configured"], &[]);
        specs.push(own);
        let set = open(&specs).await;
        let names: Vec<_> = set
            .iter()
            .map(|s| (s.name.as_str(), s.type_name()))
            .collect();
        assert_eq!(
            names,
            [("configured", "lock.in-memory"), ("own", "lock.given")]
        );
        set_r(&set, "owner", "own").await;
        assert_eq!(
            backend.get("lock||owner||r").await.unwrap(),
            Some(b"o".to_vec())
        );
        assert_eq!(
            set.view("other").bucket("own").err(),
            Some(OpenError::AccessDenied)
        );
    }

    fn redis_store(ignore_errors: bool) -> Vec<StoreSpec> {
        let metadata: Metadata = [
            ("redisHost".to_string(), "127.0.0.1:1".to_string()),
            ("dialTimeout".to_string(), "300ms".to_string()),
        ]
        .into_iter()
        .collect();
        vec![StoreSpec {
            name: "shared".into(),
            settings: StoreSettings::new(RedisKind, RedisKind.settings(&metadata).unwrap()),
            key_prefix: KeyPrefix::AppId,
            ttl_limits: Default::default(),
            metadata,
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
