//! The engine's epoch ticker ([`EpochTicker`]): one thread that advances the epoch every
//! [`EPOCH_TICK`] while at least one component call is in flight ([`Ticking`]), and sleeps
//! without a timer while none is, so an idle process does not wake up a thousand times a
//! second.
//!
//! A call holds a [`Ticking`] from before its deadline is armed until it ends. The first call
//! of a busy spell wakes the parked thread; it then ticks every [`EPOCH_TICK`], as a ticker
//! that never stops would, and parks again at the first tick that finds no call in flight.
//! Every call in flight therefore sees a tick at least every [`EPOCH_TICK`], and its deadline
//! and slow lane behave as they would with a ticker that always runs.

use super::engine::EPOCH_TICK;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use wasmtime::Engine;

/// The ticker of one engine: its thread ends when this is dropped (or the engine is).
pub(super) struct EpochTicker {
    shared: Arc<Shared>,
}

/// What the ticker thread and the calls share.
#[derive(Default)]
struct Shared {
    /// Calls in flight.
    in_flight: AtomicUsize,
    /// Whether the ticker thread is parked, waiting for a call.
    parked: AtomicBool,
    /// Set when the [`EpochTicker`] is dropped: the thread ends.
    stopped: AtomicBool,
    /// Held while the thread decides to park and while a call wakes it, so no wake is lost.
    lock: Mutex<()>,
    /// Where the parked thread waits.
    wake: Condvar,
}

impl Shared {
    /// Whether the thread has nothing to do until a call begins.
    fn idle(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0 && !self.stopped.load(Ordering::SeqCst)
    }

    /// Wakes the thread if it is parked.
    fn wake(&self) {
        if self.parked.load(Ordering::SeqCst) {
            let _lock = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.wake.notify_one();
        }
    }
}

/// A component call in flight: the epoch ticks while any exists.
pub(super) struct Ticking(Arc<Shared>);

impl Drop for Ticking {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl EpochTicker {
    /// Starts the ticker thread of `engine`, parked until the first call.
    pub(super) fn spawn(engine: &Engine) -> Self {
        let shared = Arc::new(Shared::default());
        let engine = engine.weak();
        let thread = shared.clone();
        std::thread::Builder::new()
            .name("wasilock-epoch".into())
            .spawn(move || {
                loop {
                    if thread.idle() {
                        let lock = thread.lock.lock().unwrap_or_else(|e| e.into_inner());
                        thread.parked.store(true, Ordering::SeqCst);
                        let lock = (thread.wake)
                            .wait_while(lock, |_| thread.idle())
                            .unwrap_or_else(|e| e.into_inner());
                        thread.parked.store(false, Ordering::SeqCst);
                        drop(lock);
                    }
                    if thread.stopped.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(EPOCH_TICK);
                    match engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => return,
                    }
                }
            })
            .expect("spawn the epoch ticker thread");
        EpochTicker { shared }
    }

    /// Marks a call in flight until the returned guard is dropped: the epoch ticks meanwhile.
    pub(super) fn ticking(&self) -> Ticking {
        if self.shared.in_flight.fetch_add(1, Ordering::SeqCst) == 0 {
            self.shared.wake();
        }
        Ticking(self.shared.clone())
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        let _lock = self.shared.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.shared.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_in_flight_are_counted_until_their_guards_drop() {
        let ticker = EpochTicker::spawn(&Engine::default());
        let first = ticker.ticking();
        let second = ticker.ticking();
        assert_eq!(ticker.shared.in_flight.load(Ordering::SeqCst), 2);
        drop(first);
        assert_eq!(ticker.shared.in_flight.load(Ordering::SeqCst), 1);
        drop(second);
        assert_eq!(ticker.shared.in_flight.load(Ordering::SeqCst), 0);
    }
}
