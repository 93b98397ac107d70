//! Forwarding to a tenant's daprd ([`crate::upstream::Upstream`]) what wasilock does not
//! serve itself, so that an app's SDK needs one sidecar address: requests and calls go up
//! unchanged (method, path, headers, `dapr-api-token`, bodies streamed both ways, trailers)
//! and daprd's answers come back unchanged.
//!
//! One [`Forwarder`] per server holds the connection pools (HTTP/1.1 keep-alive and HTTP/2,
//! hyper-util's pooled client); connecting is bounded by [`CONNECT_TIMEOUT`], and a daprd
//! that cannot be reached is answered at once in daprd's shapes (HTTP `502
//! ERR_UPSTREAM_UNAVAILABLE`, gRPC `UNAVAILABLE`), both naming it. A forwarded exchange
//! keeps its connection busy until its answer's body ends, so the idle timeout never cuts a
//! stream.
//!
//! - `http`: HTTP/1.1 requests, health and metadata;
//! - `grpc`: the layer in front of the gRPC router that sends every call it does not
//!   serve to daprd;
//! - `metadata`: daprd's metadata with the tenant's lock stores in place of its own (pure).

pub(crate) mod grpc;
pub(crate) mod http;
mod metadata;

use super::connections::{Activity, Busy};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{self, HeaderMap, HeaderName};
use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::Duration;

/// How long connecting to daprd may take before the request fails as unavailable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The connection pools to daprd of one server: reused across requests and tenants (the
/// pools are per daprd address).
pub struct Forwarder {
    http1: Client<HttpConnector, Incoming>,
    http2: Client<HttpConnector, tonic::body::Body>,
}

impl Forwarder {
    /// Empty pools; connections are made on first use.
    pub fn new() -> Arc<Forwarder> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        Arc::new(Forwarder {
            http1: Client::builder(TokioExecutor::new()).build(connector.clone()),
            http2: Client::builder(TokioExecutor::new())
                .http2_only(true)
                .build(connector),
        })
    }
}

/// One exchange with daprd at `upstream` through `client`: its answer without the headers
/// of one connection, its body keeping the connection of `request` busy until it ends; or
/// why there is none (logged at debug level).
async fn relay<B>(
    client: &Client<HttpConnector, B>,
    upstream: &Uri,
    request: Request<B>,
) -> Result<Response<impl Body<Data = Bytes, Error = hyper::Error> + Send + 'static>, String>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let busy = busy(&request);
    let response = client
        .request(addressed(request, upstream))
        .await
        .map_err(|e| {
            let message = unavailable(upstream, &e);
            tracing::debug!("{message}");
            message
        })?;
    let (mut parts, body) = response.into_parts();
    remove_connection_headers(&mut parts.headers);
    Ok(Response::from_parts(parts, held(body, busy)))
}

/// `request` addressed to `upstream` (its path and query kept), without the headers that
/// belong to one connection.
fn addressed<B>(mut request: Request<B>, upstream: &Uri) -> Request<B> {
    let mut parts = upstream.clone().into_parts();
    parts.path_and_query = request.uri().path_and_query().cloned();
    *request.uri_mut() = Uri::from_parts(parts).expect("an origin with a path is a URI");
    remove_connection_headers(request.headers_mut());
    request
}

/// Removes the hop-by-hop headers (RFC 9110 §7.6.1), and those `Connection` names; hyper
/// frames the bodies itself.
fn remove_connection_headers(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::try_from(name.trim()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
    ] {
        headers.remove(name);
    }
}

/// `upstream` as messages name it: `http://host:port`.
fn origin(upstream: &Uri) -> String {
    match upstream.authority() {
        Some(authority) => format!("http://{authority}"),
        None => upstream.to_string(),
    }
}

/// Why daprd at `upstream` gave no answer, with each cause in turn.
fn unavailable(upstream: &Uri, error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = format!(
        "the upstream daprd {} is unavailable: {error}",
        origin(upstream)
    );
    let mut cause = error.source();
    while let Some(next) = cause {
        message.push_str(&format!(": {next}"));
        cause = next.source();
    }
    message
}

/// The connection of `request` kept busy (when the server counts its requests).
fn busy<B>(request: &Request<B>) -> Option<Busy> {
    request
        .extensions()
        .get::<Arc<Activity>>()
        .map(Activity::begin)
}

/// `body`, holding `busy` until it ends or is dropped.
fn held<B>(
    body: B,
    busy: Option<Busy>,
) -> impl Body<Data = Bytes, Error = B::Error> + Send + 'static
where
    B: Body<Data = Bytes> + Send + 'static,
{
    body.map_frame(move |frame: Frame<Bytes>| {
        let _held = &busy;
        frame
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_go_to_the_upstream_with_their_own_path_and_no_connection_headers() {
        let request = Request::builder()
            .uri("http://127.0.0.1:3500/v1.0/state/s?metadata.x=1")
            .header("connection", "keep-alive, x-hop")
            .header("x-hop", "1")
            .header("keep-alive", "timeout=5")
            .header("transfer-encoding", "chunked")
            .header("dapr-api-token", "t")
            .header("content-type", "application/json")
            .body(())
            .unwrap();
        let upstream = crate::upstream::parse_address("http://daprd:3501").unwrap();
        let request = addressed(request, &upstream);
        assert_eq!(
            request.uri().to_string(),
            "http://daprd:3501/v1.0/state/s?metadata.x=1"
        );
        let mut names: Vec<_> = request.headers().keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["content-type", "dapr-api-token"]);
    }

    #[test]
    fn unavailable_names_the_upstream_and_every_cause() {
        #[derive(Debug)]
        struct Connect(std::io::Error);
        impl std::fmt::Display for Connect {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("client error (Connect)")
            }
        }
        impl std::error::Error for Connect {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let upstream = crate::upstream::parse_address("http://127.0.0.1:9/").unwrap();
        let error = Connect(std::io::Error::other("connection refused"));
        assert_eq!(
            unavailable(&upstream, &error),
            "the upstream daprd http://127.0.0.1:9 is unavailable: client error (Connect): connection refused"
        );
    }
}
