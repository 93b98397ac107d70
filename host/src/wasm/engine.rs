//! The process's one wasmtime [`Engine`]: a pooling allocator sized for every tenant's
//! instances, epoch interruption, one ticker thread that advances the epoch for all
//! deadlines while calls are in flight (`ticker`), and the budget of warm instances its pool
//! leaves for reuse ([`WasmEngine`]).

use super::ticker::EpochTicker;
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

/// A wasmtime [`Engine`] made by [`new_engine`], with its epoch ticker and the budget of warm
/// instances that the sandboxes of its components share.
#[derive(Clone)]
pub struct WasmEngine {
    engine: Engine,
    ticker: Arc<EpochTicker>,
    warm_budget: Arc<WarmBudget>,
}

impl WasmEngine {
    /// The wasmtime engine, to compile components with (see
    /// [`CompileCache::compile`](super::compile_cache::CompileCache::compile)).
    pub fn wasmtime(&self) -> &Engine {
        &self.engine
    }

    /// The epoch ticker of this engine.
    pub(super) fn ticker(&self) -> &Arc<EpochTicker> {
        &self.ticker
    }

    /// The budget of warm instances of this engine.
    pub(super) fn warm_budget(&self) -> &Arc<WarmBudget> {
        &self.warm_budget
    }
}

/// An engine whose instances may each use up to `max_memory_bytes` of linear memory (the
/// largest limit of any tenant), with an epoch ticker that runs while calls are in flight,
/// and a warm-instance budget of its own.
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
    Ok(WasmEngine {
        ticker: Arc::new(EpochTicker::spawn(&engine)),
        engine,
        warm_budget: Arc::new(WarmBudget::new(MAX_WARM_INSTANCES)),
    })
}
