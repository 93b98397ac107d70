//! End-to-end tests of the connection limits against the real `wasilock` binary: clients
//! that send half a request head (or half the HTTP/2 preface) and then nothing are closed
//! after `--read-header-timeout` while other clients are served; idle keep-alive and gRPC
//! connections are closed after `--idle-timeout` and not at the head timeout; with few
//! descriptors the connection bound keeps `accept` from failing, and when `accept` does
//! fail (no descriptors left) the host backs off (little CPU), logs the burst once, and
//! recovers by itself; the soft descriptor limit is raised to the hard one at start-up.

use wasilock_testkit as common;

use common::{Host, Options};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use wasilock::api::grpc::proto::GetMetadataRequest;
use wasilock::api::grpc::proto::dapr_client::DaprClient;

/// Half a request head: a request line and part of a header, never the blank line.
const HALF_HEAD: &[u8] =
    b"POST /v1.0-alpha1/lock/lockstore HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appl";

/// Half of the HTTP/2 connection preface.
const HALF_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nS";

/// How long any one normal request may take, however loaded the host: generous on purpose.
const REQUEST_DEADLINE: Duration = Duration::from_secs(10);

/// A client connection that sent a few bytes and then nothing.
struct Stalled {
    stream: TcpStream,
    opened: Instant,
}

/// Opens `count` connections to `address` that each send `bytes` and stall.
fn stall(address: &str, bytes: &[u8], count: usize) -> Vec<Stalled> {
    (0..count)
        .map(|i| {
            let opened = Instant::now();
            let mut stream = TcpStream::connect(address)
                .unwrap_or_else(|e| panic!("connection {i} to {address}: {e}"));
            stream.write_all(bytes).expect("send the first bytes");
            Stalled { stream, opened }
        })
        .collect()
}

/// Waits until the host closes `stream` (end of stream, or a reset); returns when that
/// was seen and how many bytes the host sent before.
fn wait_closed(stream: &mut TcpStream, deadline: Instant) -> (Instant, usize) {
    let mut sent = 0;
    let mut buffer = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the host did not close the connection");
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buffer) {
            Ok(0) => return (Instant::now(), sent),
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return (Instant::now(), sent),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("the host did not close the connection in time")
            }
            Err(e) => panic!("reading from the host: {e}"),
        }
    }
}

/// Whether `stream` is still open after `wait` without a byte from the host.
fn still_open_after(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Err(e) => matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        // Closed (0), or a byte the host should not have sent.
        Ok(_closed_or_sent) => false,
    }
}

/// The host's `host:port`, from its base URL.
fn http_address(host: &Host) -> String {
    host.base.trim_start_matches("http://").to_string()
}

/// An HTTP client whose every request must finish within [`REQUEST_DEADLINE`].
fn impatient_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(REQUEST_DEADLINE))
        .build()
        .into()
}

/// One lock and its unlock over HTTP, each within [`REQUEST_DEADLINE`].
fn lock_and_unlock(agent: &ureq::Agent, host_base: &str, resource: &str) {
    let locked = common::try_lock(agent, host_base, "lockstore", resource, "me", 30);
    assert_eq!(locked, Ok(true), "TryLock of {resource}");
    let unlocked = common::unlock(agent, host_base, "lockstore", resource, "me");
    assert_eq!(unlocked, Ok(0), "Unlock of {resource}");
}

/// `GetMetadata` over gRPC on a new connection, within [`REQUEST_DEADLINE`].
fn grpc_metadata(runtime: &tokio::runtime::Runtime, address: &str) {
    runtime.block_on(async {
        let call = async {
            let channel = tonic::transport::Channel::from_shared(format!("http://{address}"))?
                .connect()
                .await?;
            let mut client = DaprClient::new(channel);
            client.get_metadata(GetMetadataRequest {}).await?;
            Ok::<_, Box<dyn std::error::Error>>(())
        };
        match tokio::time::timeout(REQUEST_DEADLINE, call).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("GetMetadata failed: {e}"),
            Err(_) => panic!("GetMetadata took longer than {REQUEST_DEADLINE:?}"),
        }
    });
}

/// CPU time (user and system) the process `pid` has used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // Fields after the command name, which ends with the last ')': state is field 3, so
    // utime (14) and stime (15) are the 12th and 13th.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let output = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    let per_second: u64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap();
    Duration::from_millis(ticks * 1000 / per_second)
}

/// The share of one core the process `pid` uses over the next `window`.
fn cpu_share(pid: u32, window: Duration) -> f64 {
    let (before, started) = (cpu_time(pid), Instant::now());
    std::thread::sleep(window);
    let used = cpu_time(pid) - before;
    used.as_secs_f64() / started.elapsed().as_secs_f64()
}

/// Lines of the host's stderr that contain `text`.
fn log_lines(host: &Host, text: &str) -> usize {
    host.stderr
        .lock()
        .unwrap()
        .lines()
        .filter(|l| l.contains(text))
        .count()
}

/// Waits until the host has logged `text`.
fn wait_logged(host: &Host, text: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while log_lines(host, text) == 0 {
        assert!(
            Instant::now() < deadline,
            "the host never logged {text:?}; stderr:\n{}",
            host.stderr.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `prlimit` from util-linux, which sets the descriptor limit of the hosts.
fn prlimit() -> Option<PathBuf> {
    let found = if common::available("prlimit") {
        Ok(PathBuf::from("prlimit"))
    } else {
        Err("`prlimit --version` does not run (util-linux)".to_string())
    };
    common::installs::required(&found, "prlimit")
}

/// A host started through `prlimit --nofile=SOFT:HARD`.
fn host_with_descriptors(prlimit: &Path, soft: u64, hard: u64, args: &[&str]) -> Host {
    let binary = common::binary();
    Host::start_with(
        Options::new()
            .program(prlimit)
            .args([
                format!("--nofile={soft}:{hard}"),
                binary.display().to_string(),
            ])
            .args(args.iter().copied()),
    )
}

#[test]
fn half_open_connections_are_closed_after_the_header_timeout_while_others_are_served() {
    let host = Host::start_with(
        Options::new()
            .args(["--read-header-timeout", "1s", "--idle-timeout", "60s"])
            .log_level("info"),
    );
    let header_timeout = Duration::from_secs(1);
    let mut stalled = stall(&http_address(&host), HALF_HEAD, 1500);
    let mut stalled_grpc = stall(&host.grpc, HALF_PREFACE, 500);

    // Normal clients, HTTP and gRPC, all the while the stalled ones are open.
    let stop = AtomicBool::new(false);
    let served = AtomicUsize::new(0);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let agent = impatient_agent();
            let mut round = 0;
            while !stop.load(Ordering::Relaxed) {
                lock_and_unlock(&agent, &host.base, &format!("r{round}"));
                grpc_metadata(&runtime, &host.grpc);
                served.fetch_add(1, Ordering::Relaxed);
                round += 1;
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        for connection in &mut stalled {
            let (closed, sent) = wait_closed(&mut connection.stream, deadline);
            assert!(closed - connection.opened >= header_timeout);
            assert_eq!(sent, 0, "the host answers nothing to half a head, as daprd");
        }
        for connection in &mut stalled_grpc {
            let (closed, _) = wait_closed(&mut connection.stream, deadline);
            assert!(closed - connection.opened >= header_timeout);
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert!(served.load(Ordering::Relaxed) > 0, "no normal request ran");
    lock_and_unlock(&impatient_agent(), &host.base, "after");
}

#[test]
fn idle_connections_are_closed_after_the_idle_timeout_not_the_header_timeout() {
    let (header_timeout, idle_timeout) = (Duration::from_secs(1), Duration::from_secs(6));
    let host = Host::start_with(Options::new().args([
        "--read-header-timeout",
        "1s",
        "--idle-timeout",
        "6s",
    ]));

    // HTTP/1.1 keep-alive: a request, then nothing.
    let mut stream = TcpStream::connect(http_address(&host)).unwrap();
    let sent = Instant::now();
    stream
        .write_all(b"GET /v1.0/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut response = Vec::new();
    let mut buffer = [0u8; 1024];
    while !response.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut buffer).unwrap();
        assert!(n > 0, "the host closed before it answered");
        response.extend_from_slice(&buffer[..n]);
    }
    assert!(response.starts_with(b"HTTP/1.1 204"), "{response:?}");
    assert!(
        still_open_after(&mut stream, 3 * header_timeout),
        "an idle keep-alive connection was closed at the header timeout"
    );
    let (closed, _) = wait_closed(&mut stream, Instant::now() + Duration::from_secs(20));
    assert!(closed - sent >= idle_timeout);

    // gRPC: one connection with a call and one with none.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use http_body_util::BodyExt;
        let io = |stream| hyper_util::rt::TokioIo::new(stream);
        let executor = hyper_util::rt::TokioExecutor::new();

        let silent_opened = Instant::now();
        let silent = tokio::net::TcpStream::connect(&host.grpc).await.unwrap();
        let (_sender, silent) = hyper::client::conn::http2::handshake::<
            _,
            _,
            http_body_util::Empty<bytes::Bytes>,
        >(executor.clone(), io(silent))
        .await
        .expect("an HTTP/2 handshake");
        let silent = tokio::spawn(silent);

        let busy = tokio::net::TcpStream::connect(&host.grpc).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http2::handshake(executor, io(busy))
            .await
            .expect("an HTTP/2 handshake");
        let mut connection = tokio::spawn(connection);
        let call = hyper::Request::post(format!(
            "http://{}/dapr.proto.runtime.v1.Dapr/GetMetadata",
            host.grpc
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            &[0; 5],
        )))
        .unwrap();
        let called = Instant::now();
        let answer = sender.send_request(call).await.expect("a gRPC answer");
        assert_eq!(answer.status(), 200);
        let body = answer
            .into_body()
            .collect()
            .await
            .expect("the answer's body");
        let trailers = body.trailers().expect("gRPC trailers");
        assert_eq!(trailers.get("grpc-status").unwrap(), "0");

        let silent_ended = tokio::time::timeout(Duration::from_secs(20), silent).await;
        assert!(
            silent_ended.is_ok(),
            "a connection with no call stayed open"
        );
        let silent_for = silent_opened.elapsed();
        assert!(silent_for >= header_timeout);
        assert!(
            silent_for < idle_timeout,
            "a connection with no call waited for the idle timeout: {silent_for:?}"
        );

        let early = tokio::time::timeout(3 * header_timeout, &mut connection).await;
        assert!(
            early.is_err(),
            "an idle gRPC connection closed at the header timeout"
        );
        let ended = tokio::time::timeout(Duration::from_secs(20), &mut connection).await;
        assert!(ended.is_ok(), "an idle gRPC connection stayed open");
        assert!(called.elapsed() >= idle_timeout);
    });
}

#[test]
fn with_few_descriptors_the_bound_keeps_accept_working_and_the_host_recovers() {
    let Some(prlimit) = prlimit() else { return };
    let host = host_with_descriptors(&prlimit, 256, 256, &["--read-header-timeout", "5s"]);
    wait_logged(
        &host,
        "at most 192 connections at once",
        Duration::from_secs(5),
    );

    // More connections than descriptors: 192 are taken, the rest wait in the backlog.
    let mut stalled = stall(&http_address(&host), HALF_HEAD, 300);
    let full = "connections open (--max-connections)";
    wait_logged(&host, full, Duration::from_secs(10));
    let share = cpu_share(host.pid(), Duration::from_secs(3));
    eprintln!("CPU while full: {:.1} % of a core", share * 100.0);
    assert!(share < 0.10, "{:.1} % of a core while full", share * 100.0);

    // A normal client waits in the backlog and is served once stalled ones time out.
    let agent = common::agent();
    let locked = common::try_lock(&agent, &host.base, "lockstore", "r", "me", 30);
    assert_eq!(locked, Ok(true));
    let deadline = Instant::now() + Duration::from_secs(30);
    for connection in &mut stalled {
        wait_closed(&mut connection.stream, deadline);
    }
    lock_and_unlock(&impatient_agent(), &host.base, "after");

    let below = "below --max-connections again";
    wait_logged(&host, below, Duration::from_secs(10));
    assert_eq!(log_lines(&host, full), 1, "one line for the whole burst");
    assert_eq!(log_lines(&host, below), 1);
    assert_eq!(log_lines(&host, "cannot accept connections"), 0);
}

#[test]
fn when_accept_fails_the_host_backs_off_logs_once_and_recovers() {
    let Some(prlimit) = prlimit() else { return };
    let host = Host::start_with(Options::new().args(["--read-header-timeout", "60s"]));
    // Leave the running host 30 descriptors beyond those it holds.
    let pid = host.pid();
    let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let limit = open + 30;
    let lowered = Command::new(&prlimit)
        .args([
            "--pid",
            &pid.to_string(),
            &format!("--nofile={limit}:{limit}"),
        ])
        .status()
        .unwrap();
    assert!(lowered.success());

    let stalled = stall(&http_address(&host), HALF_HEAD, 100);
    let failing = "cannot accept connections";
    wait_logged(&host, failing, Duration::from_secs(10));
    let share = cpu_share(pid, Duration::from_secs(3));
    eprintln!("CPU while accept fails: {:.1} % of a core", share * 100.0);
    assert!(
        share < 0.10,
        "{:.1} % of a core while accept fails",
        share * 100.0
    );
    assert_eq!(log_lines(&host, failing), 1, "one line for the whole burst");

    // The stalled clients leave: descriptors come back and the host accepts again.
    drop(stalled);
    lock_and_unlock(&impatient_agent(), &host.base, "after");
    let again = "accepting connections again after";
    wait_logged(&host, again, Duration::from_secs(10));
    assert_eq!(log_lines(&host, failing), 1);
    assert_eq!(log_lines(&host, again), 1);
}

#[test]
fn the_soft_descriptor_limit_is_raised_to_the_hard_one() {
    let Some(prlimit) = prlimit() else { return };
    let host = host_with_descriptors(&prlimit, 256, 4096, &[]);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", host.pid())).unwrap();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let values: Vec<&str> = open_files.split_whitespace().skip(3).take(2).collect();
    assert_eq!(values, ["4096", "4096"], "{open_files}");
    wait_logged(
        &host,
        "at most 4032 connections at once",
        Duration::from_secs(5),
    );
}
