//! One connection to an etcd cluster per store, shared by every tenant: a lazily connected
//! tonic channel per endpoint, requests sent to one of them at a time, the next one after a
//! transport failure (so a lost member costs one failed attempt, not one in three); the
//! auth token of `username`/`password`, fetched again when etcd says it expired.
//!
//! Each attempt is bounded by the dial timeout. Retrying, and deciding what a lost answer
//! means, is the caller's: [`Failure::retry`] says which failures are worth another attempt.

use super::api::etcdserverpb::{
    AuthenticateRequest, LeaseGrantRequest, LeaseRevokeRequest, LeaseTimeToLiveRequest,
    RangeRequest, RangeResponse, TxnRequest, TxnResponse, WatchRequest, WatchResponse,
    auth_client::AuthClient, kv_client::KvClient, lease_client::LeaseClient,
    watch_client::WatchClient,
};
use super::settings::{EtcdSettings, Redacted};
use std::sync::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Request, Status};

/// A failed request.
#[derive(Debug, Clone)]
pub struct Failure {
    /// etcd's status, or the transport's.
    pub status: Status,
    /// The endpoint it was sent to.
    pub endpoint: String,
}

impl Failure {
    /// Whether another attempt may succeed: the connection or the leader was lost, or the
    /// attempt timed out. Its outcome is unknown when it was a write.
    pub fn retry(&self) -> bool {
        matches!(
            self.status.code(),
            Code::Unavailable
                | Code::Unknown
                | Code::Cancelled
                | Code::DeadlineExceeded
                | Code::Aborted
                | Code::Internal
        )
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let message = self.status.message();
        let message = match message.is_empty() {
            true => format!("{:?}", self.status.code()),
            false => message.to_string(),
        };
        write!(f, "etcd at {}: {message}", self.endpoint)
    }
}

/// The connection to a cluster.
pub struct Client {
    endpoints: Vec<(String, Channel)>,
    active: AtomicUsize,
    credentials: Option<(String, Redacted)>,
    token: RwLock<Option<MetadataValue<tonic::metadata::Ascii>>>,
    timeout: Duration,
}

impl Client {
    /// Channels to every endpoint of `settings`, connected on first use; starting at an
    /// endpoint picked by the process id, so that hosts spread over the members.
    pub fn new(settings: &EtcdSettings) -> anyhow::Result<Self> {
        let tls = settings.tls.as_ref().map(|tls| {
            let config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&tls.ca));
            match &tls.client {
                Some((cert, key)) => config.identity(Identity::from_pem(cert, &key.0)),
                None => config,
            }
        });
        let scheme = if tls.is_some() { "https" } else { "http" };
        let endpoints = settings
            .endpoints
            .iter()
            .map(|address| {
                let mut endpoint = Endpoint::from_shared(format!("{scheme}://{address}"))?
                    .connect_timeout(settings.dial_timeout)
                    .timeout(settings.dial_timeout)
                    .tcp_nodelay(true)
                    .http2_keep_alive_interval(Duration::from_secs(10))
                    .keep_alive_timeout(settings.dial_timeout);
                if let Some(tls) = &tls {
                    endpoint = endpoint.tls_config(tls.clone())?;
                }
                Ok((address.clone(), endpoint.connect_lazy()))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let first = std::process::id() as usize % endpoints.len();
        Ok(Client {
            endpoints,
            active: AtomicUsize::new(first),
            credentials: settings.credentials.clone(),
            token: RwLock::new(None),
            timeout: settings.dial_timeout,
        })
    }

    /// The bound on one attempt.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Logs in with `username`/`password` (when set) at the active endpoint, keeping the token.
    pub async fn authenticate(&self) -> Result<(), Failure> {
        let Some((name, password)) = &self.credentials else {
            return Ok(());
        };
        let request = AuthenticateRequest {
            name: name.clone(),
            password: password.0.clone(),
        };
        let (index, channel) = self.channel();
        let answer = AuthClient::new(channel).authenticate(request).await;
        let token = self.settle(index, answer)?.token;
        let token = MetadataValue::try_from(token).map_err(|_| Failure {
            status: Status::internal("etcd sent an auth token that is not ASCII"),
            endpoint: self.endpoints[index].0.clone(),
        })?;
        *self.token.write().expect("token lock") = Some(token);
        Ok(())
    }

    /// A linearizable read.
    pub async fn range(&self, request: RangeRequest) -> Result<RangeResponse, Failure> {
        self.call(request, |channel, request| async move {
            KvClient::new(channel).range(request).await
        })
        .await
    }

    /// A transaction.
    pub async fn txn(&self, request: TxnRequest) -> Result<TxnResponse, Failure> {
        self.call(request, |channel, request| async move {
            KvClient::new(channel).txn(request).await
        })
        .await
    }

    /// A new lease of `seconds` (etcd may grant more: its minimum); returns its id.
    pub async fn grant(&self, seconds: i64) -> Result<i64, Failure> {
        let request = LeaseGrantRequest {
            ttl: seconds,
            id: 0,
        };
        let answer = self
            .call(request, |channel, request| async move {
                LeaseClient::new(channel).lease_grant(request).await
            })
            .await?;
        Ok(answer.id)
    }

    /// Revokes the lease `id`, deleting the keys still on it.
    pub async fn revoke(&self, id: i64) -> Result<(), Failure> {
        self.call(LeaseRevokeRequest { id }, |channel, request| async move {
            LeaseClient::new(channel).lease_revoke(request).await
        })
        .await
        .map(drop)
    }

    /// What is left of the lease `id`, in whole seconds as etcd counts it (rounded down);
    /// `None` when the lease has expired or was revoked (and its keys deleted with it).
    pub async fn time_to_live(&self, id: i64) -> Result<Option<u64>, Failure> {
        let request = LeaseTimeToLiveRequest { id, keys: false };
        let answer = self
            .call(request, |channel, request| async move {
                LeaseClient::new(channel).lease_time_to_live(request).await
            })
            .await;
        match answer {
            Ok(answer) => Ok(u64::try_from(answer.ttl).ok()),
            Err(failure) if failure.status.code() == Code::NotFound => Ok(None),
            Err(failure) => Err(failure),
        }
    }

    /// Opens a watch at the active endpoint with the one request `create`, its side kept
    /// open (a client that closes it ends etcd's watch). The member cancels the watch when
    /// it loses its leader (`hasleader`), so that no watch waits on a member cut off from
    /// the cluster.
    pub async fn watch(
        &self,
        create: WatchRequest,
    ) -> Result<tonic::Streaming<WatchResponse>, Failure> {
        use futures_util::StreamExt;
        self.call(create, |channel, request| async move {
            let (mut metadata, extensions, create) = request.into_parts();
            metadata.insert("hasleader", MetadataValue::from_static("true"));
            let requests = futures_util::stream::once(std::future::ready(create))
                .chain(futures_util::stream::pending());
            let request = Request::from_parts(metadata, extensions, requests);
            WatchClient::new(channel).watch(request).await
        })
        .await
    }

    /// One attempt at the active endpoint, logging in again first if etcd said the token
    /// expired.
    async fn call<Q, A, F, Fut>(&self, message: Q, send: F) -> Result<A, Failure>
    where
        Q: Clone,
        F: Fn(Channel, Request<Q>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<A>, Status>>,
    {
        if self.credentials.is_some() && self.token.read().expect("token lock").is_none() {
            self.authenticate().await?;
        }
        let (index, channel) = self.channel();
        let answer = send(channel.clone(), self.request(message.clone())).await;
        match self.settle(index, answer) {
            Err(failure) if failure.status.code() == Code::Unauthenticated => {
                self.authenticate().await?;
                let (index, channel) = self.channel();
                self.settle(index, send(channel, self.request(message)).await)
            }
            settled => settled,
        }
    }

    fn request<Q>(&self, message: Q) -> Request<Q> {
        let mut request = Request::new(message);
        if let Some(token) = self.token.read().expect("token lock").clone() {
            request.metadata_mut().insert("token", token);
        }
        request
    }

    fn channel(&self) -> (usize, Channel) {
        let index = self.active.load(Ordering::Relaxed) % self.endpoints.len();
        (index, self.endpoints[index].1.clone())
    }

    /// The answer of the endpoint `index`; after a failure worth retrying, the next
    /// endpoint becomes the active one (unless another request moved on already).
    fn settle<A>(
        &self,
        index: usize,
        answer: Result<tonic::Response<A>, Status>,
    ) -> Result<A, Failure> {
        answer.map(tonic::Response::into_inner).map_err(|status| {
            let failure = Failure {
                status,
                endpoint: self.endpoints[index].0.clone(),
            };
            if failure.retry() {
                let next = (index + 1) % self.endpoints.len();
                let _ =
                    self.active
                        .compare_exchange(index, next, Ordering::Relaxed, Ordering::Relaxed);
            }
            failure
        })
    }
}
