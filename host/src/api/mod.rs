//! The Dapr API's transports, both answering from one [`crate::service::App`]:
//! - [`http`]: HTTP/1.1 (health, token, metadata, the lock routes through the component);
//! - [`grpc`]: gRPC (`dapr.proto.runtime.v1.Dapr`: locks and metadata, with reflection).

pub mod grpc;
pub mod http;
