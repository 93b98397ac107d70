//! The gRPC API: service `dapr.proto.runtime.v1.Dapr` with `TryLockAlpha1`, `UnlockAlpha1`
//! and `GetMetadata` (every other method answers `UNIMPLEMENTED`), wasilock's
//! `wasilock.lock.v1alpha2.Locks` ([`super::alpha2_grpc`]), HTTP/2 without TLS, and server
//! reflection (v1 and v1alpha) as daprd registers it, listing both.
//!
//! The `dapr-api-token` metadata selects the tenant; a missing or unknown token is
//! `UNAUTHENTICATED` with daprd's `ErrorInfo`. Errors are daprd's: a plain status whose code
//! and message follow its validation rows; a busy tenant is `RESOURCE_EXHAUSTED`.
//! Connections are bounded and timed by [`super::connections`], as for HTTP.
//!
//! With a gRPC upstream for the tenant, every call but the lock methods, `GetMetadata` and
//! reflection goes to its daprd instead (`forward::grpc`). Over TLS ([`super::tls`], ALPN
//! `h2`), a client certificate may select the tenant, as for HTTP
//! ([`Tenants::select_for`](crate::tenants::Tenants::select_for)).

use super::connections::{
    ConnectionInfo, ConnectionLimits, Connections, Protocol, TrackRequestsLayer,
};
use super::forward::Forwarder;
use super::forward::grpc::ForwardLayer;
use super::observe::{GrpcCall, grpc_span};
use crate::service::{
    LockError, LockRequest, LockService, Metadata, Refusal, Tenant, UnlockRequest,
};
use crate::telemetry::{Telemetry, traces};
use crate::tenants::Registry;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::metadata::MetadataKey;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tracing::Instrument;

/// The code generated from `host/proto` (Dapr's messages and service, trimmed).
pub mod proto {
    #![allow(missing_docs)]
    tonic::include_proto!("dapr.proto.runtime.v1");

    /// The encoded descriptors of `host/proto` (Dapr's and alpha2's), served by reflection.
    pub(crate) const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/dapr_descriptor.bin"));
}

/// The code generated from `host/proto/wasilock/lock/v1alpha2` (the alpha2 lock API).
pub mod alpha2_proto {
    #![allow(missing_docs)]
    tonic::include_proto!("wasilock.lock.v1alpha2");
}

use super::alpha2_grpc::{LocksApi, LocksServer};
use proto::dapr_server::{Dapr, DaprServer};

/// Serves the gRPC API on `listener` with the default [`ConnectionLimits`] until `shutdown`
/// turns true.
pub async fn serve<S: LockService>(
    listener: TcpListener,
    tenants: Arc<Registry<S>>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let connections = Connections::new(ConnectionLimits::default());
    serve_within(listener, tenants, &connections, shutdown).await
}

/// Serves the gRPC API on `listener` within `connections` (a bound shared with other
/// listeners; the first call within the request head timeout of connecting, then the idle
/// timeout between calls) until `shutdown` turns true.
pub async fn serve_within<S: LockService>(
    listener: TcpListener,
    tenants: Arc<Registry<S>>,
    connections: &Arc<Connections>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let telemetry = Telemetry::default();
    serve_observed(listener, tenants, connections, &telemetry, shutdown).await
}

/// Serves as [`serve_within`] does, recording each call of the `Dapr` service as
/// `telemetry` says (daprd's gRPC server series, API log lines).
pub async fn serve_observed<S: LockService>(
    listener: TcpListener,
    tenants: Arc<Registry<S>>,
    connections: &Arc<Connections>,
    telemetry: &Telemetry,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET);
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let reflection_v1 = reflection.build_v1()?;
    let router = tonic::transport::Server::builder()
        .layer(TrackRequestsLayer)
        .layer(tonic::service::InterceptorLayer::new(
            move |request: Request<()>| select_tenant(&tenants, request),
        ))
        .layer(ForwardLayer::<S>::new(Forwarder::new()))
        .add_service(DaprServer::new(DaprApi::<S> {
            telemetry: telemetry.clone(),
            tenant: PhantomData,
        }))
        .add_service(LocksServer::new(LocksApi::<S>::default()))
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    let stopped = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    let acceptor = connections.acceptor(listener);
    match connections.tls() {
        None => {
            router
                .serve_with_incoming_shutdown(acceptor.into_stream(Protocol::Http2), stopped)
                .await?
        }
        Some(tls) => {
            let incoming = acceptor.into_tls_stream(tls.clone(), Protocol::Http2);
            router
                .serve_with_incoming_shutdown(incoming, stopped)
                .await?
        }
    }
    Ok(())
}

/// Selects the tenant by `dapr-api-token` (and the client's certificate, over mutual TLS) and
/// hands it (and its upstream, if any) to the call, or refuses the call as daprd does
/// (`pkg/api/grpc/auth.go`).
fn select_tenant<S: LockService>(
    tenants: &Registry<S>,
    mut request: Request<()>,
) -> Result<Request<()>, Status> {
    let token = request.metadata().get("dapr-api-token");
    let names = request
        .extensions()
        .get::<ConnectionInfo>()
        .and_then(|info| info.peer.as_deref())
        .map_or(&[][..], |peer| &peer.names[..]);
    let current = tenants.current();
    if let Some(tenant) = current.select_for(names, token.map(|v| v.as_bytes())) {
        if let Some(upstream) = current.upstream(&tenant.app_id) {
            request.extensions_mut().insert(upstream);
        }
        request.extensions_mut().insert(tenant);
        return Ok(request);
    }
    let reason = if token.is_none() {
        "missing api token in request metadata"
    } else {
        "authentication error: api token mismatch"
    };
    let metadata = HashMap::from([
        ("http.code".to_string(), "401".to_string()),
        ("http.error_message".to_string(), reason.to_string()),
    ]);
    Err(Status::with_error_details(
        Code::Unauthenticated,
        "Unauthorized",
        ErrorDetails::with_error_info("Unauthorized", "dapr.io", metadata),
    ))
}

/// The `Dapr` service; each call finds its tenant in its extensions.
struct DaprApi<S> {
    telemetry: Telemetry,
    tenant: PhantomData<fn() -> S>,
}

/// The full names of the methods the series and API log lines name.
const TRY_LOCK: &str = "/dapr.proto.runtime.v1.Dapr/TryLockAlpha1";
const UNLOCK: &str = "/dapr.proto.runtime.v1.Dapr/UnlockAlpha1";
const GET_METADATA: &str = "/dapr.proto.runtime.v1.Dapr/GetMetadata";

impl<S: LockService> DaprApi<S> {
    /// Answers `request` with `answer` given its tenant, recorded as a call of `method`.
    async fn observed<T, R>(
        &self,
        method: &str,
        request: Request<T>,
        answer: impl AsyncFnOnce(&Tenant<S>, T) -> Result<R, Status>,
    ) -> Result<Response<R>, Status> {
        let call = GrpcCall::begin(&self.telemetry, &request);
        let span = grpc_span(&self.telemetry, method, &request);
        let tenant = tenant::<S, _>(&request);
        let answered = match (&tenant, &span) {
            (Ok(tenant), None) => answer(tenant, request.into_inner()).await,
            (Ok(tenant), Some(span)) => {
                let answering = answer(tenant, request.into_inner());
                answering.instrument(span.clone()).await
            }
            (Err(status), _) => Err(status.clone()),
        };
        let app_id = tenant.as_ref().map_or("", |t| t.app_id.as_str());
        let code = answered.as_ref().map_or_else(|s| s.code(), |_| Code::Ok);
        if let Some(call) = call {
            call.end(&self.telemetry, method, app_id, code);
        }
        let mut response = answered.map(Response::new);
        if let Some(span) = &span {
            span.record("app_id", app_id);
            span.record("rpc.grpc.status_code", code as i32);
            for (name, value) in traces::trace_headers(span) {
                let key = MetadataKey::from_bytes(name.as_str().as_bytes()).ok();
                let value = value.to_str().ok().and_then(|v| v.parse().ok());
                if let (Ok(response), Some(key), Some(value)) = (&mut response, key, value) {
                    response.metadata_mut().insert(key, value);
                }
            }
        }
        response
    }
}

/// The tenant [`select_tenant`] chose for `request`.
pub(super) fn tenant<S: LockService, T>(request: &Request<T>) -> Result<Arc<Tenant<S>>, Status> {
    request
        .extensions()
        .get::<Arc<Tenant<S>>>()
        .cloned()
        .ok_or_else(|| Status::internal("no tenant was selected for the call"))
}

#[tonic::async_trait]
impl<S: LockService> Dapr for DaprApi<S> {
    async fn try_lock_alpha1(
        &self,
        request: Request<proto::TryLockRequest>,
    ) -> Result<Response<proto::TryLockResponse>, Status> {
        self.observed(TRY_LOCK, request, async |tenant, request| {
            let lock = LockRequest {
                resource_id: request.resource_id,
                lock_owner: request.lock_owner,
                expiry_in_seconds: request.expiry_in_seconds,
            };
            let success = tenant
                .try_lock(&request.store_name, lock)
                .await
                .map_err(status)?;
            Ok(proto::TryLockResponse { success })
        })
        .await
    }

    async fn unlock_alpha1(
        &self,
        request: Request<proto::UnlockRequest>,
    ) -> Result<Response<proto::UnlockResponse>, Status> {
        self.observed(UNLOCK, request, async |tenant, request| {
            let unlock = UnlockRequest {
                resource_id: request.resource_id,
                lock_owner: request.lock_owner,
            };
            let outcome = tenant
                .unlock(&request.store_name, unlock)
                .await
                .map_err(status)?;
            Ok(proto::UnlockResponse {
                status: outcome as i32,
            })
        })
        .await
    }

    async fn get_metadata(
        &self,
        request: Request<proto::GetMetadataRequest>,
    ) -> Result<Response<proto::GetMetadataResponse>, Status> {
        self.observed(GET_METADATA, request, async |tenant, _| {
            Ok(metadata_response(&tenant.metadata()))
        })
        .await
    }
}

/// `GetMetadata`'s answer for a tenant's `metadata`.
pub(crate) fn metadata_response(metadata: &Metadata) -> proto::GetMetadataResponse {
    proto::GetMetadataResponse {
        id: metadata.app_id.clone(),
        registered_components: metadata
            .components
            .iter()
            .map(|c| proto::RegisteredComponents {
                name: c.name.clone(),
                r#type: c.component_type.to_string(),
                version: crate::service::RegisteredComponent::VERSION.to_string(),
                capabilities: Vec::new(),
            })
            .collect(),
        extended_metadata: metadata
            .extended()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        runtime_version: crate::service::DAPR_RUNTIME_VERSION.to_string(),
        enabled_features: Vec::new(),
        actor_runtime: Some(proto::ActorRuntime {
            runtime_status: proto::actor_runtime::ActorRuntimeStatus::Disabled as i32,
            host_ready: false,
        }),
    }
}

/// Daprd's gRPC status for a refused request (spec §1, gRPC column); `RESOURCE_EXHAUSTED`
/// for a busy tenant.
pub(crate) fn status(refusal: Refusal) -> Status {
    let error = match refusal {
        Refusal::Lock(error) => error,
        Refusal::Busy(message) => return Status::resource_exhausted(message),
    };
    let code = match &error {
        LockError::MalformedRequest(_) | LockError::StoreNotFound(_) => Code::InvalidArgument,
        LockError::StoreNotConfigured(_) => Code::FailedPrecondition,
        LockError::TryLockFailed(_) | LockError::UnlockFailed(_) => Code::Internal,
    };
    Status::new(code, error.message())
}
