//! The metrics endpoint: Prometheus text at `/` and `/metrics` on its own listener, as
//! daprd serves it on `--metrics-port`.

use super::metrics::Metrics;
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The content type of the Prometheus text format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Serves `metrics` on `listener` until `shutdown` turns true; `open_connections` says how
/// many API connections are open at each scrape.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    open_connections: Arc<dyn Fn() -> usize + Send + Sync>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::debug!("the metrics listener failed to accept: {e}");
                    continue;
                }
            },
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let (metrics, open_connections) = (metrics.clone(), open_connections.clone());
        let service = hyper::service::service_fn(move |request: Request<_>| {
            let answer = answer(&request, &metrics, open_connections());
            async move { Ok::<_, Infallible>(answer) }
        });
        tokio::spawn(async move {
            let served = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!("a metrics connection ended: {e}");
            }
        });
    }
}

/// The answer to a scrape (`GET /` or `GET /metrics`); 404 elsewhere.
fn answer<B>(request: &Request<B>, metrics: &Metrics, open: usize) -> Response<Full<Bytes>> {
    let scrape = matches!(*request.method(), Method::GET | Method::HEAD)
        && matches!(request.uri().path(), "/" | "/metrics");
    let response = Response::builder();
    if !scrape {
        return response
            .status(StatusCode::NOT_FOUND)
            .body(Full::new(Bytes::from_static(b"404 page not found\n")))
            .expect("a static response");
    }
    response
        .header(hyper::header::CONTENT_TYPE, TEXT_FORMAT)
        .body(Full::new(Bytes::from(metrics.render(open))))
        .expect("a static response")
}
