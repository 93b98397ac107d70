//! What a lock store is, as configured: its name, kind and settings, key layout, alpha2 TTL
//! bounds and scopes.

use super::StoreSettings;
use super::backend::{EmbeddedKind, Metadata};
use super::keys::KeyPrefix;
use std::path::PathBuf;
use wasilock_rules::alpha2::TtlLimits;

/// One lock store to create.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreSpec {
    /// `metadata.name`: the `{store}` of the API paths.
    pub name: String,
    /// `spec.type` with the settings its kind read from `spec.metadata`.
    pub settings: StoreSettings,
    /// The `keyPrefix` strategy.
    pub key_prefix: KeyPrefix,
    /// The alpha2 TTL bounds (metadata `defaultTTL` and `maxTTL`), common to every kind.
    pub ttl_limits: TtlLimits,
    /// `spec.metadata` as declared, values resolved (`envRef` read), names as written.
    pub metadata: Metadata,
    /// The file it came from, or `None` for the built-in default store.
    pub source: Option<PathBuf>,
    /// `spec.ignoreErrors`: when the store cannot start, run without it (as daprd).
    pub ignore_errors: bool,
    /// `scopes`: the app ids that see the store; empty = every app id (as in Dapr).
    pub scopes: Vec<String>,
}

impl StoreSpec {
    /// A store named `name` of the kind and settings `settings`, as a component with only a
    /// name, a type and those settings declares it: keys prefixed by the app id, the default
    /// TTL bounds, seen by every app id.
    pub fn new(name: &str, settings: StoreSettings) -> Self {
        StoreSpec {
            name: name.into(),
            settings,
            key_prefix: KeyPrefix::AppId,
            ttl_limits: TtlLimits::default(),
            metadata: Metadata::new(),
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
    StoreSpec::new("lockstore", StoreSettings::new(EmbeddedKind, ()))
}
