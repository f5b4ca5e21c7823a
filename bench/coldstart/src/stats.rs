//! Summary statistics of latency samples (pure; the driver feeds it milliseconds).

use serde::Serialize;

/// Milliseconds in a second: the driver's stamps are seconds, its figures milliseconds.
pub const MS: f64 = 1000.0;

/// The nearest-rank `p`-th percentile (0 < p ≤ 100) of `sorted` (ascending), or `None` when empty.
/// Nearest rank never interpolates, so with 20 samples p95 is the 19th value and p99 the largest:
/// every reported figure is a latency that was actually observed.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() || !(p > 0.0 && p <= 100.0) {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Count, extremes, mean and the percentiles the report uses.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Number of samples.
    pub n: usize,
    /// Smallest sample.
    pub min: f64,
    /// Median (nearest rank).
    pub p50: f64,
    /// 95th percentile (nearest rank).
    pub p95: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl Summary {
    /// Summarises the finite values of `samples`; `None` when there are none.
    pub fn of(samples: &[f64]) -> Option<Self> {
        let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        Some(Self {
            n,
            min: *sorted.first()?,
            p50: percentile(&sorted, 50.0)?,
            p95: percentile(&sorted, 95.0)?,
            p99: percentile(&sorted, 99.0)?,
            max: *sorted.last()?,
            mean: sorted.iter().sum::<f64>() / n as f64,
        })
    }
}

/// Rounds to 0.01 (the report's precision for milliseconds).
pub fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let xs: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&xs, 50.0), Some(10.0));
        assert_eq!(percentile(&xs, 95.0), Some(19.0));
        assert_eq!(percentile(&xs, 99.0), Some(20.0));
        assert_eq!(percentile(&xs, 100.0), Some(20.0));
        assert_eq!(percentile(&xs, 1.0), Some(1.0));
        assert_eq!(percentile(&[7.0], 50.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&xs, 0.0), None);
        assert_eq!(percentile(&xs, 101.0), None);
    }

    #[test]
    fn summary_sorts_and_skips_non_finite() {
        let s = Summary::of(&[3.0, f64::NAN, 1.0, 2.0, f64::INFINITY, 4.0]).expect("summary");
        assert_eq!((s.n, s.min, s.p50, s.max), (4, 1.0, 2.0, 4.0));
        assert_eq!(s.mean, 2.5);
        assert_eq!(Summary::of(&[f64::NAN]), None);
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn rounds_to_hundredths() {
        assert_eq!(round2(1.23456), 1.23);
        assert_eq!(round2(-0.005), -0.01);
    }
}
