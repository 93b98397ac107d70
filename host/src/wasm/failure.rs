//! Why a call into a component gave no answer ([`GuestFailure`]), a broken limit named.

use super::sandbox::Limits;
use crate::telemetry::TrapKind;
use std::time::Duration;
use wasmtime::Trap;

/// Why a call into a component gave no answer.
#[derive(Debug)]
pub enum GuestFailure {
    /// Every place of the tenant's `maxConcurrency` stayed taken for the whole timeout.
    Busy {
        /// The tenant's `maxConcurrency`.
        max_concurrency: u32,
        /// How long the call waited.
        waited: Duration,
    },
    /// The guest trapped, ran out of time or memory, or broke the protocol.
    Failed(anyhow::Error),
}

impl GuestFailure {
    /// A failed call as the client is told about it: a limit of `limits` that it broke is
    /// named (`memory_cap_reached`: a memory growth was refused).
    pub(super) fn named(limits: &Limits, memory_cap_reached: bool, e: wasmtime::Error) -> Self {
        match trap_kind(memory_cap_reached, &e) {
            TrapKind::Memory => GuestFailure::Failed(anyhow::anyhow!(
                "it exceeded its memory limit of {} bytes",
                limits.memory_bytes
            )),
            TrapKind::Deadline => GuestFailure::Failed(anyhow::anyhow!(
                "it ran past its execution deadline of {:?} (interrupt)",
                limits.timeout
            )),
            TrapKind::Other => GuestFailure::Failed(anyhow::Error::from(e)),
        }
    }
}

/// Which limit a failed call broke (`memory_cap_reached`: a memory growth was refused).
pub(super) fn trap_kind(memory_cap_reached: bool, e: &wasmtime::Error) -> TrapKind {
    if memory_cap_reached {
        TrapKind::Memory
    } else if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        TrapKind::Deadline
    } else {
        TrapKind::Other
    }
}

impl std::fmt::Display for GuestFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GuestFailure::Busy {
                max_concurrency,
                waited,
            } => write!(
                f,
                "{max_concurrency} requests (maxConcurrency) were inside the lock component for {waited:?}"
            ),
            GuestFailure::Failed(e) => write!(f, "{e:#}"),
        }
    }
}

impl std::error::Error for GuestFailure {}

impl From<wasmtime::Error> for GuestFailure {
    fn from(e: wasmtime::Error) -> Self {
        GuestFailure::Failed(e.into())
    }
}
