//! The Dapr API's transports; both select the tenant by its token
//! ([`crate::tenants::Registry`]) and answer through its [`crate::service::Tenant`]:
//! - [`http`]: HTTP/1.1 (health, token, metadata, the lock routes through the component);
//! - [`alpha2_http`]: the alpha2 lock API over HTTP (acquire, wait, renew, release, force,
//!   inspect, a lock held by an ND-JSON stream); [`alpha2_grpc`]: the same over gRPC
//!   (`wasilock.lock.v1alpha2.Locks`);
//! - [`grpc`]: gRPC (`dapr.proto.runtime.v1.Dapr`: locks and metadata, with reflection);
//! - [`forward`]: what neither serves itself, sent to the tenant's daprd when it has one;
//! - [`connections`]: what both accept: a bound on open connections, request head and idle
//!   timeouts, `accept` failures retried with a back-off, and TLS handshakes;
//! - [`tls`]: TLS and mutual TLS on both (certificates reloaded when their files change);
//! - `observe`: what both record of each call (daprd's server series, API log lines).

pub mod alpha2_grpc;
pub mod alpha2_http;
pub mod connections;
pub mod forward;
pub mod grpc;
pub mod http;
mod observe;
pub mod tls;
