//! The multi-tenant figures: many tenants in one process (resident memory per idle tenant,
//! the first request of a cold tenant, load spread over many tenants against one), and a
//! noisy neighbour (a tenant flooding a component that loops until its deadline) beside a
//! well-behaved tenant.

use crate::load::{self, Measured, Protocol, Settings};
use crate::servers::{Launcher, Server};
use std::path::Path;
use std::time::{Duration, Instant};
use wasilock_testkit::{component, scoped_component, tenant};

/// Tenants in the large process.
pub const TENANTS: usize = 1000;
/// Tenants the spread load goes to.
pub const SPREAD: usize = 100;
/// Cold tenants whose first request is timed.
pub const COLD_SAMPLES: usize = 50;
/// Connections flooding the noisy tenant.
pub const FLOOD_CONNECTIONS: usize = 16;

/// What idle tenants cost, measured once.
pub struct Footprint {
    /// Resident memory per idle tenant, bytes.
    pub rss_per_idle_tenant: f64,
    /// Median and slowest first request of a tenant never called before, ms.
    pub cold_first_ms: (f64, f64),
}

/// Load on one tenant, then spread over [`SPREAD`] tenants, of a process with [`TENANTS`].
pub struct SpreadLoad {
    /// Lock+unlock pairs for one tenant.
    pub one: Measured,
    /// Lock+unlock pairs spread over [`SPREAD`] tenants.
    pub spread: Measured,
}

/// The well-behaved tenant alone, then beside the noisy one.
pub struct Neighbour {
    /// The well-behaved tenant alone.
    pub alone: Measured,
    /// The same load while another tenant floods a looping component.
    pub beside: Measured,
    /// Requests the noisy tenant had answered meanwhile (500s at their deadline, 429s).
    pub noisy_answered: u64,
}

fn token(i: usize) -> String {
    format!("token-{i:04}")
}

/// A process with `count` tenants (`t0000`..) and one `lock.in-memory` store `lockstore`.
fn start_with_tenants(launcher: &Launcher, count: usize) -> anyhow::Result<Server> {
    let tenants: Vec<String> = (0..count)
        .map(|i| tenant(&format!("t{i:04}"), &token(i), None, "{}"))
        .collect();
    launcher.wasilock_with(&[
        (
            "lockstore.yaml",
            &component("lockstore", "lock.in-memory", &[]),
        ),
        ("tenants.yaml", &tenants.join("---\n")),
    ])
}

/// Resident memory per idle tenant (one tenant, then [`TENANTS`]) and the first request of
/// [`COLD_SAMPLES`] tenants never called before.
pub async fn footprint(launcher: &Launcher) -> anyhow::Result<Footprint> {
    eprintln!("tenants: 1 tenant, then {TENANTS} tenants, idle...");
    let single = start_with_tenants(launcher, 1)?;
    std::thread::sleep(Duration::from_millis(500));
    let rss_one = single.rss_bytes();
    drop(single);
    let server = start_with_tenants(launcher, TENANTS)?;
    std::thread::sleep(Duration::from_millis(500));
    let rss_many = server.rss_bytes();
    let rss_per_idle_tenant = rss_many.saturating_sub(rss_one) as f64 / (TENANTS - 1) as f64;

    let mut cold = Vec::new();
    for i in (TENANTS - COLD_SAMPLES)..TENANTS {
        let sent = Instant::now();
        anyhow::ensure!(
            load::try_lock_as(&server.address, "lockstore", &token(i)).await?,
            "the first lock of a cold tenant was refused"
        );
        cold.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
    cold.sort_by(f64::total_cmp);
    Ok(Footprint {
        rss_per_idle_tenant,
        cold_first_ms: (cold[cold.len() / 2], cold[cold.len() - 1]),
    })
}

/// Throughput of one tenant, then of [`SPREAD`] tenants, in a process with [`TENANTS`].
pub async fn spread_load(launcher: &Launcher, settings: &Settings) -> anyhow::Result<SpreadLoad> {
    let server = start_with_tenants(launcher, TENANTS)?;
    let one = load::lock_unlock_pairs(&server, Protocol::Http, &[token(0)], settings).await?;
    let tokens: Vec<String> = (0..SPREAD).map(token).collect();
    let spread = load::lock_unlock_pairs(&server, Protocol::Http, &tokens, settings).await?;
    Ok(SpreadLoad { one, spread })
}

/// The well-behaved tenant's throughput alone and beside a tenant flooding a component that
/// loops until its deadline (`guest`, the guest built with its `fault-injection` feature).
pub async fn noisy_neighbour(
    launcher: &Launcher,
    settings: &Settings,
    guest: &Path,
) -> anyhow::Result<Neighbour> {
    let server = launcher.wasilock_with(&[
        (
            "lockstore.yaml",
            &component("lockstore", "lock.in-memory", &[]),
        ),
        (
            "spin.yaml",
            &scoped_component("fault-spin", "lock.in-memory", &["noisy"]),
        ),
        ("calm.yaml", &tenant("calm", "t-calm", None, "{}")),
        (
            "noisy.yaml",
            &tenant(
                "noisy",
                "t-noisy",
                Some(guest),
                "{timeout: 100ms, maxConcurrency: 8}",
            ),
        ),
    ])?;
    let calm = [String::from("t-calm")];
    let alone = load::lock_unlock_pairs(&server, Protocol::Http, &calm, settings).await?;
    let until = Instant::now() + settings.warmup + settings.duration + Duration::from_millis(500);
    let flood = tokio::spawn({
        let address = server.address.clone();
        async move {
            load::flood(
                &address,
                "/v1.0-alpha1/lock/fault-spin",
                "t-noisy",
                FLOOD_CONNECTIONS,
                until,
            )
            .await
        }
    });
    let beside = load::lock_unlock_pairs(&server, Protocol::Http, &calm, settings).await?;
    let noisy_answered = flood.await??;
    Ok(Neighbour {
        alone,
        beside,
        noisy_answered,
    })
}
