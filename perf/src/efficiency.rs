//! Efficiency at ordinary load, where most deployments live: the CPU a server uses idle, and
//! at a steady 1,000 lock+unlock requests per second (a paced, open-loop client), each with
//! its resident memory; and the targets for them. CPU is `utime + stime` from
//! `/proc/PID/stat` over a fixed window ([`CpuMeter`]), memory is `VmRSS`.

use crate::load::{self, Settings};
use crate::machine::CpuMeter;
use crate::servers::{Launcher, Store};
use crate::targets::Target;
use std::time::Duration;

/// The window over which CPU is counted at the paced rate.
pub const WINDOW: Duration = Duration::from_secs(10);
/// The window over which idle CPU is counted: long enough that one clock tick (10 ms at the
/// usual 100 per second) is well below the idle target.
pub const IDLE_WINDOW: Duration = Duration::from_secs(30);
/// Requests per second of the paced runs (locks and unlocks alike).
pub const PACED_RATE: f64 = 1000.0;
/// Keep-alive connections of the paced runs.
pub const PACED_CONNECTIONS: usize = 8;
/// How long a server is left alone after it is ready (or a paced run before its window)
/// before CPU is counted: start-up and warm-up work is not idle work.
pub const SETTLE: Duration = Duration::from_secs(2);

/// Idle CPU at most this share of a core.
const IDLE_TARGET: f64 = 0.001;
/// At the paced rate, CPU at most this many cores with the in-memory store.
const IN_MEMORY_TARGET: f64 = 0.05;
/// At the paced rate, CPU at most this many cores with the durable (embedded) store.
const DURABLE_TARGET: f64 = 0.15;

/// One server's CPU and memory over a window.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    /// What ran: the store and the load.
    pub setup: String,
    /// Requests answered per second in the window (0 idle).
    pub rate: f64,
    /// Requests answered otherwise.
    pub errors: u64,
    /// CPU in cores (1.0 is one core, fully busy); `None` when `/proc` could not be read.
    pub cpu: Option<f64>,
    /// Resident memory at the end of the window, bytes.
    pub rss: u64,
    /// The most CPU allowed, in cores.
    pub target: f64,
}

/// Idle `lock.in-memory`, then `lock.in-memory` and `lock.embedded` at [`PACED_RATE`].
pub async fn measure(launcher: &Launcher) -> anyhow::Result<Vec<Usage>> {
    let mut usage = vec![idle(launcher).await?];
    for (store, name, target) in [
        (Store::InMemory, "lock.in-memory", IN_MEMORY_TARGET),
        (Store::Embedded, "lock.embedded", DURABLE_TARGET),
    ] {
        let (server, _) = launcher.wasilock(store, &[])?;
        let settings = Settings {
            connections: PACED_CONNECTIONS,
            warmup: SETTLE,
            duration: WINDOW,
        };
        let measured = load::paced_pairs(&server, PACED_RATE, &settings).await?;
        usage.push(Usage {
            setup: format!("{name}, {PACED_RATE:.0} req/s over {PACED_CONNECTIONS} connections"),
            rate: measured.rate(),
            errors: measured.errors,
            cpu: measured.cpu.server,
            rss: server.rss_bytes(),
            target,
        });
    }
    Ok(usage)
}

/// A `lock.in-memory` server that serves nothing for [`IDLE_WINDOW`].
async fn idle(launcher: &Launcher) -> anyhow::Result<Usage> {
    let (server, _) = launcher.wasilock(Store::InMemory, &[])?;
    tokio::time::sleep(SETTLE).await;
    let meter = CpuMeter::start(server.pids());
    tokio::time::sleep(IDLE_WINDOW).await;
    Ok(Usage {
        setup: "lock.in-memory, idle".into(),
        rate: 0.0,
        errors: 0,
        cpu: meter.stop().server,
        rss: server.rss_bytes(),
        target: IDLE_TARGET,
    })
}

/// The targets of `usage`, in its order: CPU within its target, and no errors.
pub fn targets(usage: &[Usage]) -> Vec<Target> {
    usage
        .iter()
        .map(|u| {
            let cpu = u.cpu.map_or("n/a".to_string(), |c| {
                format!("{:.2} % of a core", c * 100.0)
            });
            Target {
                name: format!("{}: CPU ≤ {:.1} % of a core", u.setup, u.target * 100.0),
                figure: format!(
                    "{cpu}, {:.1} MB resident, {:.0} req/s answered, {} errors",
                    u.rss as f64 / 1e6,
                    u.rate,
                    u.errors
                ),
                pass: u.cpu.map(|c| c <= u.target && u.errors == 0),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(cpu: Option<f64>, errors: u64) -> Usage {
        Usage {
            setup: "lock.in-memory, idle".into(),
            rate: 0.0,
            errors,
            cpu,
            rss: 25_000_000,
            target: IDLE_TARGET,
        }
    }

    #[test]
    fn cpu_is_judged_against_its_target_and_errors_fail() {
        let verdicts: Vec<Option<bool>> = targets(&[
            usage(Some(0.0005), 0),
            usage(Some(0.02), 0),
            usage(Some(0.0), 1),
            usage(None, 0),
        ])
        .into_iter()
        .map(|t| t.pass)
        .collect();
        assert_eq!(verdicts, [Some(true), Some(false), Some(false), None]);
    }

    #[test]
    fn figures_name_cpu_memory_and_rate() {
        let target = &targets(&[usage(Some(0.0005), 0)])[0];
        assert_eq!(target.name, "lock.in-memory, idle: CPU ≤ 0.1 % of a core");
        assert_eq!(
            target.figure,
            "0.05 % of a core, 25.0 MB resident, 0 req/s answered, 0 errors"
        );
    }
}
