//! HTTP/1.1 requests to daprd: every request the lock routes and wasilock's own routes do
//! not take, unchanged; health as daprd answers it; metadata merged with the tenant's lock
//! stores.

use super::{Forwarder, metadata, relay};
use crate::answer::{HyperOutgoingBody, json_response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, Uri};

/// The most of daprd's metadata answer read to merge it.
const METADATA_LIMIT: usize = 16 << 20;

impl Forwarder {
    /// Daprd's answer to `request`, as it gave it; `502 ERR_UPSTREAM_UNAVAILABLE` naming
    /// daprd when it gives none.
    pub(crate) async fn http(
        &self,
        upstream: &Uri,
        request: Request<Incoming>,
    ) -> Response<HyperOutgoingBody> {
        self.exchange(upstream, request)
            .await
            .unwrap_or_else(|message| error(502, "ERR_UPSTREAM_UNAVAILABLE", &message))
    }

    /// `GET /v1.0/healthz` (or `/outbound`) as daprd answers it; `500` (daprd's not-ready
    /// answer, naming daprd) when it gives none.
    pub(crate) async fn health(
        &self,
        upstream: &Uri,
        request: Request<Incoming>,
    ) -> Response<HyperOutgoingBody> {
        match self.exchange(upstream, request).await {
            Ok(answer) => answer,
            Err(message) => {
                let message = format!("dapr is not ready: {message}");
                error(500, "ERR_HEALTH_NOT_READY", &message)
            }
        }
    }

    /// `GET /v1.0/metadata`: daprd's answer with `ours` (wasilock's metadata JSON for the
    /// tenant) merged in when it is a `200` JSON object; any other answer of daprd as it
    /// gave it; `ours` alone when daprd gives none (the lock API works without it).
    pub(crate) async fn metadata(
        &self,
        upstream: &Uri,
        request: Request<Incoming>,
        ours: String,
    ) -> Response<HyperOutgoingBody> {
        let response = match self.exchange(upstream, request).await {
            Ok(response) => response,
            Err(message) => {
                tracing::warn!("metadata without daprd's: {message}");
                return json(200, ours);
            }
        };
        if response.status() != StatusCode::OK {
            return response;
        }
        let body = match Limited::new(response.into_body(), METADATA_LIMIT)
            .collect()
            .await
        {
            Ok(body) => body.to_bytes(),
            Err(e) => {
                let message = format!("cannot read the upstream daprd's metadata: {e}");
                return error(502, "ERR_UPSTREAM_UNAVAILABLE", &message);
            }
        };
        match metadata::merge_json(&body, &ours) {
            Some(merged) => json(200, merged),
            None => error(
                502,
                "ERR_UPSTREAM_UNAVAILABLE",
                "the upstream daprd's metadata is not a JSON object",
            ),
        }
    }

    /// One exchange with daprd: its answer with a body that streams through (keeping the
    /// connection busy until it ends), or why there is none.
    async fn exchange(
        &self,
        upstream: &Uri,
        request: Request<Incoming>,
    ) -> Result<Response<HyperOutgoingBody>, String> {
        let response = relay(&self.http1, upstream, request).await?;
        Ok(response.map(|body| body.map_err(wasmtime_wasi_http::Error::from).boxed_unsync()))
    }
}

/// Daprd's error JSON.
fn error(status: u16, code: &str, message: &str) -> Response<HyperOutgoingBody> {
    json(status, wasilock_rules::http::error_body(code, message))
}

fn json(status: u16, body: String) -> Response<HyperOutgoingBody> {
    json_response(status, body).expect("the statuses here are valid")
}
