//! The wasm side of the host: one engine for the process, the host side of the WIT `store`
//! import, and each tenant's sandbox (its component, limits and warm instances).
//!
//! - [`engine`]: the process's wasmtime `Engine` (pooling allocator, one epoch ticker);
//! - [`compile_cache`]: compiled components kept on disk, so a start-up need not compile;
//! - `store_impl`: per-call state and the host side of the WIT `store` import (crate-private:
//!   [`sandbox::LinkedComponent`] links it);
//! - [`sandbox`]: a tenant's component and the one call helper every entry goes through.

pub mod compile_cache;
pub mod engine;
pub mod sandbox;
pub(crate) mod store_impl;

/// Host bindings for the `lock-api` world (the `store` import, the typed `lock` and the
/// `http-api` exports).
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "lock-api",
        imports: { default: async | trappable },
        exports: { default: async },
        with: { "wasilock:lock/store.bucket": crate::stores::Bucket },
        additional_derives: [PartialEq, Eq],
    });
}

/// The guest component built from `guest/` and embedded at build time.
pub const EMBEDDED_GUEST: &[u8] = include_bytes!(env!("WASILOCK_GUEST_WASM"));
