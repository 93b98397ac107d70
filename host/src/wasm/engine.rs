//! The process's one wasmtime [`Engine`]: a pooling allocator sized for every tenant's
//! instances, epoch interruption, one ticker thread that advances the epoch for all
//! deadlines, and the budget of warm instances its pool leaves for reuse ([`WasmEngine`]).

use super::warm::WarmBudget;
use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the shared epoch ticker advances: the resolution of deadlines, and how long a
/// guest may run before it yields its executor thread to other requests.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);
/// Guest instances that can exist at once in the process, warm or busy, across tenants.
pub const MAX_INSTANCES: u32 = 1000;

/// Warm instances kept for reuse across every sandbox of one engine, at most: the rest of the
/// instance pool stays for requests in flight.
const MAX_WARM_INSTANCES: usize = MAX_INSTANCES as usize / 2;

/// A wasmtime [`Engine`] made by [`new_engine`], with the budget of warm instances that the
/// sandboxes of its components share.
#[derive(Clone)]
pub struct WasmEngine {
    engine: Engine,
    warm_budget: Arc<WarmBudget>,
}

impl WasmEngine {
    /// The wasmtime engine, to compile components with (see
    /// [`CompileCache::compile`](super::compile_cache::CompileCache::compile)).
    pub fn wasmtime(&self) -> &Engine {
        &self.engine
    }

    /// The budget of warm instances of this engine.
    pub(super) fn warm_budget(&self) -> &Arc<WarmBudget> {
        &self.warm_budget
    }
}

/// An engine whose instances may each use up to `max_memory_bytes` of linear memory (the
/// largest limit of any tenant), with its epoch ticker running for as long as it lives, and
/// a warm-instance budget of its own.
pub fn new_engine(max_memory_bytes: usize) -> Result<WasmEngine> {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(MAX_INSTANCES)
        .total_core_instances(MAX_INSTANCES)
        .total_memories(MAX_INSTANCES)
        .total_tables(MAX_INSTANCES)
        .total_stacks(MAX_INSTANCES)
        .max_memory_size(max_memory_bytes)
        .linear_memory_keep_resident(1 << 20);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine = Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("cannot create the wasm engine")?;
    spawn_epoch_ticker(&engine);
    Ok(WasmEngine {
        engine,
        warm_budget: Arc::new(WarmBudget::new(MAX_WARM_INSTANCES)),
    })
}

/// Advances the engine's epoch every [`EPOCH_TICK`] for as long as the engine lives: one
/// thread for all deadlines.
fn spawn_epoch_ticker(engine: &Engine) {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("wasilock-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawn the epoch ticker thread");
}
