//! Bounded runs of the lock-safety checker's setups (10 to 12 s, 8 clients, one at a time):
//! the history of each is checked, and restarts must have hit locks that were certainly
//! held, so that a lost lock would show.
//!
//! `lock.embedded` under kill -9, `lock.redis` under Redis restarts with `appendfsync
//! always`, two hosts on one Redis, and two hosts on a 3-member etcd cluster whose leader
//! is killed and restarted must show no violation. Redis with its default
//! persistence loses the locks taken since its last snapshot: the checker must find that.
//! A Sentinel failover promotes a replica that may lack the last locks the master
//! acknowledged (replication is asynchronous), so zero violations is not promised there:
//! the failover must happen, the host must take locks again after it, and any violation
//! must come from it (none before it); what was found is printed.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use wasilock_lockcheck::report::{Figures, text};
use wasilock_lockcheck::setups::{self, Params, Run, Setup};
use wasilock_testkit::host::build_binary;

/// One setup at a time: the machine is small and the runs are about timing.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn params(seconds: u64, resources: usize) -> Params {
    static PROGRAM: OnceLock<std::path::PathBuf> = OnceLock::new();
    let program = PROGRAM.get_or_init(|| build_binary().expect("build wasilock"));
    Params {
        program: program.clone(),
        duration: Duration::from_secs(seconds),
        clients: 8,
        resources,
        seed: 11,
    }
}

/// Runs `setup` for `seconds`; `None` when `redis-server` is missing (a failure under
/// `CI=true`). At least `faults` faults must have been injected.
fn run(setup: Setup, seconds: u64, faults: usize) -> Option<(Run, Figures)> {
    run_with(setup, params(seconds, 3), faults)
}

/// [`run`] with explicit parameters.
fn run_with(setup: Setup, params: Params, faults: usize) -> Option<(Run, Figures)> {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let run = setups::run(setup, &params)?;
    println!("{}", text(&run));
    let figures = Figures::of(&run);
    assert!(figures.faults >= faults, "{figures:?}");
    assert!(figures.acknowledged >= 10, "{figures:?}");
    Some((run, figures))
}

/// Runs `setup` for 10 s with at least two faults, some of which hit held locks.
fn run_restarts(setup: Setup) -> Option<(Run, Figures)> {
    let (run, figures) = run(setup, 10, 2)?;
    assert!(
        figures.held_across_faults >= 1,
        "no fault hit a held lock: {figures:?}"
    );
    Some((run, figures))
}

fn assert_safe(setup: Setup) {
    let Some((run, figures)) = run_restarts(setup) else {
        return;
    };
    assert_eq!(figures.violations, 0, "{}", text(&run));
}

#[test]
fn embedded_store_keeps_every_lock_through_kill_9() {
    assert_safe(Setup::Embedded);
}

#[test]
fn redis_with_appendfsync_always_keeps_every_lock_through_restarts() {
    assert_safe(Setup::Redis);
}

#[test]
fn two_hosts_on_one_redis_never_grant_one_lock_twice() {
    assert_safe(Setup::TwoHosts);
}

#[test]
fn two_hosts_on_etcd_keep_every_lock_through_leader_kills() {
    // 16 s over 8 resources: etcd locks live past their expiry (whole-second leases shared
    // for a window, and every new leader restarts each lease's clock), so far fewer locks
    // are granted per resource and second than on the other stores (7 in 14 s over 3
    // resources once, on a loaded machine). The 8 clients still contend.
    let Some((run, figures)) = run_with(Setup::Etcd, params(16, 8), 2) else {
        return;
    };
    assert!(
        figures.held_across_faults >= 1,
        "no fault hit a held lock: {figures:?}"
    );
    assert_eq!(figures.violations, 0, "{}", text(&run));
}

#[test]
fn redis_with_default_persistence_loses_locks_and_the_checker_finds_it() {
    let Some((run, figures)) = run_restarts(Setup::RedisDefault) else {
        return;
    };
    assert!(figures.violations > 0, "{}", text(&run));
    assert!(!Setup::RedisDefault.promises_safety());
}

#[test]
fn a_sentinel_failover_is_checked_and_the_host_takes_locks_again() {
    let Some((run, figures)) = run(Setup::Sentinel, 12, 1) else {
        return;
    };
    let failover = &run.history.faults[0];
    assert!(failover.what.contains("promoted"), "{failover:?}");
    let after = run
        .history
        .ops
        .iter()
        .filter(|op| op.acknowledged() && op.invoked > failover.ended)
        .count();
    assert!(after > 0, "no lock acknowledged after the failover");
    for violation in &run.report.violations {
        assert!(violation.at >= failover.at, "{}", text(&run));
    }
    println!(
        "sentinel failover: {} violation(s) in {} operations",
        figures.violations, figures.operations
    );
    assert!(!Setup::Sentinel.promises_safety());
}
