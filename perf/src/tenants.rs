//! The multi-tenant figures: many tenants in one process (resident memory per idle tenant,
//! the first request of a cold tenant, load spread over many tenants against one), and a
//! noisy neighbour (a tenant flooding a component that loops until its deadline) beside a
//! well-behaved tenant.

use crate::load::{self, Measured, Protocol};
use crate::report::Row;
use crate::servers::Server;
use std::path::Path;
use std::time::{Duration, Instant};
use wasilock_testkit::{
    Options, component, fault_injection_guest, resources, scoped_component, tenant,
};

/// Tenants in the large process.
pub const TENANTS: usize = 1000;
/// Tenants the spread load goes to.
pub const SPREAD: usize = 100;
/// Cold tenants whose first request is timed.
const COLD_SAMPLES: usize = 50;
/// Connections flooding the noisy tenant.
const FLOOD_CONNECTIONS: usize = 16;

/// What many tenants in one process cost.
pub struct Tenancy {
    /// Resident memory per idle tenant, bytes.
    pub rss_per_idle_tenant: f64,
    /// Median and slowest first request of a tenant never called before, ms.
    pub cold_first_ms: (f64, f64),
    /// Lock+unlock pairs for one tenant.
    pub one: Row,
    /// Lock+unlock pairs spread over [`SPREAD`] tenants.
    pub spread: Row,
}

/// The well-behaved tenant alone, then beside the noisy one.
pub struct Neighbour {
    /// The well-behaved tenant alone.
    pub alone: Row,
    /// The same load while another tenant floods a looping component.
    pub beside: Row,
    /// Requests the noisy tenant had answered meanwhile (500s at their deadline, 429s).
    pub noisy_answered: u64,
}

fn token(i: usize) -> String {
    format!("token-{i:04}")
}

/// A process with `count` tenants (`t0000`..) and one `lock.in-memory` store `lockstore`.
fn start_with_tenants(binary: &Path, count: usize) -> anyhow::Result<Server> {
    let tenants: Vec<String> = (0..count)
        .map(|i| tenant(&format!("t{i:04}"), &token(i), None, "{}"))
        .collect();
    let dir = resources(&[
        (
            "lockstore.yaml",
            &component("lockstore", "lock.in-memory", &[]),
        ),
        ("tenants.yaml", &tenants.join("---\n")),
    ]);
    let options = Options::new()
        .program(binary)
        .args(["--resources-path", dir.path().to_str().unwrap()]);
    Server::start(options, vec![dir])
}

/// Memory, cold start and spread throughput with [`TENANTS`] tenants.
pub async fn tenancy(
    binary: &Path,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<Tenancy> {
    eprintln!("tenants: 1 tenant, then {TENANTS} tenants, idle...");
    let single = start_with_tenants(binary, 1)?;
    std::thread::sleep(Duration::from_millis(500));
    let rss_one = single.rss_bytes();
    drop(single);
    let server = start_with_tenants(binary, TENANTS)?;
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

    let measure = |name: &'static str, tokens: Vec<String>| {
        let address = server.address.clone();
        async move {
            eprintln!("tenants: measuring {name}...");
            let m = load::lock_unlock_pairs(
                Protocol::Http,
                &address,
                &tokens,
                "lockstore",
                connections,
                warmup,
                duration,
            )
            .await?;
            Ok::<Measured, anyhow::Error>(m)
        }
    };
    let one = measure("one tenant", vec![token(0)]).await?;
    let spread = measure("spread", (0..SPREAD).map(token).collect()).await?;
    Ok(Tenancy {
        rss_per_idle_tenant,
        cold_first_ms: (cold[cold.len() / 2], cold[cold.len() - 1]),
        one: Row::measured(&format!("e. {TENANTS} tenants, load on one"), &one),
        spread: Row::measured(
            &format!("e'. {TENANTS} tenants, load spread over {SPREAD}"),
            &spread,
        ),
    })
}

/// The well-behaved tenant's throughput alone and beside a tenant flooding a component that
/// loops until its deadline.
pub async fn noisy_neighbour(
    binary: &Path,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<Neighbour> {
    let guest = fault_injection_guest();
    let dir = resources(&[
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
                Some(&guest),
                "{timeout: 100ms, maxConcurrency: 8}",
            ),
        ),
    ]);
    let options = Options::new()
        .program(binary)
        .args(["--resources-path", dir.path().to_str().unwrap()]);
    let server = Server::start(options, vec![dir])?;
    let calm = [String::from("t-calm")];
    let run = || {
        load::lock_unlock_pairs(
            Protocol::Http,
            &server.address,
            &calm,
            "lockstore",
            connections,
            warmup,
            duration,
        )
    };
    eprintln!("noisy neighbour: the calm tenant alone...");
    let alone = run().await?;
    eprintln!("noisy neighbour: the calm tenant beside the noisy one...");
    let until = Instant::now() + warmup + duration + Duration::from_millis(500);
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
    let beside = run().await?;
    let noisy_answered = flood.await??;
    Ok(Neighbour {
        alone: Row::measured("f. calm tenant alone", &alone),
        beside: Row::measured(
            &format!(
                "f'. calm tenant beside a tenant flooding a looping component ({FLOOD_CONNECTIONS} connections)"
            ),
            &beside,
        ),
        noisy_answered,
    })
}
