//! `wasilock-lockcheck`: runs the fault setups and prints, per setup, the operations
//! checked, the acknowledged locks, the unknown outcomes and every violation with its
//! evidence. Exits with 1 when a setup whose store promises safety shows a violation, or a
//! setup could not run.

use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use wasilock_lockcheck::report::text;
use wasilock_lockcheck::setups::{self, Params, Setup};
use wasilock_testkit::host::build_binary;

/// Which setups to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Choice {
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
    /// Every setup above, one after the other.
    All,
}

/// Random lease workloads against wasilock under faults; the histories are checked for
/// lock-safety violations.
#[derive(Debug, Parser)]
#[command(name = "wasilock-lockcheck")]
struct Cli {
    /// The setup to run.
    #[arg(long, value_enum, default_value = "all")]
    setup: Choice,
    /// How long the clients run per setup (`60s`, `2m`).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// How many clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// How many resources the clients share.
    #[arg(long, default_value_t = 3)]
    resources: usize,
    /// Seeds the clients' choices and the faults' timing; random when not given.
    #[arg(long)]
    seed: Option<u64>,
    /// The `wasilock` binary; built with cargo when not given.
    #[arg(long)]
    wasilock: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let program = match cli.wasilock.clone().map_or_else(build_binary, Ok) {
        Ok(program) => program,
        Err(e) => {
            eprintln!("wasilock-lockcheck: {e}");
            return ExitCode::FAILURE;
        }
    };
    let seed = cli.seed.unwrap_or_else(|| fastrand::u64(..));
    let params = Params {
        program,
        duration: cli.duration,
        clients: cli.clients,
        resources: cli.resources,
        seed,
    };
    let chosen: Vec<Setup> = match cli.setup {
        Choice::Embedded => vec![Setup::Embedded],
        Choice::Redis => vec![Setup::Redis],
        Choice::RedisDefault => vec![Setup::RedisDefault],
        Choice::TwoHosts => vec![Setup::TwoHosts],
        Choice::Sentinel => vec![Setup::Sentinel],
        Choice::Etcd => vec![Setup::Etcd],
        Choice::All => Setup::ALL.to_vec(),
    };
    println!(
        "seed {seed}, {} clients, {} resources, {:?} per setup",
        cli.clients, cli.resources, cli.duration
    );
    let mut ok = true;
    for setup in chosen {
        match setups::run(setup, &params) {
            Some(run) => {
                println!("{}", text(&run));
                ok &= !setup.promises_safety() || run.report.violations.is_empty();
            }
            None => {
                println!(
                    "== {}: not run (redis-server or etcd is missing) ==\n",
                    setup.name()
                );
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
