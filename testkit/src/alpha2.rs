//! A client of the alpha2 lock API (`/v1.0-alpha2/lock/{store}/{resourceId}`): plain calls
//! over keep-alive HTTP, and a lock held by an ND-JSON stream on a socket of its own, so a
//! test can read its lines and drop the connection.

use crate::host::{Reply, reply_of};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A grant as the API answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The lock ID.
    pub lock_id: String,
    /// The fencing token.
    pub fencing_token: u64,
    /// The TTL, as written (`"30s"`).
    pub ttl: String,
}

impl Grant {
    /// The grant in a 200 answer (or a stream's `lock-acquired` line); panics otherwise.
    pub fn from_json(body: &str) -> Grant {
        let value: serde_json::Value = serde_json::from_str(body).expect("a JSON grant");
        Grant {
            lock_id: value["lockID"].as_str().expect("lockID").to_owned(),
            fencing_token: value["fencingToken"]
                .as_str()
                .expect("fencingToken as a string")
                .parse()
                .expect("a u64 token"),
            ttl: value["ttl"].as_str().expect("ttl").to_owned(),
        }
    }
}

/// The alpha2 API of the host at `base` (`http://127.0.0.1:PORT`).
#[derive(Clone)]
pub struct Alpha2 {
    base: String,
    agent: ureq::Agent,
    headers: Vec<(String, String)>,
}

impl Alpha2 {
    /// A client of the host at `base`.
    pub fn new(base: &str) -> Self {
        Alpha2 {
            base: base.to_owned(),
            agent: crate::host::agent(),
            headers: Vec::new(),
        }
    }

    /// Sends `dapr-api-token: token` with every request.
    pub fn with_token(mut self, token: &str) -> Self {
        self.headers.push(("dapr-api-token".into(), token.into()));
        self
    }

    fn url(&self, store: &str, resource: &str) -> String {
        format!("{}/v1.0-alpha2/lock/{store}/{resource}", self.base)
    }

    /// Sends `method` with `body` (none for `GET`).
    pub fn call(&self, method: &str, store: &str, resource: &str, body: &str) -> Reply {
        let url = self.url(store, resource);
        let request = ureq::http::Request::builder().method(method).uri(&url);
        let request = self
            .headers
            .iter()
            .fold(request, |r, (name, value)| r.header(name, value));
        let request = request.body(body.to_owned()).expect("a valid request");
        let mut response = self.agent.run(request).expect("an answer");
        reply_of(&mut response).expect("a readable answer")
    }

    /// `POST` (acquire) with `body`.
    pub fn acquire(&self, store: &str, resource: &str, body: &str) -> Reply {
        self.call("POST", store, resource, body)
    }

    /// `POST` expecting a grant; panics on anything else.
    pub fn grant(&self, store: &str, resource: &str, body: &str) -> Grant {
        let reply = self.acquire(store, resource, body);
        assert_eq!(reply.status, 200, "{reply:?}");
        Grant::from_json(&reply.body)
    }

    /// `PUT` (renew) `lock_id` for `ttl`.
    pub fn renew(&self, store: &str, resource: &str, lock_id: &str, ttl: &str) -> Reply {
        let body = serde_json::json!({"lockID": lock_id, "ttl": ttl}).to_string();
        self.call("PUT", store, resource, &body)
    }

    /// `DELETE` (release) `lock_id`.
    pub fn release(&self, store: &str, resource: &str, lock_id: &str) -> Reply {
        let body = serde_json::json!({ "lockID": lock_id }).to_string();
        self.call("DELETE", store, resource, &body)
    }

    /// `DELETE` with `{"force":true}`.
    pub fn force_release(&self, store: &str, resource: &str) -> Reply {
        self.call("DELETE", store, resource, r#"{"force":true}"#)
    }

    /// `GET` (inspect).
    pub fn inspect(&self, store: &str, resource: &str) -> Reply {
        self.call("GET", store, resource, "")
    }

    /// Opens a lock held by a stream: `POST` with `Accept: application/x-ndjson` on a
    /// connection of its own. Nothing is read yet.
    pub fn stream(&self, store: &str, resource: &str, body: &str) -> LockStream {
        let address = self.base.strip_prefix("http://").expect("an http:// base");
        let mut socket = TcpStream::connect(address).expect("connect");
        socket
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("a read timeout");
        let mut head = format!(
            "POST /v1.0-alpha2/lock/{store}/{resource} HTTP/1.1\r\nHost: {address}\r\nAccept: application/x-ndjson\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        socket.write_all(head.as_bytes()).expect("send the head");
        socket.write_all(body.as_bytes()).expect("send the body");
        LockStream {
            reader: BufReader::new(socket),
            status: None,
        }
    }
}

/// A lock held by an ND-JSON stream; dropping it closes the connection (the host releases).
pub struct LockStream {
    reader: BufReader<TcpStream>,
    status: Option<u16>,
}

impl LockStream {
    /// The answer's status (reads the head on first use).
    pub fn status(&mut self) -> u16 {
        if let Some(status) = self.status {
            return status;
        }
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("a status line");
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("a status line: {line:?}"));
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("a header line");
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        self.status = Some(status);
        status
    }

    /// The next JSON line of the body (chunk sizes skipped); `None` when it ended.
    pub fn next_line(&mut self) -> Option<String> {
        self.status();
        let mut line = String::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let text = line.trim();
            if text.starts_with('{') {
                return Some(text.to_owned());
            }
            if text == "0" {
                return None;
            }
        }
    }
}
