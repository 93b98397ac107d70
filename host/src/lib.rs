//! wasilock: Dapr's Distributed Lock API served by sandboxed WebAssembly components, one per
//! tenant.
//!
//! The modules, by lifetime (arrows point one way: `api` → `service` → `wasm` → `stores`):
//! - [`process`]: the process: engine, stores and tenants, built from the configuration;
//! - [`config`]: Dapr component YAML and Tenant YAML from the resources path;
//! - [`tenants`]: which tenant a request's token selects, swapped on reload;
//! - [`api`]: the HTTP and gRPC transports;
//! - [`service`]: lock operations of a tenant, independent of the transport;
//! - [`wasm`]: the engine, the WIT `store` host side, and each tenant's sandbox;
//! - [`stores`]: backends, Dapr's key layout and each tenant's view of the stores;
//! - [`answer`]: HTTP answers as the host writes them.

pub mod answer;
pub mod api;
pub mod config;
pub mod process;
pub mod service;
pub mod stores;
pub mod tenants;
pub mod wasm;
