//! The wasilock lock component: Dapr's Distributed Lock API and its lease logic.
//!
//! Everything that decides an answer is pure and builds natively, so `cargo test` checks it
//! without wasm:
//! - [`lease`]: Dapr's validation order and the lease rules over a [`lease::LockStore`];
//! - [`body`]: protojson-like parsing of the request bodies;
//! - [`http`]: routing, status codes and the exact response bodies.
//!
//! On `wasm32`, the `component` module binds these to the WIT world `lock-service`: the
//! host's `store` import becomes a [`lease::LockStore`], and the `lock`, `http-api` and
//! `wasi:http/incoming-handler` exports share the same rules.

pub mod body;
pub mod http;
pub mod lease;

#[cfg(any(test, feature = "test-support"))]
pub mod fake_store;

#[cfg(target_arch = "wasm32")]
mod component;
