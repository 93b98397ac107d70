//! Dapr's Distributed Lock API run by a sandboxed WebAssembly component: this library embeds
//! the lock component in a Rust program; the `wasilock` binary built on it is a
//! daprd-compatible HTTP and gRPC server.
//!
//! The lock rules (Dapr 1.18's `TryLockAlpha1` and `UnlockAlpha1`, their HTTP routes and
//! daprd's errors) live in a `wasm32-wasip2` component of the `wasilock:lock` WIT package.
//! The host compiles it, gives it storage through the WIT `store` import, runs it within
//! limits and calls its exports: the typed `lock` interface and the `http-api` interface.
//! [`EMBEDDED_GUEST`] is the component built from this repository's `guest/`; the bytes of
//! any component of the `lock-api` or `lock-service` world can take its place.
//!
//! # Three lifetimes
//!
//! - **Process**: one wasmtime engine ([`new_engine`] makes a [`WasmEngine`]: the engine and
//!   the budget of warm instances its sandboxes share), each lock component compiled and
//!   linked once ([`LinkedComponent`]), and the stores with their backends ([`StoreSet`]),
//!   shared by every tenant.
//! - **Tenant**: an app id, what it sees of the stores ([`StoreView`]: Dapr `scopes`, and
//!   its keys prefixed as Dapr's `keyPrefix` says) and its [`Sandbox`]: a component, that
//!   view and [`Limits`]. A sandbox keeps warm instances of its component for its own next
//!   calls, never for another tenant's.
//! - **Call**: [`Sandbox::try_lock`], [`Sandbox::unlock`] and [`Sandbox::handle_http`] each
//!   run on one instance, which ends the call at [`Limits::timeout`] and caps its memory at
//!   [`Limits::memory_bytes`]. An instance serves at most [`Limits::requests_per_instance`]
//!   calls; at most [`Limits::max_concurrency`] calls of a tenant run at once, the others
//!   wait.
//!
//! # Embedding, step by step
//!
//! 1. Make the engine with [`new_engine`], for the largest memory limit of any tenant. It
//!    starts the one thread that measures every deadline, which ends with the engine, and
//!    holds the budget of warm instances of the components linked for it.
//! 2. Compile and link a component with [`LinkedComponent::new`]: [`EMBEDDED_GUEST`], or
//!    bytes of your own. With [`HttpExport::Auto`], HTTP requests enter through
//!    `wasilock:lock/http-api` when the component exports it.
//! 3. Open the stores: [`StoreSet::open`] takes [`StoreSpec`]s, each a store's name with
//!    its [`StoreSettings`]: a store kind and the settings it read from the component's
//!    metadata. [`StoreKinds::builtin`] has the kinds this crate implements (`lock.in-memory`,
//!    `lock.embedded`, `lock.redis`, `lock.etcd`), and [`config::load`] reads specs from
//!    component YAML through them; a backend of your own is a kind of your own, registered
//!    under its own type name (below).
//! 4. For each tenant, take its view with [`StoreSet::view`] and make its [`Sandbox`] with
//!    its [`Limits`] and the largest request body it reads (daprd's default is 4 MiB).
//! 5. Call it. The typed calls give the rules' outcome, `Ok(Ok(_))`; daprd's error for a
//!    refused request, `Ok(Err(`[`LockError`]`))`; or a [`GuestFailure`] when the component
//!    failed or the tenant stayed busy. [`Sandbox::handle_http`] takes a request for Dapr's
//!    routes (`POST /v1.0-alpha1/lock/{store}`, `/unlock/{store}`) and gives daprd's answer.
//!
//! Calls need a Tokio runtime (deadlines and waits use its timers).
//!
//! ```
//! use http_body_util::BodyExt;
//! use std::sync::Arc;
//! use std::time::Duration;
//! use std::path::Path;
//! use wasilock::stores::backend::InMemoryKind;
//! use wasilock::{EMBEDDED_GUEST, HttpExport, Limits, LinkedComponent, LockRequest};
//! use wasilock::{Sandbox, StoreSet, StoreSettings, StoreSpec, new_engine};
//!
//! #[tokio::main]
//! async fn main() -> anyhow::Result<()> {
//!     // The process: the engine, the component compiled once, the stores.
//!     let limits = Limits {
//!         timeout: Duration::from_secs(1),
//!         memory_bytes: 16 << 20,
//!         max_concurrency: 8,
//!         requests_per_instance: 100,
//!     };
//!     let engine = new_engine(limits.memory_bytes)?;
//!     let component = LinkedComponent::new(&engine, "built-in", EMBEDDED_GUEST, HttpExport::Auto)?;
//!     let component = Arc::new(component);
//!     let spec = StoreSpec::new("lockstore", StoreSettings::new(InMemoryKind, ()));
//!     let stores = StoreSet::open(&[spec], Path::new("unused"), None).await?;
//!
//!     // Two tenants on the same store: each app id has keys of its own.
//!     let tenant = |app_id: &str| {
//!         let view = Arc::new(stores.view(app_id));
//!         Sandbox::new(component.clone(), view, limits.clone(), 4 << 20)
//!     };
//!     let (orders, billing) = (tenant("orders"), tenant("billing"));
//!
//!     // Typed calls.
//!     let lock = |owner: &str| LockRequest {
//!         resource_id: "order-1".into(),
//!         lock_owner: owner.into(),
//!         expiry_in_seconds: 60,
//!     };
//!     assert_eq!(orders.try_lock("lockstore", lock("worker-a")).await?, Ok(true));
//!     assert_eq!(orders.try_lock("lockstore", lock("worker-b")).await?, Ok(false));
//!     assert_eq!(billing.try_lock("lockstore", lock("worker-b")).await?, Ok(true));
//!
//!     // The HTTP API: a request from a server, or one made in memory as here.
//!     let request = hyper::Request::post("/v1.0-alpha1/unlock/lockstore")
//!         .body(r#"{"resourceId":"order-1","lockOwner":"worker-a"}"#.to_string())?;
//!     let response = orders.handle_http(request).await?;
//!     assert_eq!(response.status(), 200);
//!     let body = response.into_body().collect().await?.to_bytes();
//!     assert_eq!(body, r#"{"status":0}"#); // 0: SUCCESS
//!     Ok(())
//! }
//! ```
//!
//! # What the host provides: the `store` import
//!
//! The component keeps no lock between calls; every lock lives in a store the host gives it
//! through the WIT `store` import. This crate implements that import, so that an embedder
//! only brings [`Backend`]s:
//!
//! - `open(name)` is answered from the tenant's [`StoreView`]: no store at all is
//!   `not-configured`, an unknown name `no-such-store`, a store whose `scopes` leave the app
//!   id out `access-denied`.
//! - Keys are laid out as Dapr lays them out (`lock||<app id>||<resource id>` by default,
//!   see [`stores::keys`]) before a backend sees them, so tenants on one backend never meet
//!   and a component cannot name another store's keys.
//! - A backend keeps bytes under string keys, each with an optional expiry in the backend's
//!   own clock. [`Backend::get`] gives the live value (absent and expired are both `None`).
//!   [`Backend::compare_and_swap`] is atomic: when the live value equals `expected` it sets
//!   `new` (`None` deletes) for `ttl` (`None`: no expiry) and answers
//!   [`CasOutcome::Swapped`] with the key's fencing token; otherwise it answers
//!   [`CasOutcome::Conflict`] with the live value. The token is a counter per key that
//!   every grant (a swap from absent to a value) advances and nothing lowers; a renewal or
//!   delete answers the live one. [`Backend::inspect`] reads the live value with its token
//!   and remaining lifetime (alpha2's `GET`). Its atomicity is what makes a lock exclusive: of two owners racing on a key,
//!   only one sees `Swapped`, across every process that shares the backend. An error
//!   reaches the caller as daprd's `ERR_TRY_LOCK` or `ERR_UNLOCK`.
//! - [`Backend::purge_expired`] deletes expired entries; call [`StoreSet::purge_expired`]
//!   from time to time (the binary does so periodically).
//!
//! A [`Sandbox`] links the import for its own instances. To run a component in a `Store<T>`
//! of your own instead, implement [`LockStoreView`] for `T` (the tenant's [`StoreView`] and
//! the resource table its buckets live in) and link the import with
//! [`wasm::store_import::add_to_linker`], as `wasmtime-wasi-http` links `wasi:http` for a
//! `WasiHttpView`.
//!
//! ## A backend of your own
//!
//! Implement [`Backend`] with [`macro@async_trait`], and a [`StoreKind`] that reads its
//! settings from a component's metadata and opens it; register the kind under its own type
//! name, and components of that `spec.type` are stores of it. This one counts the writes
//! that reach the built-in in-memory backend; `host/examples/embed.rs` keeps its own maps.
//!
//! ```
//! use std::path::Path;
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::time::Duration;
//! use wasilock::stores::backend::Metadata;
//! use wasilock::{Backend, CasOutcome, Inspected, LockRequest, MemoryBackend, OpenContext, Opened};
//! use wasilock::{StoreKind, StoreKinds, StoreSet, StoreSpec, Swap, async_trait};
//! # use wasilock::{EMBEDDED_GUEST, HttpExport, Limits, LinkedComponent, Sandbox, new_engine};
//!
//! /// The in-memory backend, with a count of the values it stored or deleted.
//! #[derive(Default)]
//! struct Counted {
//!     inner: MemoryBackend,
//!     writes: AtomicUsize,
//! }
//!
//! #[async_trait]
//! impl Backend for Counted {
//!     async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
//!         self.inner.get(key).await
//!     }
//!
//!     async fn compare_and_swap(&self, swap: Swap<'_>) -> anyhow::Result<CasOutcome> {
//!         let outcome = self.inner.compare_and_swap(swap).await?;
//!         if matches!(outcome, CasOutcome::Swapped(_)) {
//!             self.writes.fetch_add(1, Ordering::Relaxed);
//!         }
//!         Ok(outcome)
//!     }
//!
//!     async fn inspect(&self, key: &str) -> anyhow::Result<Option<Inspected>> {
//!         self.inner.inspect(key).await
//!     }
//!
//!     async fn purge_expired(&self) -> anyhow::Result<usize> {
//!         self.inner.purge_expired().await
//!     }
//! }
//!
//! /// The kind `lock.counted`: every store of it is the one counted backend it holds.
//! struct CountedKind(Arc<Counted>);
//!
//! #[async_trait]
//! impl StoreKind for CountedKind {
//!     const TYPE_NAME: &'static str = "lock.counted";
//!     type Settings = ();
//!
//!     async fn open(&self, _settings: &(), _context: OpenContext<'_>) -> anyhow::Result<Opened> {
//!         Ok(Opened { backend: self.0.clone(), location: "counted memory".into() })
//!     }
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> anyhow::Result<()> {
//! let backend = Arc::new(Counted::default());
//! let mut kinds = StoreKinds::builtin();
//! kinds.register(CountedKind(backend.clone()));
//! // What `config::load` does with a component of `type: lock.counted`.
//! let (settings, _remarks) = kinds.get("lock.counted").unwrap().read(&Metadata::new())?;
//! let specs = [StoreSpec::new("lockstore", settings)];
//! let stores = StoreSet::open(&specs, Path::new("unused"), None).await?;
//! # let limits = Limits {
//! #     timeout: Duration::from_secs(1),
//! #     memory_bytes: 16 << 20,
//! #     max_concurrency: 8,
//! #     requests_per_instance: 100,
//! # };
//! # let engine = new_engine(limits.memory_bytes)?;
//! # let component = LinkedComponent::new(&engine, "built-in", EMBEDDED_GUEST, HttpExport::Auto)?;
//! let sandbox = Sandbox::new(Arc::new(component), Arc::new(stores.view("app")), limits, 4 << 20);
//! let request = LockRequest {
//!     resource_id: "r".into(),
//!     lock_owner: "me".into(),
//!     expiry_in_seconds: 10,
//! };
//! assert_eq!(sandbox.try_lock("lockstore", request).await?, Ok(true));
//! assert_eq!(backend.writes.load(Ordering::Relaxed), 1);
//! assert_eq!(backend.get("lock||app||r").await?, Some(b"me".to_vec()));
//! # Ok(())
//! # }
//! ```
//!
//! # Serving the Dapr API
//!
//! [`api::http::serve`] and [`api::grpc::serve`] serve daprd's lock API (with its health,
//! metadata and `dapr-api-token` handling) for the tenants of a [`tenants::Registry`]; a
//! [`service::Tenant`] is an app id with its sandbox. [`process::Process`] builds all of it
//! from flags and a resources path, as the `wasilock` binary does.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use wasilock::Sandbox;
//! use wasilock::service::Tenant;
//! use wasilock::tenants::{Registry, Tenants};
//!
//! # async fn serve(sandbox: Sandbox) -> std::io::Result<()> {
//! // One tenant that needs no token, as daprd without `DAPR_API_TOKEN`.
//! let tenant = Tenant { app_id: "orders".into(), service: sandbox, alpha2: Default::default() };
//! let tenants = Arc::new(Registry::new(Tenants::open(tenant)));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3500").await?;
//! let (_stop, stopped) = tokio::sync::watch::channel(false);
//! wasilock::api::http::serve(listener, tenants, stopped).await;
//! # Ok(())
//! # }
//! ```
//!
//! # Modules
//!
//! By lifetime; arrows point one way: `api` → `service` → `wasm` → `stores`.
//! - [`process`]: the process: engine, stores and tenants, built from the configuration,
//!   and serving them until shutdown;
//! - [`config`]: Dapr component YAML and Tenant YAML from the resources path, each tenant's
//!   limits over the flags', and when to reload;
//! - [`tenants`]: which tenant a request's token selects, swapped on reload;
//! - [`upstream`]: the daprd a tenant's other Dapr calls go to;
//! - [`api`]: the HTTP and gRPC transports;
//! - [`service`]: lock operations of a tenant, independent of the transport;
//! - [`waiting`]: FIFO queues of waiting alpha2 acquires, woken by release events;
//! - [`wasm`]: the engine, linked components, the WIT `store` host side, and each tenant's
//!   sandbox;
//! - [`stores`]: backends and the store kinds that open them, Dapr's key layout and each
//!   tenant's view of the stores;
//! - [`answer`]: HTTP answers as the host writes them;
//! - [`telemetry`]: metrics, log lines and traces in daprd's conventions, owned by the
//!   process and handed down (used by every layer; it imports only `config`'s settings).

#![warn(missing_docs)]

pub mod answer;
pub mod api;
pub mod config;
pub mod process;
pub mod service;
pub mod stores;
pub mod telemetry;
pub mod tenants;
pub mod upstream;
pub mod waiting;
pub mod wasm;

/// The attribute a [`Backend`] implementation carries (re-exported: no dependency needed).
pub use async_trait::async_trait;
pub use service::{LockError, LockRequest, UnlockRequest, UnlockStatus};
pub use stores::backend::{
    Backend, CasOutcome, FromMetadata, Inspected, MemoryBackend, OpenContext, Opened, StoreKind,
    Swap,
};
pub use stores::{StoreKinds, StoreSet, StoreSettings, StoreSpec, StoreView};
pub use wasm::EMBEDDED_GUEST;
pub use wasm::{GuestFailure, HttpExport, Limits, LinkedComponent, Sandbox};
pub use wasm::{LockStoreCtxView, LockStoreView, WasmEngine, new_engine};
