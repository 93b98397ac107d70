//! wasilock's lock rules: Dapr's Distributed Lock API and its lease logic, free of I/O.
//!
//! Everything that decides an answer is here, pure and native, so `cargo test` checks it
//! without wasm; the `wasilock-guest` component binds it to the WIT world `lock-service`,
//! and the host reuses its vocabulary and error bodies:
//! - [`lease`]: Dapr's validation order and the lease rules over a [`lease::LockStore`];
//! - [`body`]: protojson-like parsing of the request bodies;
//! - [`http`]: routing, status codes and the exact response bodies;
//! - [`alpha2`]: wasilock's lock API alpha2 (lock IDs, renewal, fencing tokens) and its bodies;
//! - [`duration`]: Go durations, as alpha2 TTLs are written.

#![warn(missing_docs)]

pub mod alpha2;
pub mod body;
pub mod duration;
pub mod http;
pub mod lease;

#[cfg(any(test, feature = "test-support"))]
pub mod fake_store;
