//! The fault setups: hosts and stores started on loopback, the workload run against them
//! while faults are injected, and the history checked.
//!
//! - `embedded`: one host, `lock.embedded` in a data directory; every 2 to 4 s the host is
//!   killed with SIGKILL and restarted on the same port.
//! - `redis`: one host, `lock.redis`; every 2 to 4 s `redis-server` (append-only file,
//!   `appendfsync always`) is killed with SIGKILL and restarted on the same port.
//! - `redis-default`: the same with Redis's default persistence (snapshots only, no
//!   append-only file): a restart loses every lock taken since the last snapshot.
//! - `two-hosts`: two hosts (one app id) on one Redis (`appendfsync always`), the clients
//!   split across them; every 2 to 4 s one of them is killed with SIGKILL and restarted.
//! - `sentinel`: one host with `failover: true` on a master (`appendfsync always`), a
//!   replica and a Sentinel (the test kit's: quorum 1, master down after 1 s); 2 to 4 s into
//!   the run, and then every 21 to 24 s, the master is killed with SIGKILL, the replica
//!   promoted, and the old master restarted at once, as a supervisor would: it comes back as
//!   a master with its own data until the Sentinel makes it a replica (on its next round,
//!   about 10 s later), so failovers are spaced for it to rejoin. The Sentinel's events are
//!   recorded. Replication is asynchronous: a promoted replica may lack locks the master
//!   acknowledged, so this setup does not promise safety.
//! - `etcd`: two hosts (one app id) on `lock.etcd` over a 3-member etcd cluster, the clients
//!   split across them; every 2 to 4 s the leader is killed with SIGKILL and restarted with
//!   its data once another member leads.

use crate::checker::{Report, check};
use crate::history::{Fault, History};
use crate::redis_admin::{SentinelEvents, master_port, query};
use crate::workload::{self, Workload};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use wasilock_testkit::etcd_cluster::EtcdCluster;
use wasilock_testkit::redis_server::{RedisSentinel, RedisServer};
use wasilock_testkit::{Host, Options, component, resources};

/// Redis's own default persistence: these snapshot points, no append-only file.
const REDIS_DEFAULT_SAVE: &str = "3600 1 300 100 60 10000";
/// Redis persisting every write before it answers.
const REDIS_FSYNC_ALWAYS: [&str; 4] = ["--appendonly", "yes", "--appendfsync", "always"];
/// Milliseconds from the start to the first fault, and between two restarts.
const RESTART_EVERY_MS: RangeInclusive<u64> = 2000..=4000;
/// Milliseconds between two failovers: the old master rejoins as a replica meanwhile.
const FAILOVER_EVERY_MS: RangeInclusive<u64> = 21_000..=24_000;
/// The name the Sentinel monitors the master under.
const MASTER_NAME: &str = "lockcheck";
/// The bound on a failover, from the master's death to the Sentinel naming another.
const FAILOVER_BOUND: Duration = Duration::from_secs(30);
/// At least this long between the end of one fault and the start of the next.
const MIN_CALM: Duration = Duration::from_millis(500);
/// No fault starts this close to the end of a run.
const QUIET_END: Duration = Duration::from_millis(500);

/// One fault setup; on the command line, [`Setup::name`] with its doc line as the help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Setup {
    /// `lock.embedded`, the host killed (-9) and restarted.
    Embedded,
    /// `lock.redis` (appendfsync always), Redis killed (-9) and restarted.
    Redis,
    /// `lock.redis` with Redis's default persistence, Redis killed (-9) and restarted.
    RedisDefault,
    /// Two hosts on one Redis, each killed (-9) and restarted in turn.
    TwoHosts,
    /// `lock.redis` with Sentinel failover, the master killed (-9) and the replica promoted.
    Sentinel,
    /// Two hosts on `lock.etcd` over 3 etcd members, the leader killed (-9) and restarted.
    Etcd,
}

impl Setup {
    /// Every setup, in the order `--setup all` runs them.
    pub const ALL: [Setup; 6] = [
        Setup::Embedded,
        Setup::Redis,
        Setup::RedisDefault,
        Setup::TwoHosts,
        Setup::Sentinel,
        Setup::Etcd,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Setup::Embedded => "embedded",
            Setup::Redis => "redis",
            Setup::RedisDefault => "redis-default",
            Setup::TwoHosts => "two-hosts",
            Setup::Sentinel => "sentinel",
            Setup::Etcd => "etcd",
        }
    }

    /// What runs and which fault is injected.
    pub fn description(self) -> &'static str {
        match self {
            Setup::Embedded => "lock.embedded; the host is killed (-9) and restarted",
            Setup::Redis => {
                "lock.redis, appendfsync always; redis-server is killed (-9) and restarted"
            }
            Setup::RedisDefault => {
                "lock.redis, Redis's default persistence (snapshots only); redis-server is killed (-9) and restarted"
            }
            Setup::TwoHosts => {
                "two hosts on one Redis (appendfsync always); one host at a time is killed (-9) and restarted"
            }
            Setup::Sentinel => {
                "lock.redis with failover: master (appendfsync always), replica, Sentinel; the master is killed (-9) and the replica promoted"
            }
            Setup::Etcd => {
                "two hosts on lock.etcd over a 3-member etcd cluster; the leader is killed (-9) and restarted"
            }
        }
    }

    /// Whether the store promises that no acknowledged lock is lost under this fault (a
    /// violation is then a bug). Redis without an append-only file does not, nor does a
    /// failover to a replica that may lag.
    pub fn promises_safety(self) -> bool {
        !matches!(self, Setup::RedisDefault | Setup::Sentinel)
    }
}

/// How to run a setup.
#[derive(Debug, Clone)]
pub struct Params {
    /// The `wasilock` binary.
    pub program: PathBuf,
    /// How long the clients run.
    pub duration: Duration,
    /// How many clients.
    pub clients: usize,
    /// How many resources they share.
    pub resources: usize,
    /// Seeds the clients' choices and the faults' timing.
    pub seed: u64,
}

/// A setup's history and what the checker found in it.
#[derive(Debug, Clone)]
pub struct Run {
    /// The setup.
    pub setup: Setup,
    /// Every call and fault.
    pub history: History,
    /// The checker's findings.
    pub report: Report,
}

/// Runs `setup`; `None` when it needs `redis-server` or etcd and that is not installed
/// (which [`RedisServer`] and [`EtcdCluster`] turn into a failure under `CI=true`).
pub fn run(setup: Setup, params: &Params) -> Option<Run> {
    let history = match setup {
        Setup::Embedded => embedded(params),
        Setup::Redis => one_host_on_redis(params, &REDIS_FSYNC_ALWAYS)?,
        Setup::RedisDefault => one_host_on_redis(params, &["--save", REDIS_DEFAULT_SAVE])?,
        Setup::TwoHosts => two_hosts(params)?,
        Setup::Sentinel => sentinel(params)?,
        Setup::Etcd => etcd(params)?,
    };
    let report = check(&history);
    Some(Run {
        setup,
        history,
        report,
    })
}

fn host_options(params: &Params) -> Options {
    Options::new()
        .program(&params.program)
        .log_level("warn")
        .args(["--app-id", "lockcheck"])
}

fn workload(params: &Params, targets: Vec<String>) -> Workload {
    Workload {
        targets,
        store: "lockstore".into(),
        clients: params.clients,
        resources: params.resources,
        duration: params.duration,
        seed: params.seed,
    }
}

/// A resources directory with the store `lockstore` of type `lock.redis`.
fn redis_store(metadata: &[(&str, &str)]) -> tempfile::TempDir {
    let yaml = component("lockstore", "lock.redis", metadata);
    resources(&[("lockstore.yaml", &yaml)])
}

fn host_on(params: &Params, store: &tempfile::TempDir) -> Host {
    let path = store.path().to_str().expect("a UTF-8 path");
    Host::start_with(host_options(params).args(["--resources-path", path]))
}

/// Two hosts on the resources in `store`, and the clients spread over them.
fn two_hosts_on(params: &Params, store: &tempfile::TempDir) -> ([Host; 2], Workload) {
    let hosts = [(); 2].map(|_| host_on(params, store));
    let targets = hosts.iter().map(|h| h.base.clone()).collect();
    let workload = workload(params, targets);
    (hosts, workload)
}

fn embedded(params: &Params) -> History {
    let data = tempfile::tempdir().expect("a data directory");
    let mut host = Host::start_with(host_options(params).data_dir(data.path()));
    let workload = workload(params, vec![host.base.clone()]);
    with_faults(&workload, Instant::now(), RESTART_EVERY_MS, |_| {
        host.kill9_and_restart();
        "kill -9 and restart of the host".into()
    })
}

fn one_host_on_redis(params: &Params, redis_args: &[&str]) -> Option<History> {
    let mut redis = RedisServer::start_with(redis_args)?;
    let store = redis_store(&[("redisHost", &redis.address())]);
    let host = host_on(params, &store);
    let workload = workload(params, vec![host.base.clone()]);
    Some(with_faults(
        &workload,
        Instant::now(),
        RESTART_EVERY_MS,
        |_| {
            redis.restart();
            "kill -9 and restart of redis-server".into()
        },
    ))
}

fn two_hosts(params: &Params) -> Option<History> {
    let redis = RedisServer::start_with(&REDIS_FSYNC_ALWAYS)?;
    let store = redis_store(&[("redisHost", &redis.address())]);
    let (mut hosts, workload) = two_hosts_on(params, &store);
    Some(with_faults(
        &workload,
        Instant::now(),
        RESTART_EVERY_MS,
        |n| {
            hosts[n % 2].kill9_and_restart();
            format!("kill -9 and restart of host {}", n % 2 + 1)
        },
    ))
}

fn sentinel(params: &Params) -> Option<History> {
    let master = RedisServer::start_with(&REDIS_FSYNC_ALWAYS)?;
    let replica = RedisServer::start_replica_of(&master)?;
    wait_until("the replica has synchronised", || {
        query(&replica.address(), &["INFO", "replication"])
            .is_ok_and(|info| info.contains("master_link_status:up"))
    });
    let sentinel = RedisSentinel::start(MASTER_NAME, &master);
    let watcher = sentinel.address();
    wait_until("the Sentinel knows the replica", || {
        query(&watcher, &["SENTINEL", "replicas", MASTER_NAME])
            .is_ok_and(|replicas| replicas.contains(&replica.port.to_string()))
    });
    let store = redis_store(&[
        ("redisHost", &watcher),
        ("failover", "true"),
        ("sentinelMasterName", MASTER_NAME),
    ]);
    let host = host_on(params, &store);
    let workload = workload(params, vec![host.base.clone()]);
    let mut servers = [master, replica];
    let origin = Instant::now();
    let events = SentinelEvents::follow(&watcher, origin).expect("follow the Sentinel's events");
    let mut history = with_faults(&workload, origin, FAILOVER_EVERY_MS, |_| {
        let Some(old) = master_port(&watcher, MASTER_NAME) else {
            return "no failover: the Sentinel names no master".into();
        };
        let Some(dead) = servers.iter_mut().find(|s| s.port == old) else {
            return format!("no failover: the Sentinel names port {old}, not ours");
        };
        dead.stop();
        let deadline = Instant::now() + FAILOVER_BOUND;
        let promoted = loop {
            match master_port(&watcher, MASTER_NAME) {
                Some(port) if port != old => break Some(port),
                _ if Instant::now() > deadline => break None,
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        dead.restart();
        match promoted {
            Some(port) => {
                format!("kill -9 of master {old}, replica {port} promoted, {old} restarted")
            }
            None => format!("kill -9 of master {old}, no failover within {FAILOVER_BOUND:?}"),
        }
    });
    history.notes = events.stop();
    Some(history)
}

fn etcd(params: &Params) -> Option<History> {
    let mut cluster = EtcdCluster::start()?;
    let yaml = component(
        "lockstore",
        "lock.etcd",
        &[("endpoints", &cluster.endpoints())],
    );
    let store = resources(&[("lockstore.yaml", &yaml)]);
    let (_hosts, workload) = two_hosts_on(params, &store);
    Some(with_faults(
        &workload,
        Instant::now(),
        RESTART_EVERY_MS,
        |_| {
            let leader = cluster.leader();
            cluster.kill(leader);
            let next = cluster.leader();
            cluster.restart(leader);
            format!("kill -9 of leader m{leader}, m{next} elected, m{leader} restarted")
        },
    ))
}

/// Waits up to 15 s for `done`.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within 15 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `workload` from `origin` (now) while `fault(n)` injects the `n`th fault, the first 2
/// to 4 s into the run and the next ones `every` milliseconds after the previous one began (at least half a
/// second after it ended, none in the last half second); each says what it did, and
/// returns once the system is whole again.
fn with_faults(
    workload: &Workload,
    origin: Instant,
    every: RangeInclusive<u64>,
    mut fault: impl FnMut(usize) -> String,
) -> History {
    let mut rng = fastrand::Rng::with_seed(workload.seed);
    let deadline = origin + workload.duration;
    std::thread::scope(|scope| {
        let clients = scope.spawn(|| workload::run(workload, origin));
        let mut faults: Vec<Fault> = Vec::new();
        loop {
            let wait = match faults.last() {
                None => rng.u64(RESTART_EVERY_MS),
                Some(_) => rng.u64(every.clone()),
            };
            let after = faults.last().map_or(origin, |f| origin + f.at);
            let next = (after + Duration::from_millis(wait)).max(Instant::now() + MIN_CALM);
            if next + QUIET_END >= deadline {
                break;
            }
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
            let at = origin.elapsed();
            let what = fault(faults.len());
            let ended = origin.elapsed();
            faults.push(Fault { at, ended, what });
        }
        let ops = clients.join().expect("the clients panicked");
        History {
            ops,
            faults,
            notes: Vec::new(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::Setup;
    use clap::ValueEnum;

    #[test]
    fn the_command_line_names_each_setup_by_its_name() {
        assert_eq!(Setup::value_variants(), Setup::ALL);
        for setup in Setup::ALL {
            assert_eq!(setup.to_possible_value().unwrap().get_name(), setup.name());
        }
    }
}
