//! The client side of a host's gRPC API, for the tests of every area: a runtime to block
//! on, a channel, Dapr's client, and the `TryLockAlpha1` call most of them make.

use tonic::transport::Channel;
use wasilock::api::grpc::proto::TryLockRequest;
use wasilock::api::grpc::proto::dapr_client::DaprClient;

/// A single-threaded runtime to block on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A channel to the gRPC API at `address` (`HOST:PORT`).
pub async fn channel(address: &str) -> Channel {
    Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .expect("connect to the gRPC API")
}

/// Dapr's client of the gRPC API at `address` (`HOST:PORT`).
pub async fn dapr(address: &str) -> DaprClient<Channel> {
    DaprClient::new(channel(address).await)
}

/// `TryLockAlpha1`: whether the lock was granted (a refused call fails the test).
pub async fn granted(
    client: &mut DaprClient<Channel>,
    request: impl tonic::IntoRequest<TryLockRequest>,
) -> bool {
    client
        .try_lock_alpha1(request)
        .await
        .unwrap()
        .into_inner()
        .success
}
