//! The HTTP/1.1 server: daprd's API token and health endpoints in the host, everything else
//! answered by the lock component.

use crate::runtime::{GuestFailure, GuestRuntime};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
/// The body type of every answer the server writes.
pub use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// How long in-flight requests may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What answers the requests the host does not answer itself (health checks and the API
/// token are the host's): the lock component, or, for benchmarks, the same logic natively.
pub trait LockService: Send + Sync + 'static {
    /// Answers one request; a failure becomes daprd's 500 for the path.
    fn handle_http(
        &self,
        request: Request<Incoming>,
    ) -> impl Future<Output = Result<Response<HyperOutgoingBody>, GuestFailure>> + Send;
}

impl LockService for GuestRuntime {
    fn handle_http(
        &self,
        request: Request<Incoming>,
    ) -> impl Future<Output = Result<Response<HyperOutgoingBody>, GuestFailure>> + Send {
        GuestRuntime::handle_http(self, request)
    }
}

/// What a server needs to answer requests.
pub struct App<S = GuestRuntime> {
    /// The lock logic of this host's tenant.
    pub service: S,
    /// `DAPR_API_TOKEN`: when set, every request but health checks must carry it.
    pub api_token: Option<String>,
}

/// Serves `listener` until `shutdown` turns true, then lets in-flight requests finish.
pub async fn serve<S: LockService>(
    listener: TcpListener,
    app: Arc<App<S>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let (socket, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |request| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(handle(&app, request).await) }
        });
        let connection = http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(socket), service);
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
    app: &App<S>,
    request: Request<Incoming>,
) -> Response<HyperOutgoingBody> {
    let path = request.uri().path();
    if request.method() == Method::GET && matches!(path, "/v1.0/healthz" | "/v1.0/healthz/outbound")
    {
        return respond(StatusCode::NO_CONTENT, None, Bytes::new());
    }
    if let Some(token) = &app.api_token {
        let presented = request
            .headers()
            .get("dapr-api-token")
            .map(|v| v.as_bytes());
        if presented != Some(token.as_bytes()) {
            return respond(
                StatusCode::UNAUTHORIZED,
                Some("text/plain; charset=utf-8"),
                Bytes::from_static(b"invalid api token\n"),
            );
        }
    }
    let unlock = path.starts_with("/v1.0-alpha1/unlock/");
    match app.service.handle_http(request).await {
        Ok(response) => response,
        Err(failure) => guest_failure(unlock, &failure),
    }
}

/// A 500 in daprd's shape for a request the component could not answer.
fn guest_failure(unlock: bool, failure: &GuestFailure) -> Response<HyperOutgoingBody> {
    let operation = if unlock { "unlock" } else { "lock" };
    tracing::warn!(
        operation,
        "the lock component failed: {}",
        failure_summary(failure)
    );
    tracing::debug!(operation, "the lock component failed: {failure}");
    let (code, prefix) = if unlock {
        ("ERR_UNLOCK", wasilock_guest::lease::UNLOCK_FAILED_PREFIX)
    } else {
        (
            "ERR_TRY_LOCK",
            wasilock_guest::lease::TRY_LOCK_FAILED_PREFIX,
        )
    };
    let body = wasilock_guest::http::error_body(
        code,
        &format!(
            "{prefix}the lock component failed: {}",
            failure_summary(failure)
        ),
    );
    respond(
        StatusCode::INTERNAL_SERVER_ERROR,
        Some("application/json"),
        Bytes::from(body),
    )
}

/// The root cause of a failure, in one line (a trap's message, not its backtrace).
fn failure_summary(failure: &GuestFailure) -> String {
    let root = failure.0.root_cause().to_string();
    root.lines().next().unwrap_or_default().to_string()
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

/// A body that is complete in memory, written in one go.
pub fn full_body(bytes: Bytes) -> HyperOutgoingBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A lock API answer: `status` with a JSON body. Fails on a status outside 100..=999.
pub fn json_response(
    status: u16,
    body: String,
) -> Result<Response<HyperOutgoingBody>, hyper::http::Error> {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(full_body(Bytes::from(body)))
}
