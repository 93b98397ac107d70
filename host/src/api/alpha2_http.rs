//! The alpha2 lock API over HTTP: `/v1.0-alpha2/lock/{store}/{resourceId}` with `POST`
//! (acquire, or a lock held by an ND-JSON stream with `Accept: application/x-ndjson`),
//! `PUT` (renew), `DELETE` (release, or `{"force":true}`) and `GET` (inspect). Bodies,
//! answers and errors are the rules' ([`wasilock_rules::alpha2`]); the tenant's service
//! waits, renews and releases.

use crate::answer::{HyperOutgoingBody, full_body, json_response};
use crate::service::{Alpha2Error, Alpha2Outcome, Alpha2Request, HoldEvent, LockService, Tenant};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;
use wasilock_rules::alpha2::{self as rules, AcquireBody, ReleaseBody, RenewBody};

/// The largest alpha2 request body read (they hold a few short fields).
const MAX_BODY: usize = 64 * 1024;
/// The media type of a lock held by a stream.
const NDJSON: &str = "application/x-ndjson";

/// Whether the alpha2 API has `method` (others get daprd's answer for an unknown route).
pub fn serves(method: &Method) -> bool {
    [Method::POST, Method::PUT, Method::DELETE, Method::GET].contains(method)
}

/// Answers an alpha2 request (a method it [`serves`]) for `store` and `resource_id`
/// (decoded from the path).
pub async fn handle<S: LockService>(
    tenant: Arc<Tenant<S>>,
    store: String,
    resource_id: String,
    request: Request<Incoming>,
) -> Response<HyperOutgoingBody> {
    let method = request.method().clone();
    let streamed = method == Method::POST
        && request
            .headers()
            .get_all(hyper::header::ACCEPT)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.contains(NDJSON)));
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => {
            return error(&Alpha2Error::MalformedRequest(format!(
                "failed reading HTTP body: {e}"
            )));
        }
    };
    if streamed {
        return stream(tenant, store, resource_id, &body).await;
    }
    let call = LockCall {
        tenant: &tenant,
        store: &store,
        resource_id: &resource_id,
    };
    let answer = match method {
        Method::POST => call.acquire(&body).await,
        Method::PUT => call.renew(&body).await,
        Method::DELETE => call.release(&body).await,
        _ => call.inspect().await,
    };
    answer.unwrap_or_else(|e| error(&e))
}

/// How long an acquire with `body` waits: `None` when `immediate`.
fn wait<S: LockService>(
    tenant: &Tenant<S>,
    body: &AcquireBody,
) -> Result<Option<Duration>, Alpha2Error> {
    if body.immediate {
        return Ok(None);
    }
    Ok(Some(match &body.wait_timeout {
        Some(text) => rules::wait_timeout(text)?,
        None => tenant.alpha2.max_lock_wait,
    }))
}

/// A call on one lock: the tenant's `store` and the `resource_id` of the path.
struct LockCall<'a, S: LockService> {
    tenant: &'a Tenant<S>,
    store: &'a str,
    resource_id: &'a str,
}

impl<S: LockService> LockCall<'_, S> {
    async fn acquire(&self, body: &[u8]) -> Result<Response<HyperOutgoingBody>, Alpha2Error> {
        let body: AcquireBody = rules::parse_body(body)?;
        let wait = wait(self.tenant, &body)?;
        let grant = self
            .tenant
            .acquire(self.store, self.resource_id, body.ttl, wait)
            .await?;
        Ok(json(200, rules::grant_body(&grant)))
    }

    async fn renew(&self, body: &[u8]) -> Result<Response<HyperOutgoingBody>, Alpha2Error> {
        let body: RenewBody = rules::parse_body(body)?;
        let request = Alpha2Request::Renew {
            resource_id: self.resource_id.to_owned(),
            lock_id: body.lock_id,
            ttl: body.ttl,
        };
        match self.tenant.alpha2(self.store, &request).await? {
            Alpha2Outcome::Renewed(grant) => Ok(json(200, rules::grant_body(&grant))),
            other => Err(unexpected(&other)),
        }
    }

    async fn release(&self, body: &[u8]) -> Result<Response<HyperOutgoingBody>, Alpha2Error> {
        let body: ReleaseBody = rules::parse_body(body)?;
        let resource_id = self.resource_id.to_owned();
        let request = if body.force {
            Alpha2Request::ForceRelease { resource_id }
        } else {
            Alpha2Request::Release {
                resource_id,
                lock_id: body.lock_id,
            }
        };
        match self.tenant.alpha2(self.store, &request).await? {
            Alpha2Outcome::Released => Ok(Response::builder()
                .status(204)
                .body(full_body(Bytes::new()))
                .expect("a static response is valid")),
            other => Err(unexpected(&other)),
        }
    }

    async fn inspect(&self) -> Result<Response<HyperOutgoingBody>, Alpha2Error> {
        let request = Alpha2Request::Inspect {
            resource_id: self.resource_id.to_owned(),
        };
        match self.tenant.alpha2(self.store, &request).await? {
            Alpha2Outcome::State(state) => Ok(json(200, rules::state_body(state.as_ref()))),
            other => Err(unexpected(&other)),
        }
    }
}

/// A lock held by an ND-JSON stream: acquired (waiting as an acquire does), then renewed by
/// the service while the client reads; released when the client closes. An acquire that
/// fails answers its error as an ordinary response.
async fn stream<S: LockService>(
    tenant: Arc<Tenant<S>>,
    store: String,
    resource_id: String,
    body: &[u8],
) -> Response<HyperOutgoingBody> {
    let granted = async {
        let body: AcquireBody = rules::parse_body(body)?;
        let wait = wait(&tenant, &body)?;
        tenant.acquire(&store, &resource_id, body.ttl, wait).await
    };
    let grant = match granted.await {
        Ok(grant) => grant,
        Err(e) => return error(&e),
    };
    let first = rules::stream_acquired_line(&grant);
    let (events, received) = mpsc::channel(4);
    tokio::spawn(async move {
        tenant.hold(&store, &resource_id, grant, events).await;
    });
    Response::builder()
        .status(200)
        .header(hyper::header::CONTENT_TYPE, NDJSON)
        .body(
            LineBody {
                first: Some(line(first)),
                received,
                done: false,
            }
            .map_err(|never| match never {})
            .boxed_unsync(),
        )
        .expect("a static response is valid")
}

/// The ND-JSON body of a held lock: the grant's line, then one line per [`HoldEvent`]; it
/// ends after a lost lock's error line. Dropping it (the client went away) closes the
/// channel, which makes the service release the lock.
struct LineBody {
    first: Option<Bytes>,
    received: mpsc::Receiver<HoldEvent>,
    done: bool,
}

fn line(mut text: String) -> Bytes {
    text.push('\n');
    Bytes::from(text)
}

impl hyper::body::Body for LineBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        if self.done {
            return Poll::Ready(None);
        }
        match self.received.poll_recv(cx) {
            Poll::Ready(Some(HoldEvent::Ping)) => {
                Poll::Ready(Some(Ok(Frame::data(line(rules::STREAM_PING_LINE.into())))))
            }
            Poll::Ready(Some(HoldEvent::Lost(message))) => {
                self.done = true;
                let text = rules::stream_error_line("ERR_LOCK_LOST", &message);
                Poll::Ready(Some(Ok(Frame::data(line(text)))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

fn unexpected(outcome: &Alpha2Outcome) -> Alpha2Error {
    Alpha2Error::TryLockFailed(format!("the lock component answered with {outcome:?}"))
}

fn error(e: &Alpha2Error) -> Response<HyperOutgoingBody> {
    json(e.http_status(), e.body())
}

fn json(status: u16, body: String) -> Response<HyperOutgoingBody> {
    json_response(status, body).expect("the API's statuses are valid")
}
