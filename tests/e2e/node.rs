//! End-to-end: Node.js (jco) hosting the lock component, as `examples/node/` documents it.
//!
//! The Node.js host must answer every request exactly as ours does (status, content type and
//! body), pass Dapr's conformance sequence with its own store and clock, and give the
//! component's answer to a body over its bound.

use wasilock_testkit as common;

use common::http_cases::{self, HttpCase, http_cases, replay};
use common::node_host::NodeHost;
use common::sequences::{HttpLockClient, conformance_sequence_with};
use common::{Host, Options, component, resources};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const LOCK: &str = "/v1.0-alpha1/lock/lockstore";

/// Our host with the lock stores in `dir`.
fn our_host(dir: &tempfile::TempDir, extra: &[&str]) -> Host {
    let path = dir.path().to_str().unwrap();
    Host::start_with(
        Options::new()
            .args(["--resources-path", path])
            .args(extra.iter().copied()),
    )
}

/// Replays `cases` against both hosts and asserts equal answers, case by case.
fn assert_same_answers(node: &NodeHost, ours: &Host, cases: &[HttpCase]) {
    let stderr = || format!("; node's stderr:\n{}", node.stderr.lock().unwrap());
    http_cases::assert_same_answers(&node.base, &ours.base, cases, stderr);
}

#[test]
fn every_answer_is_our_hosts_byte_for_byte() {
    let Some(node) = NodeHost::start(&[]) else {
        return;
    };
    let stores = resources(&[(
        "lockstore.yaml",
        &component("lockstore", "lock.in-memory", &[]),
    )]);
    let ours = our_host(&stores, &[]);
    assert_same_answers(&node, &ours, &http_cases());
    // Health checks are the host's own answers.
    let health: Vec<HttpCase> = ["/v1.0/healthz", "/v1.0/healthz/outbound"]
        .map(|path| HttpCase {
            method: "GET",
            path: path.to_string(),
            body: String::new(),
        })
        .into();
    assert_same_answers(&node, &ours, &health);
    for answer in replay(&node.base, &health) {
        assert_eq!((answer.status, answer.body.as_str()), (204, ""));
    }
}

#[test]
fn without_stores_every_answer_is_our_hosts_byte_for_byte() {
    let Some(node) = NodeHost::start(&["--stores", ""]) else {
        return;
    };
    let none = resources(&[]);
    let ours = our_host(&none, &[]);
    assert!(
        ours.banner().contains("no lock stores"),
        "{}",
        ours.banner()
    );
    let cases = http_cases();
    assert_same_answers(&node, &ours, &cases);
    // The refusal for a missing store is among them.
    let answers = replay(&node.base, &cases[..1]);
    assert_eq!(answers[0].status, 500, "{answers:?}");
    assert!(
        answers[0].body.contains("ERR_LOCK_STORE_NOT_CONFIGURED"),
        "{answers:?}"
    );
}

#[test]
fn conformance_sequence_with_the_javascript_store_and_clock() {
    let Some(node) = NodeHost::start(&["--stores", "lockstore,other"]) else {
        return;
    };
    let client = HttpLockClient::new(&node.base);
    conformance_sequence_with(&client, "lockstore");
    conformance_sequence_with(&client, "other");
}

#[test]
fn a_body_over_the_bound_gets_the_components_413() {
    let Some(node) = NodeHost::start(&["--max-body-size", "1024"]) else {
        return;
    };
    let stores = resources(&[(
        "lockstore.yaml",
        &component("lockstore", "lock.in-memory", &[]),
    )]);
    let ours = our_host(&stores, &["--max-body-size", "1Ki"]);
    let json = r#"{"resourceId":"r","lockOwner":"a","expiryInSeconds":5}"#;
    let padded = |size: usize| format!("{json}{}", " ".repeat(size - json.len()));
    let (at_bound, chunked) = (padded(1024), padded(4096));
    let requests = [
        sized(&at_bound, at_bound.len()),
        // Declared over the bound: answered before any of the body is sent.
        sized("", 1 << 20),
        chunks(&chunked),
    ];
    let mut answers = Vec::new();
    for request in &requests {
        let answer = exchange(&node.base, request);
        let shown = String::from_utf8_lossy(&request[..request.len().min(200)]);
        assert_eq!(answer, exchange(&ours.base, request), "{shown}");
        answers.push(answer);
    }
    assert_eq!(answers[0], (200, r#"{"success":true}"#.to_string()));
    for (status, body) in &answers[1..] {
        assert_eq!(*status, 413, "{body}");
        assert!(body.contains("larger than 1024 bytes"), "{body}");
    }
}

/// A lock request declaring `length` bytes and carrying `body`.
fn sized(body: &str, length: usize) -> Vec<u8> {
    format!("POST {LOCK} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n{body}")
        .into_bytes()
}

/// A lock request carrying `body` in chunks of 500 bytes.
fn chunks(body: &str) -> Vec<u8> {
    let mut request =
        format!("POST {LOCK} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            .into_bytes();
    for chunk in body.as_bytes().chunks(500) {
        request.extend(format!("{:x}\r\n", chunk.len()).bytes());
        request.extend(chunk);
        request.extend(b"\r\n");
    }
    request.extend(b"0\r\n\r\n");
    request
}

/// Sends `request` on a new connection and reads one answer: status and body (sized by
/// `Content-Length`). The host may answer before reading the whole body and close, so
/// writing may fail once the head is sent.
fn exchange(base: &str, request: &[u8]) -> (u16, String) {
    let mut socket = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head_end = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    socket.write_all(&request[..head_end]).unwrap();
    let _ = socket.write_all(&request[head_end..]);
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        if let Some(answer) = parse_answer(&received) {
            return answer;
        }
        match socket.read(&mut buffer) {
            Ok(0) | Err(_) => panic!(
                "incomplete answer: {:?}",
                String::from_utf8_lossy(&received)
            ),
            Ok(n) => received.extend(&buffer[..n]),
        }
    }
}

/// Status and body of a complete answer in `bytes`, or `None` while it is incomplete.
fn parse_answer(bytes: &[u8]) -> Option<(u16, String)> {
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&bytes[..head_end]).expect("a text head");
    let status = head.get(9..12)?.parse().expect("a status code");
    let length: usize = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, value)| value.trim().parse().expect("a length"));
    let body = bytes.get(head_end..head_end + length)?;
    Some((
        status,
        String::from_utf8(body.to_vec()).expect("a text body"),
    ))
}
