//! The Dapr API's transports; both select the tenant by its token
//! ([`crate::tenants::Registry`]) and answer through its [`crate::service::Tenant`]:
//! - [`http`]: HTTP/1.1 (health, token, metadata, the lock routes through the component);
//! - [`grpc`]: gRPC (`dapr.proto.runtime.v1.Dapr`: locks and metadata, with reflection);
//! - [`connections`]: what both accept: a bound on open connections, request head and idle
//!   timeouts, and `accept` failures retried with a back-off;
//! - `observe`: what both record of each call (daprd's server series, API log lines).

pub mod connections;
pub mod grpc;
pub mod http;
mod observe;
