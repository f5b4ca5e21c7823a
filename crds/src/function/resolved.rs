//! `spec.scale` with every default resolved and every duration parsed: what the autoscaler computes with.

use std::time::Duration;

use super::scale::{ScaleMetric, ScaleSpec};
use crate::duration::{self, DurationError};

/// Default per-pod target when the metric is `concurrency` (Knative `container-concurrency-target-default`).
pub const DEFAULT_CONCURRENCY_TARGET: f64 = 100.0;
/// Default per-pod target when the metric is `rps` (Knative `requests-per-second-target-default`).
pub const DEFAULT_RPS_TARGET: f64 = 200.0;
/// Longest stable window, scale-to-zero grace period and scale-down delay.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// Shortest stable window.
pub const MIN_WINDOW: Duration = Duration::from_secs(6);

/// A `spec.scale` the autoscaler cannot use; admission normally rejects these first.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ScaleError {
    /// A duration field does not parse.
    #[error("spec.scale.{field} is not a duration")]
    Duration {
        /// The field, as spelled in the API.
        field: &'static str,
        /// Why it does not parse.
        #[source]
        source: DurationError,
    },
    /// A field is outside its allowed range.
    #[error("spec.scale.{field} must be {bounds}, got {value}")]
    OutOfRange {
        /// The field, as spelled in the API.
        field: &'static str,
        /// The allowed range, in words.
        bounds: &'static str,
        /// The value as written.
        value: String,
    },
    /// `min` is larger than a bounded `max`.
    #[error("spec.scale.min must not exceed spec.scale.max ({min} > {max})")]
    MinAboveMax {
        /// `spec.scale.min`.
        min: i32,
        /// `spec.scale.max`.
        max: i32,
    },
}

/// `spec.scale` with defaults resolved, percentages turned into fractions and durations parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedScale {
    /// Fewest replicas.
    pub min: u32,
    /// Most replicas; `None` when unbounded.
    pub max: Option<u32>,
    /// Replicas at creation: the larger of `initial` and `min`, capped by `max`.
    pub initial: u32,
    /// Metric to scale on.
    pub metric: ScaleMetric,
    /// Per-pod target of the metric (default resolved; capped by `spec.concurrency` for `concurrency`).
    pub target: f64,
    /// Share of the target to aim for, as a fraction (`0.7` for 70 %).
    pub target_utilization: f64,
    /// Stable window.
    pub window: Duration,
    /// Panic window: `window × panicWindowPercentage / 100`.
    pub panic_window: Duration,
    /// Panic threshold as a fraction of capacity (`2.0` for 200 %).
    pub panic_threshold: f64,
    /// Idle time after the stable window before scaling to zero.
    pub scale_to_zero_grace_period: Duration,
    /// How long to hold the peak before scaling down.
    pub scale_down_delay: Duration,
    /// Largest factor by which one decision may multiply the ready pods.
    pub max_scale_up_rate: f64,
    /// Largest factor by which one decision may divide the ready pods.
    pub max_scale_down_rate: f64,
}

fn parse_duration(field: &'static str, value: &str, min: Duration) -> Result<Duration, ScaleError> {
    let parsed = duration::parse(value).map_err(|source| ScaleError::Duration { field, source })?;
    if parsed < min || parsed > MAX_DURATION {
        let bounds = if min.is_zero() {
            "between 0s and 1h"
        } else {
            "between 6s and 1h"
        };
        return Err(ScaleError::OutOfRange {
            field,
            bounds,
            value: value.to_string(),
        });
    }
    Ok(parsed)
}

fn check(
    field: &'static str,
    bounds: &'static str,
    ok: bool,
    value: impl ToString,
) -> Result<(), ScaleError> {
    if ok {
        Ok(())
    } else {
        Err(ScaleError::OutOfRange {
            field,
            bounds,
            value: value.to_string(),
        })
    }
}

impl ScaleSpec {
    /// Resolves defaults and parses durations. `concurrency` is `spec.concurrency` (0 = unlimited), which
    /// caps the default concurrency target.
    pub fn resolved(&self, concurrency: i32) -> Result<ResolvedScale, ScaleError> {
        check("min", "at least 0", self.min >= 0, self.min)?;
        check("max", "at least 0", self.max >= 0, self.max)?;
        check("initial", "at least 0", self.initial >= 0, self.initial)?;
        if self.max > 0 && self.min > self.max {
            return Err(ScaleError::MinAboveMax {
                min: self.min,
                max: self.max,
            });
        }
        let tu = self.target_utilization_percentage;
        check(
            "targetUtilizationPercentage",
            "between 1 and 100",
            (1.0..=100.0).contains(&tu),
            tu,
        )?;
        let pwp = self.panic_window_percentage;
        check(
            "panicWindowPercentage",
            "between 1 and 100",
            (1.0..=100.0).contains(&pwp),
            pwp,
        )?;
        let ptp = self.panic_threshold_percentage;
        check(
            "panicThresholdPercentage",
            "between 110 and 1000",
            (110.0..=1000.0).contains(&ptp),
            ptp,
        )?;
        let up = self.max_scale_up_rate;
        check("maxScaleUpRate", "greater than 1", up > 1.0, up)?;
        let down = self.max_scale_down_rate;
        check("maxScaleDownRate", "greater than 1", down > 1.0, down)?;
        if let Some(t) = self.target {
            check("target", "at least 0.01", t >= 0.01, t)?;
        }

        let window = parse_duration("window", &self.window, MIN_WINDOW)?;
        let grace = parse_duration(
            "scaleToZeroGracePeriod",
            &self.scale_to_zero_grace_period,
            Duration::ZERO,
        )?;
        let delay = parse_duration("scaleDownDelay", &self.scale_down_delay, Duration::ZERO)?;

        let mut target = self.target.unwrap_or(match self.metric {
            ScaleMetric::Concurrency => DEFAULT_CONCURRENCY_TARGET,
            ScaleMetric::Rps => DEFAULT_RPS_TARGET,
        });
        if self.metric == ScaleMetric::Concurrency && concurrency > 0 {
            target = target.min(f64::from(concurrency));
        }
        // Non-negative after the checks above, so the casts cannot wrap.
        let min = self.min.unsigned_abs();
        let max = (self.max > 0).then(|| self.max.unsigned_abs());
        let initial = self.initial.unsigned_abs().max(min);
        let initial = max.map_or(initial, |m| initial.min(m));
        Ok(ResolvedScale {
            min,
            max,
            initial,
            metric: self.metric,
            target,
            target_utilization: tu / 100.0,
            window,
            panic_window: window.mul_f64(pwp / 100.0),
            panic_threshold: ptp / 100.0,
            scale_to_zero_grace_period: grace,
            scale_down_delay: delay,
            max_scale_up_rate: up,
            max_scale_down_rate: down,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_resolve_like_knative() {
        let r = ScaleSpec::default().resolved(0).expect("defaults are valid");
        assert_eq!((r.min, r.max, r.initial), (0, None, 1));
        assert_eq!(r.target, 100.0);
        assert_eq!(r.target_utilization, 0.7);
        assert_eq!(r.window, Duration::from_secs(60));
        assert_eq!(r.panic_window, Duration::from_secs(6));
        assert_eq!(r.panic_threshold, 2.0);
        assert_eq!(r.scale_to_zero_grace_period, Duration::from_secs(30));
        assert_eq!(r.scale_down_delay, Duration::ZERO);
        assert_eq!((r.max_scale_up_rate, r.max_scale_down_rate), (1000.0, 2.0));
    }

    #[test]
    fn concurrency_caps_the_default_target_and_rps_has_its_own() {
        assert_eq!(ScaleSpec::default().resolved(10).expect("valid").target, 10.0);
        let rps = ScaleSpec {
            metric: ScaleMetric::Rps,
            ..ScaleSpec::default()
        };
        assert_eq!(rps.resolved(10).expect("valid").target, 200.0);
    }

    #[test]
    fn initial_is_at_least_min_and_at_most_max() {
        let s = ScaleSpec {
            min: 3,
            max: 5,
            initial: 1,
            ..ScaleSpec::default()
        };
        assert_eq!(s.resolved(0).expect("valid").initial, 3);
        let s = ScaleSpec {
            min: 0,
            max: 2,
            initial: 4,
            ..ScaleSpec::default()
        };
        assert_eq!(s.resolved(0).expect("valid").initial, 2);
    }

    #[test]
    fn rejects_what_admission_rejects() {
        let bad = |s: ScaleSpec| s.resolved(0).expect_err("invalid").to_string();
        assert!(
            bad(ScaleSpec {
                min: 3,
                max: 2,
                ..ScaleSpec::default()
            })
            .contains("spec.scale.min")
        );
        assert!(
            bad(ScaleSpec {
                window: "5s".into(),
                ..ScaleSpec::default()
            })
            .contains("spec.scale.window")
        );
        assert!(
            bad(ScaleSpec {
                window: "soon".into(),
                ..ScaleSpec::default()
            })
            .contains("not a duration")
        );
        assert!(
            bad(ScaleSpec {
                scale_down_delay: "2h".into(),
                ..ScaleSpec::default()
            })
            .contains("scaleDownDelay")
        );
        let tu = ScaleSpec {
            target_utilization_percentage: 0.0,
            ..ScaleSpec::default()
        };
        assert!(bad(tu).contains("targetUtilizationPercentage"));
        let pt = ScaleSpec {
            panic_threshold_percentage: 100.0,
            ..ScaleSpec::default()
        };
        assert!(bad(pt).contains("panicThresholdPercentage"));
        assert!(
            bad(ScaleSpec {
                max_scale_down_rate: 1.0,
                ..ScaleSpec::default()
            })
            .contains("maxScaleDownRate")
        );
    }
}
