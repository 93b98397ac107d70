//! HTTP answers as the host writes them: a status, a few headers and one complete body.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Response;
/// The body type of every answer the host writes.
pub use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// A body that is complete in memory, written in one go.
pub(crate) fn full_body(bytes: Bytes) -> HyperOutgoingBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A lock API answer: `status` with a JSON body. Fails on a status outside 100..=999.
pub fn json_response(
    status: u16,
    body: impl Into<Bytes>,
) -> Result<Response<HyperOutgoingBody>, hyper::http::Error> {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(full_body(body.into()))
}
