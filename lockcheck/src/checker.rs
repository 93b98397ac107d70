//! Checks a [`History`] for lock-safety violations. Pure: no I/O, no clock.
//!
//! # What a lock is known to do
//!
//! A lock call invoked at `i` and completed at `c` took effect, if at all, at one instant in
//! `[i, c]`; the store stamps its lease `e` (`expiryInSeconds`) at that instant. So a lock
//! answered `true`
//!
//! - is **certainly held** during `[c, i + e − τ)`, cut at the invocation of the owner's
//!   first unlock of the resource that may have released it (answered 0, or unknown) and
//!   that may have run after the lock (it completed after `i`);
//! - **may be live** during `[i, c + e + τ)`, cut at the completion of the owner's first
//!   unlock of the resource answered 0 that was invoked after `c`.
//!
//! A lock whose outcome is unknown may be live the same way, but is never certainly held. A
//! call that certainly failed (refused connection, 4xx) did nothing. An unknown outcome is
//! assumed to take effect before the completion its client recorded (connection errors end
//! with the server's side of the call; the client's timeout outlasts the host's store
//! timeouts).
//!
//! `τ` ([`TOLERANCE`], 5 ms) absorbs the store's clock: leases end on a millisecond clock
//! (up to 1 ms early by truncation), and the host's wall clock may run slower or faster
//! than the clients' monotonic clock while NTP slews it (at most 500 ppm, 1.5 ms over a
//! 3 s lease). Only overlaps beyond it count.
//!
//! # Rules (violations)
//!
//! 1. **Two holders**: two acknowledged locks of one resource are certainly held at one
//!    instant; or a lock is acknowledged although another lock of the resource is certainly
//!    held during the whole call. After a crash or restart this is how a lost lock shows:
//!    another owner acquires it while it is certainly held.
//! 2. **Unlock without lock**: an unlock answered 0 although no lock of its owner may be
//!    live at any instant of the call, or another owner's lock is certainly held during the
//!    whole call.
//! 3. **Lost lock**: an unlock answered 1 (no such lock) although some lock of the resource
//!    is certainly held during the whole call, or answered 2 (held by another owner)
//!    although the owner's own lock is certainly held during the whole call.
//! 4. **Unexplained answer**: an unlock answered 2 although no other owner's lock may be
//!    live at any instant of the call; or an unlock status other than 0, 1, 2 and (alpha2)
//!    [`NOT_HELD`]. An alpha2 release answered `NOT_HELD` is a **lost lock** (rule 3) when
//!    the owner's own lock is certainly held during the whole call.
//! 5. **Stale token**: an acknowledged grant whose fencing token is not above the token of
//!    every grant of the resource acknowledged before it was invoked (alpha2 grants carry
//!    tokens; per resource they must only grow, across crashes and hosts).
//!
//! # Oddities (liveness, not safety)
//!
//! A lock answered `false` although no lock of the resource may be live at any instant of
//! the call is reported apart: refusing a free lock is safe, but not what Dapr promises.

use crate::history::{Call, History, NOT_HELD, Op, Outcome, at};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// How much the store's lease clock may be off against the clients' clock (see the module
/// docs).
pub const TOLERANCE: Duration = Duration::from_millis(5);

/// The rule a violation breaks (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Two owners held one resource at one instant.
    TwoHolders,
    /// An unlock succeeded for an owner that held nothing.
    UnlockWithoutLock,
    /// The store denied a lock that was certainly held.
    LostLock,
    /// An unlock answer no state of the store explains.
    UnexplainedAnswer,
    /// A grant's fencing token did not grow past an earlier grant's.
    StaleToken,
}

/// One violation and its evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule it breaks.
    pub rule: Rule,
    /// When it shows: the start of an overlap, or the invocation of the call in question.
    pub at: Duration,
    /// What went wrong, in one sentence.
    pub summary: String,
    /// The calls involved, one line each.
    pub evidence: Vec<String>,
}

/// What [`check`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Safety violations.
    pub violations: Vec<Violation>,
    /// Locks refused although free (liveness, not safety), one line each.
    pub oddities: Vec<String>,
    /// Acknowledged locks certainly held when a fault began: the ones a crash must keep.
    pub held_across_faults: usize,
}

impl Rule {
    /// Every rule, in the order of the module docs.
    pub const ALL: [Rule; 5] = [
        Rule::TwoHolders,
        Rule::UnlockWithoutLock,
        Rule::LostLock,
        Rule::UnexplainedAnswer,
        Rule::StaleToken,
    ];
}

impl Report {
    /// How many violations break `rule`.
    pub fn count(&self, rule: Rule) -> usize {
        self.violations.iter().filter(|v| v.rule == rule).count()
    }
}

/// A half-open interval of run time.
type Span = (Duration, Duration);

/// A lock that may have been taken, with what is known about when it was held.
struct Lease<'a> {
    op: &'a Op,
    /// When it is certainly held: acknowledged locks only, `None` when empty.
    certain: Option<Span>,
    /// When it may be live.
    possible: Span,
}

impl Lease<'_> {
    fn certainly_held_during(&self, from: Duration, to: Duration) -> bool {
        self.certain.is_some_and(|(s, e)| s <= from && e > to)
    }

    fn may_be_live_during(&self, from: Duration, to: Duration) -> bool {
        self.possible.0 <= to && self.possible.1 > from
    }

    fn describe(&self) -> String {
        let certain = match self.certain {
            Some((s, e)) => format!("certainly held [{}, {})", at(s), at(e)),
            None => "never certainly held".into(),
        };
        format!("{}; {certain}", self.op)
    }
}

/// The calls on one resource.
struct Resource<'a> {
    /// Sorted by invocation.
    leases: Vec<Lease<'a>>,
    /// The longest time from a lease's invocation to the end of its possible life.
    span: Duration,
}

impl<'a> Resource<'a> {
    fn new(ops: &[&'a Op]) -> Self {
        let mut unlocks: BTreeMap<&str, Vec<(&'a Op, &'a Outcome<i64>)>> = BTreeMap::new();
        for op in ops {
            if let Call::Unlock { outcome } = &op.call {
                unlocks.entry(&op.owner).or_default().push((op, outcome));
            }
        }
        let mut leases: Vec<Lease> = ops
            .iter()
            .filter_map(|op| {
                let Call::Lock { expiry, outcome } = &op.call else {
                    return None;
                };
                let acknowledged = match outcome {
                    Outcome::Ok(true) => true,
                    Outcome::Unknown(_) => false,
                    Outcome::Ok(false) | Outcome::Failed(_) => return None,
                };
                let own = unlocks
                    .get(op.owner.as_str())
                    .map_or(&[][..], Vec::as_slice);
                Some(lease(op, *expiry, acknowledged, own))
            })
            .collect();
        leases.sort_by_key(|l| l.op.invoked);
        let span = leases
            .iter()
            .map(|l| l.possible.1.saturating_sub(l.op.invoked))
            .max()
            .unwrap_or_default();
        Resource { leases, span }
    }

    /// The leases that may overlap `[from, to]`: invoked in `[from - span, to]`.
    fn near(&self, from: Duration, to: Duration) -> &[Lease<'a>] {
        let first = self
            .leases
            .partition_point(|l| l.op.invoked < from.saturating_sub(self.span));
        let last = self.leases.partition_point(|l| l.op.invoked <= to);
        &self.leases[first..last.max(first)]
    }
}

/// The lease of `op` given its owner's unlocks of the resource.
fn lease<'a>(
    op: &'a Op,
    expiry: Duration,
    acknowledged: bool,
    unlocks: &[(&Op, &Outcome<i64>)],
) -> Lease<'a> {
    let (i, c) = (op.invoked, op.completed);
    let mut possible_end = c + expiry + TOLERANCE;
    let mut certain_end = (i + expiry).saturating_sub(TOLERANCE);
    for (unlock, outcome) in unlocks {
        let may_release = matches!(outcome, Outcome::Ok(0) | Outcome::Unknown(_));
        if acknowledged && may_release && unlock.completed > i {
            certain_end = certain_end.min(unlock.invoked);
        }
        if acknowledged && matches!(outcome, Outcome::Ok(0)) && unlock.invoked >= c {
            possible_end = possible_end.min(unlock.completed);
        }
    }
    Lease {
        op,
        certain: (acknowledged && certain_end > c).then_some((c, certain_end)),
        possible: (i, possible_end),
    }
}

/// Checks `history` against the rules of the module docs.
pub fn check(history: &History) -> Report {
    let mut by_resource: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in &history.ops {
        by_resource.entry(&op.resource).or_default().push(op);
    }
    let mut report = Report::default();
    for ops in by_resource.values() {
        let resource = Resource::new(ops);
        report.held_across_faults += resource
            .leases
            .iter()
            .filter(|l| {
                history
                    .faults
                    .iter()
                    .any(|f| l.certainly_held_during(f.at, f.at))
            })
            .count();
        check_two_holders(&resource, &mut report);
        check_tokens(ops, &mut report);
        for op in ops {
            match &op.call {
                Call::Lock {
                    outcome: Outcome::Ok(false),
                    ..
                } => check_refusal(&resource, op, &mut report),
                Call::Unlock {
                    outcome: Outcome::Ok(status),
                } => check_unlock(&resource, op, *status, &mut report),
                _ => {}
            }
        }
    }
    report
}

/// Rule 1.
fn check_two_holders(resource: &Resource, report: &mut Report) {
    let mut reported = HashSet::new();
    let mut certain: Vec<(&Lease, Span)> = resource
        .leases
        .iter()
        .filter_map(|l| Some((l, l.certain?)))
        .collect();
    certain.sort_by_key(|(_, (start, _))| *start);
    for (n, (first, (_, first_end))) in certain.iter().enumerate() {
        for (second, (second_start, second_end)) in &certain[n + 1..] {
            if second_start >= first_end {
                break;
            }
            reported.insert((first.op as *const Op, second.op as *const Op));
            let overlap = (*first_end).min(*second_end) - *second_start;
            report.violations.push(Violation {
                rule: Rule::TwoHolders,
                at: *second_start,
                summary: format!(
                    "two locks of {} are certainly held at once for {} ms from {}",
                    first.op.resource,
                    overlap.as_millis(),
                    at(*second_start)
                ),
                evidence: vec![first.describe(), second.describe()],
            });
        }
    }
    for granted in resource.leases.iter().filter(|l| l.op.acknowledged()) {
        let (i, c) = (granted.op.invoked, granted.op.completed);
        for held in resource.near(i, c) {
            let pair = (held.op as *const Op, granted.op as *const Op);
            let seen = reported.contains(&pair) || reported.contains(&(pair.1, pair.0));
            if std::ptr::eq(held.op, granted.op) || seen || !held.certainly_held_during(i, c) {
                continue;
            }
            reported.insert(pair);
            report.violations.push(Violation {
                rule: Rule::TwoHolders,
                at: i,
                summary: format!(
                    "a lock of {} was granted while another is certainly held",
                    granted.op.resource
                ),
                evidence: vec![held.describe(), granted.describe()],
            });
        }
    }
}

/// Rules 2 to 4 for an unlock answered `status`.
fn check_unlock(resource: &Resource, unlock: &Op, status: i64, report: &mut Report) {
    let (i, c) = (unlock.invoked, unlock.completed);
    let near = resource.near(i, c);
    let own = |l: &&Lease| l.op.owner == unlock.owner;
    let certain_holder = |mine: bool| {
        near.iter()
            .find(|l| own(l) == mine && l.certainly_held_during(i, c))
    };
    let mut violation = |rule, summary: &str, lease: Option<&Lease>| {
        let mut evidence = vec![unlock.to_string()];
        evidence.extend(lease.map(Lease::describe));
        report.violations.push(Violation {
            rule,
            at: i,
            summary: format!("{summary} ({})", unlock.resource),
            evidence,
        });
    };
    match status {
        0 => {
            if let Some(other) = certain_holder(false) {
                violation(
                    Rule::UnlockWithoutLock,
                    "an unlock succeeded while another owner certainly held the lock",
                    Some(other),
                );
            } else if !near.iter().filter(own).any(|l| l.may_be_live_during(i, c)) {
                violation(
                    Rule::UnlockWithoutLock,
                    "an unlock succeeded although no lock of its owner may be live",
                    None,
                );
            }
        }
        1 => {
            if let Some(holder) = certain_holder(true).or_else(|| certain_holder(false)) {
                violation(
                    Rule::LostLock,
                    "an unlock found no lock while one was certainly held",
                    Some(holder),
                );
            }
        }
        2 => {
            if let Some(mine) = certain_holder(true) {
                violation(
                    Rule::LostLock,
                    "an unlock found another owner's lock while its owner's was certainly held",
                    Some(mine),
                );
            } else if !near.iter().any(|l| !own(&l) && l.may_be_live_during(i, c)) {
                violation(
                    Rule::UnexplainedAnswer,
                    "an unlock found another owner's lock although no other owner's may be live",
                    None,
                );
            }
        }
        NOT_HELD => {
            if let Some(mine) = certain_holder(true) {
                violation(
                    Rule::LostLock,
                    "an alpha2 release found its lock not held while it was certainly held",
                    Some(mine),
                );
            }
        }
        _ => violation(
            Rule::UnexplainedAnswer,
            &format!("an unlock answered status {status}"),
            None,
        ),
    }
}

/// Rule 5 over the calls on one resource.
fn check_tokens(ops: &[&Op], report: &mut Report) {
    let mut grants: Vec<(&Op, u64)> = ops
        .iter()
        .filter(|op| op.acknowledged())
        .filter_map(|op| Some((*op, op.fencing_token?)))
        .collect();
    // By completion, with the largest token of each prefix: the grants acknowledged before
    // an instant are a prefix.
    grants.sort_by_key(|(op, _)| op.completed);
    let mut highest: Vec<(u64, &Op)> = Vec::with_capacity(grants.len());
    for (op, token) in &grants {
        let best = match highest.last() {
            Some(&(max, holder)) if max >= *token => (max, holder),
            _ => (*token, *op),
        };
        highest.push(best);
    }
    for (op, token) in &grants {
        let before = grants.partition_point(|(earlier, _)| earlier.completed < op.invoked);
        let Some(&(max, earlier)) = before.checked_sub(1).map(|n| &highest[n]) else {
            continue;
        };
        if max >= *token {
            report.violations.push(Violation {
                rule: Rule::StaleToken,
                at: op.invoked,
                summary: format!(
                    "a grant of {} has fencing token {token}, not above {max} of an earlier grant",
                    op.resource
                ),
                evidence: vec![earlier.to_string(), op.to_string()],
            });
        }
    }
}

/// The liveness oddity: a lock refused although no lock of the resource may be live.
fn check_refusal(resource: &Resource, refused: &Op, report: &mut Report) {
    let (i, c) = (refused.invoked, refused.completed);
    let explained = resource
        .near(i, c)
        .iter()
        .any(|l| !std::ptr::eq(l.op, refused) && l.may_be_live_during(i, c));
    if !explained {
        report.oddities.push(format!(
            "{refused}, although no lock of {} may be live",
            refused.resource
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Fault;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn lock(owner: &str, from: u64, to: u64, expiry: u64, outcome: Outcome<bool>) -> Op {
        Op::lock("r", owner, secs(expiry), (ms(from), ms(to)), outcome)
    }

    fn unlock(owner: &str, from: u64, to: u64, outcome: Outcome<i64>) -> Op {
        Op::unlock("r", owner, (ms(from), ms(to)), outcome)
    }

    fn unknown<T>() -> Outcome<T> {
        Outcome::Unknown("connection reset".into())
    }

    fn check_ops(ops: Vec<Op>) -> Report {
        check(&History {
            ops,
            ..History::default()
        })
    }

    fn rules(report: &Report) -> Vec<Rule> {
        report.violations.iter().map(|v| v.rule).collect()
    }

    fn granted(owner: &str, from: u64, to: u64, token: u64) -> Op {
        Op {
            fencing_token: Some(token),
            ..lock(owner, from, to, 1, Outcome::Ok(true))
        }
    }

    #[test]
    fn tokens_growing_in_grant_order_are_clean() {
        let report = check_ops(vec![
            granted("a", 0, 10, 1),
            unlock("a", 20, 30, Outcome::Ok(0)),
            granted("b", 40, 50, 2),
            unlock("b", 60, 70, Outcome::Ok(0)),
            // Overlapping calls may be granted in either order: no order is known.
            granted("c", 100, 300, 4),
            unlock("c", 310, 320, Outcome::Ok(0)),
            granted("d", 200, 400, 3),
        ]);
        assert_eq!(rules(&report), []);
    }

    #[test]
    fn a_token_not_above_an_earlier_grant_is_stale() {
        let report = check_ops(vec![
            granted("a", 0, 10, 5),
            unlock("a", 20, 30, Outcome::Ok(0)),
            granted("b", 40, 50, 5),
            unlock("b", 60, 70, Outcome::Ok(0)),
            granted("c", 80, 90, 3),
        ]);
        assert_eq!(rules(&report), [Rule::StaleToken, Rule::StaleToken]);
        assert!(
            report.violations[1]
                .summary
                .contains("token 3, not above 5")
        );
        assert!(report.violations[1].evidence[0].contains("fencing token 5"));
    }

    #[test]
    fn an_alpha2_release_not_held_is_lost_only_while_certainly_held() {
        let report = check_ops(vec![
            lock("a", 0, 10, 2, Outcome::Ok(true)),
            unlock("a", 500, 510, Outcome::Ok(NOT_HELD)),
            lock("b", 3000, 3010, 2, Outcome::Ok(true)),
            unlock("a", 3500, 3510, Outcome::Ok(NOT_HELD)),
        ]);
        assert_eq!(rules(&report), [Rule::LostLock]);
        assert_eq!(report.violations[0].at, ms(500));
    }

    #[test]
    fn a_release_then_a_new_owner_is_clean() {
        let report = check_ops(vec![
            lock("a", 0, 10, 2, Outcome::Ok(true)),
            unlock("a", 500, 510, Outcome::Ok(0)),
            lock("b", 600, 610, 2, Outcome::Ok(true)),
            unlock("b", 1000, 1010, Outcome::Ok(0)),
        ]);
        assert_eq!(report, Report::default());
    }

    #[test]
    fn a_second_owner_inside_a_certainly_held_lease_is_two_holders() {
        let report = check_ops(vec![
            lock("a", 0, 10, 2, Outcome::Ok(true)),
            lock("b", 1000, 1010, 2, Outcome::Ok(true)),
        ]);
        assert_eq!(rules(&report), [Rule::TwoHolders]);
        assert!(
            report.violations[0].summary.contains("985 ms"),
            "{report:?}"
        );
        assert!(report.violations[0].evidence[0].contains("by a"));
        assert!(report.violations[0].evidence[1].contains("by b"));
    }

    #[test]
    fn a_lock_lost_in_a_crash_shows_as_two_holders() {
        // `a` holds a 3 s lease; the store restarts at 1 s and forgets it; `b` gets it.
        let history = History {
            ops: vec![
                lock("a", 0, 10, 3, Outcome::Ok(true)),
                lock("b", 1500, 1600, 1, Outcome::Ok(true)),
            ],
            faults: vec![Fault {
                at: secs(1),
                ended: ms(1100),
                what: "kill -9 and restart".into(),
            }],
            notes: vec![],
        };
        let report = check(&history);
        assert_eq!(rules(&report), [Rule::TwoHolders]);
        assert_eq!(
            report.held_across_faults, 1,
            "a's lease spans the fault, b's does not"
        );
    }

    #[test]
    fn taking_over_when_the_lease_ends_is_clean_within_the_tolerance() {
        // a's lease began at the earliest at 0 ms, so it ended at the earliest at 1000 ms.
        for (from, to) in [(996, 998), (990, 995), (1000, 1002)] {
            let report = check_ops(vec![
                lock("a", 0, 10, 1, Outcome::Ok(true)),
                lock("b", from, to, 1, Outcome::Ok(true)),
            ]);
            assert_eq!(report, Report::default(), "b at [{from}, {to}]");
        }
    }

    #[test]
    fn taking_over_before_the_lease_can_have_ended_is_two_holders() {
        let report = check_ops(vec![
            lock("a", 0, 10, 1, Outcome::Ok(true)),
            lock("b", 900, 990, 1, Outcome::Ok(true)),
        ]);
        assert_eq!(rules(&report), [Rule::TwoHolders]);
        assert!(report.violations[0].summary.contains("5 ms"), "{report:?}");
    }

    #[test]
    fn a_grant_inside_a_certainly_held_lease_is_two_holders_even_if_released_at_once() {
        // b's own unlock (unknown) leaves it no certainly-held interval: only the whole
        // call inside a's interval shows the double grant.
        let report = check_ops(vec![
            lock("a", 0, 10, 3, Outcome::Ok(true)),
            lock("b", 900, 990, 3, Outcome::Ok(true)),
            unlock("b", 990, 1000, unknown()),
        ]);
        assert_eq!(rules(&report), [Rule::TwoHolders]);
        assert!(report.violations[0].summary.contains("granted while"));
    }

    #[test]
    fn an_unknown_lock_is_never_certainly_held() {
        let report = check_ops(vec![
            lock("a", 0, 10, 3, unknown()),
            lock("b", 500, 510, 3, Outcome::Ok(true)),
        ]);
        assert_eq!(report, Report::default());
    }

    #[test]
    fn an_unknown_unlock_may_have_released() {
        let report = check_ops(vec![
            lock("a", 0, 10, 3, Outcome::Ok(true)),
            unlock("a", 300, 310, unknown()),
            lock("b", 500, 510, 3, Outcome::Ok(true)),
        ]);
        assert_eq!(report, Report::default());
    }

    #[test]
    fn a_definitely_failed_unlock_releases_nothing() {
        let report = check_ops(vec![
            lock("a", 0, 10, 3, Outcome::Ok(true)),
            unlock("a", 300, 310, Outcome::Failed("connection refused".into())),
            lock("b", 500, 510, 3, Outcome::Ok(true)),
        ]);
        assert_eq!(rules(&report), [Rule::TwoHolders]);
    }

    #[test]
    fn an_unlock_may_succeed_only_while_its_owners_lock_may_be_live() {
        // Nobody called b's lock.
        let report = check_ops(vec![unlock("b", 500, 510, Outcome::Ok(0))]);
        assert_eq!(rules(&report), [Rule::UnlockWithoutLock]);
        // a's lease ended long before.
        let report = check_ops(vec![
            lock("a", 0, 10, 1, Outcome::Ok(true)),
            unlock("a", 2000, 2010, Outcome::Ok(0)),
        ]);
        assert_eq!(rules(&report), [Rule::UnlockWithoutLock]);
        // Released twice.
        let report = check_ops(vec![
            lock("a", 0, 10, 3, Outcome::Ok(true)),
            unlock("a", 500, 510, Outcome::Ok(0)),
            unlock("a", 700, 710, Outcome::Ok(0)),
        ]);
        assert_eq!(rules(&report), [Rule::UnlockWithoutLock]);
        // An unknown lock explains it.
        let report = check_ops(vec![
            lock("a", 0, 10, 3, unknown()),
            unlock("a", 500, 510, Outcome::Ok(0)),
        ]);
        assert_eq!(report, Report::default());
    }

    #[test]
    fn an_unlock_may_not_succeed_while_another_owner_certainly_holds() {
        let report = check_ops(vec![
            lock("a", 0, 10, 3, unknown()),
            lock("b", 100, 110, 3, Outcome::Ok(true)),
            unlock("a", 1000, 1010, Outcome::Ok(0)),
        ]);
        assert_eq!(rules(&report), [Rule::UnlockWithoutLock]);
        assert!(report.violations[0].evidence[1].contains("by b"));
    }

    #[test]
    fn no_such_lock_while_one_is_certainly_held_is_a_lost_lock() {
        // The owner's own lease, forgotten by a restart.
        let report = check_ops(vec![
            lock("a", 0, 10, 3, Outcome::Ok(true)),
            unlock("a", 1000, 1010, Outcome::Ok(1)),
        ]);
        assert_eq!(rules(&report), [Rule::LostLock]);
        // Someone else's.
        let report = check_ops(vec![
            lock("a", 0, 10, 3, Outcome::Ok(true)),
            unlock("b", 1000, 1010, Outcome::Ok(1)),
        ]);
        assert_eq!(rules(&report), [Rule::LostLock]);
        // After the lease, it is the right answer.
        let report = check_ops(vec![
            lock("a", 0, 10, 1, Outcome::Ok(true)),
            unlock("a", 1500, 1510, Outcome::Ok(1)),
        ]);
        assert_eq!(report, Report::default());
    }

    #[test]
    fn held_by_another_owner_must_be_possible() {
        // a's lease ended, b took the lock: right.
        let report = check_ops(vec![
            lock("a", 0, 10, 1, Outcome::Ok(true)),
            lock("b", 1100, 1110, 3, Outcome::Ok(true)),
            unlock("a", 1500, 1510, Outcome::Ok(2)),
        ]);
        assert_eq!(report, Report::default());
        // Nobody else may hold it.
        let report = check_ops(vec![
            lock("a", 0, 10, 1, Outcome::Ok(true)),
            unlock("a", 1500, 1510, Outcome::Ok(2)),
        ]);
        assert_eq!(rules(&report), [Rule::UnexplainedAnswer]);
        // a certainly still holds it.
        let report = check_ops(vec![
            lock("a", 0, 10, 3, Outcome::Ok(true)),
            lock("b", 100, 110, 3, unknown()),
            unlock("a", 1500, 1510, Outcome::Ok(2)),
        ]);
        assert_eq!(rules(&report), [Rule::LostLock]);
    }

    #[test]
    fn an_unknown_unlock_status_is_unexplained() {
        let report = check_ops(vec![
            lock("a", 0, 10, 3, Outcome::Ok(true)),
            unlock("a", 500, 510, Outcome::Ok(3)),
        ]);
        assert_eq!(rules(&report), [Rule::UnexplainedAnswer]);
    }

    #[test]
    fn a_refused_free_lock_is_an_oddity_not_a_violation() {
        let report = check_ops(vec![
            lock("a", 0, 10, 1, Outcome::Ok(true)),
            unlock("a", 200, 210, Outcome::Ok(0)),
            lock("b", 500, 510, 1, Outcome::Ok(false)),
        ]);
        assert!(report.violations.is_empty());
        assert_eq!(report.oddities.len(), 1);
        assert!(report.oddities[0].contains("by b"), "{:?}", report.oddities);
        // While a lock may be live (here: unknown), a refusal is explained.
        let report = check_ops(vec![
            lock("a", 0, 10, 1, unknown()),
            lock("b", 500, 510, 1, Outcome::Ok(false)),
        ]);
        assert_eq!(report, Report::default());
    }

    #[test]
    fn resources_are_checked_apart() {
        let report = check(&History {
            ops: vec![
                Op::lock("r", "a", secs(3), (ms(0), ms(10)), Outcome::Ok(true)),
                Op::lock("s", "b", secs(3), (ms(100), ms(110)), Outcome::Ok(true)),
            ],
            ..History::default()
        });
        assert_eq!(report, Report::default());
    }

    #[test]
    fn every_overlapping_pair_is_reported_once() {
        let report = check_ops(vec![
            lock("a", 0, 10, 3, Outcome::Ok(true)),
            lock("b", 100, 110, 3, Outcome::Ok(true)),
            lock("c", 200, 210, 3, Outcome::Ok(true)),
        ]);
        assert_eq!(report.count(Rule::TwoHolders), 3);
    }
}
