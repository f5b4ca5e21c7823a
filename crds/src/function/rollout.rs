//! `spec.rollout`: the built-in automated canary, and `status.rollout`, its progress.
//!
//! When a new revision becomes ready, the operator gives it `steps[0]` percent of the traffic that
//! `spec.traffic` assigns to the latest revision, holds each step for `interval` while the activators'
//! counts for the new revision stay within `maxErrorRate` (and `maxP99LatencyMs`), then moves on; at the
//! last step (always 100) the new revision becomes the stable one. A breach moves all of that traffic
//! back to the previous revision. See docs/canary.md.

use std::time::Duration;

use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::scale::{DURATION_PATTERN, rule};
use crate::duration::{self, DurationError};

/// Most steps a rollout may have (bounds the CEL rules' cost).
pub const MAX_STEPS: usize = 20;
/// Shortest step interval.
pub const MIN_INTERVAL: Duration = Duration::from_secs(5);
/// Longest step interval.
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);
/// What `maxErrorRate` accepts: a percentage from `0%` to `100%`, decimals allowed (`0.5%`).
pub const ERROR_RATE_PATTERN: &str = "^(100([.]0+)?|[0-9]{1,2}([.][0-9]+)?)%$";

/// How a new revision takes over: steps of traffic, each held for `interval` while it stays healthy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = rollout_rules)]
pub struct RolloutSpec {
    /// Percentages of the latest revision's traffic the new revision gets, one per step: strictly
    /// increasing, each 1–100, the last 100 (at most 20 steps). Default `[10, 50, 100]`.
    #[serde(default = "default_steps")]
    #[schemars(length(min = 1, max = 20))]
    pub steps: Vec<i32>,
    /// How long each step is held and measured before the next, a duration between `5s` and `1h`.
    /// Default `1m`.
    #[serde(default = "default_interval")]
    #[schemars(length(max = 32))]
    pub interval: String,
    /// Largest share of the new revision's requests that may fail (a 5xx from the function or a request
    /// the activator failed for it) before it is rolled back, as a percentage `0%`–`100%` such as `5%`
    /// or `0.5%`. Default `5%`.
    #[serde(default = "default_max_error_rate")]
    #[schemars(length(max = 16))]
    pub max_error_rate: String,
    /// Largest 99th-percentile latency in milliseconds (arrival at the activator to the response head)
    /// the new revision may show over a step; unset: latency is not checked. 1–600000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 600000))]
    pub max_p99_latency_ms: Option<i64>,
    /// Fewest requests to the new revision a step must see before it is judged (0–100000): a step with
    /// fewer is held, neither promoted nor rolled back. Default 20.
    #[serde(default = "default_min_requests")]
    #[schemars(range(min = 0, max = 100000))]
    pub min_requests: i64,
}

impl Default for RolloutSpec {
    fn default() -> Self {
        Self {
            steps: default_steps(),
            interval: default_interval(),
            max_error_rate: default_max_error_rate(),
            max_p99_latency_ms: None,
            min_requests: default_min_requests(),
        }
    }
}

fn default_steps() -> Vec<i32> {
    vec![10, 50, 100]
}
fn default_interval() -> String {
    "1m".to_string()
}
fn default_max_error_rate() -> String {
    "5%".to_string()
}
fn default_min_requests() -> i64 {
    20
}

/// Adds the CEL rules of `spec.rollout`.
fn rollout_rules(schema: &mut Schema) {
    // CEL has no index range: the literal indices 1..MAX_STEPS compare each step with the one before.
    let indices = (1..MAX_STEPS)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let interval = format!("self.interval.matches('{DURATION_PATTERN}')");
    let rules = vec![
        rule(
            "self.steps.all(s, s >= 1 && s <= 100)",
            "spec.rollout.steps must each be between 1 and 100 (percent)",
        ),
        rule(
            format!("[{indices}].all(i, i >= size(self.steps) || self.steps[i - 1] < self.steps[i])"),
            "spec.rollout.steps must be strictly increasing",
        ),
        rule(
            "size(self.steps) == 0 || self.steps[size(self.steps) - 1] == 100",
            "spec.rollout.steps must end with 100",
        ),
        rule(
            interval.clone(),
            "spec.rollout.interval must be a duration such as 1m or 30s (units ns, us, ms, s, m, h)",
        ),
        rule(
            format!(
                "!{interval} || (duration(self.interval) >= duration('5s') && duration(self.interval) <= duration('1h'))"
            ),
            "spec.rollout.interval must be between 5s and 1h",
        ),
        rule(
            format!("self.maxErrorRate.matches('{ERROR_RATE_PATTERN}')"),
            "spec.rollout.maxErrorRate must be a percentage between 0% and 100%, such as 5% or 0.5%",
        ),
    ];
    schema.insert("x-kubernetes-validations".into(), Value::Array(rules));
}

/// A `spec.rollout` the operator cannot use; admission normally rejects these first.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RolloutError {
    /// `interval` does not parse.
    #[error("spec.rollout.interval is not a duration")]
    Interval(#[source] DurationError),
    /// `interval` is outside 5s–1h.
    #[error("spec.rollout.interval must be between 5s and 1h, got {0}")]
    IntervalOutOfRange(String),
    /// `maxErrorRate` is not a percentage.
    #[error("spec.rollout.maxErrorRate must be a percentage between 0% and 100% such as 5%, got {0:?}")]
    ErrorRate(String),
    /// `steps` is empty, out of 1–100, not strictly increasing or does not end with 100.
    #[error(
        "spec.rollout.steps must be strictly increasing percentages from 1 to 100 ending with 100, got {0:?}"
    )]
    Steps(Vec<i32>),
    /// `minRequests` is negative.
    #[error("spec.rollout.minRequests must not be negative, got {0}")]
    MinRequests(i64),
}

/// `spec.rollout` checked and parsed: what the operator's rollout state machine computes with.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedRollout {
    /// Percent of the latest revision's traffic per step; strictly increasing, ends with 100.
    pub steps: Vec<u8>,
    /// How long each step is held.
    pub interval: Duration,
    /// Largest error rate, as a fraction (`0.05` for `5%`).
    pub max_error_rate: f64,
    /// Largest p99 latency, when checked.
    pub max_p99_latency: Option<Duration>,
    /// Fewest requests a step must see before it is judged.
    pub min_requests: u64,
}

/// Parses a percentage such as `5%` or `0.5%` into a fraction.
pub fn parse_percent(value: &str) -> Option<f64> {
    // The same shape as ERROR_RATE_PATTERN: one or two digits or `100`, then optional decimals.
    let number = value.strip_suffix('%')?;
    let (int, frac) = number
        .split_once('.')
        .map_or((number, None), |(i, f)| (i, Some(f)));
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    if !(digits(int) && (int.len() <= 2 || int == "100") && frac.is_none_or(digits)) {
        return None;
    }
    let parsed: f64 = number.parse().ok()?;
    (0.0..=100.0).contains(&parsed).then_some(parsed / 100.0)
}

impl RolloutSpec {
    /// Checks and parses the spec.
    pub fn resolve(&self) -> Result<ResolvedRollout, RolloutError> {
        let steps: Option<Vec<u8>> = self
            .steps
            .iter()
            .map(|s| u8::try_from(*s).ok().filter(|s| (1..=100).contains(s)))
            .collect();
        let steps = steps
            .filter(|s| s.windows(2).all(|w| w[0] < w[1]) && s.last() == Some(&100))
            .ok_or_else(|| RolloutError::Steps(self.steps.clone()))?;
        let interval = duration::parse(&self.interval).map_err(RolloutError::Interval)?;
        if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&interval) {
            return Err(RolloutError::IntervalOutOfRange(self.interval.clone()));
        }
        let max_error_rate = parse_percent(&self.max_error_rate)
            .ok_or_else(|| RolloutError::ErrorRate(self.max_error_rate.clone()))?;
        let min_requests =
            u64::try_from(self.min_requests).map_err(|_| RolloutError::MinRequests(self.min_requests))?;
        Ok(ResolvedRollout {
            steps,
            interval,
            max_error_rate,
            max_p99_latency: self
                .max_p99_latency_ms
                .and_then(|ms| u64::try_from(ms).ok())
                .map(Duration::from_millis),
            min_requests,
        })
    }
}

#[cfg(test)]
#[path = "rollout_tests.rs"]
mod tests;
