//! The connections both API servers accept, and how long each may stay open.
//!
//! One model for HTTP/1.1 and gRPC (HTTP/2), so that a client that connects and then sends
//! little or nothing cannot hold a descriptor for good:
//! - **a bound**: at most [`ConnectionLimits::max_connections`] connections are open at once,
//!   HTTP and gRPC together; when all are taken the host stops accepting, and new
//!   connections wait in the kernel's listen backlog until one closes (what daprd does
//!   once it runs out of descriptors, minus its failing `accept` calls);
//! - **a request head timeout**: a connection's first request must arrive within
//!   [`ConnectionLimits::read_header_timeout`] of its accept (daprd's HTTP server:
//!   `ReadHeaderTimeout`, 10 s); on HTTP/1.1 each later request's head, from its first byte;
//! - **an idle timeout**: a connection with no request in flight for
//!   [`ConnectionLimits::idle_timeout`] is closed (hyper has no idle timeout of its own for
//!   HTTP/1 servers, and its `header_read_timeout` also runs while a keep-alive connection
//!   waits for its next request; so neither is used, and the clocks live in `watch`);
//! - **`accept` failures** (no descriptors, no buffers) are retried with a back-off instead
//!   of at once, and logged once per burst;
//! - **TLS**, when [`Connections::with_tls`] has it: each connection's handshake runs in a
//!   task of its own under the request head clock, and a client that does not speak TLS is
//!   closed without an answer.
//!
//! - `accept`: the shared accept loop: connection slots, back-off, burst logs;
//! - `watch`: each connection's clock and the requests it has in flight;
//! - `secure`: connections over TLS: the handshake and the stream the servers read;
//! - [`descriptors`]: the descriptor limit (`RLIMIT_NOFILE`) the bound must fit in.

/// Implements `tokio::io::AsyncWrite` for a connection type by passing every call on to its
/// field `$field`, itself `AsyncWrite + Unpin`; a trailing `for IO` makes the impl generic
/// over a transport `IO`.
macro_rules! delegate_async_write {
    ($connection:ty => $field:ident $(, for $io:ident)?) => {
        impl$(<$io: tokio::io::AsyncWrite + Unpin>)? tokio::io::AsyncWrite for $connection {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.get_mut().$field).poll_write(cx, buf)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.get_mut().$field).poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                self.$field.is_write_vectored()
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.get_mut().$field).poll_flush(cx)
            }

            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.get_mut().$field).poll_shutdown(cx)
            }
        }
    };
}

mod accept;
pub mod descriptors;
mod secure;
mod watch;

pub(crate) use accept::{Acceptor, Admitted};
pub(crate) use watch::{Activity, Busy, ConnectionInfo, Protocol, TrackRequestsLayer};

use super::tls::Tls;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::Semaphore;

/// Reads from `io` into `buf`, as `AsyncRead::poll_read` does; with the bytes this read
/// added to `buf` (none at the end of the stream).
fn poll_read_added<'b>(
    io: Pin<&mut impl AsyncRead>,
    cx: &mut Context<'_>,
    buf: &'b mut ReadBuf<'_>,
) -> Poll<io::Result<&'b [u8]>> {
    let before = buf.filled().len();
    ready!(io.poll_read(cx, buf))?;
    Poll::Ready(Ok(&buf.filled()[before..]))
}

/// How many connections may be open and how long each may wait for its client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a request's head may take to arrive (`None`: no limit).
    pub read_header_timeout: Option<Duration>,
    /// How long a connection may stay open with no request in flight (`None`: no limit).
    pub idle_timeout: Option<Duration>,
    /// Connections open at once, HTTP and gRPC together.
    pub max_connections: usize,
}

impl ConnectionLimits {
    /// Daprd's request head timeout (its HTTP server's `ReadHeaderTimeout`).
    pub const READ_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
    /// Longer than common clients keep idle connections (Go's 90 s), so they close first.
    pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
    /// Connections open at once unless the descriptor limit allows fewer.
    pub const MAX_CONNECTIONS: usize = 10_000;
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            read_header_timeout: Some(Self::READ_HEADER_TIMEOUT),
            idle_timeout: Some(Self::IDLE_TIMEOUT),
            max_connections: Self::MAX_CONNECTIONS,
        }
    }
}

/// The limits and the connection slots every listener of the process shares.
#[derive(Debug)]
pub struct Connections {
    limits: ConnectionLimits,
    slots: Arc<Semaphore>,
    tls: Option<Arc<Tls>>,
}

impl Connections {
    /// Slots for `limits.max_connections` connections (at least one), without TLS.
    pub fn new(limits: ConnectionLimits) -> Arc<Connections> {
        Self::with_tls(limits, None)
    }

    /// Slots for `limits.max_connections` connections (at least one); with `tls`, every
    /// connection is TLS (plain clients are refused).
    pub fn with_tls(limits: ConnectionLimits, tls: Option<Arc<Tls>>) -> Arc<Connections> {
        let limits = ConnectionLimits {
            max_connections: limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
            ..limits
        };
        Arc::new(Connections {
            limits,
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            tls,
        })
    }

    /// The TLS of every connection, if any.
    pub fn tls(&self) -> Option<&Arc<Tls>> {
        self.tls.as_ref()
    }

    /// The limits in force.
    pub fn limits(&self) -> ConnectionLimits {
        self.limits
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.limits.max_connections - self.slots.available_permits()
    }

    /// Accepts connections on `listener` within these limits.
    pub(crate) fn acceptor(self: &Arc<Self>, listener: tokio::net::TcpListener) -> Acceptor {
        Acceptor::new(listener, self.clone())
    }
}
