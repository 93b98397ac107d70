//! The host side of the WIT `wasilock:lock/store` import, for any store state: implement
//! [`LockStoreView`] for the `T` of a `Store<T>` and [`add_to_linker`] links the import, as
//! `wasmtime-wasi-http` links `wasi:http` for a `WasiHttpView`.
//!
//! Buckets are opened on the calling tenant's [`StoreView`], so a component reaches only its
//! tenant's stores and keys; they live in the state's resource table.
//!
//! ```
//! use std::sync::Arc;
//! use wasilock::StoreView;
//! use wasilock::wasm::store_import::{self, LockStoreCtxView, LockStoreView};
//! use wasmtime::component::{Linker, ResourceTable};
//!
//! /// An embedder's own store state.
//! struct MyState {
//!     stores: Arc<StoreView>,
//!     table: ResourceTable,
//! }
//!
//! impl LockStoreView for MyState {
//!     fn lock_stores(&mut self) -> LockStoreCtxView<'_> {
//!         LockStoreCtxView::new(&self.stores, &mut self.table)
//!     }
//! }
//!
//! let engine = wasmtime::Engine::default();
//! let mut linker = Linker::<MyState>::new(&engine);
//! store_import::add_to_linker(&mut linker)?;
//! # Ok::<(), wasmtime::Error>(())
//! ```

use super::bindings::wasilock::lock::store::{self as wit_store, CasOutcome};
use super::convert;
use super::schedule::CallClock;
use crate::stores::backend::{self, Swap};
use crate::stores::{Bucket, StoreView};
use std::time::Duration;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

/// What the `store` import needs of a store's state: implemented by the `T` of a `Store<T>`
/// that [`add_to_linker`] links the import for.
pub trait LockStoreView: Send {
    /// The calling tenant's stores and the table its buckets are kept in.
    fn lock_stores(&mut self) -> LockStoreCtxView<'_>;
}

/// A view of what the `store` import works on, borrowed from a store's state.
pub struct LockStoreCtxView<'a> {
    stores: &'a StoreView,
    table: &'a mut ResourceTable,
    /// The sandbox's clock of the call, told when the guest waits for a store.
    clock: Option<&'a mut CallClock>,
}

impl<'a> LockStoreCtxView<'a> {
    /// A view that opens buckets on `stores` and keeps them in `table`.
    pub fn new(stores: &'a StoreView, table: &'a mut ResourceTable) -> Self {
        LockStoreCtxView {
            stores,
            table,
            clock: None,
        }
    }

    /// A view of a sandbox's instance, whose `clock` stops counting computed ticks while the
    /// guest waits for a store.
    pub(super) fn clocked(
        stores: &'a StoreView,
        table: &'a mut ResourceTable,
        clock: &'a mut CallClock,
    ) -> Self {
        LockStoreCtxView {
            stores,
            table,
            clock: Some(clock),
        }
    }

    /// The guest calls a store: it is not computing.
    fn store_called(&mut self) {
        if let Some(clock) = self.clock.as_deref_mut() {
            clock.store_called();
        }
    }

    /// The guest calls a store: the bucket `bucket` names, out of the table.
    fn called_bucket(&mut self, bucket: &Resource<Bucket>) -> wasmtime::Result<Bucket> {
        self.store_called();
        Ok(self.table.get(bucket)?.clone())
    }

    /// The compare-and-swap both WIT calls make; they differ only in how they `answer`.
    async fn swap<A>(
        &mut self,
        bucket: Resource<Bucket>,
        key: &str,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
        ttl_ms: Option<u64>,
        answer: fn(Result<backend::CasOutcome, String>) -> A,
    ) -> wasmtime::Result<A> {
        let bucket = self.called_bucket(&bucket)?;
        let swap = Swap {
            key,
            expected: expected.as_deref(),
            new: new.as_deref(),
            ttl: ttl_ms.map(Duration::from_millis),
        };
        Ok(answer(bucket.compare_and_swap(swap).await))
    }
}

/// The [`HasData`] whose data is a [`LockStoreCtxView`].
struct LockStore;

impl HasData for LockStore {
    type Data<'a> = LockStoreCtxView<'a>;
}

/// Adds `wasilock:lock/store` (async) to `linker`.
pub fn add_to_linker<T: LockStoreView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit_store::add_to_linker::<T, LockStore>(linker, T::lock_stores)
}

impl wit_store::Host for LockStoreCtxView<'_> {}

impl wit_store::HostBucket for LockStoreCtxView<'_> {
    async fn open(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<Resource<Bucket>, wit_store::Error>> {
        Ok(match self.stores.bucket(&name) {
            Ok(bucket) => Ok(self.table.push(bucket)?),
            Err(e) => Err(e.into()),
        })
    }

    async fn get(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wit_store::Error>> {
        let bucket = self.called_bucket(&bucket)?;
        Ok(bucket.get(&key).await.map_err(wit_store::Error::Backend))
    }

    async fn compare_and_swap(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Result<CasOutcome, wit_store::Error>> {
        self.swap(bucket, &key, expected, new, ttl_ms, convert::cas_outcome)
            .await
    }

    async fn compare_and_swap_fenced(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Result<wit_store::FencedOutcome, wit_store::Error>> {
        self.swap(bucket, &key, expected, new, ttl_ms, convert::fenced_outcome)
            .await
    }

    async fn inspect(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<Option<wit_store::Entry>, wit_store::Error>> {
        let bucket = self.called_bucket(&bucket)?;
        Ok(convert::entry(bucket.inspect(&key).await))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stores::StoreSet;
    use crate::stores::tests::specs;
    use crate::wasm::EMBEDDED_GUEST;
    use crate::wasm::bindings::LockApiAlpha2Pre;
    use crate::wasm::bindings::exports::wasilock::lock::lock::LockRequest;
    use crate::wasm::host_state::DenyOutgoing;
    use std::path::Path;
    use std::sync::Arc;
    use wasmtime::component::Component;
    use wasmtime::{Engine, Store};
    use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
    use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

    /// An embedder's own state: WASI, `wasi:http`, and a tenant's stores.
    struct Embedder {
        wasi: WasiCtx,
        http: WasiHttpCtx,
        hooks: DenyOutgoing,
        table: ResourceTable,
        stores: Arc<StoreView>,
    }

    impl WasiView for Embedder {
        fn ctx(&mut self) -> WasiCtxView<'_> {
            WasiCtxView {
                ctx: &mut self.wasi,
                table: &mut self.table,
            }
        }
    }

    impl WasiHttpView for Embedder {
        fn http(&mut self) -> WasiHttpCtxView<'_> {
            WasiHttpCtxView {
                ctx: &mut self.http,
                table: &mut self.table,
                hooks: &mut self.hooks,
            }
        }
    }

    impl LockStoreView for Embedder {
        fn lock_stores(&mut self) -> LockStoreCtxView<'_> {
            LockStoreCtxView::new(&self.stores, &mut self.table)
        }
    }

    #[tokio::test]
    async fn the_import_links_into_an_embedders_own_state() {
        let set = StoreSet::open(&specs(&["lockstore"], &[]), Path::new("unused"), None)
            .await
            .unwrap();
        let engine = Engine::default();
        let mut linker = Linker::<Embedder>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).unwrap();
        add_to_linker(&mut linker).unwrap();
        let component = Component::new(&engine, EMBEDDED_GUEST).unwrap();
        let pre = LockApiAlpha2Pre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
        let state = Embedder {
            wasi: WasiCtx::builder().build(),
            http: WasiHttpCtx::new(),
            hooks: DenyOutgoing,
            table: ResourceTable::new(),
            stores: Arc::new(set.view("app")),
        };
        let mut store = Store::new(&engine, state);
        let api = pre.instantiate_async(&mut store).await.unwrap();
        let request = |owner: &str| LockRequest {
            resource_id: "r".into(),
            lock_owner: owner.into(),
            expiry_in_seconds: 30,
        };
        let lock = api.wasilock_lock_lock();
        let (a, b) = (request("a"), request("b"));
        let first = lock.call_try_lock(&mut store, "lockstore", &a).await;
        assert_eq!(first.unwrap(), Ok(true));
        let second = lock.call_try_lock(&mut store, "lockstore", &b).await;
        assert_eq!(second.unwrap(), Ok(false));
        let key = set.view("app").bucket("lockstore").unwrap().get("r").await;
        assert_eq!(key, Ok(Some(b"a".to_vec())));
    }
}
