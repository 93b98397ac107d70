//! Figures of one row over the rounds: each round gives a [`Sample`]; a row's [`Summary`]
//! keeps the median of every figure, and the lowest and highest throughput.

/// What one round measured for one row.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Requests per second.
    pub rate: f64,
    /// Median latency, ms.
    pub p50: f64,
    /// 99th percentile latency, ms.
    pub p99: f64,
    /// 99.9th percentile latency, ms (`None` when the tool does not report it).
    pub p999: Option<f64>,
    /// Requests answered wrongly.
    pub errors: u64,
    /// The server's CPU use over the measured window, share of one core.
    pub server_cpu: Option<f64>,
    /// The load generator's CPU use over the measured window, share of one core.
    pub load_cpu: Option<f64>,
}

/// The median and the extremes of some values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// The middle value (the mean of the two middle ones for an even count).
    pub median: f64,
    /// The lowest value.
    pub min: f64,
    /// The highest value.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = match n {
            0 => return None,
            _ if n % 2 == 1 => sorted[n / 2],
            _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        };
        Some(Spread {
            median,
            min: sorted[0],
            max: sorted[n - 1],
        })
    }

    /// How far below and above the median the lowest and highest values are, in % of the
    /// median (0 when the median is 0).
    pub fn percent(&self) -> (f64, f64) {
        if self.median == 0.0 {
            return (0.0, 0.0);
        }
        (
            (self.min - self.median) / self.median * 100.0,
            (self.max - self.median) / self.median * 100.0,
        )
    }
}

/// The median of `values`; `None` when there are none.
pub fn median(values: &[f64]) -> Option<f64> {
    Spread::of(values).map(|s| s.median)
}

/// One row over every round.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Rounds measured.
    pub rounds: usize,
    /// Requests per second: median, lowest and highest round.
    pub rate: Spread,
    /// Median of the rounds' medians, ms.
    pub p50: f64,
    /// Median of the rounds' 99th percentiles, ms.
    pub p99: f64,
    /// Median of the rounds' 99.9th percentiles, ms, when reported.
    pub p999: Option<f64>,
    /// Errors over all rounds.
    pub errors: u64,
    /// Median server CPU use, share of one core.
    pub server_cpu: Option<f64>,
    /// Median load generator CPU use, share of one core.
    pub load_cpu: Option<f64>,
}

impl Summary {
    /// The summary of one row's samples; `None` when there are none.
    pub fn of(samples: &[Sample]) -> Option<Summary> {
        let figure = |f: fn(&Sample) -> f64| median(&samples.iter().map(f).collect::<Vec<_>>());
        let optional = |f: fn(&Sample) -> Option<f64>| {
            let values: Option<Vec<f64>> = samples.iter().map(f).collect();
            median(&values?)
        };
        Some(Summary {
            rounds: samples.len(),
            rate: Spread::of(&samples.iter().map(|s| s.rate).collect::<Vec<_>>())?,
            p50: figure(|s| s.p50)?,
            p99: figure(|s| s.p99)?,
            p999: optional(|s| s.p999),
            errors: samples.iter().map(|s| s.errors).sum(),
            server_cpu: optional(|s| s.server_cpu),
            load_cpu: optional(|s| s.load_cpu),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rate: f64, p99: f64, p999: Option<f64>) -> Sample {
        Sample {
            rate,
            p50: p99 / 2.0,
            p99,
            p999,
            errors: 1,
            server_cpu: Some(rate / 1000.0),
            load_cpu: None,
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn spread_around_the_median() {
        let spread = Spread::of(&[110.0, 90.0, 100.0, 105.0, 95.0]).unwrap();
        assert_eq!(
            spread,
            Spread {
                median: 100.0,
                min: 90.0,
                max: 110.0
            }
        );
        assert_eq!(spread.percent(), (-10.0, 10.0));
        let one = Spread::of(&[5.0]).unwrap();
        assert_eq!(one.percent(), (0.0, 0.0));
        assert_eq!(Spread::of(&[0.0, 0.0]).unwrap().percent(), (0.0, 0.0));
    }

    #[test]
    fn summary_takes_medians_and_sums_errors() {
        let summary = Summary::of(&[
            sample(1000.0, 2.0, Some(3.0)),
            sample(3000.0, 1.0, Some(9.0)),
            sample(2000.0, 4.0, Some(4.0)),
        ])
        .unwrap();
        assert_eq!(summary.rounds, 3);
        assert_eq!(summary.rate.median, 2000.0);
        assert_eq!((summary.rate.min, summary.rate.max), (1000.0, 3000.0));
        // Each figure's own median, not the figures of the median round.
        assert_eq!(summary.p99, 2.0);
        assert_eq!(summary.p50, 1.0);
        assert_eq!(summary.p999, Some(4.0));
        assert_eq!(summary.errors, 3);
        assert_eq!(summary.server_cpu, Some(2.0));
        assert_eq!(summary.load_cpu, None);
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn a_figure_missing_in_one_round_is_missing() {
        let summary = Summary::of(&[sample(1.0, 1.0, None), sample(1.0, 1.0, Some(2.0))]);
        assert_eq!(summary.unwrap().p999, None);
    }
}
