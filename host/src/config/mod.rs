//! Configuration read from `--resources-path`: Dapr `Component` documents (lock stores) and
//! wasilock `Tenant` documents, beside each other, as daprd reads a resources path.
//!
//! Every `*.yaml`/`*.yml` file of each directory is read, with any number of `---`
//! documents; documents of other kinds are skipped. Errors name the file, then the component
//! or tenant and the field.
//! - `dapr_component`: lock stores from Dapr `Component` documents;
//! - [`dapr_configuration`]: daprd's `Configuration` resource (`--config`);
//! - [`tenants`]: tenants (app id, token, component, limits) and their limits merged with
//!   the flags';
//! - [`quantity`]: byte sizes as daprd writes them (`4Mi`);
//! - [`watch`]: when to reload: SIGHUP, or a resource file or component that changed.

pub(crate) mod dapr_component;
pub mod dapr_configuration;
pub mod quantity;
pub mod tenants;
pub mod watch;

use crate::stores::{StoreKinds, StoreSpec};
use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use tenants::TenantSpec;

/// Everything the resources path declares.
#[derive(Debug, Default, PartialEq)]
pub struct Resources {
    /// The lock stores, with their scopes.
    pub stores: Vec<StoreSpec>,
    /// The tenants declared by `Tenant` documents.
    pub tenants: Vec<TenantSpec>,
}

/// `metadata` of a document: its name.
#[derive(Deserialize, Default)]
pub(crate) struct ObjectMeta {
    name: Option<String>,
}

/// Reads every resource file under `dirs` (a file path is read as is): lock stores of the
/// `kinds` registered, and tenants; `env` resolves `envRef`s.
pub fn load(
    dirs: &[PathBuf],
    kinds: &StoreKinds,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Resources> {
    let mut resources = Resources::default();
    for dir in dirs {
        for file in resource_files(dir)? {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read resource file {}", file.display()))?;
            parse_file(&text, &file, kinds, env, &mut resources)
                .with_context(|| format!("invalid resource file {}", file.display()))?;
        }
    }
    Ok(resources)
}

/// The YAML files of `dir`, sorted; `dir` itself when it is a file.
pub fn resource_files(dir: &Path) -> Result<Vec<PathBuf>> {
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

/// Adds the lock stores and tenants of one file's documents to `resources`.
pub(crate) fn parse_file(
    text: &str,
    file: &Path,
    kinds: &StoreKinds,
    env: &dyn Fn(&str) -> Option<String>,
    resources: &mut Resources,
) -> Result<()> {
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        let value = serde_yaml_ng::Value::deserialize(document).context("not valid YAML")?;
        if value.is_null() {
            continue;
        }
        match value.get("kind").and_then(|k| k.as_str()) {
            Some("Component") => {
                let document: dapr_component::Document =
                    serde_yaml_ng::from_value(value).context("not a Dapr Component document")?;
                let Some(store) = dapr_component::store_spec(document, file, kinds, env)? else {
                    continue;
                };
                if resources.stores.iter().any(|s| s.name == store.name) {
                    bail!("component {:?} is defined twice", store.name);
                }
                resources.stores.push(store);
            }
            Some("Tenant") => {
                let document: tenants::Document =
                    serde_yaml_ng::from_value(value).context("not a Tenant document")?;
                let tenant = tenants::tenant_spec(document, file, env)?;
                add_tenant(&mut resources.tenants, tenant)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Adds `tenant` unless its app id, token or client identity is taken; the error names the
/// other file.
pub(crate) fn add_tenant(tenants: &mut Vec<TenantSpec>, tenant: TenantSpec) -> Result<()> {
    let origin = |t: &TenantSpec| match &t.source {
        Some(file) => file.display().to_string(),
        None => "--app-id with DAPR_API_TOKEN".to_string(),
    };
    if let Some(other) = tenants.iter().find(|t| t.app_id == tenant.app_id) {
        bail!(
            "tenant {:?}: metadata.name is already the app id of a tenant in {}",
            tenant.app_id,
            origin(other)
        );
    }
    if let Some(other) = tenants.iter().find(|t| t.api_token == tenant.api_token) {
        bail!(
            "tenant {:?}: spec.apiToken is already the token of tenant {:?} in {}",
            tenant.app_id,
            other.app_id,
            origin(other)
        );
    }
    if let Some(identity) = &tenant.client_identity
        && let Some(other) = tenants
            .iter()
            .find(|t| t.client_identity.as_ref() == Some(identity))
    {
        bail!(
            "tenant {:?}: spec.clientIdentity ({identity}) is already the identity of tenant {:?} in {}",
            tenant.app_id,
            other.app_id,
            origin(other)
        );
    }
    tenants.push(tenant);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse(text: &str) -> Result<Resources> {
        let mut resources = Resources::default();
        let env = |name: &str| (name == "ORDERS_TOKEN").then(|| "t-orders".to_string());
        parse_file(
            text,
            Path::new("/etc/wasilock/t.yaml"),
            &StoreKinds::builtin(),
            &env,
            &mut resources,
        )?;
        Ok(resources)
    }

    const ORDERS: &str = r#"
apiVersion: wasilock/v1alpha1
kind: Tenant
metadata:
  name: orders
spec:
  apiToken:
    envRef: ORDERS_TOKEN
  component: orders-lock.wasm
  clientIdentity: spiffe://example.org/ns/orders/sa/app
  limits:
    memory: 16Mi
    timeout: 500ms
    maxConcurrency: 64
    requestsPerInstance: 1000
"#;

    #[test]
    fn reads_tenants_with_tokens_components_and_limits() {
        let text = format!(
            "{ORDERS}---\napiVersion: wasilock/v1alpha1\nkind: Tenant\nmetadata: {{name: billing}}\nspec: {{apiToken: {{value: t-billing}}}}\n"
        );
        let resources = parse(&text).unwrap();
        let [orders, billing] = &resources.tenants[..] else {
            panic!("two tenants expected: {:?}", resources.tenants)
        };
        assert_eq!(orders.app_id, "orders");
        assert_eq!(orders.api_token, "t-orders");
        assert_eq!(
            orders.client_identity,
            Some(tenants::ClientIdentity::Uri(
                "spiffe://example.org/ns/orders/sa/app".into()
            ))
        );
        assert_eq!(
            orders.component.as_deref(),
            Some(Path::new("/etc/wasilock/orders-lock.wasm"))
        );
        assert_eq!(
            orders.limits,
            tenants::LimitOverrides {
                memory: Some(16 << 20),
                timeout: Some(Duration::from_millis(500)),
                max_concurrency: Some(64),
                requests_per_instance: Some(1000),
            }
        );
        assert_eq!(billing.api_token, "t-billing");
        assert_eq!(billing.component, None);
        assert_eq!(billing.client_identity, None);
        assert_eq!(billing.limits, tenants::LimitOverrides::default());
        assert!(
            !format!("{orders:?}").contains("t-orders"),
            "tokens are never printed"
        );
    }

    #[test]
    fn bad_tenants_name_the_tenant_and_the_field() {
        let err = |text: &str| format!("{:#}", parse(text).unwrap_err());
        let tenant = |spec: &str| {
            format!(
                "apiVersion: wasilock/v1alpha1\nkind: Tenant\nmetadata: {{name: t}}\nspec: {spec}\n"
            )
        };
        assert!(err(&tenant("{}")).contains(r#"tenant "t": spec.apiToken is missing"#));
        assert!(
            err(&tenant("{apiToken: {envRef: UNSET}}"))
                .contains("spec.apiToken.envRef names \"UNSET\"")
        );
        assert!(err(&tenant("{apiToken: {value: ''}}")).contains("spec.apiToken is empty"));
        assert!(
            err(&tenant("{apiToken: {value: a, envRef: B}}"))
                .contains("exactly one of value and envRef")
        );
        assert!(
            err(&tenant("{apiToken: {value: a}, limits: {memory: lots}}"))
                .contains("spec.limits.memory")
        );
        assert!(
            err(&tenant("{apiToken: {value: a}, limits: {timeout: soon}}"))
                .contains("spec.limits.timeout")
        );
        assert!(
            err(&tenant(
                "{apiToken: {value: a}, limits: {maxConcurrency: 0}}"
            ))
            .contains("spec.limits.maxConcurrency must be at least 1")
        );
        assert!(
            err(&tenant(
                "{apiToken: {value: a}, limits: {maxConcurency: 5}}"
            ))
            .contains("unknown field `maxConcurency`")
        );
        assert!(
            err("kind: Tenant\nmetadata: {name: t}\nspec: {apiToken: {value: a}}\n")
                .contains("apiVersion")
        );
        assert!(
            err("apiVersion: wasilock/v1alpha1\nkind: Tenant\nspec: {apiToken: {value: a}}\n")
                .contains("no metadata.name")
        );
        let twice = format!(
            "{}---\n{}",
            tenant("{apiToken: {value: a}}"),
            tenant("{apiToken: {value: b}}")
        );
        assert!(
            err(&twice).contains(
                "metadata.name is already the app id of a tenant in /etc/wasilock/t.yaml"
            )
        );
        let shared = format!(
            "{}---\napiVersion: wasilock/v1alpha1\nkind: Tenant\nmetadata: {{name: u}}\nspec: {{apiToken: {{value: a}}}}\n",
            tenant("{apiToken: {value: a}}")
        );
        let same_identity = format!(
            "{}---\napiVersion: wasilock/v1alpha1\nkind: Tenant\nmetadata: {{name: u}}\nspec: {{apiToken: {{value: b}}, clientIdentity: u.example.org}}\n",
            tenant("{apiToken: {value: a}, clientIdentity: U.example.org}")
        );
        assert!(err(&same_identity).contains(
            r#"spec.clientIdentity (DNS u.example.org) is already the identity of tenant "t""#
        ));
        let shared = err(&shared);
        assert!(
            shared.contains(r#"spec.apiToken is already the token of tenant "t""#),
            "{shared}"
        );
        assert!(
            !shared.contains(": a"),
            "the token is not printed: {shared}"
        );
    }
}
