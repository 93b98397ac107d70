//! The HTTP/1.1 API: daprd's health checks in the host; then the `dapr-api-token` selects the
//! tenant (daprd's 401 when none matches), whose metadata the host answers, whose alpha2
//! routes [`super::alpha2_http`] answers, and whose lock component answers the alpha1 lock
//! routes (and daprd's answer to every other path). Connections
//! are bounded and timed by [`super::connections`].

use super::alpha2_http;
use super::connections::{ConnectionLimits, Connections, Protocol};
use crate::answer::{HyperOutgoingBody, full_body, json_response};
use crate::service::{
    DAPR_RUNTIME_VERSION, LockService, Metadata, Operation, Refusal, RegisteredComponent,
};
use crate::tenants::Registry;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

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
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let mut acceptor = connections.acceptor(listener);
    loop {
        let admitted = tokio::select! {
            admitted = acceptor.accept() => admitted,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let peer = admitted.peer;
        let connection = admitted.watch(Protocol::Http1);
        let activity = connection.activity().clone();
        let tenants = tenants.clone();
        let service = hyper::service::service_fn(move |request| {
            let tenants = tenants.clone();
            let busy = activity.begin();
            async move {
                let response = handle(&tenants, request).await;
                drop(busy);
                Ok::<_, Infallible>(response)
            }
        });
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

/// Answers one request.
pub async fn handle<S: LockService>(
    tenants: &Registry<S>,
    request: Request<Incoming>,
) -> Response<HyperOutgoingBody> {
    let path = request.uri().path();
    let get = request.method() == Method::GET;
    if get && matches!(path, "/v1.0/healthz" | "/v1.0/healthz/outbound") {
        return respond(StatusCode::NO_CONTENT, None, Bytes::new());
    }
    let token = request.headers().get("dapr-api-token");
    let Some(tenant) = tenants.select(token.map(|v| v.as_bytes())) else {
        return respond(
            StatusCode::UNAUTHORIZED,
            Some("text/plain; charset=utf-8"),
            Bytes::from_static(b"invalid api token\n"),
        );
    };
    if get && path == "/v1.0/metadata" {
        return json(200, metadata_json(&tenant.metadata()));
    }
    if alpha2_http::serves(request.method())
        && let Some(routed) = wasilock_rules::alpha2::route(path)
    {
        return match routed {
            Ok((store, resource_id)) => {
                alpha2_http::handle(tenant, store, resource_id, request).await
            }
            Err(e) => json(e.http_status(), e.body()),
        };
    }
    let operation = if path.starts_with("/v1.0-alpha1/unlock/") {
        Operation::Unlock
    } else {
        Operation::TryLock
    };
    match tenant.service.handle_http(request).await {
        Ok(response) => response,
        Err(failure) => refusal_response(&tenant.refusal(operation, &failure)),
    }
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
