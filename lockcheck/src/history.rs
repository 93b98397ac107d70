//! What the clients did: every lock and unlock call with the times it was invoked and
//! completed, and what came back. Pure data, no I/O.
//!
//! Times are offsets from one origin taken by the run (a monotonic [`std::time::Instant`]),
//! so every client's times can be compared with every other's.

use std::time::Duration;

/// What came back from one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<T> {
    /// The API answered with this value.
    Ok(T),
    /// The call certainly had no effect: the connection was refused (the request never
    /// reached a server) or the request was rejected (a 4xx answer).
    Failed(String),
    /// The call may or may not have taken effect: the connection broke before the answer
    /// came, or the host answered with a server error (a store that failed mid-call may
    /// still have applied the write whose answer it lost).
    Unknown(String),
}

impl<T> Outcome<T> {
    /// Whether the call's effect may have happened without an answer saying so.
    pub fn is_unknown(&self) -> bool {
        matches!(self, Outcome::Unknown(_))
    }
}

/// One call of the lock API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `TryLock` with `expiryInSeconds`; `Ok(true)` is an acknowledged lock.
    Lock {
        /// The lease asked for.
        expiry: Duration,
        /// `success`, or why there is none.
        outcome: Outcome<bool>,
    },
    /// `Unlock`; `Ok(status)` with Dapr's statuses: 0 released, 1 no such lock, 2 held by
    /// another owner, 3 internal error; or, for an alpha2 release, [`NOT_HELD`].
    Unlock {
        /// `status`, or why there is none.
        outcome: Outcome<i64>,
    },
}

/// The status recorded for an alpha2 release answered `404 ERR_LOCK_NOT_FOUND`: the lock
/// ID does not hold the lock (absent, expired, or another owner's).
pub const NOT_HELD: i64 = 404;

/// One call by one client: on which resource, for which owner, when, and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// The client that made it (a thread of the workload).
    pub client: usize,
    /// `resourceId`.
    pub resource: String,
    /// `lockOwner`.
    pub owner: String,
    /// Just before the request was sent.
    pub invoked: Duration,
    /// Just after the answer (or the error) arrived.
    pub completed: Duration,
    /// The call and its outcome.
    pub call: Call,
    /// The fencing token of an acknowledged alpha2 grant.
    pub fencing_token: Option<u64>,
}

impl Op {
    /// A lock call.
    pub fn lock(
        resource: &str,
        owner: &str,
        expiry: Duration,
        (invoked, completed): (Duration, Duration),
        outcome: Outcome<bool>,
    ) -> Op {
        let call = Call::Lock { expiry, outcome };
        Op::new(resource, owner, (invoked, completed), call)
    }

    /// An unlock call.
    pub fn unlock(
        resource: &str,
        owner: &str,
        (invoked, completed): (Duration, Duration),
        outcome: Outcome<i64>,
    ) -> Op {
        Op::new(
            resource,
            owner,
            (invoked, completed),
            Call::Unlock { outcome },
        )
    }

    /// A `call` of client 0, without a fencing token.
    fn new(
        resource: &str,
        owner: &str,
        (invoked, completed): (Duration, Duration),
        call: Call,
    ) -> Op {
        Op {
            client: 0,
            resource: resource.into(),
            owner: owner.into(),
            invoked,
            completed,
            call,
            fencing_token: None,
        }
    }

    /// Whether this is a lock call answered `true`.
    pub fn acknowledged(&self) -> bool {
        matches!(
            self.call,
            Call::Lock {
                outcome: Outcome::Ok(true),
                ..
            }
        )
    }

    /// Whether the call's outcome is unknown.
    pub fn is_unknown(&self) -> bool {
        match &self.call {
            Call::Lock { outcome, .. } => outcome.is_unknown(),
            Call::Unlock { outcome } => outcome.is_unknown(),
        }
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (what, outcome) = match &self.call {
            Call::Lock { expiry, outcome } => (
                format!("lock (expiry {}s)", expiry.as_secs_f64()),
                show(outcome),
            ),
            Call::Unlock { outcome } => ("unlock".to_string(), show(outcome)),
        };
        write!(
            f,
            "{what} of {} by {} (client {}), invoked {}, completed {}: {outcome}",
            self.resource,
            self.owner,
            self.client,
            at(self.invoked),
            at(self.completed)
        )?;
        match self.fencing_token {
            Some(token) => write!(f, ", fencing token {token}"),
            None => Ok(()),
        }
    }
}

fn show<T: std::fmt::Display>(outcome: &Outcome<T>) -> String {
    match outcome {
        Outcome::Ok(value) => value.to_string(),
        Outcome::Failed(why) => format!("failed ({why})"),
        Outcome::Unknown(why) => format!("unknown ({why})"),
    }
}

/// A time of the run as seconds with milliseconds: `12.345s`.
pub fn at(time: Duration) -> String {
    format!("{:.3}s", time.as_secs_f64())
}

/// A fault the run injected, at times of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// When it began (the kill).
    pub at: Duration,
    /// When the system was whole again (restarted and answering, or failed over).
    pub ended: Duration,
    /// What it was (`kill -9 and restart of the host`).
    pub what: String,
}

/// Something the system under test reported during a run (a Sentinel's event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// When it was seen.
    pub at: Duration,
    /// What it said.
    pub what: String,
}

/// Everything a run recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// Every call, in no particular order.
    pub ops: Vec<Op>,
    /// The faults injected meanwhile.
    pub faults: Vec<Fault>,
    /// What the system reported meanwhile.
    pub notes: Vec<Note>,
}

impl History {
    /// Lock calls answered `true`.
    pub fn acknowledged(&self) -> usize {
        self.ops.iter().filter(|op| op.acknowledged()).count()
    }

    /// Calls whose outcome is unknown.
    pub fn unknown(&self) -> usize {
        self.ops.iter().filter(|op| op.is_unknown()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_op_reads_as_one_line_of_evidence() {
        let ms = Duration::from_millis;
        let op = Op::lock(
            "r",
            "a",
            Duration::from_secs(2),
            (ms(1500), ms(1512)),
            Outcome::Ok(true),
        );
        assert_eq!(
            op.to_string(),
            "lock (expiry 2s) of r by a (client 0), invoked 1.500s, completed 1.512s: true"
        );
        let op = Op::unlock(
            "r",
            "a",
            (ms(2000), ms(2001)),
            Outcome::Unknown("reset".into()),
        );
        assert_eq!(
            op.to_string(),
            "unlock of r by a (client 0), invoked 2.000s, completed 2.001s: unknown (reset)"
        );
    }

    #[test]
    fn counts_acknowledged_locks_and_unknown_outcomes() {
        let t = (Duration::ZERO, Duration::from_millis(1));
        let s = Duration::from_secs(1);
        let history = History {
            ops: vec![
                Op::lock("r", "a", s, t, Outcome::Ok(true)),
                Op::lock("r", "b", s, t, Outcome::Ok(false)),
                Op::lock("r", "c", s, t, Outcome::Unknown("timeout".into())),
                Op::lock("r", "d", s, t, Outcome::Failed("refused".into())),
                Op::unlock("r", "a", t, Outcome::Unknown("reset".into())),
            ],
            ..History::default()
        };
        assert_eq!(history.acknowledged(), 1);
        assert_eq!(history.unknown(), 2);
    }
}
