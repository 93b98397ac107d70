//! The wasm side of the host: the engine, each lock component compiled and linked once, the
//! host side of the WIT `store` import, and each tenant's sandbox. One job per module:
//!
//! - `engine`: the process's wasmtime engine ([`WasmEngine`]: pooling allocator, one epoch
//!   ticker, the budget of warm instances its sandboxes share);
//! - `ticker`: the epoch ticker, which runs only while a component call is in flight;
//! - [`compile_cache`]: compiled components kept on disk, so a start-up need not compile;
//! - `component`: a component linked with the host's imports, its exports looked up and
//!   type-checked once ([`LinkedComponent`], [`HttpExport`]);
//! - [`store_import`]: the host side of the WIT `store` import, for any store state that
//!   implements [`LockStoreView`];
//! - `host_state`: the state of a sandbox's instance (WASI, memory cap, call clock, stores);
//! - `sandbox`: a tenant's sandbox: admission (`maxConcurrency` places), warm instances
//!   (`warm`), and the one call helper every entry goes through;
//! - `schedule`: a call's clock: its deadline, the ticks it computed, its tenant's slow lane;
//! - `entries`: the entries into a component: `http-api`, `wasi:http` and the typed export;
//! - `alpha2_entry`: the entry for the alpha2 lock API (the typed `lock-alpha2` export);
//! - `failure`: why a call gave no answer ([`GuestFailure`]), a broken limit named;
//! - `convert`: conversions between the WIT bindings' types and the host's and rules' own.

mod alpha2_entry;
pub mod compile_cache;
mod component;
mod convert;
mod engine;
mod entries;
mod failure;
mod host_state;
mod sandbox;
mod schedule;
pub mod store_import;
mod ticker;
mod unread_body;
mod warm;

pub use component::{HttpExport, LinkedComponent};
pub use engine::{WasmEngine, new_engine};
pub use entries::HttpRequestBody;
pub use failure::GuestFailure;
pub use sandbox::{Limits, Sandbox};
pub use store_import::{LockStoreCtxView, LockStoreView};

/// Host bindings for the `lock-api-alpha2` world (the `store` import, the typed `lock`,
/// `lock-alpha2` and the `http-api` exports).
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "lock-api-alpha2",
        imports: { default: async | trappable },
        exports: { default: async },
        with: { "wasilock:lock/store.bucket": crate::stores::Bucket },
        additional_derives: [PartialEq, Eq],
    });
}

/// The guest component built from `guest/` and embedded at build time.
pub const EMBEDDED_GUEST: &[u8] = include_bytes!(env!("WASILOCK_GUEST_WASM"));
