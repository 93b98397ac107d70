//! Daprd's `Configuration` resource (`--config FILE`): what wasilock reads of it,
//! `spec.metrics.enabled` and `spec.tracing` (`samplingRate`, `otel.endpointAddress`,
//! `otel.protocol`, `otel.isSecure`). Other fields are ignored, as daprd ignores what it does
//! not use.

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

/// `spec`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
struct Spec {
    #[serde(default)]
    metrics: Option<MetricsSpec>,
    #[serde(default)]
    tracing: Option<TracingSpec>,
}

/// `spec.metrics`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct MetricsSpec {
    #[serde(default = "enabled")]
    enabled: bool,
}

/// `spec.tracing`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TracingSpec {
    #[serde(default)]
    sampling_rate: String,
    #[serde(default)]
    otel: Option<OtelSpec>,
}

/// `spec.tracing.otel`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OtelSpec {
    #[serde(default)]
    endpoint_address: String,
    #[serde(default)]
    protocol: String,
    #[serde(default)]
    is_secure: bool,
}

/// Where and how much to trace, as `spec.tracing` says.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingSettings {
    /// `samplingRate`: the share of new traces recorded, 0 to 1 (a sampled parent is
    /// followed whatever the rate).
    pub sampling_rate: f64,
    /// `otel.endpointAddress`: `host:port` of the OTLP receiver.
    pub endpoint: String,
    /// `otel.protocol`: gRPC, or HTTP (protobuf).
    pub protocol: OtlpProtocol,
    /// `otel.isSecure`: TLS to the receiver.
    pub secure: bool,
}

/// How spans travel to the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP over gRPC (`grpc`).
    Grpc,
    /// OTLP over HTTP with protobuf bodies (`http`).
    Http,
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

    /// `spec.tracing` when it names an OTLP receiver; `None` when nothing is traced.
    pub fn tracing(&self) -> Result<Option<TracingSettings>> {
        let Some(tracing) = &self.spec.tracing else {
            return Ok(None);
        };
        let Some(otel) = tracing
            .otel
            .as_ref()
            .filter(|o| !o.endpoint_address.is_empty())
        else {
            return Ok(None);
        };
        let rate = tracing.sampling_rate.trim();
        let sampling_rate = match rate {
            "" => 0.0,
            rate => rate
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .with_context(|| {
                    format!("spec.tracing.samplingRate {rate:?} is not a number from 0 to 1")
                })?,
        };
        let protocol = match otel.protocol.as_str() {
            "grpc" => OtlpProtocol::Grpc,
            "http" => OtlpProtocol::Http,
            other => bail!("spec.tracing.otel.protocol {other:?} is neither \"grpc\" nor \"http\""),
        };
        Ok(Some(TracingSettings {
            sampling_rate,
            endpoint: otel.endpoint_address.clone(),
            protocol,
            secure: otel.is_secure,
        }))
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
        let tracing = parse(
            "  tracing:\n    samplingRate: \"0.5\"\n    otel:\n      endpointAddress: \"127.0.0.1:4317\"\n      protocol: grpc\n      isSecure: false\n",
        );
        let settings = tracing.tracing().unwrap().unwrap();
        assert_eq!(settings.sampling_rate, 0.5);
        assert_eq!(settings.endpoint, "127.0.0.1:4317");
        assert_eq!(settings.protocol, OtlpProtocol::Grpc);
        assert!(!settings.secure);
        assert_eq!(parse("  metrics: {}\n").tracing().unwrap(), None);
        let bad = parse(
            "  tracing:\n    samplingRate: \"2\"\n    otel:\n      endpointAddress: x:1\n      protocol: grpc\n",
        );
        assert!(bad.tracing().is_err());
        let err = DaprConfiguration::parse("kind: Component\n").unwrap_err();
        assert!(err.to_string().contains("not \"Configuration\""), "{err}");
    }
}
