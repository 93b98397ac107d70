//! Daprd's `Configuration` resource (`--config FILE`): what wasilock reads of it,
//! `spec.metrics.enabled`. Other fields are ignored, as daprd ignores what it does not use.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::path::Path;

/// The parts of a Dapr `Configuration` wasilock reads.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
pub struct DaprConfiguration {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    spec: Spec,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
struct Spec {
    #[serde(default)]
    metrics: Option<MetricsSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct MetricsSpec {
    #[serde(default = "enabled")]
    enabled: bool,
}

/// Daprd's default for `spec.metrics.enabled`.
fn enabled() -> bool {
    true
}

impl DaprConfiguration {
    /// Reads `file`; it must be one `kind: Configuration` document.
    pub fn read(file: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("--config: cannot read {}", file.display()))?;
        Self::parse(&text).with_context(|| format!("--config {}", file.display()))
    }

    /// Parses a `kind: Configuration` document.
    pub fn parse(text: &str) -> Result<Self> {
        let configuration: DaprConfiguration = serde_yaml_ng::from_str(text)?;
        if configuration.kind != "Configuration" {
            bail!("kind is {:?}, not \"Configuration\"", configuration.kind);
        }
        Ok(configuration)
    }

    /// `spec.metrics.enabled` (true when absent).
    pub fn metrics_enabled(&self) -> bool {
        self.spec.metrics.as_ref().is_none_or(|m| m.enabled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_enabled_unless_the_configuration_says_false() {
        let parse = |spec: &str| {
            DaprConfiguration::parse(&format!(
                "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: c\nspec:\n{spec}"
            ))
            .unwrap()
        };
        assert!(parse("  tracing:\n    samplingRate: \"1\"\n").metrics_enabled());
        assert!(parse("  metrics: {}\n").metrics_enabled());
        assert!(!parse("  metrics:\n    enabled: false\n").metrics_enabled());
        let err = DaprConfiguration::parse("kind: Component\n").unwrap_err();
        assert!(err.to_string().contains("not \"Configuration\""), "{err}");
    }
}
