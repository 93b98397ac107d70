//! Tenants from `kind: Tenant` documents (`apiVersion: wasilock/v1alpha1`) beside the Dapr
//! components: an app id, the API token that selects it (and the client certificate identity
//! that may select it over mutual TLS), its lock component and its limits.
//!
//! Every error names the tenant and the field; [`super::load`] adds the file.

use super::quantity::parse_bytes;
use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The `apiVersion` of Tenant documents.
pub const API_VERSION: &str = "wasilock/v1alpha1";

/// One tenant as declared.
#[derive(Clone, PartialEq, Eq)]
pub struct TenantSpec {
    /// `metadata.name`: the tenant's app id.
    pub app_id: String,
    /// `spec.apiToken`, resolved: the `dapr-api-token` that selects this tenant.
    pub api_token: String,
    /// `spec.clientIdentity`: the client certificate name that selects this tenant over
    /// mutual TLS.
    pub client_identity: Option<ClientIdentity>,
    /// `spec.component`, resolved against the file's directory; `None` = the built-in one.
    pub component: Option<PathBuf>,
    /// `spec.limits`: each `None` takes its flag's value.
    pub limits: LimitOverrides,
    /// The file it came from (`None` for the tenant made of `--app-id` and `DAPR_API_TOKEN`).
    pub source: Option<PathBuf>,
}

impl std::fmt::Debug for TenantSpec {
    /// Everything but the token, which is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantSpec")
            .field("app_id", &self.app_id)
            .field("api_token", &"<redacted>")
            .field("client_identity", &self.client_identity)
            .field("component", &self.component)
            .field("limits", &self.limits)
            .field("source", &self.source)
            .finish()
    }
}

/// A name a client certificate presents in its subject alternative names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientIdentity {
    /// A URI name, such as a SPIFFE ID (`spiffe://example.org/ns/orders/sa/app`).
    Uri(String),
    /// A DNS name (`orders.apps.example.org`).
    Dns(String),
}

impl ClientIdentity {
    /// `spec.clientIdentity` as written: a URI when it has a scheme (`scheme:`), else a DNS
    /// name (compared without case, as DNS names are).
    pub fn parse(text: &str) -> Result<ClientIdentity, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("is empty".into());
        }
        let scheme = text.split_once(':').map(|(scheme, _)| scheme);
        let is_scheme = |s: &str| {
            s.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        };
        match scheme {
            Some(scheme) if is_scheme(scheme) => Ok(ClientIdentity::Uri(text.to_string())),
            Some(_) => Err(format!("{text:?} is neither a URI nor a DNS name")),
            None if text.chars().any(|c| c.is_whitespace() || c == '/') => {
                Err(format!("{text:?} is neither a URI nor a DNS name"))
            }
            None => Ok(ClientIdentity::Dns(text.to_ascii_lowercase())),
        }
    }
}

impl std::fmt::Display for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientIdentity::Uri(uri) => write!(f, "URI {uri}"),
            ClientIdentity::Dns(name) => write!(f, "DNS {name}"),
        }
    }
}

/// A tenant's `spec.limits`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitOverrides {
    /// `memory`: linear memory of one instance, in bytes.
    pub memory: Option<u64>,
    /// `timeout`: how long one request may run inside the component.
    pub timeout: Option<Duration>,
    /// `maxConcurrency`: requests inside the component at once.
    pub max_concurrency: Option<u32>,
    /// `requestsPerInstance`: requests one instance serves before it is replaced.
    pub requests_per_instance: Option<u32>,
}

/// A `kind: Tenant` document.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Document {
    api_version: Option<String>,
    #[serde(default)]
    metadata: super::ObjectMeta,
    spec: Option<Spec>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Spec {
    api_token: Option<Secret>,
    client_identity: Option<String>,
    component: Option<String>,
    limits: Option<Limits>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Secret {
    value: Option<String>,
    env_ref: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Limits {
    memory: Option<serde_yaml_ng::Value>,
    timeout: Option<String>,
    max_concurrency: Option<u32>,
    requests_per_instance: Option<u32>,
}

/// The tenant a `kind: Tenant` document declares.
pub(crate) fn tenant_spec(
    document: Document,
    file: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<TenantSpec> {
    let Some(app_id) = document.metadata.name.filter(|n| !n.is_empty()) else {
        bail!("a Tenant has no metadata.name (its app id)");
    };
    let context = || format!("tenant {app_id:?}");
    if document.api_version.as_deref() != Some(API_VERSION) {
        bail!(
            "tenant {app_id:?}: apiVersion is {:?}; Tenant documents have apiVersion {API_VERSION}",
            document.api_version.unwrap_or_default()
        );
    }
    let spec = document
        .spec
        .with_context(|| format!("tenant {app_id:?} has no spec"))?;
    let api_token = match spec.api_token {
        Some(Secret {
            value: Some(value),
            env_ref: None,
        }) => value,
        Some(Secret {
            value: None,
            env_ref: Some(var),
        }) => env(&var).with_context(|| {
            format!("tenant {app_id:?}: spec.apiToken.envRef names {var:?}, which is not set")
        })?,
        Some(_) => {
            bail!("tenant {app_id:?}: spec.apiToken needs exactly one of value and envRef")
        }
        None => bail!("tenant {app_id:?}: spec.apiToken is missing; every tenant needs a token"),
    };
    if api_token.is_empty() {
        bail!("tenant {app_id:?}: spec.apiToken is empty");
    }
    let client_identity = spec
        .client_identity
        .map(|id| ClientIdentity::parse(&id))
        .transpose()
        .map_err(|e| anyhow::anyhow!("{}: spec.clientIdentity {e}", context()))?;
    let component = spec.component.map(|c| {
        let relative = Path::new(&c);
        file.parent().unwrap_or(Path::new(".")).join(relative)
    });
    let limits = match spec.limits {
        None => LimitOverrides::default(),
        Some(limits) => LimitOverrides {
            memory: limits
                .memory
                .map(|m| match m {
                    serde_yaml_ng::Value::String(s) => parse_bytes(&s),
                    serde_yaml_ng::Value::Number(n) => parse_bytes(&n.to_string()),
                    _ => Err("expected a quantity such as 16Mi".into()),
                })
                .transpose()
                .map_err(|e| anyhow::anyhow!("{}: spec.limits.memory: {e}", context()))?,
            timeout: limits
                .timeout
                .map(|t| humantime::parse_duration(&t))
                .transpose()
                .map_err(|e| anyhow::anyhow!("{}: spec.limits.timeout: {e}", context()))?,
            max_concurrency: positive(limits.max_concurrency, "maxConcurrency", &app_id)?,
            requests_per_instance: positive(
                limits.requests_per_instance,
                "requestsPerInstance",
                &app_id,
            )?,
        },
    };
    if limits.timeout == Some(Duration::ZERO) {
        bail!("tenant {app_id:?}: spec.limits.timeout must be positive");
    }
    Ok(TenantSpec {
        app_id,
        api_token,
        client_identity,
        component,
        limits,
        source: Some(file.to_path_buf()),
    })
}

fn positive(value: Option<u32>, field: &str, app_id: &str) -> Result<Option<u32>> {
    if value == Some(0) {
        bail!("tenant {app_id:?}: spec.limits.{field} must be at least 1");
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_identity_is_a_uri_with_a_scheme_else_a_dns_name() {
        let uri = "spiffe://example.org/ns/orders/sa/app";
        assert_eq!(
            ClientIdentity::parse(uri),
            Ok(ClientIdentity::Uri(uri.into()))
        );
        assert_eq!(
            ClientIdentity::parse("Orders.Apps.example.org"),
            Ok(ClientIdentity::Dns("orders.apps.example.org".into()))
        );
        assert!(ClientIdentity::parse("").is_err());
        assert!(ClientIdentity::parse("not a name").is_err());
        assert!(ClientIdentity::parse("1http://x").is_err());
    }
}
