//! The accept loop both servers share: a connection is accepted only with a free slot (all
//! taken: the listener is left alone and clients wait in the listen backlog), and an
//! `accept` that fails for want of resources (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`) is
//! retried after a pause that doubles from 10 ms to 1 s (back to 10 ms after a success),
//! instead of at once in a loop.
//!
//! Each burst of failures is logged twice however long it lasts: at its start (warn), and
//! once two seconds have passed without a failure (a summary). Bursts of full slots
//! likewise.

use super::watch::{Connection, Protocol};
use super::{ConnectionLimits, Connections};
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

/// The first pause after a failed `accept`.
const FIRST_PAUSE: Duration = Duration::from_millis(10);
/// The longest pause between two `accept` attempts.
const LONGEST_PAUSE: Duration = Duration::from_secs(1);
/// How long a burst must stay quiet to be over: longer than the longest pause, so that a
/// pause is never taken for the end of the trouble.
const QUIET: Duration = Duration::from_secs(2);

/// Accepts the connections of one listener within the shared [`Connections`] limits.
pub struct Acceptor {
    listener: TcpListener,
    connections: Arc<Connections>,
    pause: Duration,
    failing: Option<Burst>,
    full: Option<Burst>,
}

/// A run of one kind of trouble, over once [`QUIET`] passes without it.
struct Burst {
    since: Instant,
    last: Instant,
    count: u64,
    detail: String,
}

impl Burst {
    /// Starts a burst, or counts one more occurrence in it; true for a new burst.
    fn note(burst: &mut Option<Burst>, detail: impl ToString) -> bool {
        let now = Instant::now();
        match burst {
            Some(burst) => {
                burst.last = now;
                burst.count += 1;
                burst.detail = detail.to_string();
                false
            }
            None => {
                *burst = Some(Burst {
                    since: now,
                    last: now,
                    count: 1,
                    detail: detail.to_string(),
                });
                true
            }
        }
    }

    /// When `burst` will be over if nothing happens meanwhile.
    fn quiet_at(burst: &Option<Burst>) -> Option<Instant> {
        burst.as_ref().map(|b| b.last + QUIET)
    }

    /// Ends `burst` if it has been quiet long enough.
    fn take_if_over(burst: &mut Option<Burst>) -> Option<Burst> {
        let over = Burst::quiet_at(burst).is_some_and(|at| at <= Instant::now());
        if over { burst.take() } else { None }
    }

    /// How long it lasted, in seconds.
    fn seconds(&self) -> f64 {
        (self.last - self.since).as_secs_f64()
    }
}

/// An accepted connection that holds one slot until it is dropped.
pub struct Admitted {
    stream: TcpStream,
    /// The client's address.
    pub peer: SocketAddr,
    slot: OwnedSemaphorePermit,
    limits: ConnectionLimits,
}

impl Admitted {
    /// The connection under its clocks, speaking `protocol`.
    pub fn watch(self, protocol: Protocol) -> Connection {
        Connection::new(self.stream, self.slot, self.limits, protocol)
    }
}

impl Acceptor {
    /// Accepts on `listener`, sharing the slots of `connections`.
    pub fn new(listener: TcpListener, connections: Arc<Connections>) -> Acceptor {
        Acceptor {
            listener,
            connections,
            pause: FIRST_PAUSE,
            failing: None,
            full: None,
        }
    }

    /// The next connection, once a slot is free and `accept` succeeds. Cancel-safe: a
    /// connection is never accepted and then dropped.
    pub async fn accept(&mut self) -> Admitted {
        let slot = self.slot().await;
        loop {
            let quiet_at = [Burst::quiet_at(&self.failing), Burst::quiet_at(&self.full)]
                .into_iter()
                .flatten()
                .min();
            let accepted = tokio::select! {
                // A pending connection first: if accepting still fails, the burst goes on.
                biased;
                accepted = self.listener.accept() => accepted,
                () = sleep_until(quiet_at) => {
                    self.summarize();
                    continue;
                }
            };
            match accepted {
                Ok((stream, peer)) => {
                    self.pause = FIRST_PAUSE;
                    let _ = stream.set_nodelay(true);
                    return Admitted {
                        stream,
                        peer,
                        slot,
                        limits: self.connections.limits,
                    };
                }
                // The client gave up before it was accepted: nothing to wait for.
                Err(e) if is_the_clients(&e) => {
                    tracing::debug!("a connection closed before it was accepted: {e}");
                }
                Err(e) => {
                    if Burst::note(&mut self.failing, &e) {
                        tracing::warn!(
                            "{}: cannot accept connections: {e}; retrying with a pause of up \
                             to {LONGEST_PAUSE:?} until it works",
                            self.address()
                        );
                    }
                    tokio::time::sleep(self.pause).await;
                    self.pause = (self.pause * 2).min(LONGEST_PAUSE);
                }
            }
        }
    }

    /// Accepted connections as a stream, for tonic; it never ends and never fails.
    pub fn into_stream(
        self,
        protocol: Protocol,
    ) -> impl futures_util::Stream<Item = Result<Connection, Infallible>> {
        futures_util::stream::unfold(self, move |mut acceptor| async move {
            let connection = acceptor.accept().await.watch(protocol);
            Some((Ok(connection), acceptor))
        })
    }

    /// A free slot: at once, or after waiting for a connection to close.
    async fn slot(&mut self) -> OwnedSemaphorePermit {
        let slots = self.connections.slots.clone();
        if let Ok(slot) = slots.clone().try_acquire_owned() {
            return slot;
        }
        let max = self.connections.limits.max_connections;
        if Burst::note(&mut self.full, max) {
            tracing::warn!(
                "{}: {max} connections open (--max-connections): new connections wait in the \
                 listen backlog until one closes",
                self.address()
            );
        }
        let slot = slots
            .acquire_owned()
            .await
            .expect("the slots are never closed");
        if let Some(full) = &mut self.full {
            full.last = Instant::now();
        }
        slot
    }

    /// Logs the end of the bursts that are over.
    fn summarize(&mut self) {
        if let Some(failures) = Burst::take_if_over(&mut self.failing) {
            tracing::warn!(
                "{}: accepting connections again after {} failed attempts over {:.1} s \
                 (last: {})",
                self.address(),
                failures.count,
                failures.seconds(),
                failures.detail
            );
        }
        if let Some(full) = Burst::take_if_over(&mut self.full) {
            tracing::warn!(
                "{}: below --max-connections again; {} connections waited for a slot over \
                 {:.1} s",
                self.address(),
                full.count,
                full.seconds()
            );
        }
    }

    fn address(&self) -> String {
        self.listener
            .local_addr()
            .map_or_else(|_| "listener".into(), |a| a.to_string())
    }
}

/// Sleeps until `at`, or for ever without one.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Whether `accept` failed because of that one connection (it was reset or aborted before
/// it was accepted), rather than for want of resources.
fn is_the_clients(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_clients_own_failure_is_retried_at_once() {
        let emfile = io::Error::from_raw_os_error(24);
        let enfile = io::Error::from_raw_os_error(23);
        let enobufs = io::Error::from_raw_os_error(105);
        let enomem = io::Error::from_raw_os_error(12);
        for resource in [emfile, enfile, enobufs, enomem] {
            assert!(!is_the_clients(&resource), "{resource}");
        }
        let aborted = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert!(is_the_clients(&aborted));
    }

    #[tokio::test]
    async fn a_full_host_accepts_again_when_a_connection_closes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let connections = Connections::new(ConnectionLimits {
            max_connections: 1,
            ..ConnectionLimits::default()
        });
        let mut acceptor = connections.acceptor(listener);
        let _first_client = TcpStream::connect(address).await.unwrap();
        let first = acceptor.accept().await;
        let _second_client = TcpStream::connect(address).await.unwrap();
        let waiting = tokio::time::timeout(Duration::from_millis(200), acceptor.accept()).await;
        assert!(
            waiting.is_err(),
            "a second connection was accepted past the bound"
        );
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(10), acceptor.accept()).await;
        assert!(second.is_ok(), "the freed slot was not used");
    }
}
