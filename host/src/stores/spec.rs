//! What a lock store is, as configured: its name, type, key layout, metadata and scopes.

use super::keys::KeyPrefix;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The lock store types this host implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    /// `lock.embedded`: durable, on disk under `--data-dir`.
    Embedded,
    /// `lock.in-memory`: lost when the process ends.
    InMemory,
    /// `lock.redis`: Dapr's Redis lock store, shared by hosts and sidecars.
    Redis,
}

impl StoreType {
    /// The component `spec.type` string.
    pub fn name(self) -> &'static str {
        match self {
            StoreType::Embedded => "lock.embedded",
            StoreType::InMemory => "lock.in-memory",
            StoreType::Redis => "lock.redis",
        }
    }

    /// The type named `name` (`lock.redis`), if this host implements it.
    pub fn from_name(name: &str) -> Option<Self> {
        [StoreType::Embedded, StoreType::InMemory, StoreType::Redis]
            .into_iter()
            .find(|t| t.name() == name)
    }
}

/// One lock store to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSpec {
    /// `metadata.name`: the `{store}` of the API paths.
    pub name: String,
    /// `spec.type`.
    pub store_type: StoreType,
    /// The `keyPrefix` strategy.
    pub key_prefix: KeyPrefix,
    /// `spec.metadata`, values resolved (`envRef` read), names as written.
    pub metadata: BTreeMap<String, String>,
    /// The file it came from, or `None` for the built-in default store.
    pub source: Option<PathBuf>,
    /// `spec.ignoreErrors`: when the store cannot start, run without it (as daprd).
    pub ignore_errors: bool,
    /// `scopes`: the app ids that see the store; empty = every app id (as in Dapr).
    pub scopes: Vec<String>,
}

impl StoreSpec {
    /// A store named `name` of type `store_type`, as a component with only a name and a type
    /// declares it: keys prefixed by the app id, no metadata, seen by every app id.
    pub fn new(name: &str, store_type: StoreType) -> Self {
        StoreSpec {
            name: name.into(),
            store_type,
            key_prefix: KeyPrefix::AppId,
            metadata: BTreeMap::new(),
            source: None,
            ignore_errors: false,
            scopes: Vec::new(),
        }
    }

    /// Whether the app `app_id` sees this store.
    pub fn visible_to(&self, app_id: &str) -> bool {
        self.scopes.is_empty() || self.scopes.iter().any(|s| s == app_id)
    }
}

/// The default with no `--resources-path`: one `lock.embedded` store named `lockstore`.
pub fn default_store() -> StoreSpec {
    StoreSpec::new("lockstore", StoreType::Embedded)
}
