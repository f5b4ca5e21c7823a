//! Per-revision request counts: what each activator serves on its admin port as JSON
//! (`GET /revisions/stats`, see [`STATS_PATH`]) and what the operator's automated canary sums.
//!
//! Counters are cumulative since the activator started, never reset while it runs: a reader keeps the
//! previous reading and subtracts ([`Counts::since`]). An activator that restarted starts again from
//! zero under a new `instance`, so a reader that sees another instance (or any counter going down)
//! takes the new counts whole instead of subtracting. See docs/canary.md.

use serde::{Deserialize, Serialize};

/// Path of the JSON report on the activator's admin port.
pub const STATS_PATH: &str = "/revisions/stats";

/// Upper bounds (inclusive, in milliseconds) of the latency histogram's buckets; one more bucket
/// counts everything slower. The last bound is the longest request timeout a Function may set.
pub const LATENCY_BOUNDS_MS: [u64; 20] = [
    1, 2, 5, 10, 20, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000, 30000, 60000,
    3_600_000,
];

/// Counts of one revision: requests that finished, the failed ones, and their latency histogram.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Requests answered (by the function or by the activator).
    pub requests: u64,
    /// Of those, the failed ones: a 5xx from the function, or a request the activator failed (5xx).
    pub errors: u64,
    /// Requests per latency bucket (not cumulative), one entry per [`LATENCY_BOUNDS_MS`] bound plus
    /// one for slower requests. Requests the activator failed before a pod answered are not in it.
    #[serde(default)]
    pub latency_ms: Vec<u64>,
}

/// Index of the latency bucket of a request that took `ms` milliseconds.
pub fn bucket_of(ms: u64) -> usize {
    LATENCY_BOUNDS_MS.partition_point(|&bound| bound < ms)
}

impl Counts {
    /// Counts one finished request: `status` is its HTTP status, `latency_ms` its time from arrival
    /// to the response head when a pod answered.
    pub fn record(&mut self, status: u16, latency_ms: Option<u64>) {
        self.requests += 1;
        if status >= 500 {
            self.errors += 1;
        }
        if let Some(ms) = latency_ms {
            if self.latency_ms.len() < LATENCY_BOUNDS_MS.len() + 1 {
                self.latency_ms.resize(LATENCY_BOUNDS_MS.len() + 1, 0);
            }
            self.latency_ms[bucket_of(ms)] += 1;
        }
    }

    /// Adds `other` to these counts.
    pub fn add(&mut self, other: &Counts) {
        self.requests += other.requests;
        self.errors += other.errors;
        if self.latency_ms.len() < other.latency_ms.len() {
            self.latency_ms.resize(other.latency_ms.len(), 0);
        }
        for (sum, n) in self.latency_ms.iter_mut().zip(&other.latency_ms) {
            *sum += n;
        }
    }

    /// What was counted after `earlier`, a previous reading of the same counters. When any counter
    /// went down, the counters were reset (the activator restarted) and everything in `self` is new.
    pub fn since(&self, earlier: &Counts) -> Counts {
        let bucket = |c: &Counts, i: usize| c.latency_ms.get(i).copied().unwrap_or(0);
        let buckets = self.latency_ms.len().max(earlier.latency_ms.len());
        let reset = self.requests < earlier.requests
            || self.errors < earlier.errors
            || (0..buckets).any(|i| bucket(self, i) < bucket(earlier, i));
        if reset {
            return self.clone();
        }
        Counts {
            requests: self.requests - earlier.requests,
            errors: self.errors - earlier.errors,
            latency_ms: (0..self.latency_ms.len())
                .map(|i| bucket(self, i) - bucket(earlier, i))
                .collect(),
        }
    }

    /// Failed requests as a fraction of all requests; `None` without requests.
    pub fn error_rate(&self) -> Option<f64> {
        // Counts stay far below 2^52, where u64 → f64 is exact.
        #[allow(clippy::cast_precision_loss)]
        (self.requests > 0).then(|| self.errors as f64 / self.requests as f64)
    }

    /// The 99th-percentile latency in milliseconds: the upper bound of the bucket holding it (for the
    /// overflow bucket, `u64::MAX`). `None` when no latency was recorded.
    pub fn p99_ms(&self) -> Option<u64> {
        let total: u64 = self.latency_ms.iter().sum();
        if total == 0 {
            return None;
        }
        // The smallest rank r with r >= 0.99 × total, in integers.
        let rank = (total * 99).div_ceil(100);
        let mut seen = 0;
        for (i, n) in self.latency_ms.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(LATENCY_BOUNDS_MS.get(i).copied().unwrap_or(u64::MAX));
            }
        }
        Some(u64::MAX)
    }
}

/// One revision's counts in a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionCounts {
    /// Namespace of the Function.
    pub namespace: String,
    /// Name of the Function.
    pub function: String,
    /// Name of the revision (its Deployment).
    pub revision: String,
    /// Its cumulative counts.
    #[serde(flatten)]
    pub counts: Counts,
}

/// What one activator serves at [`STATS_PATH`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsReport {
    /// The activator's identity (its pod name).
    pub activator: String,
    /// Changes whenever the activator restarts (and its counters start again from zero).
    pub instance: String,
    /// The latency buckets' upper bounds in milliseconds, [`LATENCY_BOUNDS_MS`].
    pub latency_bounds_ms: Vec<u64>,
    /// Cumulative counts per revision the activator has served since it started.
    pub revisions: Vec<RevisionCounts>,
}

#[cfg(test)]
#[path = "revision_stats_tests.rs"]
mod tests;
