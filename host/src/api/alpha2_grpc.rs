//! The alpha2 lock API over gRPC: service `wasilock.lock.v1alpha2.Locks`
//! (`host/proto/wasilock/lock/v1alpha2/locks.proto`) with `Lock`, `RenewLock`, `Unlock`
//! (with `force`), `GetLock` and the server-streaming `LockStream`, the same semantics as
//! [`super::alpha2_http`]. The tenant is the one `dapr-api-token` selected (see
//! [`super::grpc`]).

use super::grpc::{alpha2_proto as proto, tenant};
use crate::service::{Alpha2Error, Alpha2Outcome, Alpha2Request, Grant, HoldEvent, LockService};
use std::marker::PhantomData;
use std::pin::Pin;
use tokio::sync::mpsc;
use tonic::{Code, Request, Response, Status};
use wasilock_rules::{alpha2 as rules, duration};

pub use proto::locks_server::LocksServer;

/// The `Locks` service; each call finds its tenant in its extensions.
pub struct LocksApi<S>(PhantomData<fn() -> S>);

impl<S> Default for LocksApi<S> {
    fn default() -> Self {
        LocksApi(PhantomData)
    }
}

/// The gRPC status of an alpha2 refusal.
fn status(error: Alpha2Error) -> Status {
    let code = match &error {
        Alpha2Error::MalformedRequest(_) | Alpha2Error::StoreNotFound(_) => Code::InvalidArgument,
        Alpha2Error::StoreNotConfigured(_) => Code::FailedPrecondition,
        Alpha2Error::LockNotFound(_) => Code::NotFound,
        Alpha2Error::ResourceLocked(_) => Code::Aborted,
        Alpha2Error::PermissionDenied(_) => Code::PermissionDenied,
        Alpha2Error::NotSupported(_) => Code::Unimplemented,
        Alpha2Error::TooManyRequests(_) => Code::ResourceExhausted,
        Alpha2Error::TryLockFailed(_) | Alpha2Error::UnlockFailed(_) => Code::Internal,
    };
    Status::new(code, error.message())
}

/// An empty string as `None` (proto3 has no absent strings).
fn given(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

fn response(grant: &Grant) -> proto::LockResponse {
    proto::LockResponse {
        lock_id: grant.lock_id.clone(),
        fencing_token: grant.fencing_token,
        ttl: duration::format(grant.ttl),
    }
}

fn unexpected(outcome: &Alpha2Outcome) -> Status {
    Status::internal(format!("the lock component answered with {outcome:?}"))
}

impl<S: LockService> LocksApi<S> {
    /// Acquires as `request` asks (at once, or waiting).
    async fn acquire(
        request: Request<proto::LockRequest>,
    ) -> Result<
        (
            std::sync::Arc<crate::service::Tenant<S>>,
            proto::LockRequest,
            Grant,
        ),
        Status,
    > {
        let tenant = tenant::<S, _>(&request)?;
        let request = request.into_inner();
        let wait = if request.immediate {
            None
        } else {
            Some(match given(request.wait_timeout.clone()) {
                Some(text) => rules::wait_timeout(&text).map_err(status)?,
                None => tenant.alpha2.max_lock_wait,
            })
        };
        let grant = tenant
            .acquire(
                &request.store_name,
                &request.resource_id,
                given(request.ttl.clone()),
                wait,
            )
            .await
            .map_err(status)?;
        Ok((tenant, request, grant))
    }

    /// Asks the tenant of `request` what `ask` makes of its message: the store it names and
    /// the alpha2 request for that store.
    async fn ask<T>(
        request: Request<T>,
        ask: impl FnOnce(T) -> (String, Alpha2Request),
    ) -> Result<Alpha2Outcome, Status> {
        let tenant = tenant::<S, _>(&request)?;
        let (store, asked) = ask(request.into_inner());
        tenant.alpha2(&store, &asked).await.map_err(status)
    }
}

/// The stream of a lock held by `LockStream`.
type EventStream =
    Pin<Box<dyn futures_util::Stream<Item = Result<proto::LockStreamEvent, Status>> + Send>>;

#[tonic::async_trait]
impl<S: LockService> proto::locks_server::Locks for LocksApi<S> {
    async fn lock(
        &self,
        request: Request<proto::LockRequest>,
    ) -> Result<Response<proto::LockResponse>, Status> {
        let (_, _, grant) = Self::acquire(request).await?;
        Ok(Response::new(response(&grant)))
    }

    async fn renew_lock(
        &self,
        request: Request<proto::RenewLockRequest>,
    ) -> Result<Response<proto::LockResponse>, Status> {
        let renewed = Self::ask(request, |request| {
            let renew = Alpha2Request::Renew {
                resource_id: request.resource_id,
                lock_id: request.lock_id,
                ttl: given(request.ttl),
            };
            (request.store_name, renew)
        });
        match renewed.await? {
            Alpha2Outcome::Renewed(grant) => Ok(Response::new(response(&grant))),
            other => Err(unexpected(&other)),
        }
    }

    async fn unlock(
        &self,
        request: Request<proto::UnlockRequest>,
    ) -> Result<Response<proto::UnlockResponse>, Status> {
        let released = Self::ask(request, |request| {
            let release = if request.force {
                Alpha2Request::ForceRelease {
                    resource_id: request.resource_id,
                }
            } else {
                Alpha2Request::Release {
                    resource_id: request.resource_id,
                    lock_id: request.lock_id,
                }
            };
            (request.store_name, release)
        });
        match released.await? {
            Alpha2Outcome::Released => Ok(Response::new(proto::UnlockResponse {})),
            other => Err(unexpected(&other)),
        }
    }

    async fn get_lock(
        &self,
        request: Request<proto::GetLockRequest>,
    ) -> Result<Response<proto::GetLockResponse>, Status> {
        let inspected = Self::ask(request, |request| {
            let inspect = Alpha2Request::Inspect {
                resource_id: request.resource_id,
            };
            (request.store_name, inspect)
        });
        match inspected.await? {
            Alpha2Outcome::State(state) => Ok(Response::new(proto::GetLockResponse {
                locked: state.is_some(),
                fencing_token: state.map_or(0, |s| s.fencing_token),
                expires_in: state
                    .and_then(|s| s.expires_in)
                    .map(duration::format)
                    .unwrap_or_default(),
            })),
            other => Err(unexpected(&other)),
        }
    }

    type LockStreamStream = EventStream;

    async fn lock_stream(
        &self,
        request: Request<proto::LockRequest>,
    ) -> Result<Response<Self::LockStreamStream>, Status> {
        let (tenant, request, grant) = Self::acquire(request).await?;
        let first = proto::LockStreamEvent {
            event: Some(proto::lock_stream_event::Event::Acquired(response(&grant))),
        };
        let (events, mut received) = mpsc::channel(4);
        tokio::spawn(async move {
            tenant
                .hold(&request.store_name, &request.resource_id, grant, events)
                .await;
        });
        let stream = async_stream(first, move |cx| received.poll_recv(cx));
        Ok(Response::new(Box::pin(stream)))
    }
}

/// The events of a held lock as gRPC messages: `first`, then a ping per renewal; a lost
/// lock ends the call with `ABORTED`. Dropping the stream (the client cancelled) closes the
/// channel, which makes the service release the lock.
fn async_stream(
    first: proto::LockStreamEvent,
    mut next: impl FnMut(&mut std::task::Context<'_>) -> std::task::Poll<Option<HoldEvent>>
    + Send
    + 'static,
) -> impl futures_util::Stream<Item = Result<proto::LockStreamEvent, Status>> + Send {
    let mut first = Some(first);
    let mut done = false;
    futures_util::stream::poll_fn(move |cx| {
        if let Some(first) = first.take() {
            return std::task::Poll::Ready(Some(Ok(first)));
        }
        if done {
            return std::task::Poll::Ready(None);
        }
        next(cx).map(|event| match event? {
            HoldEvent::Ping => Some(Ok(proto::LockStreamEvent {
                event: Some(proto::lock_stream_event::Event::Ping(proto::Ping {})),
            })),
            HoldEvent::Lost(message) => {
                done = true;
                Some(Err(Status::aborted(format!("ERR_LOCK_LOST: {message}"))))
            }
        })
    })
}
