//! Tenants from `kind: Tenant` documents (`apiVersion: wasilock/v1alpha1`) beside the Dapr
//! components: an app id, the API token that selects it, its lock component and its limits,
//! which [`LimitOverrides::over`] merges with the flags' limits.
//!
//! Every error names the tenant and the field; [`super::load`] adds the file.

use super::quantity::parse_bytes;
use crate::wasm::sandbox::Limits;
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
    /// `spec.component`, resolved against the file's directory; `None` = the built-in one.
    pub component: Option<PathBuf>,
    /// `spec.limits`: each `None` takes its flag's value.
    pub limits: LimitOverrides,
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
            .field("component", &self.component)
            .field("limits", &self.limits)
            .field("source", &self.source)
            .field("allow_force_unlock", &self.allow_force_unlock)
            .finish()
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
    component: Option<String>,
    limits: Option<LimitsYaml>,
    allow_force_unlock: Option<bool>,
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
        component,
        limits,
        source: Some(file.to_path_buf()),
        allow_force_unlock: spec.allow_force_unlock.unwrap_or(false),
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
}
