//! The `path` label of an HTTP request: the route template it matched, so that arbitrary
//! paths (store names, typos, probes) never make new series; and the lock outcome an HTTP
//! answer of the lock routes carries.

use super::outcomes::{LockOperation, LockOutcome};

/// The lock route.
pub const LOCK: &str = "/v1.0-alpha1/lock/{storeName}";
/// The unlock route.
pub const UNLOCK: &str = "/v1.0-alpha1/unlock/{storeName}";
/// Any path no route of the host matches.
pub const UNMATCHED: &str = "_";

/// The route template of `path`: daprd's routes with their parameters named, fixed paths as
/// they are, and [`UNMATCHED`] for anything else.
pub fn template(path: &str) -> &'static str {
    match path {
        "/v1.0/healthz" => "/v1.0/healthz",
        "/v1.0/healthz/outbound" => "/v1.0/healthz/outbound",
        "/v1.0/metadata" => "/v1.0/metadata",
        _ if store_route(path, "/v1.0-alpha1/lock/") => LOCK,
        _ if store_route(path, "/v1.0-alpha1/unlock/") => UNLOCK,
        _ => UNMATCHED,
    }
}

/// Whether `path` is `prefix` followed by one non-empty segment.
fn store_route(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|store| !store.is_empty() && !store.contains('/'))
}

/// The lock operation, store name (as in the path) and outcome of an answer with `status`
/// and `body` to a request for `path`; `None` for a path that is not a lock route.
pub fn lock_answer<'p>(
    path: &'p str,
    status: u16,
    body: &[u8],
) -> Option<(LockOperation, &'p str, LockOutcome)> {
    let path = path.split('?').next().unwrap_or(path);
    let (operation, store) = if let Some(store) = path.strip_prefix("/v1.0-alpha1/lock/") {
        (LockOperation::TryLock, store)
    } else {
        (
            LockOperation::Unlock,
            path.strip_prefix("/v1.0-alpha1/unlock/")?,
        )
    };
    let outcome = match (operation, status, body) {
        (LockOperation::TryLock, 200, br#"{"success":true}"#) => LockOutcome::Granted,
        (LockOperation::TryLock, 200, br#"{"success":false}"#) => LockOutcome::Held,
        (LockOperation::Unlock, 200, br#"{"status":0}"#) => LockOutcome::Released,
        (LockOperation::Unlock, 200, br#"{"status":1}"#) => LockOutcome::NotFound,
        (LockOperation::Unlock, 200, br#"{"status":2}"#) => LockOutcome::Held,
        _ => LockOutcome::Error,
    };
    Some((operation, store, outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_bounded_templates() {
        assert_eq!(template("/v1.0-alpha1/lock/lockstore"), LOCK);
        assert_eq!(template("/v1.0-alpha1/lock/other%20store"), LOCK);
        assert_eq!(template("/v1.0-alpha1/unlock/x"), UNLOCK);
        assert_eq!(template("/v1.0/healthz"), "/v1.0/healthz");
        assert_eq!(template("/v1.0/metadata"), "/v1.0/metadata");
        for other in [
            "/",
            "/v1.0-alpha1/lock/",
            "/v1.0-alpha1/lock/a/b",
            "/v1.0/state/s/k",
        ] {
            assert_eq!(template(other), UNMATCHED, "{other}");
        }
    }

    #[test]
    fn lock_answers_name_their_outcome() {
        use LockOperation::*;
        use LockOutcome::*;
        let lock = "/v1.0-alpha1/lock/s";
        let unlock = "/v1.0-alpha1/unlock/s";
        for (path, status, body, operation, outcome) in [
            (lock, 200, r#"{"success":true}"#, TryLock, Granted),
            (lock, 200, r#"{"success":false}"#, TryLock, Held),
            (lock, 400, "{}", TryLock, Error),
            (unlock, 200, r#"{"status":0}"#, Unlock, Released),
            (unlock, 200, r#"{"status":1}"#, Unlock, NotFound),
            (unlock, 200, r#"{"status":2}"#, Unlock, Held),
            (unlock, 200, r#"{"status":3}"#, Unlock, Error),
        ] {
            assert_eq!(
                lock_answer(path, status, body.as_bytes()),
                Some((operation, "s", outcome)),
                "{path} {status} {body}"
            );
        }
        assert_eq!(lock_answer("/v1.0/metadata", 200, b"{}"), None);
    }
}
