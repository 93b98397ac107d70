//! The two API transports under one independent load generator: `h2load` (Debian's
//! `nghttp2-client`) sends one TryLock request again and again, as JSON over HTTP/1.1 and
//! as a gRPC frame over HTTP/2, from as many connections as the other rows, so that the
//! gRPC/HTTP ratio does not hang on this harness's own clients; and the same over HTTP/1.1
//! on the durable store, where all those TryLocks contend for one held lock. Measured once,
//! after the rounds; h2load reports the mean latency, not percentiles.

use crate::load::Settings;
use crate::machine::{CpuMeter, CpuUse};
use crate::servers::{Launcher, Server, Store};
use anyhow::{Context, bail};
use std::path::Path;
use std::process::Command;
use wasilock::api::grpc::proto::TryLockRequest;

/// What h2load measured on one setup: a store and a transport.
#[derive(Debug, PartialEq)]
pub struct H2loadRun {
    /// The store and the transport, as the report names them.
    pub setup: &'static str,
    /// Requests per second over the measured run.
    pub rate: f64,
    /// Mean time for a request, ms.
    pub mean_ms: f64,
    /// Requests that failed or errored, or were answered with a status other than 2xx.
    pub errors: u64,
    /// CPU use of the server and of h2load over the measured run.
    pub cpu: CpuUse,
}

/// Why h2load cannot run, if it cannot.
pub fn missing() -> Option<String> {
    let found = Command::new("h2load").arg("--version").output();
    match found {
        Ok(output) if output.status.success() => None,
        _ => Some("h2load not found (Debian package nghttp2-client)".into()),
    }
}

/// Runs h2load on a fresh `lock.in-memory` wasilock over HTTP/1.1, then over gRPC, then on
/// a fresh `lock.embedded` one over HTTP/1.1 (where every TryLock but the first finds the
/// lock held: a batch of them writes nothing): each a warm-up run, then a measured one.
pub fn measure(launcher: &Launcher, settings: &Settings) -> anyhow::Result<Vec<H2loadRun>> {
    let dir = tempfile::tempdir()?;
    let json = dir.path().join("trylock.json");
    std::fs::write(
        &json,
        r#"{"resourceId":"h2load","lockOwner":"h2load","expiryInSeconds":60}"#,
    )?;
    let frame = dir.path().join("trylock.grpc");
    std::fs::write(&frame, grpc_frame(&trylock()))?;
    let http = |server: &Server| Request {
        url: format!("http://{}/v1.0-alpha1/lock/lockstore", server.address),
        body: &json,
        headers: &["content-type: application/json"],
        http1: true,
    };
    let grpc = |server: &Server| Request {
        url: format!(
            "http://{}/dapr.proto.runtime.v1.Dapr/TryLockAlpha1",
            server.grpc_address
        ),
        body: &frame,
        headers: &["content-type: application/grpc", "te: trailers"],
        http1: false,
    };
    let (in_memory, _) = launcher.wasilock(Store::InMemory, &[])?;
    let (embedded, _) = launcher.wasilock(Store::Embedded, &[])?;
    let mut runs = Vec::new();
    for (setup, server, request) in [
        (
            "lock.in-memory, HTTP/1.1, JSON",
            &in_memory,
            http(&in_memory),
        ),
        (
            "lock.in-memory, gRPC over HTTP/2",
            &in_memory,
            grpc(&in_memory),
        ),
        ("lock.embedded, HTTP/1.1, JSON", &embedded, http(&embedded)),
    ] {
        request.run(server, settings, settings.warmup)?;
        let (output, cpu) = request.run(server, settings, settings.duration)?;
        let parsed = parse(&output).with_context(|| format!("h2load said:\n{output}"))?;
        let run = H2loadRun {
            setup,
            rate: parsed.rate,
            mean_ms: parsed.mean_ms,
            errors: parsed.errors,
            cpu,
        };
        eprintln!(
            "  h2load, {setup}: {:.0} req/s, mean {:.3} ms, {} errors",
            run.rate, run.mean_ms, run.errors
        );
        runs.push(run);
    }
    Ok(runs)
}

/// The TryLock request every h2load request carries.
fn trylock() -> TryLockRequest {
    TryLockRequest {
        store_name: "lockstore".into(),
        resource_id: "h2load".into(),
        lock_owner: "h2load".into(),
        expiry_in_seconds: 60,
    }
}

/// `message` as one uncompressed gRPC length-prefixed frame.
fn grpc_frame(message: &TryLockRequest) -> Vec<u8> {
    let encoded = prost::Message::encode_to_vec(message);
    let length = u32::try_from(encoded.len()).expect("a small message");
    let mut frame = vec![0];
    frame.extend(length.to_be_bytes());
    frame.extend(encoded);
    frame
}

/// One kind of request h2load sends.
struct Request<'a> {
    url: String,
    body: &'a Path,
    headers: &'a [&'a str],
    http1: bool,
}

impl Request<'_> {
    /// Runs h2load for `window` and returns its output, with the CPU use over the run.
    fn run(
        &self,
        server: &Server,
        settings: &Settings,
        window: std::time::Duration,
    ) -> anyhow::Result<(String, CpuUse)> {
        let mut h2load = Command::new("h2load");
        if self.http1 {
            h2load.arg("--h1");
        }
        for header in self.headers {
            h2load.args(["-H", header]);
        }
        h2load
            .args(["-c", &settings.connections.to_string(), "-m", "1"])
            .args(["-D", &window.as_secs().max(1).to_string()])
            .arg("-d")
            .arg(self.body)
            .arg(&self.url);
        let meter = CpuMeter::start(server.pids());
        let output = h2load.output().context("cannot run h2load")?;
        let cpu = meter.stop();
        if !output.status.success() {
            bail!("h2load failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok((String::from_utf8_lossy(&output.stdout).into_owned(), cpu))
    }
}

/// The figures read from h2load's summary.
#[derive(Debug, PartialEq)]
struct Parsed {
    rate: f64,
    mean_ms: f64,
    errors: u64,
}

/// Reads h2load's summary: `finished in …, R req/s, …`, the `requests:` counts, the
/// `status codes:` counts and the mean of `time for request:`.
fn parse(output: &str) -> anyhow::Result<Parsed> {
    let line = |prefix: &str| {
        output
            .lines()
            .find_map(|l| l.trim_start().strip_prefix(prefix))
            .with_context(|| format!("no `{prefix}` line"))
    };
    let rate = line("finished in")?
        .split(", ")
        .find_map(|part| part.strip_suffix(" req/s"))
        .context("no req/s")?
        .parse()?;
    let count = |text: &str, what: &str| -> anyhow::Result<u64> {
        text.split(", ")
            .find_map(|part| part.trim().strip_suffix(what))
            .with_context(|| format!("no `{what}` count"))?
            .trim()
            .parse()
            .with_context(|| format!("`{what}` is not a count"))
    };
    let requests = line("requests:")?;
    let codes = line("status codes:")?;
    let errors = count(requests, " failed")?
        + count(requests, " errored")?
        + count(codes, " 3xx")?
        + count(codes, " 4xx")?
        + count(codes, " 5xx")?;
    let mean = line("time for request:")?
        .split_whitespace()
        .nth(2)
        .context("no mean")?;
    Ok(Parsed {
        rate,
        mean_ms: milliseconds(mean)?,
        errors,
    })
}

/// An h2load duration (`523us`, `1.23ms`, `2.00s`) in ms.
fn milliseconds(text: &str) -> anyhow::Result<f64> {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        bail!("`{text}` has no unit");
    };
    Ok(number.parse::<f64>()? * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tail of a real h2load 1.52 run.
    const OUTPUT: &str = "\
finished in 2.00s, 12438.50 req/s, 437.57KB/s
requests: 24877 total, 24881 started, 24877 done, 24870 succeeded, 5 failed, 2 errored, 0 timeout
status codes: 24876 2xx, 0 3xx, 1 4xx, 0 5xx
traffic: 875.13KB (896138) total, 73.20KB (74955) headers (space savings 95.76%), 121.47KB (124387) data
                     min         max         mean         sd        +/- sd
time for request:       80us      4.51ms       316us       125us    74.34%
time for connect:       63us        94us        83us        13us    75.00%
";

    #[test]
    fn reads_the_rate_the_mean_and_every_kind_of_error() {
        assert_eq!(
            parse(OUTPUT).unwrap(),
            Parsed {
                rate: 12438.50,
                mean_ms: 0.316,
                errors: 8,
            }
        );
    }

    #[test]
    fn refuses_output_without_a_summary() {
        assert!(parse("connect to 127.0.0.1 failed").is_err());
    }

    #[test]
    fn reads_each_unit_of_time() {
        for (text, ms) in [("523us", 0.523), ("1.5ms", 1.5), ("2.00s", 2000.0)] {
            assert!((milliseconds(text).unwrap() - ms).abs() < 1e-9, "{text}");
        }
        assert!(milliseconds("12").is_err());
    }

    #[test]
    fn the_grpc_frame_is_uncompressed_and_length_prefixed() {
        let frame = grpc_frame(&trylock());
        assert_eq!(frame[0], 0, "not compressed");
        let length = u32::from_be_bytes(frame[1..5].try_into().unwrap()) as usize;
        assert_eq!(length, frame.len() - 5);
        let decoded: TryLockRequest = prost::Message::decode(&frame[5..]).unwrap();
        assert_eq!(decoded, trylock());
    }
}
