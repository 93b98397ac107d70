//! The load generator: keep-alive HTTP/1.1 connections or gRPC (HTTP/2) channels, each
//! sending lock+unlock pairs (or, over HTTP, only locks to fill a store), with every request's
//! latency in a histogram and the CPU use of the server and of the generator itself. Over
//! HTTP, a server that serves TLS gets HTTPS, on kept-alive connections or on a new
//! connection (a full handshake) per request. A paced run sends at a fixed rate instead of
//! as fast as the server answers.

use crate::machine::{CpuMeter, CpuUse};
use crate::servers::Server;
use crate::stats::Sample;
use anyhow::{Context, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tonic::transport::Channel;
use wasilock::api::grpc::proto::dapr_client::DaprClient;
use wasilock::api::grpc::proto::{TryLockRequest, UnlockRequest};

/// How the load reaches the server.
#[derive(Clone, Copy, Debug)]
pub enum Protocol {
    /// `POST /v1.0-alpha1/lock|unlock/{store}` over HTTP/1.1 keep-alive connections.
    Http,
    /// As [`Protocol::Http`], on a new connection for every request (`connection: close`,
    /// so that the server closes first and keeps the `TIME_WAIT`s).
    HttpPerRequest,
    /// `TryLockAlpha1` / `UnlockAlpha1`, one HTTP/2 channel per connection.
    Grpc,
    /// `GET /v1.0/state/{store}/{key}`, a call wasilock does not serve, over HTTP/1.1
    /// keep-alive connections: with `--dapr-upstream-http` it is forwarded; the native
    /// baseline (the upstream of the forwarding rows) answers `404 ERR_DIRECT_INVOKE`.
    Forwarded,
}

/// The native baseline's answer to a path that is not a lock route.
const DIRECT_INVOKE: &[u8] = br#"{"errorCode":"ERR_DIRECT_INVOKE","message":"failed getting app id either from the URL path or the header dapr-app-id"}"#;

/// The shape of every load run: connections, unmeasured warm-up, measured window.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Keep-alive connections (or gRPC channels).
    pub connections: usize,
    /// Unmeasured time before the window.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
}

/// What one connection counted: the answers to requests sent inside the measured window.
pub struct Tally {
    /// Requests answered as expected.
    pub requests: u64,
    /// Requests answered otherwise.
    pub errors: u64,
    /// Latency of each request answered as expected, in microseconds.
    pub latency: Histogram<u64>,
    /// Where the measured window starts.
    measure_from: Instant,
}

impl Tally {
    /// Nothing counted yet; requests sent before `measure_from` will not be.
    pub fn new(measure_from: Instant) -> Tally {
        Tally {
            requests: 0,
            errors: 0,
            latency: Histogram::new(3).expect("a histogram"),
            measure_from,
        }
    }

    /// Counts the answer (`ok`: as expected) to the request sent at `sent`.
    pub fn record(&mut self, sent: Instant, ok: bool) {
        if sent < self.measure_from {
            return;
        }
        if ok {
            self.requests += 1;
            let micros = sent.elapsed().as_micros() as u64;
            self.latency
                .record(micros.max(1))
                .expect("a latency in range");
        } else {
            self.errors += 1;
        }
    }
}

/// What one load run measured.
pub struct Measured {
    /// Requests answered as expected inside the measured window.
    pub requests: u64,
    /// Requests answered otherwise (wrong status or body, or a failed connection).
    pub errors: u64,
    /// The measured window.
    pub elapsed: Duration,
    /// Latency of each request, in microseconds.
    pub latency: Histogram<u64>,
    /// CPU use of the server and of the load generator over the window.
    pub cpu: CpuUse,
}

impl Measured {
    /// The sum of the connections' `tallies` over the window `elapsed`, with `cpu`.
    pub async fn total(
        tallies: Vec<tokio::task::JoinHandle<Tally>>,
        elapsed: Duration,
        cpu: CpuUse,
    ) -> anyhow::Result<Measured> {
        let mut total = Measured {
            requests: 0,
            errors: 0,
            elapsed,
            latency: Histogram::new(3)?,
            cpu,
        };
        for tally in tallies {
            let tally = tally.await?;
            total.requests += tally.requests;
            total.errors += tally.errors;
            total.latency.add(tally.latency)?;
        }
        Ok(total)
    }

    /// Requests per second.
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// A latency quantile in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    /// The figures of one round's row.
    pub fn sample(&self) -> Sample {
        Sample {
            rate: self.rate(),
            p50: self.quantile_ms(0.50),
            p99: self.quantile_ms(0.99),
            p999: Some(self.quantile_ms(0.999)),
            errors: self.errors,
            server_cpu: self.cpu.server,
            load_cpu: self.cpu.load,
        }
    }
}

/// One keep-alive connection to `address` (`host:port`).
pub async fn connect(address: &str) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    connect_over(address, None).await
}

/// One keep-alive connection to `address`, over TLS with `tls` (a full handshake).
async fn connect_over(
    address: &str,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(address)
        .await
        .with_context(|| format!("cannot connect to {address}"))?;
    stream.set_nodelay(true)?;
    match tls {
        None => http1(stream).await,
        Some(config) => {
            let name = rustls::pki_types::ServerName::try_from("127.0.0.1")?;
            let stream = tokio_rustls::TlsConnector::from(config.clone())
                .connect(name, stream)
                .await
                .with_context(|| format!("no TLS handshake with {address}"))?;
            http1(stream).await
        }
    }
}

/// An HTTP/1.1 client connection on `io`, driven by a task of its own.
async fn http1<IO>(io: IO) -> anyhow::Result<SendRequest<Full<Bytes>>>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// POSTs `body` to `path` (as the tenant of `token`, if any); true when the answer is 200
/// with exactly `expected`.
async fn post(
    sender: &mut SendRequest<Full<Bytes>>,
    path: &str,
    token: Option<&str>,
    body: String,
    expected: &[u8],
) -> anyhow::Result<bool> {
    let token = token.map(|token| ("dapr-api-token", token));
    post_with(sender, path, token.as_slice(), body, expected).await
}

/// POSTs `body` to `path` with extra `headers`; true when the answer is 200 with exactly
/// `expected`.
async fn post_with(
    sender: &mut SendRequest<Full<Bytes>>,
    path: &str,
    headers: &[(&str, &str)],
    body: String,
    expected: &[u8],
) -> anyhow::Result<bool> {
    let mut request = hyper::Request::post(path)
        .header("host", "127.0.0.1")
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(Bytes::from(body)))?;
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let answer = response.into_body().collect().await?.to_bytes();
    Ok(status == 200 && answer == expected)
}

/// One TryLock on a new connection; true when it was granted.
pub async fn try_lock_once(address: &str, store: &str) -> anyhow::Result<bool> {
    try_lock(address, store, None).await
}

/// One TryLock on a new connection as the tenant of `token`; true when it was granted.
pub async fn try_lock_as(address: &str, store: &str, token: &str) -> anyhow::Result<bool> {
    try_lock(address, store, Some(token)).await
}

async fn try_lock(address: &str, store: &str, token: Option<&str>) -> anyhow::Result<bool> {
    let mut sender = connect(address).await?;
    let body = r#"{"resourceId":"first","lockOwner":"me","expiryInSeconds":30}"#.to_string();
    let path = format!("/v1.0-alpha1/lock/{store}");
    post(&mut sender, &path, token, body, br#"{"success":true}"#).await
}

/// One connection's lock and unlock calls on its own resource, prepared once.
enum PairClient {
    Http {
        sender: SendRequest<Full<Bytes>>,
        token: Option<String>,
        pair: HttpPair,
    },
    /// A new connection (over TLS with `tls`) for every call.
    HttpPerRequest {
        address: String,
        tls: Option<Arc<rustls::ClientConfig>>,
        pair: HttpPair,
    },
    Grpc {
        client: DaprClient<Channel>,
        lock: TryLockRequest,
        unlock: UnlockRequest,
    },
    /// Both calls of the pair are the same forwarded `GET`.
    Forwarded {
        sender: SendRequest<Full<Bytes>>,
        path: String,
    },
}

/// The lock and the unlock request of one connection's pairs over HTTP: path and body.
struct HttpPair {
    lock: (String, String),
    unlock: (String, String),
}

impl HttpPair {
    /// The path, body and expected answer of a lock (`unlock` false) or an unlock.
    fn request(&self, unlock: bool) -> (&str, &String, &'static [u8]) {
        if unlock {
            (&self.unlock.0, &self.unlock.1, br#"{"status":0}"#)
        } else {
            (&self.lock.0, &self.lock.1, br#"{"success":true}"#)
        }
    }
}

impl PairClient {
    /// Connects connection number `n` to `address` (the server's address for `protocol`;
    /// HTTP over TLS with `tls`), as the tenant of `token` (HTTP only).
    async fn connect(
        protocol: Protocol,
        address: &str,
        tls: Option<&Arc<rustls::ClientConfig>>,
        token: Option<&str>,
        store: &str,
        n: usize,
    ) -> anyhow::Result<Self> {
        let (resource, owner) = (format!("bench-{n}"), format!("owner-{n}"));
        let lock = (
            format!("/v1.0-alpha1/lock/{store}"),
            serde_json::json!({
                "resourceId": resource, "lockOwner": owner, "expiryInSeconds": 30
            })
            .to_string(),
        );
        let unlock = (
            format!("/v1.0-alpha1/unlock/{store}"),
            serde_json::json!({ "resourceId": resource, "lockOwner": owner }).to_string(),
        );
        let pair = HttpPair { lock, unlock };
        Ok(match protocol {
            Protocol::Http => PairClient::Http {
                sender: connect_over(address, tls).await?,
                token: token.map(str::to_string),
                pair,
            },
            Protocol::HttpPerRequest => PairClient::HttpPerRequest {
                address: address.to_string(),
                tls: tls.cloned(),
                pair,
            },
            Protocol::Grpc => {
                let channel = Channel::from_shared(format!("http://{address}"))?
                    .tcp_nodelay(true)
                    .connect()
                    .await
                    .with_context(|| format!("cannot connect to {address}"))?;
                PairClient::Grpc {
                    client: DaprClient::new(channel),
                    lock: TryLockRequest {
                        store_name: store.into(),
                        resource_id: resource.clone(),
                        lock_owner: owner.clone(),
                        expiry_in_seconds: 30,
                    },
                    unlock: UnlockRequest {
                        store_name: store.into(),
                        resource_id: resource,
                        lock_owner: owner,
                    },
                }
            }
            Protocol::Forwarded => PairClient::Forwarded {
                sender: connect(address).await?,
                path: format!("/v1.0/state/{store}/{resource}"),
            },
        })
    }

    /// Locks (`unlock` false) or unlocks; true when granted or released.
    async fn call(&mut self, unlock: bool) -> anyhow::Result<bool> {
        match self {
            PairClient::Http {
                sender,
                token,
                pair,
            } => {
                let (path, body, expected) = pair.request(unlock);
                post(sender, path, token.as_deref(), body.clone(), expected).await
            }
            PairClient::HttpPerRequest { address, tls, pair } => {
                let (path, body, expected) = pair.request(unlock);
                let mut sender = connect_over(address, tls.as_ref()).await?;
                let close = [("connection", "close")];
                post_with(&mut sender, path, &close, body.clone(), expected).await
            }
            PairClient::Grpc {
                client,
                lock,
                unlock: release,
            } => Ok(if unlock {
                client
                    .unlock_alpha1(release.clone())
                    .await?
                    .into_inner()
                    .status
                    == 0
            } else {
                client
                    .try_lock_alpha1(lock.clone())
                    .await?
                    .into_inner()
                    .success
            }),
            PairClient::Forwarded { sender, path } => {
                let request = hyper::Request::get(path.as_str())
                    .header("host", "127.0.0.1")
                    .body(Full::new(Bytes::new()))?;
                sender.ready().await?;
                let response = sender.send_request(request).await?;
                let status = response.status();
                let answer = response.into_body().collect().await?.to_bytes();
                Ok(status == 404 && answer == DIRECT_INVOKE)
            }
        }
    }
}

/// `settings.connections` connections send lock+unlock pairs on `server`'s store
/// `lockstore` for the warm-up and then the measured window; only the window is measured,
/// with the CPU use of `server` (see [`Server::pids`]) and of this process. Each connection has its own resource;
/// connection `n` acts for the tenant of `tokens[n % tokens.len()]` (no token when `tokens`
/// is empty). HTTP goes over TLS to a server that serves it ([`Server::tls`]).
pub async fn lock_unlock_pairs(
    server: &Server,
    protocol: Protocol,
    tokens: &[String],
    settings: &Settings,
) -> anyhow::Result<Measured> {
    let (store, duration) = ("lockstore", settings.duration);
    let address = match protocol {
        Protocol::Http | Protocol::HttpPerRequest | Protocol::Forwarded => &server.address,
        Protocol::Grpc => &server.grpc_address,
    };
    let started = Instant::now();
    let measure_from = started + settings.warmup;
    let until = measure_from + duration;
    let mut tasks = Vec::new();
    for connection in 0..settings.connections {
        let token = (!tokens.is_empty()).then(|| tokens[connection % tokens.len()].as_str());
        let tls = server.tls.as_ref();
        let mut client =
            PairClient::connect(protocol, address, tls, token, store, connection).await?;
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::new(measure_from);
            while Instant::now() < until {
                for unlock in [false, true] {
                    let sent = Instant::now();
                    let Ok(ok) = client.call(unlock).await else {
                        // A broken connection ends this connection's run.
                        tally.errors += 1;
                        return tally;
                    };
                    tally.record(sent, ok);
                }
            }
            tally
        }));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let meter = CpuMeter::start(server.pids());
    tokio::time::sleep_until(until.into()).await;
    Measured::total(tasks, duration, meter.stop()).await
}

/// When request `k` of connection `connection` (of `connections`) is due in a paced run at
/// `rate` requests per second, from the run's start: the connections take turns, so the
/// requests of all of them together are evenly spaced, `1 / rate` apart.
pub fn paced_offset(connection: usize, k: u64, connections: usize, rate: f64) -> Duration {
    let n = k * connections as u64 + connection as u64;
    Duration::from_secs_f64(n as f64 / rate)
}

/// As [`lock_unlock_pairs`] over HTTP, but open-loop at a fixed `rate` (requests per second,
/// locks and unlocks alike) instead of as fast as the server answers: each of
/// `settings.connections` connections sends its requests at their [`paced_offset`], at once
/// when an answer came late, and sends nothing after the window. Measures the window as
/// [`lock_unlock_pairs`] does.
pub async fn paced_pairs(
    server: &Server,
    rate: f64,
    settings: &Settings,
) -> anyhow::Result<Measured> {
    let (store, connections) = ("lockstore", settings.connections);
    let started = tokio::time::Instant::now();
    let measure_from = started + settings.warmup;
    let until = measure_from + settings.duration;
    let mut tasks = Vec::new();
    for connection in 0..connections {
        let mut client = PairClient::connect(
            Protocol::Http,
            &server.address,
            None,
            None,
            store,
            connection,
        )
        .await?;
        tasks.push(tokio::spawn(async move {
            let mut latency = Histogram::<u64>::new(3).expect("a histogram");
            let (mut requests, mut errors) = (0u64, 0u64);
            for k in 0.. {
                let due = started + paced_offset(connection, k, connections, rate);
                if due >= until {
                    break;
                }
                tokio::time::sleep_until(due).await;
                let sent = Instant::now();
                let Ok(ok) = client.call(k % 2 == 1).await else {
                    return (requests, errors + 1, latency);
                };
                if due < measure_from {
                    continue;
                }
                if ok {
                    requests += 1;
                    let micros = sent.elapsed().as_micros() as u64;
                    latency.record(micros.max(1)).expect("a latency in range");
                } else {
                    errors += 1;
                }
            }
            (requests, errors, latency)
        }));
    }
    tokio::time::sleep_until(measure_from).await;
    let meter = CpuMeter::start(server.pids());
    tokio::time::sleep_until(until).await;
    let mut total = Measured {
        requests: 0,
        errors: 0,
        elapsed: settings.duration,
        latency: Histogram::new(3)?,
        cpu: meter.stop(),
    };
    for task in tasks {
        let (requests, errors, latency) = task.await?;
        total.requests += requests;
        total.errors += errors;
        total.latency.add(latency)?;
    }
    Ok(total)
}

/// Takes locks `fill-<from>` .. `fill-<to>` (expiry one hour) on `store` with `connections`
/// connections; prints progress to stderr.
pub async fn fill(
    address: &str,
    store: &str,
    connections: usize,
    from: u64,
    to: u64,
) -> anyhow::Result<()> {
    let next = Arc::new(AtomicU64::new(from));
    let path = format!("/v1.0-alpha1/lock/{store}");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let mut sender = connect(address).await?;
        let (next, path) = (next.clone(), path.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= to {
                    return Ok::<_, anyhow::Error>(());
                }
                let body = serde_json::json!({
                    "resourceId": format!("fill-{i:07}"), "lockOwner": "filler", "expiryInSeconds": 3600
                })
                .to_string();
                if !post(&mut sender, &path, None, body, br#"{"success":true}"#).await? {
                    bail!("filling lock {i} was refused");
                }
                if i > from && i % 100_000 == 0 {
                    eprintln!("  {i} of {to} locks ({:.0?})", started.elapsed());
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// `connections` connections POST `path` as the tenant of `token` until `until`, as fast as
/// answers come, whatever they are; returns how many were answered.
pub async fn flood(
    address: &str,
    path: &str,
    token: &str,
    connections: usize,
    until: Instant,
) -> anyhow::Result<u64> {
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let mut sender = connect(address).await?;
        let (path, token) = (path.to_string(), token.to_string());
        tasks.push(tokio::spawn(async move {
            let mut answered = 0u64;
            while Instant::now() < until {
                let sent = post(&mut sender, &path, Some(&token), "{}".into(), b"").await;
                if sent.is_err() {
                    break;
                }
                answered += 1;
            }
            answered
        }));
    }
    let mut answered = 0;
    for task in tasks {
        answered += task.await?;
    }
    Ok(answered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paced_connections_take_turns_evenly() {
        // 1,000 req/s over 8 connections: one request every millisecond, in turn.
        let offsets: Vec<Duration> = (0..2)
            .flat_map(|k| (0..8).map(move |c| paced_offset(c, k, 8, 1000.0)))
            .collect();
        let expected: Vec<Duration> = (0..16).map(Duration::from_millis).collect();
        assert_eq!(offsets, expected);
        // Each connection sends at 125 req/s.
        assert_eq!(paced_offset(3, 125, 8, 1000.0), Duration::from_millis(1003));
    }
}
