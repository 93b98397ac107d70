//! The layer in front of the gRPC router: a call to a tenant with a gRPC upstream goes to
//! daprd as raw HTTP/2 (any service and method, unary or streaming either way, metadata,
//! trailers and status details unchanged), unless wasilock serves it: the lock methods,
//! reflection, and `GetMetadata`, whose answer is daprd's merged with the tenant's lock
//! stores. Without an upstream every call goes to the router, as before.
//!
//! It runs after the tenant is selected (the interceptor puts the tenant and its
//! [`Upstream`] in the call's extensions), so an unknown token is refused here as well.

use super::{Forwarder, metadata, relay};
use crate::api::grpc::metadata_response;
use crate::service::{LockService, Tenant};
use crate::upstream::Upstream;
use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::Frame;
use hyper::{HeaderMap, Request, Response, Uri};
use std::convert::Infallible;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::Status;
use tonic::body::Body;

/// The calls wasilock answers itself (reflection and its own alpha2 service too, by their
/// prefixes).
const LOCAL_METHODS: [&str; 3] = [
    "/dapr.proto.runtime.v1.Dapr/TryLockAlpha1",
    "/dapr.proto.runtime.v1.Dapr/UnlockAlpha1",
    GET_METADATA,
];
const GET_METADATA: &str = "/dapr.proto.runtime.v1.Dapr/GetMetadata";
const REFLECTION_PREFIX: &str = "/grpc.reflection.";
const ALPHA2_PREFIX: &str = "/wasilock.lock.v1alpha2.Locks/";
/// The most of a `GetMetadata` request or of daprd's answer read to merge it.
const METADATA_LIMIT: usize = 16 << 20;

/// Whether wasilock answers the call at `path` itself.
fn is_local(path: &str) -> bool {
    LOCAL_METHODS.contains(&path)
        || path.starts_with(REFLECTION_PREFIX)
        || path.starts_with(ALPHA2_PREFIX)
}

/// Puts [`Forward`] in front of the gRPC router; `S` is the tenants' lock service.
pub(crate) struct ForwardLayer<S> {
    forwarder: Arc<Forwarder>,
    tenant: PhantomData<fn() -> S>,
}

impl<S> ForwardLayer<S> {
    /// Forwarding through `forwarder`'s pools.
    pub(crate) fn new(forwarder: Arc<Forwarder>) -> Self {
        ForwardLayer {
            forwarder,
            tenant: PhantomData,
        }
    }
}

impl<S> Clone for ForwardLayer<S> {
    fn clone(&self) -> Self {
        ForwardLayer::new(self.forwarder.clone())
    }
}

impl<S, I> tower::Layer<I> for ForwardLayer<S> {
    type Service = Forward<S, I>;

    fn layer(&self, inner: I) -> Forward<S, I> {
        Forward {
            inner,
            forwarder: self.forwarder.clone(),
            tenant: PhantomData,
        }
    }
}

/// The router `I`, with the calls it does not serve sent to the tenant's daprd.
pub(crate) struct Forward<S, I> {
    inner: I,
    forwarder: Arc<Forwarder>,
    tenant: PhantomData<fn() -> S>,
}

impl<S, I: Clone> Clone for Forward<S, I> {
    fn clone(&self) -> Self {
        Forward {
            inner: self.inner.clone(),
            forwarder: self.forwarder.clone(),
            tenant: PhantomData,
        }
    }
}

type Answer<E> = Pin<Box<dyn Future<Output = Result<Response<Body>, E>> + Send>>;

impl<S, I> tower::Service<Request<Body>> for Forward<S, I>
where
    S: LockService,
    I: tower::Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    I::Future: Send,
    I::Error: Send,
{
    type Response = Response<Body>;
    type Error = I::Error;
    type Future = Answer<I::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), I::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Answer<I::Error> {
        // The ready service serves this call; a fresh clone waits for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let path = request.uri().path();
        let upstream = request
            .extensions()
            .get::<Arc<Upstream>>()
            .and_then(|u| u.grpc.clone());
        let upstream = match upstream {
            Some(upstream) if !is_local(path) || path == GET_METADATA => upstream,
            _ => return Box::pin(inner.call(request)),
        };
        let forwarder = self.forwarder.clone();
        if path == GET_METADATA {
            let tenant = request.extensions().get::<Arc<Tenant<S>>>().cloned();
            return Box::pin(async move {
                let Some(tenant) = tenant else {
                    return inner.call(request).await;
                };
                forwarder
                    .grpc_metadata(&upstream, request, &tenant, inner)
                    .await
            });
        }
        Box::pin(async move {
            Ok(match forwarder.grpc(&upstream, request).await {
                Ok(response) => response,
                Err(status) => status.into_http(),
            })
        })
    }
}

impl Forwarder {
    /// Daprd's answer to the call, streaming through; `UNAVAILABLE` naming daprd when it
    /// gives none.
    async fn grpc(&self, upstream: &Uri, request: Request<Body>) -> Result<Response<Body>, Status> {
        let response = relay(&self.http2, upstream, request).await;
        Ok(response.map_err(Status::unavailable)?.map(Body::new))
    }

    /// `GetMetadata`: daprd's answer with the tenant's lock stores merged in when it is a
    /// success; any other answer of daprd as it gave it; the router's own answer (`local`)
    /// when daprd gives none, so that the lock API works without it.
    async fn grpc_metadata<S, I>(
        &self,
        upstream: &Uri,
        request: Request<Body>,
        tenant: &Tenant<S>,
        mut local: I,
    ) -> Result<Response<Body>, I::Error>
    where
        S: LockService,
        I: tower::Service<Request<Body>, Response = Response<Body>>,
    {
        let (parts, body) = request.into_parts();
        let body = match Limited::new(body, METADATA_LIMIT).collect().await {
            Ok(body) => body.to_bytes(),
            Err(e) => {
                let status = Status::invalid_argument(format!("cannot read the request: {e}"));
                return Ok(status.into_http());
            }
        };
        let copy = |body: Bytes| {
            let mut request = Request::new(Body::new(Full::new(body)));
            *request.method_mut() = parts.method.clone();
            *request.uri_mut() = parts.uri.clone();
            *request.version_mut() = parts.version;
            *request.headers_mut() = parts.headers.clone();
            *request.extensions_mut() = parts.extensions.clone();
            request
        };
        let response = match self.grpc(upstream, copy(body.clone())).await {
            Ok(response) => response,
            Err(status) => {
                tracing::warn!("metadata without daprd's: {}", status.message());
                return local.call(copy(body)).await;
            }
        };
        if response.headers().contains_key("grpc-status") {
            return Ok(response);
        }
        let (mut parts, body) = response.into_parts();
        let body = match Limited::new(body, METADATA_LIMIT).collect().await {
            Ok(body) => body,
            Err(e) => {
                let message = format!("cannot read the upstream daprd's metadata: {e}");
                return Ok(Status::unavailable(message).into_http());
            }
        };
        let trailers = body.trailers().cloned().unwrap_or_default();
        let data = body.to_bytes();
        let ours = metadata_response(&tenant.metadata());
        let merged = succeeded(&trailers)
            .then(|| single_message(&data))
            .flatten()
            .and_then(|message| metadata::merge_grpc(message, &ours));
        let data = match merged {
            Some(message) => {
                parts.headers.remove(hyper::header::CONTENT_LENGTH);
                frame(&message)
            }
            None => data,
        };
        let frames = [Frame::data(data), Frame::trailers(trailers)];
        let body = StreamBody::new(futures_util::stream::iter(
            frames.into_iter().map(Ok::<_, Infallible>),
        ));
        Ok(Response::from_parts(parts, Body::new(body)))
    }
}

/// Whether the trailers say `OK`.
fn succeeded(trailers: &HeaderMap) -> bool {
    trailers.get("grpc-status").is_some_and(|s| s == "0")
}

/// The one uncompressed message of a gRPC body (`None` for anything else).
fn single_message(data: &[u8]) -> Option<&[u8]> {
    let (&[0], rest) = data.split_first_chunk::<1>()? else {
        return None;
    };
    let (len, message) = rest.split_first_chunk::<4>()?;
    (usize::try_from(u32::from_be_bytes(*len)).ok()? == message.len()).then_some(message)
}

/// `message` as one uncompressed gRPC frame.
fn frame(message: &[u8]) -> Bytes {
    let mut framed = BytesMut::with_capacity(5 + message.len());
    framed.put_u8(0);
    framed.put_u32(u32::try_from(message.len()).expect("a message under 16 MiB"));
    framed.put_slice(message);
    framed.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_metadata_and_reflection_stay_everything_else_goes_up() {
        assert!(is_local("/dapr.proto.runtime.v1.Dapr/TryLockAlpha1"));
        assert!(is_local("/dapr.proto.runtime.v1.Dapr/UnlockAlpha1"));
        assert!(is_local("/dapr.proto.runtime.v1.Dapr/GetMetadata"));
        assert!(is_local(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
        ));
        assert!(!is_local("/dapr.proto.runtime.v1.Dapr/GetState"));
        assert!(!is_local("/dapr.proto.runtime.v1.Dapr/TryLockAlpha2"));
        assert!(!is_local(
            "/dapr.proto.runtime.v1.Dapr/SubscribeConfiguration"
        ));
        assert!(!is_local("/some.Other/TryLockAlpha1"));
        assert!(is_local("/wasilock.lock.v1alpha2.Locks/LockStream"));
    }

    #[test]
    fn one_uncompressed_message_is_framed_and_unframed() {
        let framed = frame(b"abc");
        assert_eq!(&framed[..], b"\0\0\0\0\x03abc");
        assert_eq!(single_message(&framed), Some(&b"abc"[..]));
        assert_eq!(single_message(b"\x01\0\0\0\x03abc"), None);
        assert_eq!(single_message(b"\0\0\0\0\x03abcd"), None);
        assert_eq!(single_message(b"\0\0\0"), None);
        let ok = HeaderMap::from_iter([("grpc-status".parse().unwrap(), "0".parse().unwrap())]);
        assert!(succeeded(&ok));
        assert!(!succeeded(&HeaderMap::new()));
    }
}
