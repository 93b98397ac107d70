//! Lock stores from Dapr `Component` documents, read the way daprd reads them.
//!
//! A `lock.*` type no registered kind answers to, a missing name, a bad version or a
//! duplicate name is an error that names the file and the component, and so is metadata the
//! store's kind cannot honour (naming the property too); metadata the kind accepts without
//! effect is logged. Components of a non-lock type are skipped. Each store's settings are
//! read here, once, by its kind; the metadata every kind shares (`keyPrefix`, and alpha2's
//! `defaultTTL` and `maxTTL`) is read here for all of them.

use crate::stores::backend::{Metadata, Remark};
use crate::stores::keys::KeyPrefix;
use crate::stores::{StoreKinds, StoreSpec};
use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::path::Path;
use wasilock_rules::alpha2::{DEFAULT_TTL_PROPERTY, MAX_TTL_PROPERTY, TtlLimits};

/// A Dapr `Component` document.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    #[serde(default)]
    metadata: super::ObjectMeta,
    #[serde(default)]
    spec: ComponentSpec,
    #[serde(default)]
    scopes: Vec<String>,
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

/// The lock store a `Component` document describes; `None` for a non-lock component.
pub fn store_spec(
    document: Document,
    file: &Path,
    kinds: &StoreKinds,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<StoreSpec>> {
    let Some(name) = document.metadata.name.filter(|n| !n.is_empty()) else {
        bail!("a Component has no metadata.name");
    };
    let component_type = document.spec.component_type.unwrap_or_default();
    if !component_type.starts_with("lock.") {
        tracing::info!(file = %file.display(), component = %name, r#type = %component_type, "skipping a component that is not a lock store");
        return Ok(None);
    }
    let Some(kind) = kinds.get(&component_type) else {
        let supported = kinds.type_names().collect::<Vec<_>>().join(", ");
        bail!(
            "component {name:?} has lock store type {component_type:?}, which this host does not implement (supported: {supported})"
        );
    };
    let version = document.spec.version.unwrap_or_default();
    if !matches!(version.as_str(), "" | "v0" | "v1") {
        bail!("component {name:?} has version {version:?}; {component_type} supports v1");
    }
    let metadata = resolve_metadata(&name, document.spec.metadata, env)?;
    let common = |property: &str| {
        metadata
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(property))
            .map(|(_, v)| v.as_str())
    };
    let key_prefix = KeyPrefix::from_metadata(common("keyPrefix"))
        .map_err(|e| anyhow::anyhow!("component {name:?}: {e}"))?;
    let ttl_limits =
        TtlLimits::from_metadata(common(DEFAULT_TTL_PROPERTY), common(MAX_TTL_PROPERTY))
            .map_err(|e| anyhow::anyhow!("component {name:?}: {e}"))?;
    let (settings, remarks) = kind
        .read(&metadata)
        .map_err(|e| anyhow::anyhow!("component {name:?}: {e:#}"))?;
    for remark in remarks {
        match remark {
            Remark::Warn(remark) => {
                tracing::warn!(file = %file.display(), component = name.as_str(), "{remark}")
            }
            Remark::Info(remark) => {
                tracing::info!(file = %file.display(), component = name.as_str(), "{remark}")
            }
        }
    }
    Ok(Some(StoreSpec {
        name,
        settings,
        key_prefix,
        ttl_limits,
        metadata,
        source: Some(file.to_path_buf()),
        ignore_errors: document.spec.ignore_errors,
        scopes: document.scopes,
    }))
}

/// Metadata values as strings, `envRef` read from the environment.
fn resolve_metadata(
    component: &str,
    items: Vec<MetadataItem>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Metadata> {
    let mut metadata = Metadata::new();
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
    use crate::config::{Resources, parse_file};
    use crate::stores::StoreSettings;
    use crate::stores::backend::StoreKind;

    fn parse(text: &str) -> Result<Resources> {
        let mut resources = Resources::default();
        let env = |name: &str| (name == "LOCK_PREFIX").then(|| "Shared".to_string());
        let kinds = StoreKinds::builtin();
        parse_file(text, Path::new("c.yaml"), &kinds, &env, &mut resources)?;
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
        )
        .unwrap();
        assert_eq!(resources.stores.len(), 2);
        let locks = &resources.stores[0];
        assert_eq!(
            (locks.name.as_str(), locks.settings.type_name()),
            ("locks", "lock.in-memory")
        );
        assert_eq!(locks.key_prefix, KeyPrefix::Custom("shared".into()));
        assert_eq!(locks.metadata["number"], "5");
        assert_eq!(resources.stores[1].settings.type_name(), "lock.embedded");
        assert_eq!(resources.stores[1].key_prefix, KeyPrefix::AppId);
        assert!(resources.stores[1].ignore_errors && !locks.ignore_errors);
    }

    #[test]
    fn skips_other_kinds_and_types() {
        let resources = parse(
            "kind: Configuration\nmetadata: {name: c}\n---\nkind: Component\nmetadata: {name: s}\nspec: {type: state.redis}\n---\n",
        )
        .unwrap();
        assert_eq!(resources, Resources::default());
    }

    #[test]
    fn scopes_decide_which_app_ids_see_a_store() {
        let text = "kind: Component\nmetadata: {name: s}\nspec: {type: lock.in-memory}\nscopes: [billing]\n";
        let store = &parse(text).unwrap().stores[0];
        assert!(store.visible_to("billing"));
        assert!(!store.visible_to("web"));
        let open = "kind: Component\nmetadata: {name: s}\nspec: {type: lock.in-memory}\n";
        assert!(parse(open).unwrap().stores[0].visible_to("anyone"));
    }

    #[test]
    fn redis_metadata_is_checked_when_the_file_is_read() {
        let redis = |extra: &str| {
            format!(
                "kind: Component\nmetadata: {{name: shared}}\nspec:\n  type: lock.redis\n  metadata:\n  - name: redisHost\n    value: localhost:6379\n{extra}"
            )
        };
        let refused = parse(&redis("  - name: failover\n    value: true\n")).unwrap_err();
        assert_eq!(
            format!("{refused:#}"),
            r#"component "shared": metadata property failover is true but sentinelMasterName is empty: name the master the Sentinels monitor"#
        );
        let refused = parse(&redis("  - name: UseEntraID\n    value: true\n")).unwrap_err();
        assert!(
            format!("{refused:#}")
                .starts_with(r#"component "shared": metadata property useEntraID is true"#),
            "{refused:#}"
        );
        // Ignored and unknown properties are accepted (and logged).
        let accepted = parse(&redis(
            "  - name: poolSize\n    value: 20\n  - name: redisHots\n    value: x\n",
        ))
        .unwrap();
        assert_eq!(accepted.stores[0].metadata["poolSize"], "20");
        // Other lock types do not read Redis properties.
        let memory = "kind: Component\nmetadata: {name: m}\nspec:\n  type: lock.in-memory\n  metadata:\n  - name: failover\n    value: true\n";
        assert!(parse(memory).is_ok());
    }

    #[test]
    fn every_kind_reads_the_alpha2_ttl_bounds_once() {
        let component = |kind: &str, metadata: &str| {
            format!(
                "kind: Component\nmetadata: {{name: s}}\nspec:\n  type: {kind}\n  metadata:\n  - name: redisHost\n    value: h\n  - name: endpoints\n    value: h:2379\n{metadata}"
            )
        };
        let bounds = "  - name: DefaultTTL\n    value: 1500ms\n  - name: maxTTL\n    value: 2m\n";
        for kind in ["lock.in-memory", "lock.embedded", "lock.redis", "lock.etcd"] {
            let read = parse(&component(kind, bounds)).unwrap();
            let limits = read.stores[0].ttl_limits;
            assert_eq!(
                (limits.default_ttl(), limits.max_ttl()),
                (
                    std::time::Duration::from_millis(1500),
                    std::time::Duration::from_secs(120)
                ),
                "{kind}"
            );
            let defaults = parse(&component(kind, "")).unwrap();
            assert_eq!(
                defaults.stores[0].ttl_limits,
                TtlLimits::default(),
                "{kind}"
            );
            let refused = parse(&component(kind, "  - name: maxTTL\n    value: 0s\n")).unwrap_err();
            assert_eq!(
                format!("{refused:#}"),
                r#"component "s": metadata property maxTTL is "0s"; it must be above zero"#,
                "{kind}"
            );
        }
    }

    /// A kind of an embedder's, `lock.own`: in memory, its settings the metadata as given.
    struct Own;

    #[async_trait::async_trait]
    impl StoreKind for Own {
        const TYPE_NAME: &'static str = "lock.own";
        type Settings = Metadata;

        async fn open(
            &self,
            _: &Metadata,
            context: crate::stores::backend::OpenContext<'_>,
        ) -> Result<crate::stores::backend::Opened> {
            crate::stores::backend::InMemoryKind
                .open(&(), context)
                .await
        }
    }

    #[test]
    fn a_registered_kind_reads_components_of_its_type() {
        let text = "kind: Component\nmetadata: {name: s}\nspec:\n  type: lock.own\n  metadata:\n  - name: x\n    value: 1\n";
        let mut resources = Resources::default();
        let env = |_: &str| None;
        let builtin = StoreKinds::builtin();
        let refused = parse_file(text, Path::new("c.yaml"), &builtin, &env, &mut resources);
        assert_eq!(
            format!("{:#}", refused.unwrap_err()),
            r#"component "s" has lock store type "lock.own", which this host does not implement (supported: lock.embedded, lock.etcd, lock.in-memory, lock.redis)"#
        );
        let mut kinds = StoreKinds::builtin();
        kinds.register(Own);
        parse_file(text, Path::new("c.yaml"), &kinds, &env, &mut resources).unwrap();
        let store = &resources.stores[0];
        assert_eq!(store.settings.type_name(), "lock.own");
        let expected: Metadata = [("x".to_string(), "1".to_string())].into();
        assert_eq!(store.settings, StoreSettings::new(Own, expected));
    }

    #[test]
    fn clear_errors_name_the_component_and_type() {
        let err = |text: &str| format!("{:#}", parse(text).unwrap_err());
        assert!(
            err("kind: Component\nmetadata: {name: s}\nspec: {type: lock.zookeeper}\n")
                .contains(r#"component "s" has lock store type "lock.zookeeper""#)
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
