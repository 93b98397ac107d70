//! Tenants from `kind: Tenant` documents (`apiVersion: wasilock/v1alpha1`) beside the Dapr
//! components: an app id, the API token that selects it (and the client certificate identity
//! that may select it over mutual TLS), its lock component and its limits, which
//! [`LimitOverrides::over`] merges with the flags' limits, and the daprd its other Dapr calls
//! go to (`spec.upstream`, in place of the `--dapr-upstream-*` flags).
//!
//! Every error names the tenant and the field; [`super::load`] adds the file.

use super::quantity::parse_bytes;
use crate::upstream::{Upstream, parse_address};
use crate::wasm::Limits;
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
    /// `spec.upstream`: the daprd of this tenant, in place of the flags' (both addresses:
    /// an address it leaves out is not taken from the flags); `None` takes the flags'.
    pub upstream: Option<Upstream>,
    /// The file it came from (`None` for the tenant made of `--app-id` and `DAPR_API_TOKEN`).
    pub source: Option<PathBuf>,
    /// `spec.allowForceUnlock`: whether it may force a release (alpha2); default false.
    pub allow_force_unlock: bool,
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
            .field("upstream", &self.upstream)
            .field("source", &self.source)
            .field("allow_force_unlock", &self.allow_force_unlock)
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

impl LimitOverrides {
    /// The limits of a tenant with these overrides over `defaults` (the `--guest-*` flags):
    /// each override set replaces its flag's value; `memory` may not exceed
    /// `defaults.memory_bytes` (`--guest-memory`), the most any instance may have.
    pub fn over(&self, defaults: &Limits) -> Result<Limits> {
        let memory_bytes = match self.memory {
            None => defaults.memory_bytes,
            Some(memory) => {
                let memory = usize::try_from(memory).unwrap_or(usize::MAX);
                if memory > defaults.memory_bytes {
                    bail!(
                        "spec.limits.memory ({memory} bytes) is above --guest-memory ({} bytes), the most any instance may have",
                        defaults.memory_bytes
                    );
                }
                memory
            }
        };
        Ok(Limits {
            timeout: self.timeout.unwrap_or(defaults.timeout),
            memory_bytes,
            max_concurrency: self.max_concurrency.unwrap_or(defaults.max_concurrency),
            requests_per_instance: self
                .requests_per_instance
                .unwrap_or(defaults.requests_per_instance),
        })
    }
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
    api_token: Option<ApiTokenYaml>,
    client_identity: Option<String>,
    component: Option<String>,
    limits: Option<LimitsYaml>,
    allow_force_unlock: Option<bool>,
    upstream: Option<UpstreamYaml>,
}

/// `spec.upstream` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpstreamYaml {
    http: Option<String>,
    grpc: Option<String>,
}

/// `spec.apiToken` as written: a value or an `envRef`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ApiTokenYaml {
    value: Option<String>,
    env_ref: Option<String>,
}

/// `spec.limits` as written.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LimitsYaml {
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
        Some(ApiTokenYaml {
            value: Some(value),
            env_ref: None,
        }) => value,
        Some(ApiTokenYaml {
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
    let upstream = spec.upstream.map(|u| upstream(u, &app_id)).transpose()?;
    Ok(TenantSpec {
        app_id,
        api_token,
        client_identity,
        component,
        limits,
        upstream,
        source: Some(file.to_path_buf()),
        allow_force_unlock: spec.allow_force_unlock.unwrap_or(false),
    })
}

/// `spec.upstream`, its addresses checked.
fn upstream(yaml: UpstreamYaml, app_id: &str) -> Result<Upstream> {
    let address = |text: Option<String>, field: &str| {
        text.map(|t| parse_address(&t))
            .transpose()
            .with_context(|| format!("tenant {app_id:?}: spec.upstream.{field}"))
    };
    let upstream = Upstream {
        http: address(yaml.http, "http")?,
        grpc: address(yaml.grpc, "grpc")?,
    };
    if upstream.is_empty() {
        bail!("tenant {app_id:?}: spec.upstream needs http, grpc or both");
    }
    Ok(upstream)
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

    fn flags() -> Limits {
        Limits {
            timeout: Duration::from_secs(10),
            memory_bytes: 64 << 20,
            max_concurrency: 64,
            requests_per_instance: 1000,
        }
    }

    #[test]
    fn no_overrides_take_the_flags() {
        assert_eq!(LimitOverrides::default().over(&flags()).unwrap(), flags());
    }

    #[test]
    fn each_override_replaces_its_flag() {
        let overrides = LimitOverrides {
            memory: Some(16 << 20),
            timeout: Some(Duration::from_millis(500)),
            max_concurrency: Some(2),
            requests_per_instance: None,
        };
        assert_eq!(
            overrides.over(&flags()).unwrap(),
            Limits {
                timeout: Duration::from_millis(500),
                memory_bytes: 16 << 20,
                max_concurrency: 2,
                requests_per_instance: 1000,
            }
        );
    }

    #[test]
    fn guest_memory_is_the_ceiling() {
        let at = LimitOverrides {
            memory: Some(64 << 20),
            ..LimitOverrides::default()
        };
        assert_eq!(at.over(&flags()).unwrap().memory_bytes, 64 << 20);
        let above = LimitOverrides {
            memory: Some((64 << 20) + 1),
            ..LimitOverrides::default()
        };
        assert_eq!(
            format!("{:#}", above.over(&flags()).unwrap_err()),
            "spec.limits.memory (67108865 bytes) is above --guest-memory (67108864 bytes), the most any instance may have"
        );
    }

    fn spec(yaml: &str) -> Result<TenantSpec> {
        let text = format!(
            "apiVersion: wasilock/v1alpha1\nkind: Tenant\nmetadata: {{name: t}}\nspec: {{apiToken: {{value: a}}, {yaml}}}\n"
        );
        let document: Document = serde_yaml_ng::from_str(&text).unwrap();
        tenant_spec(document, Path::new("/etc/wasilock/t.yaml"), &|_| None)
    }

    #[test]
    fn upstream_addresses_are_read_and_checked() {
        let upstream =
            spec("upstream: {http: 'http://127.0.0.1:3501', grpc: 'http://127.0.0.1:50002'}")
                .unwrap()
                .upstream
                .unwrap();
        assert_eq!(upstream.http.unwrap().to_string(), "http://127.0.0.1:3501/");
        assert_eq!(
            upstream.grpc.unwrap().to_string(),
            "http://127.0.0.1:50002/"
        );
        let grpc_only = spec("upstream: {grpc: 'http://daprd:50001'}").unwrap();
        assert_eq!(grpc_only.upstream.unwrap().http, None);
        assert_eq!(spec("limits: {}").unwrap().upstream, None);
        let err = |yaml: &str| format!("{:#}", spec(yaml).unwrap_err());
        assert_eq!(
            err("upstream: {http: 'https://daprd:3500'}"),
            "tenant \"t\": spec.upstream.http: \"https://daprd:3500\" must start with http:// (daprd's API without TLS)"
        );
        assert_eq!(
            err("upstream: {}"),
            "tenant \"t\": spec.upstream needs http, grpc or both"
        );
    }

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
