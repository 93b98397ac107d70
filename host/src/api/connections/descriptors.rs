//! The descriptor limit the connection bound must fit in: every connection holds one
//! descriptor, and the host needs a few more for its listeners, stores, resource files and
//! runtime. At start-up the soft limit is raised to the hard one, as every Go program
//! (daprd among them) does, and the bound is lowered to fit what is left.

use super::ConnectionLimits;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Descriptors kept for the host's own use: listeners, store files and connections,
/// resource files, the runtime's own.
const RESERVED: u64 = 64;

/// Raises the soft limit on open descriptors to the hard limit when it can, and returns
/// the soft limit in force (`None`: unlimited).
pub fn raise_limit() -> Option<u64> {
    let limit = getrlimit(Resource::Nofile);
    if limit.current == limit.maximum {
        return limit.current;
    }
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => {
            tracing::debug!(
                "raised the descriptor limit from {:?} to {:?}",
                limit.current,
                limit.maximum
            );
            limit.maximum
        }
        Err(e) => {
            tracing::debug!("cannot raise the descriptor limit: {e}");
            limit.current
        }
    }
}

/// The most connections `descriptor_limit` leaves room for (at least one).
fn connections_allowed(descriptor_limit: u64) -> usize {
    let allowed = descriptor_limit.saturating_sub(RESERVED).max(1);
    usize::try_from(allowed).unwrap_or(usize::MAX)
}

impl ConnectionLimits {
    /// These limits with at most as many connections as `descriptor_limit` allows; says
    /// so when it lowers the bound (a warning when `requested` was asked for explicitly).
    pub fn fit_descriptor_limit(self, descriptor_limit: Option<u64>, requested: bool) -> Self {
        let Some(descriptor_limit) = descriptor_limit else {
            return self;
        };
        let allowed = connections_allowed(descriptor_limit);
        if self.max_connections <= allowed {
            return self;
        }
        let message = format!(
            "at most {allowed} connections at once (the descriptor limit, {descriptor_limit}, \
             less {RESERVED} kept for the host), not {}: raise `ulimit -n` for more",
            self.max_connections
        );
        if requested {
            tracing::warn!("{message}");
        } else {
            tracing::info!("{message}");
        }
        ConnectionLimits {
            max_connections: allowed,
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_leaves_the_reserve_free() {
        assert_eq!(connections_allowed(256), 192);
        assert_eq!(connections_allowed(10), 1);
        let limits = ConnectionLimits::default();
        assert_eq!(
            limits
                .fit_descriptor_limit(Some(256), false)
                .max_connections,
            192
        );
        assert_eq!(limits.fit_descriptor_limit(Some(1 << 20), true), limits);
        assert_eq!(limits.fit_descriptor_limit(None, true), limits);
    }
}
