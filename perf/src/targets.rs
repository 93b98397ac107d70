//! The ratios between rows and the targets, each with its verdict, all from the rows'
//! medians over the rounds.

use crate::footprint::{STARTS, Scale, Startup};
use crate::setups::Row;
use crate::stats::Summary;
use crate::tenants::{COLD_SAMPLES, Footprint, SPREAD, TENANTS};

/// A ratio of two rows' median throughputs.
#[derive(Debug, PartialEq)]
pub struct Ratio {
    /// What is divided by what.
    pub name: String,
    /// The ratio.
    pub value: f64,
    /// The lowest acceptable value, if the ratio has a target.
    pub target: Option<f64>,
}

impl Ratio {
    /// Whether the target is met; `None` without a target.
    pub fn pass(&self) -> Option<bool> {
        self.target.map(|t| self.value >= t)
    }
}

/// A target that is not a plain ratio, with the figure it is judged on.
#[derive(Debug, PartialEq)]
pub struct Target {
    /// The target.
    pub name: String,
    /// The figure, in words.
    pub figure: String,
    /// Whether it is met; `None` for figures shown without a target.
    pub pass: Option<bool>,
}

/// Everything the targets are judged on.
pub struct Figures<'a> {
    /// The rows' summaries.
    pub rows: &'a [(Row, Summary)],
    /// Idle tenants' memory and cold first requests.
    pub footprint: &'a Footprint,
    /// Median over the rounds of the requests answered to the noisy tenant during f'.
    pub noisy_answered: f64,
    /// The scale runs (none when skipped).
    pub scale: &'a [Scale],
    /// Start-up to the first served request.
    pub startup: &'a Startup,
    /// Size of the guest component.
    pub guest_bytes: u64,
}

fn row(rows: &[(Row, Summary)], wanted: Row) -> Option<&Summary> {
    rows.iter().find(|(r, _)| *r == wanted).map(|(_, s)| s)
}

/// The ratios of median throughputs, each when both its rows were measured.
pub fn ratios(rows: &[(Row, Summary)]) -> Vec<Ratio> {
    let table: [(&str, Row, Row, Option<f64>); 12] = [
        (
            "b/a (wasm / native; the goal stays 0.90)",
            Row::InMemory,
            Row::Native,
            Some(0.80),
        ),
        (
            "b'/b (wasi:http export / http-api export)",
            Row::WasiHttp,
            Row::InMemory,
            Some(0.60),
        ),
        ("b\"/b (gRPC / HTTP)", Row::Grpc, Row::InMemory, Some(0.90)),
        (
            "b/b⁰ (metrics on / off)",
            Row::InMemory,
            Row::MetricsOff,
            Some(0.97),
        ),
        (
            "bᵗ⁰/b (tracing at rate 0 / none)",
            Row::TracingRate0,
            Row::InMemory,
            Some(0.97),
        ),
        (
            "bᵗ¹/b (every request traced / none)",
            Row::TracingRate1,
            Row::InMemory,
            None,
        ),
        (
            "c/b (durable / in-memory)",
            Row::Embedded,
            Row::InMemory,
            Some(0.50),
        ),
        (
            "c/redis-benchmark on appendfsync always (durable / durable Redis)",
            Row::Embedded,
            Row::RedisBenchmarkAof,
            Some(1.0),
        ),
        (
            "d/redis-benchmark (same Redis, same connections)",
            Row::Redis,
            Row::RedisBenchmark,
            Some(0.60),
        ),
        (
            "d'/redis-benchmark on appendfsync always (same Redis, same connections)",
            Row::RedisAof,
            Row::RedisBenchmarkAof,
            None,
        ),
        (
            "t/b (TLS / plain, keep-alive)",
            Row::Tls,
            Row::InMemory,
            None,
        ),
        (
            "t\"/t' (a TLS handshake / a plain connection, per request)",
            Row::TlsPerRequest,
            Row::PlainPerRequest,
            None,
        ),
    ];
    table
        .into_iter()
        .filter_map(|(name, over, under, target)| {
            let value = row(rows, over)?.rate.median / row(rows, under)?.rate.median;
            Some(Ratio {
                name: name.into(),
                value,
                target,
            })
        })
        .collect()
}

/// Which latency of a row a bound is on.
type Latency = fn(&Summary) -> f64;

/// The targets other than ratios, in the report's order.
pub fn targets(f: &Figures) -> Vec<Target> {
    let mut targets = Vec::new();
    let mut push = |name: String, figure: String, pass: Option<bool>| {
        targets.push(Target { name, figure, pass })
    };
    let p50: Latency = |s| s.p50;
    let p99: Latency = |s| s.p99;
    let bounds: [(&str, Row, Row, f64, Latency); 3] = [
        (
            "p99 of b ≤ 1.25 × p99 of a",
            Row::InMemory,
            Row::Native,
            1.25,
            p99,
        ),
        (
            "p99 of b\" (gRPC) ≤ 1.25 × p99 of b (HTTP)",
            Row::Grpc,
            Row::InMemory,
            1.25,
            p99,
        ),
        (
            "a single client's p50: b¹ ≤ 1.2 × a¹",
            Row::InMemoryOneClient,
            Row::NativeOneClient,
            1.2,
            p50,
        ),
    ];
    for (name, over, under, bound, figure) in bounds {
        if let (Some(over), Some(under)) = (row(f.rows, over), row(f.rows, under)) {
            let (over, under) = (figure(over), figure(under));
            push(
                name.into(),
                format!("{over:.2} ms vs {under:.2} ms ({:.2} ×)", over / under),
                Some(over <= bound * under),
            );
        }
    }
    if let Some(b) = row(f.rows, Row::InMemory) {
        push(
            "p99 of b ≤ 2 ms".into(),
            format!("{:.2} ms", b.p99),
            Some(b.p99 <= 2.0),
        );
    }
    for s in f.scale {
        let drift = s.p50_large / s.p50_small - 1.0;
        push(
            format!("{}: p50 at {} locks within 20 % of 1k", s.store, s.locks),
            format!(
                "{:.3} ms vs {:.3} ms ({:+.0} %)",
                s.p50_large,
                s.p50_small,
                drift * 100.0
            ),
            Some(drift <= 0.20),
        );
        if s.store == "lock.in-memory" {
            push(
                "in-memory ≤ 200 B overhead per lock".into(),
                format!(
                    "{:.0} B ({:.0} B resident per lock)",
                    s.extra.1, s.rss_per_lock
                ),
                Some(s.extra.1 <= 200.0),
            );
        }
    }
    let idle = f.footprint.rss_per_idle_tenant;
    push(
        format!("≤ 1 MiB resident per idle tenant ({TENANTS} tenants)"),
        format!("{idle:.0} B"),
        Some(idle <= 1024.0 * 1024.0),
    );
    if let (Some(one), Some(spread)) = (
        row(f.rows, Row::TenantsOne),
        row(f.rows, Row::TenantsSpread),
    ) {
        let kept = spread.rate.median / one.rate.median;
        push(
            format!("load spread over {SPREAD} tenants ≥ 0.8 × one tenant"),
            format!(
                "{kept:.2} ({:.0} vs {:.0} req/s)",
                spread.rate.median, one.rate.median
            ),
            Some(kept >= 0.8),
        );
    }
    if let (Some(direct), Some(forwarded)) = (
        row(f.rows, Row::UpstreamDirect),
        row(f.rows, Row::Forwarded),
    ) {
        push(
            "p50 added by forwarding to the upstream (g' − g)".into(),
            format!(
                "{:.3} ms ({:.3} ms vs {:.3} ms)",
                forwarded.p50 - direct.p50,
                forwarded.p50,
                direct.p50
            ),
            None,
        );
    }
    let (cold_median, cold_slowest) = f.footprint.cold_first_ms;
    push(
        format!("first request of a cold tenant (median, slowest of {COLD_SAMPLES})"),
        format!("{cold_median:.2} ms, {cold_slowest:.2} ms"),
        None,
    );
    if let (Some(alone), Some(beside)) = (row(f.rows, Row::CalmAlone), row(f.rows, Row::CalmBeside))
    {
        let kept = beside.rate.median / alone.rate.median;
        push(
            "calm tenant beside a noisy one ≥ 0.5 × alone, 0 errors".into(),
            format!(
                "{kept:.2} ({:.0} vs {:.0} req/s; p99 {:.2} vs {:.2} ms; {} errors; the noisy tenant got {:.0} answers)",
                beside.rate.median,
                alone.rate.median,
                beside.p99,
                alone.p99,
                beside.errors,
                f.noisy_answered
            ),
            Some(kept >= 0.5 && beside.errors == 0),
        );
    }
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    push(
        "start-up to first served request ≤ 100 ms (median, compile cache filled)".into(),
        format!(
            "{:.0} ms median, {:.0} ms best of {STARTS}",
            ms(f.startup.median),
            ms(f.startup.best)
        ),
        Some(ms(f.startup.median) <= 100.0),
    );
    push(
        "first start ever (empty compile cache: Cranelift compiles the component)".into(),
        format!("{:.0} ms", ms(f.startup.cold)),
        None,
    );
    push(
        "guest `.wasm` ≤ 300 KB".into(),
        format!(
            "{:.0} KB ({} bytes)",
            f.guest_bytes as f64 / 1000.0,
            f.guest_bytes
        ),
        Some(f.guest_bytes <= 300_000),
    );
    targets
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Sample, Summary};
    use std::time::Duration;

    fn summary(rates: &[f64], p99: f64) -> Summary {
        let samples: Vec<Sample> = rates
            .iter()
            .map(|&rate| Sample {
                rate,
                p50: p99 / 2.0,
                p99,
                p999: None,
                errors: 0,
                server_cpu: None,
                load_cpu: None,
            })
            .collect();
        Summary::of(&samples).unwrap()
    }

    #[test]
    fn ratios_divide_medians_and_skip_missing_rows() {
        let rows = [
            (Row::Native, summary(&[100.0, 1000.0, 200.0], 1.0)),
            (Row::InMemory, summary(&[180.0, 10.0, 190.0], 1.0)),
        ];
        let ratios = ratios(&rows);
        assert_eq!(ratios.len(), 1, "{ratios:?}");
        assert_eq!(ratios[0].value, 180.0 / 200.0);
        assert_eq!(ratios[0].pass(), Some(true));
    }

    #[test]
    fn latency_bounds_judge_one_row_against_another() {
        let rows = [
            (Row::Native, summary(&[100.0], 1.0)),
            (Row::InMemory, summary(&[95.0], 1.3)),
            (Row::Grpc, summary(&[60.0], 1.7)),
            (Row::NativeOneClient, summary(&[10.0], 0.2)),
            (Row::InMemoryOneClient, summary(&[9.0], 0.22)),
        ];
        let footprint = Footprint {
            rss_per_idle_tenant: 0.0,
            cold_first_ms: (0.1, 0.2),
        };
        let startup = Startup {
            cold: Duration::from_millis(150),
            best: Duration::from_millis(80),
            median: Duration::from_millis(120),
        };
        let targets = targets(&Figures {
            rows: &rows,
            footprint: &footprint,
            noisy_answered: 0.0,
            scale: &[],
            startup: &startup,
            guest_bytes: 1,
        });
        let verdict = |prefix: &str| {
            targets
                .iter()
                .find(|t| t.name.starts_with(prefix))
                .map(|t| t.pass)
        };
        assert_eq!(verdict("p99 of b ≤ 1.25"), Some(Some(false)));
        assert_eq!(verdict("p99 of b ≤ 2 ms"), Some(Some(true)));
        // 1.7 ms against 1.3 ms is 1.31 ×; 0.11 ms against 0.10 ms is 1.1 ×.
        assert_eq!(verdict("p99 of b\" (gRPC)"), Some(Some(false)));
        assert_eq!(verdict("a single client's p50"), Some(Some(true)));
        // The median start is judged, not the best.
        assert_eq!(verdict("start-up"), Some(Some(false)));
        assert_eq!(verdict("load spread"), None);
    }
}
