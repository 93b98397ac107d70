//! The HTTP/1.1 API: daprd's health checks in the host; then the `dapr-api-token` selects the
//! tenant (daprd's 401 when none matches), whose metadata the host answers, whose alpha2
//! routes [`super::alpha2_http`] answers, and whose lock component answers the alpha1 lock
//! routes (and daprd's answer to every other path). Connections
//! are bounded and timed by [`super::connections`].
//!
//! With an HTTP upstream for the tenant, every other path goes to its daprd, health follows
//! daprd's, and metadata merges daprd's (`forward::http`). Over TLS ([`super::tls`]) the
//! same API is served over HTTP/1.1 or HTTP/2, as ALPN chooses, and a client certificate may
//! select the tenant ([`Tenants::select_for`](crate::tenants::Tenants::select_for)).

use super::alpha2_http;
use super::connections::{Activity, Admitted, ConnectionLimits, Connections, Protocol};
use super::forward::Forwarder;
use super::observe::{HttpCall, http_span};
use super::tls::{PeerCertificate, Tls};
use crate::answer::{HyperOutgoingBody, full_body, json_response};
use crate::service::{
    DAPR_RUNTIME_VERSION, LockService, Metadata, Operation, Refusal, RegisteredComponent, Tenant,
};
use crate::telemetry::{Telemetry, traces};
use crate::tenants::Registry;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::Instrument;

/// How long in-flight requests may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves `listener` with the default [`ConnectionLimits`] until `shutdown` turns true, then
/// lets in-flight requests finish.
pub async fn serve<S: LockService>(
    listener: TcpListener,
    tenants: Arc<Registry<S>>,
    shutdown: watch::Receiver<bool>,
) {
    let connections = Connections::new(ConnectionLimits::default());
    serve_within(listener, tenants, &connections, shutdown).await;
}

/// Serves `listener` within `connections` (a bound shared with other listeners, request
/// head and idle timeouts) until `shutdown` turns true, then lets in-flight requests finish.
pub async fn serve_within<S: LockService>(
    listener: TcpListener,
    tenants: Arc<Registry<S>>,
    connections: &Arc<Connections>,
    shutdown: watch::Receiver<bool>,
) {
    let telemetry = Telemetry::default();
    serve_observed(listener, tenants, connections, &telemetry, shutdown).await;
}

/// Serves as [`serve_within`] does, recording each request as `telemetry` says (daprd's
/// HTTP server series, API log lines, server spans).
pub async fn serve_observed<S: LockService>(
    listener: TcpListener,
    tenants: Arc<Registry<S>>,
    connections: &Arc<Connections>,
    telemetry: &Telemetry,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let forwarder = Forwarder::new();
    let mut acceptor = connections.acceptor(listener);
    loop {
        let admitted = tokio::select! {
            admitted = acceptor.accept() => admitted,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let service = ApiService {
            tenants: tenants.clone(),
            forwarder: forwarder.clone(),
            telemetry: telemetry.clone(),
        };
        if let Some(tls) = connections.tls() {
            let (tls, watcher) = (tls.clone(), graceful.watcher());
            tokio::spawn(serve_tls(admitted, tls, service, watcher));
            continue;
        }
        let peer = admitted.peer;
        let connection = admitted.watch(Protocol::Http1);
        let service = service.for_connection(connection.activity().clone(), None);
        let connection = http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(connection), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still busy after {SHUTDOWN_GRACE:?}; closing them");
    }
}

/// Serves one TLS connection: its handshake, then HTTP/2 or HTTP/1.1 as ALPN chose.
async fn serve_tls<S: LockService>(
    admitted: Admitted,
    tls: Arc<Tls>,
    service: ApiService<S>,
    watcher: Watcher,
) {
    let peer = admitted.peer;
    let connection = match admitted.handshake(&tls, Protocol::Http1).await {
        Ok(connection) => connection,
        Err(e) => {
            tracing::debug!(%peer, "TLS handshake failed: {e}");
            return;
        }
    };
    let info = connection.info().clone();
    let service = service.for_connection(info.activity, info.peer);
    let served = match connection.protocol() {
        Protocol::Http2 => {
            let connection = http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(connection), service);
            watcher.watch(connection).await
        }
        Protocol::Http1 => {
            let connection = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(connection), service);
            watcher.watch(connection).await
        }
    };
    if let Err(e) = served {
        tracing::debug!(%peer, "connection ended: {e}");
    }
}

/// What every connection of a listener answers with: the tenants, the pools to their daprd,
/// and what is observed of each call.
struct ApiService<S> {
    tenants: Arc<Registry<S>>,
    forwarder: Arc<Forwarder>,
    telemetry: Telemetry,
}

impl<S: LockService> ApiService<S> {
    /// The service of one connection: counts its requests in flight on `activity`, hands
    /// each the client's certificate, if any, and records each as the telemetry says.
    fn for_connection(
        self,
        activity: Arc<Activity>,
        peer: Option<Arc<PeerCertificate>>,
    ) -> impl hyper::service::Service<
        Request<Incoming>,
        Response = Response<HyperOutgoingBody>,
        Error = Infallible,
        Future: Send + 'static,
    > + Send
    + 'static {
        let ApiService {
            tenants,
            forwarder,
            telemetry,
        } = self;
        hyper::service::service_fn(move |mut request: Request<Incoming>| {
            let (tenants, forwarder) = (tenants.clone(), forwarder.clone());
            let telemetry = telemetry.clone();
            let busy = activity.begin();
            if let Some(peer) = &peer {
                request.extensions_mut().insert(peer.clone());
            }
            async move {
                let call = HttpCall::begin(&telemetry, &request);
                let (tenant, response) = match http_span(&telemetry, &request) {
                    None => answer(&tenants, &forwarder, request).await,
                    Some(span) => {
                        let answered =
                            answer(&tenants, &forwarder, request).instrument(span.clone());
                        let (tenant, mut response) = answered.await;
                        let app_id = tenant.as_ref().map_or("", |t| t.app_id.as_str());
                        span.record("app_id", app_id);
                        span.record("http.response.status_code", response.status().as_u16());
                        traces::inject(&span, response.headers_mut());
                        (tenant, response)
                    }
                };
                if let Some(call) = call {
                    call.end(&telemetry, tenant.as_deref(), response.status());
                }
                drop(busy);
                Ok::<_, Infallible>(response)
            }
        })
    }
}

/// Answers one request, sending to the tenant's daprd through `forwarder` what it answers
/// (its client's certificate, over mutual TLS, is an `Arc<PeerCertificate>` in its
/// extensions).
pub async fn handle<S: LockService>(
    tenants: &Registry<S>,
    forwarder: &Forwarder,
    request: Request<Incoming>,
) -> Response<HyperOutgoingBody> {
    answer(tenants, forwarder, request).await.1
}

/// Answers one request; says for which tenant (none: a health check, or no tenant's token).
async fn answer<S: LockService>(
    tenants: &Registry<S>,
    forwarder: &Forwarder,
    request: Request<Incoming>,
) -> (Option<Arc<Tenant<S>>>, Response<HyperOutgoingBody>) {
    let path = request.uri().path();
    let get = request.method() == Method::GET;
    let token = request.headers().get("dapr-api-token");
    let token = token.map(|v| v.as_bytes());
    let tenants = tenants.current();
    if get && matches!(path, "/v1.0/healthz" | "/v1.0/healthz/outbound") {
        if let Some(http) = tenants.health_upstream(token).and_then(|u| u.http.clone()) {
            return (None, forwarder.health(&http, request).await);
        }
        return (None, respond(StatusCode::NO_CONTENT, None, Bytes::new()));
    }
    let names = request
        .extensions()
        .get::<Arc<PeerCertificate>>()
        .map_or(&[][..], |peer| &peer.names[..]);
    let Some(tenant) = tenants.select_for(names, token) else {
        let refused = respond(
            StatusCode::UNAUTHORIZED,
            Some("text/plain; charset=utf-8"),
            Bytes::from_static(b"invalid api token\n"),
        );
        return (None, refused);
    };
    let upstream = tenants
        .upstream(&tenant.app_id)
        .and_then(|u| u.http.clone());
    if get && path == "/v1.0/metadata" {
        let ours = metadata_json(&tenant.metadata());
        let metadata = match upstream {
            Some(upstream) => forwarder.metadata(&upstream, request, ours).await,
            None => json(200, ours),
        };
        return (Some(tenant), metadata);
    }
    if alpha2_http::serves(request.method())
        && let Some(routed) = wasilock_rules::alpha2::route(path)
    {
        let response = match routed {
            Ok((store, resource_id)) => {
                alpha2_http::handle(tenant.clone(), store, resource_id, request).await
            }
            Err(e) => json(e.http_status(), e.body()),
        };
        return (Some(tenant), response);
    }
    if let Some(upstream) = upstream {
        let route = wasilock_rules::http::route(request.method().as_str(), path);
        if route == wasilock_rules::http::Route::NotFound {
            let forwarded = forwarder.http(&upstream, request).await;
            return (Some(tenant), forwarded);
        }
    }
    let operation = if path.starts_with("/v1.0-alpha1/unlock/") {
        Operation::Unlock
    } else {
        Operation::TryLock
    };
    let response = match tenant.service.handle_http(request).await {
        Ok(response) => response,
        Err(failure) => refusal_response(&tenant.refusal(operation, &failure)),
    };
    (Some(tenant), response)
}

/// Daprd's answer for a refused request: its error JSON, or `429` for a busy tenant.
pub(crate) fn refusal_response(refusal: &Refusal) -> Response<HyperOutgoingBody> {
    match refusal {
        Refusal::Lock(error) => {
            let answer = wasilock_rules::http::error_response(error);
            json(answer.status, answer.body)
        }
        Refusal::Busy(message) => json(
            429,
            wasilock_rules::http::error_body("ERR_TOO_MANY_REQUESTS", message),
        ),
    }
}

/// `GET /v1.0/metadata` as daprd writes it (its keys in its order), with what a lock sidecar
/// has: empty lists and objects where daprd would list actors, subscriptions and the like.
pub(crate) fn metadata_json(metadata: &Metadata) -> String {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body<'a> {
        id: &'a str,
        runtime_version: &'a str,
        enabled_features: [&'a str; 0],
        actors: [(); 0],
        components: Vec<Component<'a>>,
        extended: BTreeMap<&'a str, &'a str>,
        subscriptions: [(); 0],
        http_endpoints: [(); 0],
        app_connection_properties: serde_json::Map<String, serde_json::Value>,
        actor_runtime: ActorRuntime,
    }
    #[derive(serde::Serialize)]
    struct Component<'a> {
        name: &'a str,
        #[serde(rename = "type")]
        component_type: &'a str,
        version: &'a str,
        capabilities: [&'a str; 0],
    }
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ActorRuntime {
        runtime_status: &'static str,
        host_ready: bool,
    }
    serde_json::to_string(&Body {
        id: &metadata.app_id,
        runtime_version: DAPR_RUNTIME_VERSION,
        enabled_features: [],
        actors: [],
        components: metadata
            .components
            .iter()
            .map(|c| Component {
                name: &c.name,
                component_type: c.component_type,
                version: RegisteredComponent::VERSION,
                capabilities: [],
            })
            .collect(),
        extended: metadata.extended().into_iter().collect(),
        subscriptions: [],
        http_endpoints: [],
        app_connection_properties: serde_json::Map::new(),
        actor_runtime: ActorRuntime {
            runtime_status: "DISABLED",
            host_ready: false,
        },
    })
    .expect("plain data serializes")
}

fn json(status: u16, body: impl Into<Bytes>) -> Response<HyperOutgoingBody> {
    json_response(status, body).expect("daprd's statuses are valid")
}

fn respond(
    status: StatusCode,
    content_type: Option<&str>,
    body: Bytes,
) -> Response<HyperOutgoingBody> {
    let mut builder = Response::builder().status(status);
    if let Some(content_type) = content_type {
        builder = builder.header(hyper::header::CONTENT_TYPE, content_type);
    }
    builder
        .body(full_body(body))
        .expect("a static response is valid")
}
