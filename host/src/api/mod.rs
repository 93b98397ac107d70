//! The Dapr API's transports; both select the tenant by its token
//! ([`crate::tenants::Registry`]) and answer through its [`crate::service::Tenant`]:
//! - [`http`]: HTTP/1.1 (health, token, metadata, the lock routes through the component);
//! - [`grpc`]: gRPC (`dapr.proto.runtime.v1.Dapr`: locks and metadata, with reflection).

pub mod grpc;
pub mod http;
