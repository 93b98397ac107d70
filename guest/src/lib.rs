//! The wasilock lock component: [`wasilock_rules`] bound to the WIT world `lock-service`.
//!
//! All the decisions (validation, leases, bodies, answers) are in `wasilock-rules`, which
//! builds and is tested natively. This crate only binds them on `wasm32`: the host's `store`
//! import becomes a [`wasilock_rules::lease::LockStore`], and the `lock`, `http-api` and
//! `wasi:http/incoming-handler` exports share the same rules. Natively it is empty.

#![warn(missing_docs)]

#[cfg(target_arch = "wasm32")]
mod component;
