//! How long a call may compute, and how it shares threads while it does: each instance's
//! [`CallClock`] (the call's deadline, the epoch ticks it has computed through, its tenant's
//! [`SlowLane`]), armed before every call and consulted by the epoch-deadline callback.
//!
//! At every tick of execution: past the deadline the call traps. Counting ticks without a
//! store call: at the first the call goes on (it may have begun just before it), at the
//! second it yields its thread, and from the third on it also waits for its tenant's slow
//! lane and holds it for `SLOW_LANE_PAUSE`. A lock call computes for microseconds, so only a
//! guest that computes for long gets that far, and all such calls of one tenant together run
//! one tick per `SLOW_LANE_PAUSE`, however many there are. The wait ends at the deadline, so
//! the call ends at most a tick late.

use super::engine::EPOCH_TICK;
use super::host_state::HostState;
use prometheus::IntCounter;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::{Store, UpdateDeadline};

/// How long a call that computes past its first epoch tick holds its tenant's slow lane
/// before its next tick: such calls of one tenant run one tick per this pause, together.
const SLOW_LANE_PAUSE: Duration = Duration::from_millis(9 * EPOCH_TICK.as_millis() as u64);

/// A tenant's slow lane: its calls that compute for long take turns in it; each wait for
/// it is counted when the tenant is observed.
#[derive(Clone, Default)]
pub(super) struct SlowLane(Arc<tokio::sync::Mutex<()>>, Option<IntCounter>);

impl SlowLane {
    /// A lane whose waits `waits` counts.
    pub(super) fn counted(waits: IntCounter) -> Self {
        SlowLane(Arc::default(), Some(waits))
    }
}

/// The clock of the calls on one instance: when the current call must end, and the epoch
/// ticks it has computed through since it began or last called the store (time spent waiting
/// for a store is not computing).
pub(crate) struct CallClock {
    deadline: Instant,
    ticks: u32,
    lane: SlowLane,
}

impl CallClock {
    /// A clock whose long calls take turns in `lane`; [`CallClock::arm`] starts a call.
    pub(super) fn new(lane: SlowLane) -> Self {
        CallClock {
            deadline: Instant::now(),
            ticks: 0,
            lane,
        }
    }

    /// Makes `store` consult its clock at every epoch tick of execution.
    pub(super) fn watch(store: &mut Store<HostState>) {
        store.epoch_deadline_callback(|mut store| Ok(store.data_mut().clock.tick()));
    }

    /// Gives the next call on `store` the full `timeout`.
    pub(super) fn arm(store: &mut Store<HostState>, timeout: Duration) {
        let clock = &mut store.data_mut().clock;
        clock.deadline = Instant::now() + timeout;
        clock.ticks = 0;
        store.set_epoch_deadline(1);
    }

    /// The call called its store: it has not been computing since.
    pub(super) fn store_called(&mut self) {
        self.ticks = 0;
    }

    /// What the call does at an epoch tick of its execution.
    fn tick(&mut self) -> UpdateDeadline {
        if Instant::now() >= self.deadline {
            return UpdateDeadline::Interrupt;
        }
        self.ticks += 1;
        match self.ticks {
            // The first tick may come right after the call began: a lock call computes for
            // microseconds, and yielding it would send it behind every other request on this
            // thread, into the latency tail, for nothing.
            1 => return UpdateDeadline::Continue(1),
            // A full tick of computing: let other requests run.
            2 => return UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())),
            _ => {}
        }
        if let Some(waits) = &self.lane.1 {
            waits.inc();
        }
        let (lane, deadline) = (self.lane.0.clone(), self.deadline);
        UpdateDeadline::YieldCustom(
            1,
            Box::pin(async move {
                let turn = async {
                    let _turn = lane.lock().await;
                    tokio::time::sleep(SLOW_LANE_PAUSE).await;
                };
                let _ = tokio::time::timeout_at(deadline.into(), turn).await;
            }),
        )
    }
}
