//! A store kind: what a component's `spec.type` names (as Spin's `MakeKeyValueStore`).
//!
//! A kind reads its typed settings from the component's metadata once, when the resource
//! file is read; opens a backend from them; and says, on reload, whether a store whose
//! settings changed can keep its backend (and so its locks). Kinds are registered by their
//! type name in a [`StoreKinds`](crate::stores::StoreKinds).

use super::Backend;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::Path;
use std::sync::Arc;

/// A component's `spec.metadata`: values resolved (`envRef` read), names as written.
pub type Metadata = BTreeMap<String, String>;

/// What opening a store needs besides its settings.
#[derive(Debug, Clone, Copy)]
pub struct OpenContext<'a> {
    /// The store's name (`metadata.name`).
    pub store_name: &'a str,
    /// `--data-dir`: where stores that keep files keep them.
    pub data_dir: &'a Path,
}

/// A backend opened for a store.
pub struct Opened {
    /// The store's data.
    pub backend: Arc<dyn Backend>,
    /// Where the data lives, for people: a file path, a server, "memory".
    pub location: String,
}

/// What a kind says about a metadata entry it accepts without effect, to be logged with the
/// file and the component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remark {
    /// Logged at `info`: a setting known to do nothing here.
    Info(String),
    /// Logged at `warn`: a setting the kind does not know (a typo, perhaps).
    Warn(String),
}

/// Settings read from a component's metadata: what [`StoreKind::settings`] and
/// [`StoreKind::remarks`] read by default.
pub trait FromMetadata: Sized {
    /// Reads the settings from `metadata`; an error names the property at fault.
    fn from_metadata(metadata: &Metadata) -> anyhow::Result<Self>;

    /// The entries of `metadata` accepted without effect, to be logged.
    fn remarks(_metadata: &Metadata) -> Vec<Remark> {
        Vec::new()
    }
}

/// No settings: any metadata reads as `()`.
impl FromMetadata for () {
    fn from_metadata(_metadata: &Metadata) -> anyhow::Result<()> {
        Ok(())
    }
}

/// The metadata itself, as written.
impl FromMetadata for Metadata {
    fn from_metadata(metadata: &Metadata) -> anyhow::Result<Metadata> {
        Ok(metadata.clone())
    }
}

/// One kind of lock store, registered under its Dapr type name.
#[async_trait]
pub trait StoreKind: Send + Sync + 'static {
    /// The component `spec.type` it answers to, e.g. `lock.redis` (components whose type
    /// does not start with `lock.` are not lock stores, and are skipped).
    const TYPE_NAME: &'static str;

    /// The settings read from a component's metadata.
    type Settings: FromMetadata + Debug + PartialEq + Send + Sync + 'static;

    /// Reads the settings from `metadata`; an error names the property at fault. By
    /// default, [`FromMetadata::from_metadata`].
    fn settings(&self, metadata: &Metadata) -> anyhow::Result<Self::Settings> {
        Self::Settings::from_metadata(metadata)
    }

    /// The entries of `metadata` accepted without effect, to be logged. By default,
    /// [`FromMetadata::remarks`].
    fn remarks(&self, metadata: &Metadata) -> Vec<Remark> {
        Self::Settings::remarks(metadata)
    }

    /// Opens the store's backend.
    async fn open(
        &self,
        settings: &Self::Settings,
        context: OpenContext<'_>,
    ) -> anyhow::Result<Opened>;

    /// Whether a store opened with `old` serves the same data as one opened with `new`, so
    /// that a reload keeps its backend: by default, when the settings are equal.
    fn same_data(old: &Self::Settings, new: &Self::Settings) -> bool {
        old == new
    }
}
