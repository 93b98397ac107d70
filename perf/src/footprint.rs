//! The figures measured once per run, outside the rounds: latency and memory with 1,000 and
//! with many live locks (the scale runs), and the start-up time.

use crate::load::{self, Protocol, Settings};
use crate::servers::{Launcher, Server, Store};
use crate::stats::Spread;
use anyhow::Context;
use std::time::{Duration, Instant};

/// Live locks of the small scale run.
const SMALL_SCALE: u64 = 1_000;
/// Starts timed for the start-up figure.
pub const STARTS: usize = 5;

/// Figures of one store with 1k and with many live locks.
pub struct Scale {
    /// The store type.
    pub store: String,
    /// Live locks in the large run.
    pub locks: u64,
    /// Median latency with 1,000 live locks, ms.
    pub p50_small: f64,
    /// Median latency with `locks` live locks, ms.
    pub p50_large: f64,
    /// Resident memory per live lock, bytes.
    pub rss_per_lock: f64,
    /// Bytes per lock beyond its key and value (in-memory), or on disk (embedded).
    pub extra: (String, f64),
}

/// Latency with 1k and with `locks` live locks, and memory per lock, of `store`.
pub async fn scale(
    launcher: &Launcher,
    store: Store<'_>,
    locks: u64,
    settings: &Settings,
) -> anyhow::Result<Scale> {
    let (name, key_and_value) = match store {
        Store::InMemory => (
            "lock.in-memory",
            "lock||fill-0000000".len() + "filler".len(),
        ),
        _ => ("lock.embedded", 0),
    };
    let (server, data_dir) = launcher.wasilock(store, &[])?;
    let settings = Settings {
        warmup: Duration::from_secs(1),
        duration: settings.duration.min(Duration::from_secs(5)),
        ..*settings
    };
    let (small, rss_small) = fill_then_measure(&server, name, 0, SMALL_SCALE, &settings).await?;
    let (large, rss_large) =
        fill_then_measure(&server, name, SMALL_SCALE, locks, &settings).await?;
    let added = (locks - SMALL_SCALE) as f64;
    let rss_per_lock = rss_large.saturating_sub(rss_small) as f64 / added;
    let extra = match store {
        Store::InMemory => (
            "overhead beyond key+value".to_string(),
            rss_per_lock - key_and_value as f64,
        ),
        _ => {
            let disk: u64 = std::fs::read_dir(&data_dir)?
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum();
            ("on disk per lock".to_string(), disk as f64 / locks as f64)
        }
    };
    Ok(Scale {
        store: name.into(),
        locks,
        p50_small: small,
        p50_large: large,
        rss_per_lock,
        extra,
    })
}

/// Takes locks `from..to` on `server`, then measures the median lock+unlock latency and
/// reads the resident memory.
async fn fill_then_measure(
    server: &Server,
    name: &str,
    from: u64,
    to: u64,
    settings: &Settings,
) -> anyhow::Result<(f64, u64)> {
    eprintln!("scale, {name}: filling up to {to} locks...");
    load::fill(&server.address, "lockstore", settings.connections, from, to).await?;
    let latency = load::lock_unlock_pairs(server, Protocol::Http, &[], settings).await?;
    Ok((latency.quantile_ms(0.5), server.rss_bytes()))
}

/// Spawn to first granted TryLock of `wasilock` with `lock.in-memory`: the first start with
/// an empty compile cache, then [`STARTS`] starts that load the component from it.
pub struct Startup {
    /// The first start: Cranelift compiles the component (and the cache keeps it).
    pub cold: Duration,
    /// The fastest start with the cache filled.
    pub best: Duration,
    /// The median start with the cache filled.
    pub median: Duration,
}

/// Starts `wasilock` once with an empty `--compile-cache`, then [`STARTS`] more times with
/// it filled, and times each start to its first granted TryLock.
pub async fn startup(launcher: &Launcher) -> anyhow::Result<Startup> {
    eprintln!("start-up, 1 cold start and {STARTS} with the compile cache filled...");
    let cache = tempfile::tempdir()?;
    let cache_dir = cache.path().to_str().context("a path")?;
    let mut starts = Vec::new();
    for _ in 0..=STARTS {
        let started = Instant::now();
        let (server, _) = launcher.wasilock(Store::InMemory, &["--compile-cache", cache_dir])?;
        anyhow::ensure!(
            load::try_lock_once(&server.address, "lockstore").await?,
            "the first TryLock was refused"
        );
        starts.push(started.elapsed().as_secs_f64());
    }
    let cold = starts.remove(0);
    let spread = Spread::of(&starts).expect("at least one start");
    Ok(Startup {
        cold: Duration::from_secs_f64(cold),
        best: Duration::from_secs_f64(spread.min),
        median: Duration::from_secs_f64(spread.median),
    })
}
