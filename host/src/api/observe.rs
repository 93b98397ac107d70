//! What the API servers record of each call: daprd's HTTP and gRPC server series (the
//! route template as `path`, Go's status names on gRPC) and, with `--enable-api-logging`,
//! daprd's API log lines. Nothing is measured when neither is on.

use crate::service::{LockService, Tenant};
use crate::telemetry::{Telemetry, logs, routes, traces};
use hyper::header::{HeaderValue, USER_AGENT};
use hyper::{Method, Request, StatusCode, Uri};
use std::time::Instant;
use tonic::Code;

/// An HTTP request being answered.
pub(crate) struct HttpCall {
    started: Instant,
    method: Method,
    uri: Uri,
    useragent: Option<HeaderValue>,
}

impl HttpCall {
    /// Starts timing `request`; `None` when nothing is recorded.
    pub(crate) fn begin<B>(telemetry: &Telemetry, request: &Request<B>) -> Option<HttpCall> {
        if telemetry.metrics.is_none() && !telemetry.api_logging {
            return None;
        }
        Some(HttpCall {
            started: Instant::now(),
            method: request.method().clone(),
            uri: request.uri().clone(),
            useragent: telemetry
                .api_logging
                .then(|| request.headers().get(USER_AGENT).cloned())
                .flatten(),
        })
    }

    /// Records the answer `status`, given for `tenant` (none: the token matched none).
    pub(crate) fn end<S: LockService>(
        self,
        telemetry: &Telemetry,
        tenant: Option<&Tenant<S>>,
        status: StatusCode,
    ) {
        let elapsed = self.started.elapsed();
        let path = routes::template(self.uri.path());
        if let Some(metrics) = &telemetry.metrics {
            let resolved = tenant.and_then(|t| t.service.metrics());
            let lock_ok = status == StatusCode::OK && self.method == Method::POST;
            match resolved {
                Some(tenant) if lock_ok && path == routes::LOCK => {
                    tenant.lock_http_ok(false).observe(elapsed)
                }
                Some(tenant) if lock_ok && path == routes::UNLOCK => {
                    tenant.lock_http_ok(true).observe(elapsed)
                }
                _ => {
                    let app_id = tenant.map_or("", |t| t.app_id.as_str());
                    let (method, status) = (self.method.as_str(), status.as_str());
                    metrics.http(app_id, method, path, status).observe(elapsed);
                }
            }
        }
        if telemetry.api_logging {
            let method = format!("{} {}", self.method, self.uri.path());
            let useragent = self.useragent.as_ref().and_then(|v| v.to_str().ok());
            logs::api_called(
                false,
                &method,
                useragent.unwrap_or(""),
                elapsed,
                status.as_str(),
            );
        }
    }
}

/// The server span of an HTTP request, named by its path, continuing the trace its
/// `traceparent` carries; `None` when nothing is traced.
pub(crate) fn http_span<B>(telemetry: &Telemetry, request: &Request<B>) -> Option<tracing::Span> {
    telemetry.traces.as_ref()?;
    let span = tracing::info_span!(
        target: traces::TARGET,
        "http server",
        otel.name = request.uri().path(),
        otel.kind = "server",
        http.request.method = request.method().as_str(),
        app_id = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
    );
    traces::continue_trace(&span, &traces::HttpCarrier(request.headers()));
    Some(span)
}

/// The server span of a gRPC call of `method` (its full name), continuing the trace its
/// `traceparent` (or `grpc-trace-bin`) metadata carries; `None` when nothing is traced.
pub(crate) fn grpc_span<T>(
    telemetry: &Telemetry,
    method: &str,
    request: &tonic::Request<T>,
) -> Option<tracing::Span> {
    telemetry.traces.as_ref()?;
    let span = tracing::info_span!(
        target: traces::TARGET,
        "grpc server",
        otel.name = method,
        otel.kind = "server",
        rpc.system = "grpc",
        app_id = tracing::field::Empty,
        rpc.grpc.status_code = tracing::field::Empty,
    );
    traces::continue_grpc_trace(&span, request.metadata());
    Some(span)
}

/// A gRPC call being answered.
pub(crate) struct GrpcCall {
    started: Instant,
    useragent: Option<String>,
}

impl GrpcCall {
    /// Starts timing `request`; `None` when nothing is recorded.
    pub(crate) fn begin<T>(telemetry: &Telemetry, request: &tonic::Request<T>) -> Option<GrpcCall> {
        if telemetry.metrics.is_none() && !telemetry.api_logging {
            return None;
        }
        let useragent = telemetry.api_logging.then(|| {
            let agent = request.metadata().get("user-agent");
            agent
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        });
        Some(GrpcCall {
            started: Instant::now(),
            useragent,
        })
    }

    /// Records the end of a call of `method` (its full name) for `app_id` with `code`.
    pub(crate) fn end(self, telemetry: &Telemetry, method: &str, app_id: &str, code: Code) {
        let elapsed = self.started.elapsed();
        let status = go_status_name(code);
        if let Some(metrics) = &telemetry.metrics {
            metrics.grpc(app_id, method, status, elapsed);
        }
        if let Some(useragent) = &self.useragent {
            logs::api_called(true, method, useragent, elapsed, status);
        }
    }
}

/// The name Go's gRPC gives `code` (`OK`, `InvalidArgument`, ...), as daprd's series carry.
pub(crate) fn go_status_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_are_gos() {
        assert_eq!(go_status_name(Code::Ok), "OK");
        assert_eq!(go_status_name(Code::Cancelled), "Canceled");
        assert_eq!(go_status_name(Code::InvalidArgument), "InvalidArgument");
        assert_eq!(go_status_name(Code::ResourceExhausted), "ResourceExhausted");
    }
}
