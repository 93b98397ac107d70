//! Traces as daprd makes them: W3C `traceparent`/`tracestate` (gRPC: or `grpc-trace-bin`)
//! read from each API call, a
//! server span per call (HTTP: named by its path; gRPC: by its full method) with child spans
//! for the component call and each store operation, exported with OTLP (gRPC or HTTP) as the
//! `Configuration`'s `spec.tracing` says, and the call's `traceparent` on the answer.
//!
//! The host's spans are `tracing` spans of target [`TARGET`]; the OpenTelemetry layer
//! ([`Tracing::start`]) is the only one that sees them. Without it (no `spec.tracing`, or a
//! sampling rate of 0 at start) no subscriber is interested in that target and a span costs
//! one load of its callsite's interest. The sampling rate can change on reload.

use crate::config::dapr_configuration::{OtlpProtocol, TracingSettings};
use anyhow::{Context as _, Result, bail};
use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{
    Link, SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId, TraceState,
    TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{SpanExporter, WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, Sampler, SamplingResult, SdkTracerProvider, ShouldSample,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tonic::transport::ClientTlsConfig;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// The `tracing` target of every span that becomes an OpenTelemetry span.
pub const TARGET: &str = "wasilock::trace";

/// How often finished spans are sent to the receiver.
const EXPORT_INTERVAL: Duration = Duration::from_millis(500);

/// The process's tracer: its provider (flushed by [`Tracing::shutdown`]) and its sampling
/// rate, which a reload may change.
pub struct Tracing {
    provider: SdkTracerProvider,
    rate: Arc<AtomicU64>,
}

impl Tracing {
    /// The tracer `settings` ask for, and the layer that turns [`TARGET`] spans into its
    /// spans; `None` at a sampling rate of 0. Must run inside a Tokio runtime (the exporter
    /// sends from it).
    pub fn start<S>(
        settings: &TracingSettings,
        service: &str,
    ) -> Result<Option<(Tracing, impl Layer<S> + use<S>)>>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        if settings.sampling_rate <= 0.0 {
            return Ok(None);
        }
        let scheme = if settings.secure { "https" } else { "http" };
        let exporter = match settings.protocol {
            OtlpProtocol::Grpc if settings.secure => SpanExporter::builder()
                .with_tonic()
                .with_endpoint(format!("{scheme}://{}", settings.endpoint))
                .with_tls_config(ClientTlsConfig::new().with_native_roots())
                .build(),
            OtlpProtocol::Grpc => SpanExporter::builder()
                .with_tonic()
                .with_endpoint(format!("{scheme}://{}", settings.endpoint))
                .build(),
            OtlpProtocol::Http if settings.secure => {
                bail!("spec.tracing.otel: isSecure is not supported with protocol http yet")
            }
            OtlpProtocol::Http => SpanExporter::builder()
                .with_http()
                .with_endpoint(format!("{scheme}://{}/v1/traces", settings.endpoint))
                .build(),
        }
        .context("spec.tracing.otel: cannot make the OTLP exporter")?;
        let batches = BatchConfigBuilder::default()
            .with_scheduled_delay(EXPORT_INTERVAL)
            .build();
        let processor = BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio)
            .with_batch_config(batches)
            .build();
        let rate = Arc::new(AtomicU64::new(settings.sampling_rate.to_bits()));
        let sampler = Sampler::ParentBased(Box::new(Ratio(rate.clone())));
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(
                if service.is_empty() {
                    "wasilock"
                } else {
                    service
                }
                .to_string(),
            )
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_sampler(sampler)
            .with_resource(resource)
            .build();
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("wasilock"))
            .with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target(TARGET, tracing::Level::TRACE),
            );
        Ok(Some((Tracing { provider, rate }, layer)))
    }

    /// Samples new traces at `rate` (0 to 1) from now on.
    pub fn set_sampling_rate(&self, rate: f64) {
        self.rate.store(rate.to_bits(), Ordering::Relaxed);
    }

    /// Sends the spans not yet sent and stops the exporter.
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!("flushing the last spans failed: {e}");
        }
    }
}

impl std::fmt::Debug for Tracing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rate = f64::from_bits(self.rate.load(Ordering::Relaxed));
        f.debug_struct("Tracing").field("rate", &rate).finish()
    }
}

/// Samples a share of new traces, the share read at each decision.
#[derive(Debug, Clone)]
struct Ratio(Arc<AtomicU64>);

impl ShouldSample for Ratio {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let rate = f64::from_bits(self.0.load(Ordering::Relaxed));
        Sampler::TraceIdRatioBased(rate).should_sample(
            parent_context,
            trace_id,
            name,
            span_kind,
            attributes,
            links,
        )
    }
}

/// Makes `span` a child of the trace `carrier` carries (`traceparent`, `tracestate`); a
/// root when there is none.
pub fn continue_trace(span: &tracing::Span, carrier: &dyn Extractor) {
    let parent = TraceContextPropagator::new().extract(carrier);
    // The span has no OpenTelemetry data only when no tracer sees it: nothing to continue.
    let _ = span.set_parent(parent);
}

/// Makes `span` a child of the trace a gRPC call carries: its `traceparent` (and
/// `tracestate`), else its `grpc-trace-bin` (the binary context daprd also reads); a root
/// when there is neither.
pub fn continue_grpc_trace(span: &tracing::Span, metadata: &tonic::metadata::MetadataMap) {
    if metadata.get("traceparent").is_none()
        && let Some(bytes) = metadata.get_bin("grpc-trace-bin")
        && let Ok(bytes) = bytes.to_bytes()
        && let Some(parent) = trace_bin(&bytes)
    {
        let _ = span.set_parent(Context::new().with_remote_span_context(parent));
        return;
    }
    continue_trace(span, &GrpcCarrier(metadata));
}

/// The span context of a `grpc-trace-bin` value: version 0, then field 0 the trace id (16
/// bytes), field 1 the span id (8 bytes), field 2 the trace options (1 byte, bit 0 sampled).
fn trace_bin(bytes: &[u8]) -> Option<SpanContext> {
    let [0, 0, rest @ ..] = bytes else {
        return None;
    };
    let (trace_id, rest) = rest.split_first_chunk::<16>()?;
    let [1, rest @ ..] = rest else {
        return None;
    };
    let (span_id, rest) = rest.split_first_chunk::<8>()?;
    let sampled = matches!(rest, [2, options, ..] if options & 1 == 1);
    let flags = if sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let context = SpanContext::new(
        TraceId::from_bytes(*trace_id),
        SpanId::from_bytes(*span_id),
        flags,
        true,
        TraceState::default(),
    );
    context.is_valid().then_some(context)
}

/// The `traceparent` (and `tracestate`) of `span`, to put on the answer.
pub fn trace_headers(span: &tracing::Span) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = Headers(Vec::new());
    TraceContextPropagator::new().inject_context(&span.context(), &mut headers);
    headers.0
}

/// Puts the `traceparent` of `span` into `headers`.
pub fn inject(span: &tracing::Span, headers: &mut HeaderMap) {
    for (name, value) in trace_headers(span) {
        headers.insert(name, value);
    }
}

/// An HTTP request's headers, read by the propagator.
pub struct HttpCarrier<'a>(pub &'a HeaderMap);

impl Extractor for HttpCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)?.to_str().ok()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// A gRPC call's metadata, read by the propagator.
pub struct GrpcCarrier<'a>(pub &'a tonic::metadata::MetadataMap);

impl Extractor for GrpcCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)?.to_str().ok()
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// Headers the propagator writes.
struct Headers(Vec<(HeaderName, HeaderValue)>);

impl Injector for Headers {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.push((name, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_trace_bin_reads_trace_span_and_sampled() {
        let mut bytes = vec![0, 0];
        bytes.extend(1..=16u8);
        bytes.push(1);
        bytes.extend(17..=24u8);
        bytes.extend([2, 1]);
        let context = trace_bin(&bytes).unwrap();
        assert_eq!(
            context.trace_id(),
            TraceId::from_bytes(core::array::from_fn(|i| i as u8 + 1))
        );
        assert_eq!(
            context.span_id(),
            SpanId::from_bytes(core::array::from_fn(|i| i as u8 + 17))
        );
        assert!(context.is_sampled() && context.is_remote());
        let unsampled = trace_bin(&bytes[..bytes.len() - 2]).unwrap();
        assert!(!unsampled.is_sampled());
        assert_eq!(trace_bin(&[1, 0]), None, "an unknown version");
        assert_eq!(trace_bin(&bytes[..10]), None, "cut short");
    }
}
