//! The alpha2 figures, measured once per store after the rounds: the time from a release to
//! the next waiter's grant with 32 waiters on one resource (p50, p99), renewals per second,
//! resident memory per lock held by an ND-JSON stream, and alpha2 acquire+release
//! throughput next to alpha1's lock+unlock on the same server.

use crate::load::{self, Protocol, Settings, connect};
use crate::servers::{Launcher, Server, Store};
use anyhow::{Context, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Waiters on the one resource of the hand-off run.
const WAITERS: usize = 32;
/// Locks held by streams for the memory figure.
const STREAMS: usize = 1_000;

/// The alpha2 figures of one store.
pub struct Alpha2Figures {
    /// The store type.
    pub store: String,
    /// Release to the next waiter's grant, median, ms.
    pub handoff_p50: f64,
    /// Release to the next waiter's grant, 99th percentile, ms.
    pub handoff_p99: f64,
    /// Renewals per second.
    pub renewals_per_s: f64,
    /// Resident memory per lock held by a stream, bytes.
    pub stream_bytes_per_lock: f64,
    /// alpha2 acquire+release requests per second.
    pub alpha2_rate: f64,
    /// alpha1 lock+unlock requests per second, on the same server.
    pub alpha1_rate: f64,
}

/// Measures `store` (named `name` in the report).
pub async fn measure(
    launcher: &Launcher,
    store: Store<'_>,
    name: &str,
    settings: &Settings,
) -> anyhow::Result<Alpha2Figures> {
    let (server, _data) = launcher.wasilock(store, &[])?;
    let alpha1 = load::lock_unlock_pairs(&server, Protocol::Http, &[], settings).await?;
    let alpha2_rate = pairs(&server, settings).await?;
    let (handoff_p50, handoff_p99) = handoff(&server, settings).await?;
    let renewals_per_s = renewals(&server, settings).await?;
    let stream_bytes_per_lock = stream_memory(&server).await?;
    Ok(Alpha2Figures {
        store: name.to_owned(),
        handoff_p50,
        handoff_p99,
        renewals_per_s,
        stream_bytes_per_lock,
        alpha2_rate,
        alpha1_rate: alpha1.rate(),
    })
}

/// Sends `method` with `body` to the alpha2 path of `resource`; the status and body.
async fn call(
    sender: &mut SendRequest<Full<Bytes>>,
    method: &str,
    resource: &str,
    body: String,
) -> anyhow::Result<(u16, Bytes)> {
    let request = hyper::Request::builder()
        .method(method)
        .uri(format!("/v1.0-alpha2/lock/lockstore/{resource}"))
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))?;
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    Ok((status, response.into_body().collect().await?.to_bytes()))
}

/// The lock ID of a 200 grant.
fn lock_id(status: u16, body: &[u8]) -> anyhow::Result<String> {
    if status != 200 {
        bail!("no grant: {status} {}", String::from_utf8_lossy(body));
    }
    let value: serde_json::Value = serde_json::from_slice(body)?;
    Ok(value["lockID"].as_str().context("a lockID")?.to_owned())
}

fn release_body(lock_id: &str) -> String {
    serde_json::json!({ "lockID": lock_id }).to_string()
}

/// alpha2 acquire (immediate) + release pairs on one resource per connection: requests per
/// second over the measured window.
async fn pairs(server: &Server, settings: &Settings) -> anyhow::Result<f64> {
    rate_per_connection(server, settings, |n, mut sender, window| async move {
        let resource = format!("pair-{n}");
        let mut requests = 0u64;
        while window.open() {
            let acquire = r#"{"immediate":true}"#.into();
            let (status, body) = call(&mut sender, "POST", &resource, acquire).await?;
            let id = lock_id(status, &body)?;
            let (status, _) = call(&mut sender, "DELETE", &resource, release_body(&id)).await?;
            if status != 204 {
                bail!("release answered {status}");
            }
            requests += window.counts() * 2;
        }
        Ok(requests)
    })
    .await
}

/// The warm-up and the measured window of one run.
#[derive(Clone, Copy)]
struct Window {
    measure_from: Instant,
    until: Instant,
}

impl Window {
    /// Whether the run goes on.
    fn open(&self) -> bool {
        Instant::now() < self.until
    }

    /// 1 once the warm-up is over (what ends now is counted), 0 before.
    fn counts(&self) -> u64 {
        u64::from(Instant::now() >= self.measure_from)
    }
}

/// Runs `work` on [`Settings::connections`] keep-alive connections at once, each given its
/// number, its connection and the run's window, and returns the requests they counted per
/// second of the measured window.
async fn rate_per_connection<F, Work>(
    server: &Server,
    settings: &Settings,
    work: F,
) -> anyhow::Result<f64>
where
    F: Fn(usize, SendRequest<Full<Bytes>>, Window) -> Work,
    Work: Future<Output = anyhow::Result<u64>> + Send + 'static,
{
    let measure_from = Instant::now() + settings.warmup;
    let window = Window {
        measure_from,
        until: measure_from + settings.duration,
    };
    let mut tasks = Vec::new();
    for n in 0..settings.connections {
        let sender = connect(&server.address).await?;
        tasks.push(tokio::spawn(work(n, sender, window)));
    }
    let mut requests = 0;
    for task in tasks {
        requests += task.await??;
    }
    Ok(requests as f64 / settings.duration.as_secs_f64())
}

/// [`WAITERS`] connections wait for one resource; each takes it, releases it at once and
/// waits again. The latency is from a release's sending to the next grant's answer.
async fn handoff(server: &Server, settings: &Settings) -> anyhow::Result<(f64, f64)> {
    let measure_from = Instant::now() + settings.warmup;
    let until = measure_from + settings.duration;
    let released = Arc::new(Mutex::new(None::<Instant>));
    let latency = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let mut tasks = Vec::new();
    for _ in 0..WAITERS {
        let mut sender = connect(&server.address).await?;
        let (released, latency) = (released.clone(), latency.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                let body = r#"{"ttl":"30s","waitTimeout":"60s"}"#.to_string();
                let (status, answer) = call(&mut sender, "POST", "handoff", body).await?;
                let id = lock_id(status, &answer)?;
                let now = Instant::now();
                if let Some(sent) = released.lock().unwrap().take()
                    && sent >= measure_from
                {
                    let micros = now.duration_since(sent).as_micros() as u64;
                    latency.lock().unwrap().record(micros.max(1))?;
                }
                *released.lock().unwrap() = Some(Instant::now());
                let (status, _) = call(&mut sender, "DELETE", "handoff", release_body(&id)).await?;
                if status != 204 {
                    bail!("release answered {status}");
                }
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let latency = latency.lock().unwrap();
    let ms = |q| latency.value_at_quantile(q) as f64 / 1000.0;
    Ok((ms(0.50), ms(0.99)))
}

/// Each connection holds a lock of its own and renews it over and over: renewals per second.
async fn renewals(server: &Server, settings: &Settings) -> anyhow::Result<f64> {
    rate_per_connection(server, settings, |n, mut sender, window| async move {
        let resource = format!("renewed-{n}");
        let (status, body) = call(&mut sender, "POST", &resource, String::new()).await?;
        let id = lock_id(status, &body)?;
        let renew = serde_json::json!({ "lockID": id, "ttl": "30s" }).to_string();
        let mut renewals = 0u64;
        while window.open() {
            let (status, _) = call(&mut sender, "PUT", &resource, renew.clone()).await?;
            if status != 200 {
                bail!("renewal answered {status}");
            }
            renewals += window.counts();
        }
        call(&mut sender, "DELETE", &resource, release_body(&id)).await?;
        Ok(renewals)
    })
    .await
}

/// Resident memory per lock held by a stream: [`STREAMS`] streams opened (each on its own
/// connection, read up to its first line), against the resident memory before.
async fn stream_memory(server: &Server) -> anyhow::Result<f64> {
    let before = server.rss_bytes();
    let mut streams = Vec::with_capacity(STREAMS);
    for n in 0..STREAMS {
        let mut socket = TcpStream::connect(&server.address).await?;
        let body = r#"{"ttl":"1m"}"#;
        let head = format!(
            "POST /v1.0-alpha2/lock/lockstore/streamed-{n} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/x-ndjson\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(head.as_bytes()).await?;
        let mut first = [0u8; 512];
        let read = socket.read(&mut first).await?;
        if !first[..read].windows(13).any(|w| w == b"lock-acquired") {
            bail!("stream {n} was not granted");
        }
        streams.push(socket);
    }
    // Let the host settle (allocations of the first renewals) before reading.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = server.rss_bytes();
    drop(streams);
    Ok(after.saturating_sub(before) as f64 / STREAMS as f64)
}
