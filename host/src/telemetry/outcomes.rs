//! What the metrics name: lock and store operations, how they ended, why a component call
//! trapped and how an alpha2 waiter left its queue, each with the label it carries. The
//! registry that counts them is [`super::metrics`].

/// A lock operation as the metrics name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockOperation {
    /// `TryLockAlpha1`.
    TryLock,
    /// `UnlockAlpha1`.
    Unlock,
}

/// How a lock operation ended, as `wasilock_lock_operations_total{outcome}` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockOutcome {
    /// TryLock: the lock was acquired.
    Granted,
    /// TryLock: another owner holds it; Unlock: it belongs to another owner.
    Held,
    /// Unlock: released.
    Released,
    /// Unlock: there was no such lock.
    NotFound,
    /// A refused request, a store failure or a failed component call.
    Error,
}

impl LockOutcome {
    /// Every outcome, in the order of the registry's handles.
    pub(super) const ALL: [LockOutcome; 5] = [
        LockOutcome::Granted,
        LockOutcome::Held,
        LockOutcome::Released,
        LockOutcome::NotFound,
        LockOutcome::Error,
    ];

    /// Its name, as the `outcome` label carries it.
    pub(super) fn label(self) -> &'static str {
        match self {
            LockOutcome::Granted => "granted",
            LockOutcome::Held => "held",
            LockOutcome::Released => "released",
            LockOutcome::NotFound => "not-found",
            LockOutcome::Error => "error",
        }
    }
}

/// Why a component call trapped, as `wasilock_component_traps_total{kind}` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapKind {
    /// It ran past its deadline.
    Deadline,
    /// It tried to grow its memory past its cap.
    Memory,
    /// Any other trap or protocol failure.
    Other,
}

impl TrapKind {
    /// Its name, as the `kind` label and span attributes carry it.
    pub fn label(self) -> &'static str {
        match self {
            TrapKind::Deadline => "deadline",
            TrapKind::Memory => "memory",
            TrapKind::Other => "other",
        }
    }
}

/// How an alpha2 waiter left its queue, as `wasilock_wait_latency{outcome}` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    /// It was granted the lock.
    Granted,
    /// Its `waitTimeout` (or `--max-lock-wait`) ran out.
    Timeout,
    /// It left otherwise: its client went away, or the store failed.
    Gone,
}

impl WaitOutcome {
    /// Every outcome, in the order of the registry's handles.
    pub(super) const ALL: [WaitOutcome; 3] = [
        WaitOutcome::Granted,
        WaitOutcome::Timeout,
        WaitOutcome::Gone,
    ];

    /// Its name, as the `outcome` label carries it.
    pub(super) fn label(self) -> &'static str {
        match self {
            WaitOutcome::Granted => "granted",
            WaitOutcome::Timeout => "timeout",
            WaitOutcome::Gone => "gone",
        }
    }
}

/// A store operation of the WIT `bucket`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOperation {
    /// `get`.
    Get,
    /// `compare-and-swap`.
    CompareAndSwap,
}

/// How a store operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    /// It answered (a value, or a swap).
    Ok,
    /// A compare-and-swap found another value.
    Conflict,
    /// The backend failed.
    Error,
}
