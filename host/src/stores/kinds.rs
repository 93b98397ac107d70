//! The store kinds a process can open, by type name, and a kind's settings once parsed.
//!
//! [`StoreKinds`] maps a component's `spec.type` to its [`StoreKind`]; reading the
//! component's metadata through it gives [`StoreSettings`]: the kind with its typed settings,
//! which open the store and compare with the settings of a reload, whatever the kind.

use super::backend::{
    EmbeddedKind, EtcdKind, InMemoryKind, Metadata, OpenContext, Opened, RedisKind, Remark,
    StoreKind,
};
use async_trait::async_trait;
use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// The store kinds a process can open, by their type names.
#[derive(Clone, Default)]
pub struct StoreKinds {
    kinds: BTreeMap<&'static str, Arc<dyn ReadSettings>>,
}

impl StoreKinds {
    /// The kinds this crate implements: `lock.embedded`, `lock.etcd`, `lock.in-memory`,
    /// `lock.redis`.
    pub fn builtin() -> Self {
        let mut kinds = StoreKinds::default();
        kinds.register(EmbeddedKind);
        kinds.register(EtcdKind);
        kinds.register(InMemoryKind);
        kinds.register(RedisKind);
        kinds
    }

    /// Registers `kind` under its [`StoreKind::TYPE_NAME`], in place of any kind registered
    /// under that name before.
    pub fn register<K: StoreKind>(&mut self, kind: K) -> &mut Self {
        self.kinds.insert(K::TYPE_NAME, Arc::new(Arc::new(kind)));
        self
    }

    /// The registered type names, sorted.
    pub fn type_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds.keys().copied()
    }

    /// The kind registered under `type_name`.
    pub fn get(&self, type_name: &str) -> Option<RegisteredKind<'_>> {
        self.kinds
            .get(type_name)
            .map(|kind| RegisteredKind(&**kind))
    }
}

/// A registered kind, whatever the type of its settings.
#[derive(Clone, Copy)]
pub struct RegisteredKind<'a>(&'a dyn ReadSettings);

impl RegisteredKind<'_> {
    /// The settings of a store of this kind from its component's `metadata` (an error names
    /// the property at fault), with the entries the kind accepts without effect.
    pub fn read(&self, metadata: &Metadata) -> anyhow::Result<(StoreSettings, Vec<Remark>)> {
        let settings = self.0.settings(metadata)?;
        Ok((settings, self.0.remarks(metadata)))
    }
}

impl fmt::Debug for StoreKinds {
    /// The type names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.type_names()).finish()
    }
}

/// A kind's reading of metadata, whatever its settings type.
trait ReadSettings: Send + Sync {
    fn settings(&self, metadata: &Metadata) -> anyhow::Result<StoreSettings>;
    fn remarks(&self, metadata: &Metadata) -> Vec<Remark>;
}

impl<K: StoreKind> ReadSettings for Arc<K> {
    fn settings(&self, metadata: &Metadata) -> anyhow::Result<StoreSettings> {
        let settings = StoreKind::settings(&**self, metadata)?;
        Ok(StoreSettings(Arc::new(Typed {
            kind: self.clone(),
            settings,
        })))
    }

    fn remarks(&self, metadata: &Metadata) -> Vec<Remark> {
        StoreKind::remarks(&**self, metadata)
    }
}

/// A store kind with its settings, read from a component: what opens the store.
#[derive(Clone)]
pub struct StoreSettings(Arc<dyn OpenWith>);

impl StoreSettings {
    /// The settings `settings` of the kind `kind`, as a component would give them.
    pub fn new<K: StoreKind>(kind: K, settings: K::Settings) -> Self {
        StoreSettings(Arc::new(Typed {
            kind: Arc::new(kind),
            settings,
        }))
    }

    /// The kind's type name (`lock.redis`).
    pub fn type_name(&self) -> &'static str {
        self.0.type_name()
    }

    /// Opens the store's backend.
    pub async fn open(&self, context: OpenContext<'_>) -> anyhow::Result<Opened> {
        self.0.open(context).await
    }

    /// Whether a store opened with these settings serves the same data as one opened with
    /// `new`: the same kind, and settings its kind deems the same data.
    pub fn same_data(&self, new: &StoreSettings) -> bool {
        self.0.same_data(new.0.as_any())
    }
}

impl fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl PartialEq for StoreSettings {
    /// The same kind with equal settings.
    fn eq(&self, other: &Self) -> bool {
        self.0.equals(other.0.as_any())
    }
}

/// A kind with settings of its type, whatever the type.
#[async_trait]
trait OpenWith: Send + Sync + fmt::Debug {
    fn type_name(&self) -> &'static str;
    async fn open(&self, context: OpenContext<'_>) -> anyhow::Result<Opened>;
    fn as_any(&self) -> &dyn Any;
    fn same_data(&self, new: &dyn Any) -> bool;
    fn equals(&self, other: &dyn Any) -> bool;
}

struct Typed<K: StoreKind> {
    kind: Arc<K>,
    settings: K::Settings,
}

impl<K: StoreKind> fmt::Debug for Typed<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple(K::TYPE_NAME).field(&self.settings).finish()
    }
}

#[async_trait]
impl<K: StoreKind> OpenWith for Typed<K> {
    fn type_name(&self) -> &'static str {
        K::TYPE_NAME
    }

    async fn open(&self, context: OpenContext<'_>) -> anyhow::Result<Opened> {
        self.kind.open(&self.settings, context).await
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn same_data(&self, new: &dyn Any) -> bool {
        new.downcast_ref::<Typed<K>>()
            .is_some_and(|new| K::same_data(&self.settings, &new.settings))
    }

    fn equals(&self, other: &dyn Any) -> bool {
        other
            .downcast_ref::<Typed<K>>()
            .is_some_and(|other| self.settings == other.settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stores::backend::{FromMetadata, RedisSettings};

    fn metadata(pairs: &[(&str, &str)]) -> Metadata {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn read(type_name: &str, pairs: &[(&str, &str)]) -> StoreSettings {
        let kinds = StoreKinds::builtin();
        let (settings, _) = kinds
            .get(type_name)
            .unwrap()
            .read(&metadata(pairs))
            .unwrap();
        settings
    }

    #[test]
    fn the_builtin_kinds_by_name() {
        let kinds = StoreKinds::builtin();
        let names: Vec<_> = kinds.type_names().collect();
        assert_eq!(
            names,
            ["lock.embedded", "lock.etcd", "lock.in-memory", "lock.redis"]
        );
        assert!(kinds.get("lock.zookeeper").is_none());
        assert_eq!(
            read("lock.redis", &[("redisHost", "h")]).type_name(),
            "lock.redis"
        );
        let refused = kinds.get("lock.redis").unwrap().read(&Metadata::new());
        assert_eq!(
            format!("{:#}", refused.err().unwrap()),
            "metadata property redisHost is empty"
        );
    }

    #[test]
    fn remarks_come_with_the_settings() {
        let kinds = StoreKinds::builtin();
        let pairs = metadata(&[("redisHost", "h"), ("poolSize", "5"), ("redisHots", "x")]);
        let (_, remarks) = kinds.get("lock.redis").unwrap().read(&pairs).unwrap();
        assert!(
            matches!(&remarks[..], [Remark::Info(_), Remark::Warn(_)]),
            "{remarks:?}"
        );
        let (_, none) = kinds.get("lock.in-memory").unwrap().read(&pairs).unwrap();
        assert_eq!(none, []);
    }

    #[test]
    fn same_data_is_the_kind_and_the_settings_that_matter() {
        let memory = read("lock.in-memory", &[("anything", "1")]);
        assert!(memory.same_data(&read("lock.in-memory", &[])));
        // Both have no settings: the kind alone tells them apart.
        assert!(!memory.same_data(&read("lock.embedded", &[])));
        assert_ne!(memory, read("lock.embedded", &[]));
        let redis = read("lock.redis", &[("redisHost", "h"), ("poolSize", "5")]);
        assert!(redis.same_data(&read("lock.redis", &[("redisHost", "h")])));
        assert!(!redis.same_data(&read("lock.redis", &[("redisHost", "h"), ("redisDB", "1")])));
        let typed = RedisSettings::from_metadata(&metadata(&[("redisHost", "h")])).unwrap();
        assert_eq!(redis, StoreSettings::new(RedisKind, typed));
    }
}
