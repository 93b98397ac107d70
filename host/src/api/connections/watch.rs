//! Each connection's clock: [`Connection`] wraps the socket and fails its pending read with
//! `TimedOut` once the connection has waited too long for its client, which makes hyper
//! close it (silently, as daprd does). The server counts the requests in flight with
//! [`Activity::begin`] (HTTP) or [`TrackRequestsLayer`] (gRPC); while one is in flight no
//! clock runs. Otherwise:
//! - a request head is awaited: from accept for the first request; on HTTP/1.1 also from
//!   the first byte after a request → deadline `read_header_timeout` after that instant;
//! - else the connection is idle since its last request ended → `idle_timeout` after that.
//!
//! HTTP/2 bytes between requests (pings, window updates) start no head clock: only
//! requests count.

use super::{ConnectionLimits, poll_read_added};
use crate::api::tls::PeerCertificate;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

/// How requests are framed on a connection, which decides what starts a head clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1: any byte between requests starts the next request's head.
    Http1,
    /// HTTP/2 (gRPC): only the first request is timed from accept.
    Http2,
}

/// An accepted socket under its clocks; it holds its connection slot until dropped.
pub struct Connection {
    stream: TcpStream,
    activity: Arc<Activity>,
    timer: Pin<Box<Sleep>>,
    armed: Instant,
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    /// Watches `stream`, accepted now, under `limits`.
    pub(super) fn new(
        stream: TcpStream,
        slot: OwnedSemaphorePermit,
        limits: ConnectionLimits,
        protocol: Protocol,
    ) -> Connection {
        let now = Instant::now();
        Connection {
            stream,
            activity: Arc::new(Activity {
                state: Mutex::new(State::new(now)),
                limits,
                http1: AtomicBool::new(protocol == Protocol::Http1),
            }),
            timer: Box::pin(tokio::time::sleep_until(now)),
            armed: now,
            _slot: slot,
        }
    }

    /// The requests in flight on this connection, for the server to count them.
    pub fn activity(&self) -> &Arc<Activity> {
        &self.activity
    }

    /// With the socket's read pending: waits for the deadline, if there is one.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some((deadline, what)) = self.activity.deadline_or_wake(cx.waker()) else {
            return Poll::Pending;
        };
        if deadline != self.armed {
            self.timer.as_mut().reset(deadline);
            self.armed = deadline;
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("closed: {what}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match poll_read_added(Pin::new(&mut this.stream), cx, buf) {
            Poll::Pending => this.poll_deadline(cx),
            Poll::Ready(Ok(added)) => {
                if !added.is_empty() {
                    this.activity.received();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        }
    }
}

delegate_async_write!(Connection => stream);

/// tonic hands this to every request of the connection (in its extensions), so that
/// [`TrackRequestsLayer`] can count them.
impl tonic::transport::server::Connected for Connection {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> ConnectionInfo {
        ConnectionInfo {
            activity: self.activity.clone(),
            peer: None,
        }
    }
}

/// What tonic hands every request of a connection (in its extensions).
#[derive(Clone, Debug)]
pub struct ConnectionInfo {
    /// The requests in flight on the connection.
    pub(crate) activity: Arc<Activity>,
    /// The client's certificate, over mutual TLS.
    pub peer: Option<Arc<PeerCertificate>>,
}

/// The requests in flight on one connection, and what its clock measures.
#[derive(Debug)]
pub struct Activity {
    state: Mutex<State>,
    limits: ConnectionLimits,
    /// Whether the connection speaks HTTP/1.1 (else HTTP/2), which decides what starts a
    /// head clock; TLS settles it after the handshake (ALPN).
    http1: AtomicBool,
}

/// A request in flight; it ends when dropped.
#[must_use = "the request ends when this is dropped"]
pub struct Busy(Arc<Activity>);

impl Activity {
    /// A request has started (its head was read); it ends when the guard is dropped.
    pub fn begin(self: &Arc<Self>) -> Busy {
        self.lock().begin();
        Busy(self.clone())
    }

    /// The connection speaks `protocol` from now on (as ALPN chose).
    pub fn speak(&self, protocol: Protocol) {
        self.http1
            .store(protocol == Protocol::Http1, Ordering::Relaxed);
    }

    fn received(&self) {
        if self.http1.load(Ordering::Relaxed) {
            self.lock().received(Instant::now());
        }
    }

    /// The deadline and what it bounds; with none (a request in flight), remembers `waker`
    /// to be woken when the last request ends.
    fn deadline_or_wake(&self, waker: &Waker) -> Option<(Instant, &'static str)> {
        let mut state = self.lock();
        let deadline = state.deadline(&self.limits);
        if deadline.is_none() && state.in_flight > 0 {
            match &state.reader {
                Some(known) if known.will_wake(waker) => {}
                _ => state.reader = Some(waker.clone()),
            }
        }
        deadline
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let reader = self.0.lock().end(Instant::now());
        if let Some(reader) = reader {
            reader.wake();
        }
    }
}

/// What a connection is doing, in instants: the part of [`Activity`] that decides.
#[derive(Debug)]
struct State {
    in_flight: u32,
    /// When the awaited request head's clock started, if one is awaited.
    head_since: Option<Instant>,
    /// When the last request ended.
    idle_since: Instant,
    /// The connection's reader, to wake when the last request ends (its clock restarts).
    reader: Option<Waker>,
}

impl State {
    fn new(accepted: Instant) -> State {
        State {
            in_flight: 0,
            head_since: Some(accepted),
            idle_since: accepted,
            reader: None,
        }
    }

    fn begin(&mut self) {
        self.in_flight += 1;
        self.head_since = None;
    }

    /// Ends a request; returns the reader to wake when it was the last one.
    fn end(&mut self, now: Instant) -> Option<Waker> {
        self.in_flight = self.in_flight.saturating_sub(1);
        if self.in_flight > 0 {
            return None;
        }
        self.idle_since = now;
        self.reader.take()
    }

    /// Bytes arrived on an HTTP/1.1 connection.
    fn received(&mut self, now: Instant) {
        if self.in_flight == 0 && self.head_since.is_none() {
            self.head_since = Some(now);
        }
    }

    fn deadline(&self, limits: &ConnectionLimits) -> Option<(Instant, &'static str)> {
        if self.in_flight > 0 {
            return None;
        }
        match self.head_since {
            Some(since) => after(since, limits.read_header_timeout)
                .map(|at| (at, "no complete request head within --read-header-timeout")),
            None => after(self.idle_since, limits.idle_timeout)
                .map(|at| (at, "idle for --idle-timeout")),
        }
    }
}

fn after(since: Instant, timeout: Option<Duration>) -> Option<Instant> {
    timeout.map(|timeout| since + timeout)
}

/// A tower layer that counts each request as in flight on its connection until its
/// response is ready (gRPC calls are unary here, so the body follows at once).
#[derive(Clone, Copy, Debug, Default)]
pub struct TrackRequestsLayer;

impl<S> tower::Layer<S> for TrackRequestsLayer {
    type Service = TrackRequests<S>;

    fn layer(&self, inner: S) -> TrackRequests<S> {
        TrackRequests(inner)
    }
}

/// The service of [`TrackRequestsLayer`].
#[derive(Clone, Debug)]
pub struct TrackRequests<S>(S);

impl<S, B> tower::Service<hyper::Request<B>> for TrackRequests<S>
where
    S: tower::Service<hyper::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: hyper::Request<B>) -> Self::Future {
        let busy = request
            .extensions()
            .get::<ConnectionInfo>()
            .map(|info| info.activity.begin());
        let response = self.0.call(request);
        Box::pin(async move {
            let response = response.await;
            drop(busy);
            response
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(120);

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            read_header_timeout: Some(HEAD),
            idle_timeout: Some(IDLE),
            max_connections: 1,
        }
    }

    /// A connection's state, accepted now, and that instant.
    fn accepted() -> (Instant, State) {
        let accepted = Instant::now();
        (accepted, State::new(accepted))
    }

    fn at(state: &State) -> Option<Instant> {
        state.deadline(&limits()).map(|(at, _)| at)
    }

    #[test]
    fn the_first_request_head_is_timed_from_accept() {
        let (accepted, state) = accepted();
        assert_eq!(at(&state), Some(accepted + HEAD));
    }

    #[test]
    fn no_clock_runs_while_a_request_is_in_flight() {
        let (accepted, mut state) = accepted();
        state.begin();
        state.begin();
        assert_eq!(at(&state), None);
        state.end(accepted + HEAD);
        assert_eq!(at(&state), None, "one of two requests is still in flight");
        state.end(accepted + IDLE);
        assert_eq!(at(&state), Some(accepted + IDLE + IDLE));
    }

    #[test]
    fn a_later_head_is_timed_from_its_first_byte() {
        let (accepted, mut state) = accepted();
        state.begin();
        let ended = accepted + Duration::from_secs(1);
        state.end(ended);
        assert_eq!(at(&state), Some(ended + IDLE));
        let first_byte = ended + Duration::from_secs(30);
        state.received(first_byte);
        state.received(first_byte + Duration::from_secs(5));
        assert_eq!(at(&state), Some(first_byte + HEAD));
    }

    #[test]
    fn bytes_of_a_request_in_flight_start_no_clock() {
        let (accepted, mut state) = accepted();
        state.begin();
        state.received(accepted + Duration::from_secs(1));
        let ended = accepted + Duration::from_secs(2);
        state.end(ended);
        assert_eq!(at(&state), Some(ended + IDLE));
    }

    #[test]
    fn a_disabled_timeout_sets_no_deadline() {
        let (accepted, mut state) = accepted();
        let unlimited = ConnectionLimits {
            read_header_timeout: None,
            idle_timeout: None,
            max_connections: 1,
        };
        assert_eq!(state.deadline(&unlimited), None);
        state.begin();
        state.end(accepted);
        assert_eq!(state.deadline(&unlimited), None);
    }

    #[test]
    fn the_last_request_to_end_wakes_the_reader() {
        let (accepted, mut state) = accepted();
        state.begin();
        state.begin();
        state.reader = Some(Waker::noop().clone());
        assert!(state.end(accepted).is_none());
        assert!(state.end(accepted).is_some());
    }
}
