//! The entries into a tenant's component, each an adapter over `Sandbox::call`: HTTP
//! through `wasilock:lock/http-api` (one call per request) or `wasi:http/incoming-handler`
//! (resources and streams), and the typed `wasilock:lock/lock` export (gRPC and embedders).

use super::bindings::exports::wasilock::lock::{http_api, lock as typed_lock};
use super::convert::{lock_request, rule_error, rule_status, unlock_request};
use super::failure::GuestFailure;
use super::host_state::HostState;
use super::sandbox::{Called, Sandbox, WarmInstances};
use super::unread_body::ReadToEnd;
use super::warm::WarmPool;
use crate::answer::{HyperOutgoingBody, full_body, json_response};
use crate::telemetry::{LockOperation, LockOutcome, routes};
use anyhow::Result;
use http_body_util::{BodyExt, Limited};
use wasilock_rules::lease::{LockError, LockRequest, UnlockRequest, UnlockStatus};
use wasmtime::Store;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyIndices;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

/// The largest answer body a component may give.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// A request body [`Sandbox::handle_http`] reads: hyper's `Incoming`, or any body of bytes
/// whose error converts as `wasi:http` needs (`String` and `Full<Bytes>` never fail).
pub trait HttpRequestBody:
    hyper::body::Body<Data = bytes::Bytes, Error: Into<wasmtime_wasi_http::Error> + Into<BoxError>>
    + Send
    + 'static
{
}

impl<B> HttpRequestBody for B where
    B: hyper::body::Body<
            Data = bytes::Bytes,
            Error: Into<wasmtime_wasi_http::Error> + Into<BoxError>,
        > + Send
        + 'static
{
}

/// Counts the lock outcome of an answer: its status and body.
type CountAnswer<'a> = dyn Fn(u16, &[u8]) + Send + Sync + 'a;

/// The error type bodies are read with.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Sandbox {
    /// Serves one HTTP request through the component: a request as a hyper server receives
    /// it, or one made in memory (with a `String` or `Full<Bytes>` body).
    ///
    /// The call runs in the caller's task and the whole answer is gathered (it is small), so
    /// the server writes it in one go.
    pub async fn handle_http<B: HttpRequestBody>(
        &self,
        request: hyper::Request<B>,
    ) -> Result<hyper::Response<HyperOutgoingBody>, GuestFailure> {
        // The path is cloned only when counted (a `Uri` clone shares its bytes).
        let uri = self.metrics.is_some().then(|| request.uri().clone());
        let count = |status: u16, body: &[u8]| {
            if let Some(uri) = &uri {
                self.count_lock_answer(uri.path(), status, body);
            }
        };
        let answer = match &self.warm {
            WarmInstances::Api(pool) => self.handle_with_api(pool, request, &count).await,
            WarmInstances::WasiHttp(pool) => {
                self.handle_with_wasi_http(pool, request, &count).await
            }
        };
        if answer.is_err() {
            count(500, b"");
        }
        answer
    }

    /// Counts the lock outcome of an answer with `status` and `body` to `path`.
    fn count_lock_answer(&self, path: &str, status: u16, body: &[u8]) {
        if let Some((operation, store, outcome)) = routes::lock_answer(path, status, body)
            && let Some(metrics) = self.stores().metrics(store)
        {
            metrics.lock_operation(operation, outcome);
        }
    }

    /// Calls the typed `try-lock` export.
    pub async fn try_lock(
        &self,
        store_name: &str,
        request: LockRequest,
    ) -> Result<Result<bool, LockError>, GuestFailure> {
        let request = lock_request(request);
        let outcome = self
            .call_typed(async |store, typed| {
                let outcome = typed.call_try_lock(store, store_name, &request).await?;
                Ok(outcome.map_err(rule_error))
            })
            .await;
        self.count_typed(store_name, LockOperation::TryLock, || match &outcome {
            Ok(Ok(true)) => LockOutcome::Granted,
            Ok(Ok(false)) => LockOutcome::Held,
            _ => LockOutcome::Error,
        });
        outcome
    }

    /// Calls the typed `unlock` export.
    pub async fn unlock(
        &self,
        store_name: &str,
        request: UnlockRequest,
    ) -> Result<Result<UnlockStatus, LockError>, GuestFailure> {
        let request = unlock_request(request);
        let outcome = self
            .call_typed(async |store, typed| {
                let outcome = typed.call_unlock(store, store_name, &request).await?;
                Ok(outcome.map(rule_status).map_err(rule_error))
            })
            .await;
        self.count_typed(store_name, LockOperation::Unlock, || match &outcome {
            Ok(Ok(UnlockStatus::Success)) => LockOutcome::Released,
            Ok(Ok(UnlockStatus::LockDoesNotExist)) => LockOutcome::NotFound,
            Ok(Ok(UnlockStatus::LockBelongsToOthers)) => LockOutcome::Held,
            _ => LockOutcome::Error,
        });
        outcome
    }

    /// Runs `call` with the typed `wasilock:lock/lock` export of an instance from the warm
    /// pool, whichever HTTP entry the component has; the instance is kept after it.
    async fn call_typed<T>(
        &self,
        call: impl AsyncFnOnce(&mut Store<HostState>, &typed_lock::Guest) -> wasmtime::Result<T>,
    ) -> Result<T, GuestFailure> {
        match &self.warm {
            WarmInstances::Api(pool) => {
                self.call(pool, async |store, exports| {
                    Ok(Called::reusable(call(store, &exports.typed).await?))
                })
                .await
            }
            WarmInstances::WasiHttp(pool) => {
                self.call(pool, async |store, exports| {
                    Ok(Called::reusable(call(store, &exports.typed).await?))
                })
                .await
            }
        }
    }

    /// Counts a typed call of `operation` on `store_name`, if the store is counted: its
    /// outcome as `counted` names it.
    fn count_typed(
        &self,
        store_name: &str,
        operation: LockOperation,
        counted: impl FnOnce() -> LockOutcome,
    ) {
        if let Some(metrics) = self.stores().metrics(store_name) {
            metrics.lock_operation(operation, counted());
        }
    }

    /// Serves one request with a single call of `wasilock:lock/http-api#handle`.
    async fn handle_with_api<B: HttpRequestBody>(
        &self,
        pool: &WarmPool<http_api::GuestIndices>,
        request: hyper::Request<B>,
        count: &CountAnswer<'_>,
    ) -> Result<hyper::Response<HyperOutgoingBody>, GuestFailure> {
        let (head, body) = request.into_parts();
        let request = http_api::Request {
            method: head.method.as_str().to_owned(),
            path_with_query: head
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned(),
            body: read_body(body, self.max_body_size).await,
        };
        self.call(pool, async |store, exports| {
            let response = exports.http.call_handle(&mut *store, &request).await?;
            let status = response.status;
            if response.body.len() > MAX_ANSWER_BYTES {
                return Err(wasmtime::Error::msg(format!(
                    "it answered with {} bytes, more than the {MAX_ANSWER_BYTES} a lock answer may have",
                    response.body.len()
                )));
            }
            count(status, response.body.as_bytes());
            let response = json_response(status, response.body).map_err(|e| {
                wasmtime::Error::msg(format!("the component answered with status {status}: {e}"))
            })?;
            Ok(Called::reusable(response))
        })
        .await
    }

    /// Serves one request through `wasi:http/incoming-handler`.
    ///
    /// The answer is gathered while the call runs (the guest may write more than a stream's
    /// buffer before it returns) and must be complete within the timeout. An answer given in
    /// full before the call failed stands, but the instance is not kept.
    async fn handle_with_wasi_http<B: HttpRequestBody>(
        &self,
        pool: &WarmPool<ProxyIndices>,
        request: hyper::Request<B>,
        count: &CountAnswer<'_>,
    ) -> Result<hyper::Response<HyperOutgoingBody>, GuestFailure> {
        let timeout = self.limits.timeout;
        self.call(pool, async |store, exports| {
            let (sender, receiver) = tokio::sync::oneshot::channel();
            // Read to its end even if the component leaves it, so the connection stays open.
            let request = request.map(|body| ReadToEnd::new(body, self.max_body_size));
            let request = store
                .data_mut()
                .http()
                .new_incoming_request(Scheme::Http, request)?;
            let response_out = store.data_mut().http().new_response_outparam(sender)?;
            let answer = collect_answer(count, receiver);
            tokio::pin!(answer);
            let mut answered = None;
            let called = {
                let call = exports.http.wasi_http_incoming_handler().call_handle(
                    &mut *store,
                    request,
                    response_out,
                );
                tokio::pin!(call);
                loop {
                    tokio::select! {
                        called = &mut call => break called,
                        early = &mut answer, if answered.is_none() => answered = Some(early),
                    }
                }
            };
            match (called, answered) {
                (Ok(()), Some(answer)) => Ok(Called::reusable(
                    answer.map_err(wasmtime::Error::from_anyhow)?,
                )),
                (Ok(()), None) => {
                    let answer = tokio::time::timeout(timeout, answer).await.map_err(|_| {
                        wasmtime::Error::msg("the component returned without finishing its answer")
                    })?;
                    Ok(Called::reusable(
                        answer.map_err(wasmtime::Error::from_anyhow)?,
                    ))
                }
                (Err(_), Some(Ok(answer))) => Ok(Called::not_reusable(answer)),
                (Err(e), _) => Err(e),
            }
        })
        .await
    }
}

/// Reads a request body for `http-api`, at most `limit` bytes.
async fn read_body<B: HttpRequestBody>(body: B, limit: u64) -> http_api::RequestBody {
    use http_body_util::LengthLimitError;
    if body.size_hint().lower() > limit {
        return http_api::RequestBody::TooLarge;
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    match Limited::new(body, limit).collect().await {
        Ok(collected) => http_api::RequestBody::Complete(collected.to_bytes().into()),
        Err(e) if e.is::<LengthLimitError>() => http_api::RequestBody::TooLarge,
        Err(e) => http_api::RequestBody::Unreadable(e.to_string()),
    }
}

/// Waits for the component's response and gathers its body (at most [`MAX_ANSWER_BYTES`]).
async fn collect_answer(
    count: &CountAnswer<'_>,
    receiver: tokio::sync::oneshot::Receiver<
        Result<
            hyper::Response<HyperOutgoingBody>,
            wasmtime_wasi_http::p2::bindings::http::types::ErrorCode,
        >,
    >,
) -> Result<hyper::Response<HyperOutgoingBody>> {
    let response = match receiver.await {
        Ok(Ok(response)) => response,
        Ok(Err(code)) => anyhow::bail!("the component answered with an error: {code:?}"),
        Err(_) => anyhow::bail!("the component set no response"),
    };
    let (head, body) = response.into_parts();
    let body = Limited::new(body, MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("the component's answer body failed: {e}"))?
        .to_bytes();
    count(head.status.as_u16(), &body);
    Ok(hyper::Response::from_parts(head, full_body(body)))
}
