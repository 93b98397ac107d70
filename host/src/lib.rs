//! wasilock: Dapr's Distributed Lock API served by a sandboxed WebAssembly component.
//!
//! - [`components`]: lock stores from Dapr component YAML;
//! - [`keys`]: Dapr's lock key layout, applied by the host;
//! - [`backend`]: storage backends (embedded durable, in-memory, Redis) behind one contract;
//! - [`registry`]: a tenant's stores and the buckets a guest opens;
//! - [`runtime`]: the wasmtime engine and calls into the component;
//! - [`service`]: lock operations of an app, independent of the transport;
//! - [`api`]: the HTTP and gRPC transports;
//! - [`answer`]: HTTP answers as the host writes them;
//! - [`quantity`]: byte sizes as daprd writes them (`4Mi`).

pub mod answer;
pub mod api;
pub mod backend;
pub mod components;
pub mod keys;
pub mod quantity;
pub mod registry;
pub mod runtime;
pub mod service;
