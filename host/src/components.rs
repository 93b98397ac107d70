//! Lock stores from Dapr component YAML (`--resources-path`), read the way daprd reads them.
//!
//! Every `*.yaml`/`*.yml` file of each directory is read, with any number of `---`
//! documents. Documents of another `kind` and components of a non-lock type are skipped; an
//! unknown `lock.*` type, a missing name, a bad version or a duplicate name is an error that
//! names the file and the component.

use crate::keys::KeyPrefix;
use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

    fn from_name(name: &str) -> Option<Self> {
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
}

/// The lock stores of a host.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resources {
    /// The stores this app id may use.
    pub stores: Vec<StoreSpec>,
    /// Stores whose `scopes` leave this app id out: visible to it as "access denied".
    pub scoped_out: Vec<String>,
}

impl Resources {
    /// The default with no `--resources-path`: one `lock.embedded` store named `lockstore`.
    pub fn default_store() -> Self {
        Resources {
            stores: vec![StoreSpec {
                name: "lockstore".into(),
                store_type: StoreType::Embedded,
                key_prefix: KeyPrefix::AppId,
                metadata: BTreeMap::new(),
                source: None,
                ignore_errors: false,
            }],
            scoped_out: Vec::new(),
        }
    }
}

/// Reads every component file under `dirs` (a file path is read as is).
pub fn load(dirs: &[PathBuf], app_id: &str) -> Result<Resources> {
    let mut resources = Resources::default();
    for dir in dirs {
        for file in component_files(dir)? {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read component file {}", file.display()))?;
            parse_file(
                &text,
                &file,
                app_id,
                &|name| std::env::var(name).ok(),
                &mut resources,
            )
            .with_context(|| format!("invalid component file {}", file.display()))?;
        }
    }
    Ok(resources)
}

/// The YAML files of `dir`, sorted; `dir` itself when it is a file.
fn component_files(dir: &Path) -> Result<Vec<PathBuf>> {
    if dir.is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read resources path {}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let is_yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if is_yaml && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    kind: Option<String>,
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: ComponentSpec,
    #[serde(default)]
    scopes: Vec<String>,
}

#[derive(Deserialize, Default)]
struct ObjectMeta {
    name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ComponentSpec {
    #[serde(rename = "type")]
    component_type: Option<String>,
    version: Option<String>,
    #[serde(default)]
    metadata: Vec<MetadataItem>,
    #[serde(default)]
    ignore_errors: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetadataItem {
    name: String,
    value: Option<serde_yaml_ng::Value>,
    env_ref: Option<String>,
    secret_key_ref: Option<serde_yaml_ng::Value>,
}

/// Adds the lock stores of one file's documents to `resources`.
pub fn parse_file(
    text: &str,
    file: &Path,
    app_id: &str,
    env: &dyn Fn(&str) -> Option<String>,
    resources: &mut Resources,
) -> Result<()> {
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        let value = serde_yaml_ng::Value::deserialize(document).context("not valid YAML")?;
        if value.is_null() {
            continue;
        }
        let document: Document =
            serde_yaml_ng::from_value(value).context("not a Dapr resource document")?;
        if document.kind.as_deref() != Some("Component") {
            continue;
        }
        let Some(name) = document.metadata.name.filter(|n| !n.is_empty()) else {
            bail!("a Component has no metadata.name");
        };
        let component_type = document.spec.component_type.unwrap_or_default();
        if !component_type.starts_with("lock.") {
            tracing::info!(file = %file.display(), component = %name, r#type = %component_type, "skipping a component that is not a lock store");
            continue;
        }
        let Some(store_type) = StoreType::from_name(&component_type) else {
            bail!(
                "component {name:?} has lock store type {component_type:?}, which this host does not implement (supported: lock.embedded, lock.in-memory, lock.redis)"
            );
        };
        let version = document.spec.version.unwrap_or_default();
        if !matches!(version.as_str(), "" | "v0" | "v1") {
            bail!("component {name:?} has version {version:?}; {component_type} supports v1");
        }
        if resources.stores.iter().any(|s| s.name == name) || resources.scoped_out.contains(&name) {
            bail!("component {name:?} is defined twice");
        }
        if !document.scopes.is_empty() && !document.scopes.iter().any(|s| s == app_id) {
            tracing::info!(component = %name, app_id, "lock store scoped out for this app id");
            resources.scoped_out.push(name);
            continue;
        }
        let ignore_errors = document.spec.ignore_errors;
        let metadata = resolve_metadata(&name, document.spec.metadata, env)?;
        let key_prefix = metadata
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("keyPrefix"))
            .map(|(_, v)| v.as_str());
        let key_prefix = KeyPrefix::from_metadata(key_prefix)
            .map_err(|e| anyhow::anyhow!("component {name:?}: {e}"))?;
        resources.stores.push(StoreSpec {
            name,
            store_type,
            key_prefix,
            metadata,
            source: Some(file.to_path_buf()),
            ignore_errors,
        });
    }
    Ok(())
}

/// Metadata values as strings, `envRef` read from the environment.
fn resolve_metadata(
    component: &str,
    items: Vec<MetadataItem>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>> {
    let mut metadata = BTreeMap::new();
    for item in items {
        let value = if let Some(var) = &item.env_ref {
            env(var).with_context(|| {
                format!("component {component:?}: metadata {:?} refers to unset environment variable {var:?}", item.name)
            })?
        } else if item.secret_key_ref.is_some() {
            bail!(
                "component {component:?}: metadata {:?} uses secretKeyRef, which this host does not support; use value or envRef",
                item.name
            );
        } else {
            match item.value {
                None | Some(serde_yaml_ng::Value::Null) => String::new(),
                Some(serde_yaml_ng::Value::String(s)) => s,
                Some(serde_yaml_ng::Value::Bool(b)) => b.to_string(),
                Some(serde_yaml_ng::Value::Number(n)) => n.to_string(),
                Some(_) => bail!(
                    "component {component:?}: metadata {:?} must be a string, number or boolean",
                    item.name
                ),
            }
        };
        metadata.insert(item.name, value);
    }
    Ok(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, app_id: &str) -> Result<Resources> {
        let mut resources = Resources::default();
        let env = |name: &str| (name == "LOCK_PREFIX").then(|| "Shared".to_string());
        parse_file(text, Path::new("c.yaml"), app_id, &env, &mut resources)?;
        Ok(resources)
    }

    #[test]
    fn reads_lock_components_with_metadata_and_env_refs() {
        let resources = parse(
            r#"
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: locks
spec:
  type: lock.in-memory
  version: v1
  metadata:
  - name: KEYPREFIX
    envRef: LOCK_PREFIX
  - name: number
    value: 5
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: { name: durable }
spec: { type: lock.embedded, ignoreErrors: true }
"#,
            "app",
        )
        .unwrap();
        assert_eq!(resources.stores.len(), 2);
        let locks = &resources.stores[0];
        assert_eq!(
            (locks.name.as_str(), locks.store_type),
            ("locks", StoreType::InMemory)
        );
        assert_eq!(locks.key_prefix, KeyPrefix::Custom("shared".into()));
        assert_eq!(locks.metadata["number"], "5");
        assert_eq!(resources.stores[1].store_type, StoreType::Embedded);
        assert_eq!(resources.stores[1].key_prefix, KeyPrefix::AppId);
        assert!(resources.stores[1].ignore_errors && !locks.ignore_errors);
    }

    #[test]
    fn skips_other_kinds_and_types() {
        let resources = parse(
            "kind: Configuration\nmetadata: {name: c}\n---\nkind: Component\nmetadata: {name: s}\nspec: {type: state.redis}\n---\n",
            "",
        )
        .unwrap();
        assert_eq!(resources, Resources::default());
    }

    #[test]
    fn scopes_hide_stores_from_other_app_ids() {
        let text = "kind: Component\nmetadata: {name: s}\nspec: {type: lock.in-memory}\nscopes: [billing]\n";
        assert_eq!(parse(text, "billing").unwrap().stores.len(), 1);
        let other = parse(text, "web").unwrap();
        assert!(other.stores.is_empty());
        assert_eq!(other.scoped_out, vec!["s".to_string()]);
    }

    #[test]
    fn clear_errors_name_the_component_and_type() {
        let err = |text: &str| format!("{:#}", parse(text, "").unwrap_err());
        assert!(
            err("kind: Component\nmetadata: {name: s}\nspec: {type: lock.etcd}\n")
                .contains(r#"component "s" has lock store type "lock.etcd""#)
        );
        assert!(err("kind: Component\nspec: {type: lock.embedded}\n").contains("no metadata.name"));
        assert!(
            err("kind: Component\nmetadata: {name: s}\nspec: {type: lock.embedded, version: v2}\n")
                .contains("version \"v2\"")
        );
        assert!(err("kind: Component\nmetadata: {name: s}\nspec:\n  type: lock.embedded\n  metadata:\n  - name: x\n    envRef: UNSET\n")
            .contains("UNSET"));
        assert!(err("kind: Component\nmetadata: {name: s}\nspec: {type: lock.embedded}\n---\nkind: Component\nmetadata: {name: s}\nspec: {type: lock.in-memory}\n")
            .contains("defined twice"));
        assert!(err("kind: Component\nmetadata: [oops\n").contains("not valid YAML"));
        assert!(err("kind: Component\nmetadata: {name: s}\nspec:\n  type: lock.embedded\n  metadata:\n  - name: keyPrefix\n    value: a||b\n")
            .contains("can't contain"));
    }
}
