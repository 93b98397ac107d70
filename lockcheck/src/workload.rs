//! The clients: threads that take, hold and release leases over HTTP with random timings,
//! recording every call with its invocation and completion times and its outcome.
//!
//! Each attempt uses a new owner and one of a few resources (so that clients contend) and
//! asks for a lease of 1 to 3 s. A client that gets the lock holds it briefly (up to 200 ms)
//! and unlocks it half the time, holds it up to its lease and unlocks it (maybe too late)
//! three times in ten, and otherwise holds it up to 1.25 times the lease and lets it
//! expire. A refused client waits up to 50 ms; a lock whose outcome is unknown is unlocked
//! half the time, as a careful client would.

use crate::history::{Op, Outcome};
use std::io::ErrorKind;
use std::time::{Duration, Instant};
use wasilock_testkit::{agent, host::try_post};

/// What the clients do, against which hosts, for how long.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Base URLs (`http://127.0.0.1:PORT`); client `k` talks to `targets[k % len]`.
    pub targets: Vec<String>,
    /// The lock store's name (`{store}` in the API paths).
    pub store: String,
    /// How many client threads.
    pub clients: usize,
    /// How many resources they share.
    pub resources: usize,
    /// How long they run (a call in flight at the end completes).
    pub duration: Duration,
    /// Seeds every client's choices (the timings still vary from run to run).
    pub seed: u64,
}

/// Runs the clients until `origin + duration` and returns every call they made, with times
/// relative to `origin`.
pub fn run(workload: &Workload, origin: Instant) -> Vec<Op> {
    std::thread::scope(|scope| {
        let clients: Vec<_> = (0..workload.clients)
            .map(|id| scope.spawn(move || Client::new(workload, id, origin).run()))
            .collect();
        clients
            .into_iter()
            .flat_map(|c| c.join().expect("a client thread panicked"))
            .collect()
    })
}

/// One client thread.
struct Client<'a> {
    workload: &'a Workload,
    id: usize,
    target: &'a str,
    origin: Instant,
    deadline: Instant,
    rng: fastrand::Rng,
    agent: ureq::Agent,
    ops: Vec<Op>,
}

impl<'a> Client<'a> {
    fn new(workload: &'a Workload, id: usize, origin: Instant) -> Self {
        let seed = workload
            .seed
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(id as u64);
        Client {
            workload,
            id,
            target: &workload.targets[id % workload.targets.len()],
            origin,
            deadline: origin + workload.duration,
            rng: fastrand::Rng::with_seed(seed),
            agent: agent(),
            ops: Vec::new(),
        }
    }

    fn run(mut self) -> Vec<Op> {
        let mut attempt = 0;
        while Instant::now() < self.deadline {
            attempt += 1;
            let resource = format!("resource-{}", self.rng.usize(..self.workload.resources));
            let owner = format!("client{}-{attempt}", self.id);
            let expiry = self.rng.u64(1..=3);
            match self.lock(&resource, &owner, expiry) {
                Outcome::Ok(true) => {
                    let (hold, release) = match self.rng.u8(..10) {
                        0..5 => (self.rng.u64(0..=200), true),
                        5..8 => (self.rng.u64(0..=expiry * 1000), true),
                        _ => (self.rng.u64(0..=expiry * 1250), false),
                    };
                    if self.pause(hold) && release {
                        self.unlock(&resource, &owner);
                    }
                }
                Outcome::Unknown(_) => {
                    let wait = self.rng.u64(0..=500);
                    if self.pause(wait) && self.rng.bool() {
                        self.unlock(&resource, &owner);
                    }
                }
                Outcome::Ok(false) => {
                    let wait = self.rng.u64(0..=50);
                    self.pause(wait);
                }
                // The host is down: wait for it to come back.
                Outcome::Failed(_) => {
                    self.pause(50);
                }
            }
        }
        self.ops
    }

    /// Sleeps `ms` milliseconds or until the deadline; whether the deadline is still ahead.
    fn pause(&self, ms: u64) -> bool {
        let until = (Instant::now() + Duration::from_millis(ms)).min(self.deadline);
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
        Instant::now() < self.deadline
    }

    fn lock(&mut self, resource: &str, owner: &str, expiry: u64) -> Outcome<bool> {
        let body = serde_json::json!({
            "resourceId": resource, "lockOwner": owner, "expiryInSeconds": expiry
        });
        let (times, outcome) = self.call("lock", &body, |answer| match answer {
            r#"{"success":true}"# => Some(true),
            r#"{"success":false}"# => Some(false),
            _ => None,
        });
        let expiry = Duration::from_secs(expiry);
        let op = Op::lock(resource, owner, expiry, times, outcome.clone());
        self.ops.push(Op {
            client: self.id,
            ..op
        });
        outcome
    }

    fn unlock(&mut self, resource: &str, owner: &str) {
        let body = serde_json::json!({ "resourceId": resource, "lockOwner": owner });
        let (times, outcome) = self.call("unlock", &body, |answer| {
            let value: serde_json::Value = serde_json::from_str(answer).ok()?;
            value.get("status")?.as_i64()
        });
        let op = Op::unlock(resource, owner, times, outcome);
        self.ops.push(Op {
            client: self.id,
            ..op
        });
    }

    /// POSTs `body` to `/v1.0-alpha1/{api}/{store}` and classifies what comes back; `parse`
    /// reads a 200 answer's body.
    fn call<T>(
        &mut self,
        api: &str,
        body: &serde_json::Value,
        parse: impl Fn(&str) -> Option<T>,
    ) -> ((Duration, Duration), Outcome<T>) {
        let url = format!("{}/v1.0-alpha1/{api}/{}", self.target, self.workload.store);
        let invoked = self.origin.elapsed();
        let result = try_post(&self.agent, &url, &body.to_string(), &[]);
        let completed = self.origin.elapsed();
        let outcome = match result {
            Ok(reply) if reply.status == 200 => match parse(&reply.body) {
                Some(value) => Outcome::Ok(value),
                None => Outcome::Unknown(format!("unexpected answer {:?}", reply.body)),
            },
            Ok(reply) if reply.status < 500 => {
                Outcome::Failed(format!("HTTP {} {}", reply.status, reply.body))
            }
            Ok(reply) => Outcome::Unknown(format!("HTTP {} {}", reply.status, reply.body)),
            Err(error) => {
                // Pooled connections to a host that went away are broken: start afresh.
                self.agent = agent();
                if never_sent(&error) {
                    Outcome::Failed(error.to_string())
                } else {
                    Outcome::Unknown(error.to_string())
                }
            }
        };
        ((invoked, completed), outcome)
    }
}

/// Whether `error` means no connection was made, so the request never reached a server.
fn never_sent(error: &ureq::Error) -> bool {
    match error {
        ureq::Error::Io(e) => e.kind() == ErrorKind::ConnectionRefused,
        ureq::Error::ConnectionFailed => true,
        ureq::Error::Timeout(ureq::Timeout::Connect) => true,
        _ => false,
    }
}
