//! The end-to-end tests: one test binary (linked once), one module per area. Each starts the
//! real `wasilock` binary (or another host of the lock component) on free ports; the support
//! they share is in `wasilock-testkit`.
//!
//! Run one area with its module path as the filter, e.g.
//! `cargo test -p wasilock --test e2e grpc::`.

mod alpha2;
mod componentize_py;
mod connections;
mod etcd;
mod grpc;
mod grpc_client;
mod http;
mod node;
mod observability;
mod python;
mod redis;
mod sdks;
mod sentinel;
mod tenants;
mod tls;
mod upstream;
