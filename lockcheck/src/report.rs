//! A run's figures and findings as text: one block per setup.

use crate::checker::{Report, Rule};
use crate::history::{Call, Fault, Outcome, at};
use crate::setups::Run;
use std::fmt::Write;

/// How many violations are printed with their evidence; the rest are counted.
const SHOWN: usize = 20;

/// A run's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figures {
    /// Calls checked.
    pub operations: usize,
    /// Lock calls answered `true`.
    pub acknowledged: usize,
    /// Calls whose outcome is unknown.
    pub unknown: usize,
    /// Calls that certainly failed (host or store down).
    pub failed: usize,
    /// Faults injected.
    pub faults: usize,
    /// Acknowledged locks certainly held when a fault began.
    pub held_across_faults: usize,
    /// Safety violations.
    pub violations: usize,
    /// Locks refused although free.
    pub oddities: usize,
}

impl Figures {
    /// The figures of `run`.
    pub fn of(run: &Run) -> Self {
        let failed = run
            .history
            .ops
            .iter()
            .filter(|op| match &op.call {
                Call::Lock { outcome, .. } => matches!(outcome, Outcome::Failed(_)),
                Call::Unlock { outcome } => matches!(outcome, Outcome::Failed(_)),
            })
            .count();
        Figures {
            operations: run.history.ops.len(),
            acknowledged: run.history.acknowledged(),
            unknown: run.history.unknown(),
            failed,
            faults: run.history.faults.len(),
            held_across_faults: run.report.held_across_faults,
            violations: run.report.violations.len(),
            oddities: run.report.oddities.len(),
        }
    }
}

/// The block printed for `run`: its figures, then each violation with its evidence.
pub fn text(run: &Run) -> String {
    let f = Figures::of(run);
    let mut out = format!(
        "== {}: {} ==\noperations {}, acknowledged locks {}, unknown outcomes {}, failed calls {}\nfaults {}, locks certainly held across a fault {}\nviolations {}{}, liveness oddities {}\n",
        run.setup.name(),
        run.setup.description(),
        f.operations,
        f.acknowledged,
        f.unknown,
        f.failed,
        f.faults,
        f.held_across_faults,
        f.violations,
        by_rule(&run.report),
        f.oddities,
    );
    let mut kinds: Vec<(&str, Vec<&Fault>)> = Vec::new();
    for fault in &run.history.faults {
        match kinds.iter_mut().find(|(what, _)| *what == fault.what) {
            Some((_, all)) => all.push(fault),
            None => kinds.push((&fault.what, vec![fault])),
        }
    }
    for (what, all) in kinds {
        let took = |f: &&Fault| (f.ended - f.at).as_secs_f64();
        let least = all.iter().map(took).fold(f64::MAX, f64::min);
        let most = all.iter().map(took).fold(0.0, f64::max);
        let _ = writeln!(
            out,
            "  {} x {what}, first at {}, whole again after {least:.2} to {most:.2} s",
            all.len(),
            at(all[0].at)
        );
    }
    for note in &run.history.notes {
        let _ = writeln!(out, "  {}: {}", at(note.at), note.what);
    }
    for violation in run.report.violations.iter().take(SHOWN) {
        let _ = writeln!(out, "- {:?}: {}", violation.rule, violation.summary);
        for line in &violation.evidence {
            let _ = writeln!(out, "    {line}");
        }
        let faults = run.history.faults.iter();
        if let Some(fault) = faults.rev().find(|fault| fault.at <= violation.at) {
            let _ = writeln!(
                out,
                "    last fault before: {} at {}",
                fault.what,
                at(fault.at)
            );
        }
    }
    if run.report.violations.len() > SHOWN {
        let _ = writeln!(out, "- and {} more", run.report.violations.len() - SHOWN);
    }
    for oddity in run.report.oddities.iter().take(SHOWN) {
        let _ = writeln!(out, "- oddity: {oddity}");
    }
    out
}

/// ` (TwoHolders 3, LostLock 1)`: the violations per rule, or nothing when there are none.
fn by_rule(report: &Report) -> String {
    let counts: Vec<String> = Rule::ALL
        .iter()
        .map(|rule| (rule, report.count(*rule)))
        .filter(|(_, n)| *n > 0)
        .map(|(rule, n)| format!("{rule:?} {n}"))
        .collect();
    if counts.is_empty() {
        String::new()
    } else {
        format!(" ({})", counts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::check;
    use crate::history::{History, Op};
    use crate::setups::Setup;
    use std::time::Duration;

    #[test]
    fn a_block_gives_the_figures_the_faults_by_kind_and_each_violation() {
        let ms = Duration::from_millis;
        let fault = |at: u64, ended: u64| Fault {
            at: ms(at),
            ended: ms(ended),
            what: "kill -9 and restart of the host".into(),
        };
        let history = History {
            ops: vec![
                Op::lock("r", "a", ms(3000), (ms(0), ms(10)), Outcome::Ok(true)),
                Op::lock("r", "b", ms(3000), (ms(500), ms(510)), Outcome::Ok(true)),
                Op::lock("r", "c", ms(3000), (ms(600), ms(610)), Outcome::Ok(false)),
                Op::unlock(
                    "r",
                    "c",
                    (ms(700), ms(710)),
                    Outcome::Unknown("reset".into()),
                ),
            ],
            faults: vec![fault(100, 300), fault(2000, 2500)],
            notes: vec![],
        };
        let report = check(&history);
        let run = Run {
            setup: Setup::Embedded,
            history,
            report,
        };
        let text = text(&run);
        assert!(
            text.contains("operations 4, acknowledged locks 2, unknown outcomes 1, failed calls 0"),
            "{text}"
        );
        assert!(
            text.contains("faults 2, locks certainly held across a fault 2"),
            "{text}"
        );
        assert!(
            text.contains("violations 1 (TwoHolders 1), liveness oddities 0"),
            "{text}"
        );
        assert!(
            text.contains("2 x kill -9 and restart of the host, first at 0.100s, whole again after 0.20 to 0.50 s"),
            "{text}"
        );
        assert!(
            text.contains("last fault before: kill -9 and restart of the host at 0.100s"),
            "{text}"
        );
        assert_eq!(Figures::of(&run).violations, 1);
    }
}
