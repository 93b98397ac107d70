//! The clients: threads that take, hold and release leases over HTTP with random timings,
//! recording every call with its invocation and completion times and its outcome.
//!
//! Each attempt uses a new owner and one of a few resources (so that clients contend) and
//! asks for a lease of 1 to 3 s. A client that gets the lock holds it briefly (up to 200 ms)
//! and unlocks it half the time, holds it up to its lease and unlocks it (maybe too late)
//! three times in ten, and otherwise holds it up to 1.25 times the lease and lets it
//! expire. A refused client waits up to 50 ms; a lock whose outcome is unknown is unlocked
//! half the time, as a careful client would. Half the attempts use the alpha2 API (an
//! immediate acquire answering a lock ID and a fencing token, a release by lock ID), whose
//! tokens the checker follows; the other half Dapr's alpha1.

use crate::history::{NOT_HELD, Op, Outcome};
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
            let alpha2 = self.rng.bool();
            let (outcome, lock_id) = if alpha2 {
                self.acquire(&resource, &owner, expiry)
            } else {
                (self.lock(&resource, &owner, expiry), None)
            };
            let let_go = |client: &mut Self| match &lock_id {
                Some(lock_id) => client.release(&resource, &owner, lock_id),
                None if alpha2 => {}
                None => client.unlock(&resource, &owner),
            };
            match outcome {
                Outcome::Ok(true) => {
                    let (hold, release) = match self.rng.u8(..10) {
                        0..5 => (self.rng.u64(0..=200), true),
                        5..8 => (self.rng.u64(0..=expiry * 1000), true),
                        _ => (self.rng.u64(0..=expiry * 1250), false),
                    };
                    if self.pause(hold) && release {
                        let_go(&mut self);
                    }
                }
                Outcome::Unknown(_) => {
                    let wait = self.rng.u64(0..=500);
                    if self.pause(wait) && self.rng.bool() {
                        let_go(&mut self);
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

    /// An alpha2 acquire (immediate, `ttl` = `expiry` seconds): the outcome, and the lock
    /// ID of a grant.
    fn acquire(
        &mut self,
        resource: &str,
        owner: &str,
        expiry: u64,
    ) -> (Outcome<bool>, Option<String>) {
        let body = serde_json::json!({ "ttl": format!("{expiry}s"), "immediate": true });
        let path = format!("/v1.0-alpha2/lock/{}/{resource}", self.workload.store);
        let (times, outcome) = self.send("POST", &path, &body, |status, answer| match status {
            200 => {
                let value: serde_json::Value = serde_json::from_str(answer).ok()?;
                let lock_id = value.get("lockID")?.as_str()?.to_owned();
                let token = value.get("fencingToken")?.as_str()?.parse::<u64>().ok()?;
                Some(Some((lock_id, token)))
            }
            409 => Some(None),
            _ => None,
        });
        let (outcome, granted) = match outcome {
            Outcome::Ok(Some(grant)) => (Outcome::Ok(true), Some(grant)),
            Outcome::Ok(None) => (Outcome::Ok(false), None),
            Outcome::Failed(why) => (Outcome::Failed(why), None),
            Outcome::Unknown(why) => (Outcome::Unknown(why), None),
        };
        let op = Op::lock(
            resource,
            owner,
            Duration::from_secs(expiry),
            times,
            outcome.clone(),
        );
        self.ops.push(Op {
            client: self.id,
            fencing_token: granted.as_ref().map(|(_, token)| *token),
            ..op
        });
        (outcome, granted.map(|(lock_id, _)| lock_id))
    }

    /// An alpha2 release of `lock_id`, recorded as an unlock: 0 on 204, [`NOT_HELD`] on 404.
    fn release(&mut self, resource: &str, owner: &str, lock_id: &str) {
        let body = serde_json::json!({ "lockID": lock_id });
        let path = format!("/v1.0-alpha2/lock/{}/{resource}", self.workload.store);
        let (times, outcome) = self.send("DELETE", &path, &body, |status, _| match status {
            204 => Some(0),
            404 => Some(NOT_HELD),
            _ => None,
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
        let path = format!("/v1.0-alpha1/{api}/{}", self.workload.store);
        self.send("POST", &path, body, |status, answer| match status {
            200 => parse(answer),
            _ => None,
        })
    }

    /// Sends `method` with `body` to `path` and classifies what comes back: `parse` reads
    /// the status and body of a 2xx answer or a 404/409 (alpha2's "not held" and "held");
    /// other 4xx failed, 5xx unknown.
    fn send<T>(
        &mut self,
        method: &str,
        path: &str,
        body: &serde_json::Value,
        parse: impl Fn(u16, &str) -> Option<T>,
    ) -> ((Duration, Duration), Outcome<T>) {
        let url = format!("{}{path}", self.target);
        let invoked = self.origin.elapsed();
        let result = if method == "POST" {
            try_post(&self.agent, &url, &body.to_string(), &[])
        } else {
            let request = ureq::http::Request::builder()
                .method(method)
                .uri(&url)
                .body(body.to_string())
                .expect("a valid request");
            self.agent
                .run(request)
                .and_then(|mut response| wasilock_testkit::host::reply_of(&mut response))
        };
        let completed = self.origin.elapsed();
        let outcome = match result {
            Ok(reply) if reply.status < 300 || matches!(reply.status, 404 | 409) => {
                match parse(reply.status, &reply.body) {
                    Some(value) => Outcome::Ok(value),
                    None if reply.status < 300 => {
                        Outcome::Unknown(format!("unexpected answer {:?}", reply.body))
                    }
                    None => Outcome::Failed(format!("HTTP {} {}", reply.status, reply.body)),
                }
            }
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
