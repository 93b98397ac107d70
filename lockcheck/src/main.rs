//! `wasilock-lockcheck`: runs the fault setups and prints, per setup, the operations
//! checked, the acknowledged locks, the unknown outcomes and every violation with its
//! evidence. Exits with 1 when a setup whose store promises safety shows a violation, or a
//! setup could not run.

use clap::builder::PossibleValue;
use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::LazyLock;
use std::time::Duration;
use wasilock_lockcheck::report::text;
use wasilock_lockcheck::setups::{self, Params, Setup};
use wasilock_testkit::host::build_binary;

/// Which setups to run: one, or all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Choice {
    /// One setup, by its name.
    One(Setup),
    /// Every setup, one after the other.
    All,
}

/// The values of `--setup`: every setup's name, then `all`.
static CHOICES: LazyLock<Vec<Choice>> = LazyLock::new(|| {
    Setup::ALL
        .map(Choice::One)
        .into_iter()
        .chain([Choice::All])
        .collect()
});

impl ValueEnum for Choice {
    fn value_variants<'a>() -> &'a [Self] {
        &CHOICES
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        match self {
            Choice::One(setup) => setup.to_possible_value(),
            Choice::All => {
                Some(PossibleValue::new("all").help("Every setup above, one after the other"))
            }
        }
    }
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
    let chosen = match cli.setup {
        Choice::One(setup) => vec![setup],
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
