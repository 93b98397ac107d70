//! Lock traffic for the tests of a store that goes away: workers that each lock and release
//! resources of their own in a loop, every outcome recorded; and the answer a store's
//! failure must give.

use crate::host::{agent, try_lock, unlock};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What one lock and release gave.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// When the lock was asked for.
    pub started: Instant,
    /// How long the lock (and the release, if it came to that) took.
    pub took: Duration,
    /// The status of the call that failed; 200 when neither did.
    pub status: u16,
    /// What went wrong (the failed call's body); empty when all was right.
    pub wrong: String,
}

impl Outcome {
    /// When it ended.
    pub fn ended(&self) -> Instant {
        self.started + self.took
    }

    /// Whether both calls answered 200, and rightly.
    pub fn right(&self) -> bool {
        self.status == 200 && self.wrong.is_empty()
    }
}

/// While `during` runs, `workers` threads lock and release resources of their own in `store`
/// through the host at `base`, pausing 50 ms after a failure; gives what `during` gave and
/// every outcome, in the order they ended.
pub fn under_load<R>(
    base: &str,
    store: &str,
    workers: usize,
    during: impl FnOnce() -> R,
) -> (R, Vec<Outcome>) {
    let stop = AtomicBool::new(false);
    let outcomes = Mutex::new(Vec::new());
    let result = std::thread::scope(|scope| {
        for worker in 0..workers {
            let (stop, outcomes) = (&stop, &outcomes);
            scope.spawn(move || {
                let agent = agent();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let resource = format!("w{worker}-{i}");
                    let started = Instant::now();
                    let (status, wrong) = match try_lock(&agent, base, store, &resource, "o", 30) {
                        Ok(true) => match unlock(&agent, base, store, &resource, "o") {
                            Ok(0) => (200, String::new()),
                            Ok(status) => (200, format!("unlock status {status}")),
                            Err(reply) => (reply.status, reply.body),
                        },
                        Ok(false) => (200, "refused a lock nobody held".to_string()),
                        Err(reply) => (reply.status, reply.body),
                    };
                    let outcome = Outcome {
                        started,
                        took: started.elapsed(),
                        status,
                        wrong,
                    };
                    let failed = status != 200;
                    outcomes.lock().unwrap().push(outcome);
                    if failed {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            });
        }
        let result = during();
        stop.store(true, Ordering::Relaxed);
        result
    });
    (result, outcomes.into_inner().unwrap())
}

/// Asserts that a failed lock or unlock is daprd's 500 for a store error, whose cause names
/// `cause` (the store's address, say).
pub fn assert_store_failure(status: u16, body: &str, cause: &str) {
    assert_eq!(status, 500, "{body}");
    assert!(
        body.starts_with(
            r#"{"errorCode":"ERR_TRY_LOCK","message":"failed to try acquiring lock: "#
        ) || body.starts_with(r#"{"errorCode":"ERR_UNLOCK","message":"failed to release lock: "#),
        "{body}"
    );
    assert!(body.contains(cause), "the cause names {cause}: {body}");
}
