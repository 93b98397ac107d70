//! Loopback ports for the servers the kit starts: a free one, and waiting for one to listen.

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A loopback port that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Waits until something listens on the loopback `port`, for at most `patience`; `what` is
/// the server, for the failure.
pub(crate) fn wait_for_port(port: u16, what: &str, patience: Duration) {
    let deadline = Instant::now() + patience;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
