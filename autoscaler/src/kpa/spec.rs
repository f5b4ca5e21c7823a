//! A Function's `spec.scale`, resolved into the numbers the decider works with.

use std::time::Duration;

use zeroscale_crds::function::{ScaleMetric, ScaleSpec};

/// Knative's smallest allowed `target × utilization`.
const MIN_TARGET_VALUE: f64 = 0.01;
/// Shortest stable window (Knative `WindowMin`).
pub const MIN_WINDOW: Duration = Duration::from_secs(6);
/// Longest stable window (Knative `WindowMax`).
pub const MAX_WINDOW: Duration = Duration::from_secs(3600);

/// Why a `spec.scale` cannot be used.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpecError {
    /// A duration field does not parse.
    #[error("spec.scale.{field}: {source}")]
    Duration {
        /// The field, such as `window`.
        field: &'static str,
        /// Why it does not parse.
        #[source]
        source: zeroscale_crds::duration::DurationError,
    },
    /// A field is outside its allowed range.
    #[error("spec.scale.{field}: {reason}")]
    Range {
        /// The field, such as `maxScaleDownRate`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Everything the KPA decision for one function needs (Knative `DeciderSpec` plus the bounds the
/// Knative PA reconciler applies).
#[derive(Clone, Debug, PartialEq)]
pub struct DeciderSpec {
    /// Metric scaled on.
    pub metric: ScaleMetric,
    /// Per-pod capacity of the metric (Knative `TotalValue`).
    pub total_value: f64,
    /// Per-pod value to aim for: `total_value × utilization` (Knative `TargetValue`).
    pub target_value: f64,
    /// Panic when panic-window desired pods ÷ ready pods reaches this ratio.
    pub panic_threshold: f64,
    /// Largest factor by which one decision may multiply the ready pods.
    pub max_scale_up_rate: f64,
    /// Largest factor by which one decision may divide the ready pods.
    pub max_scale_down_rate: f64,
    /// Stable window.
    pub stable_window: Duration,
    /// Panic window (stable × percentage, whole seconds, at least 1 s).
    pub panic_window: Duration,
    /// Hold the peak this long before scaling down; zero disables the delay window.
    pub scale_down_delay: Duration,
    /// Idle time after the stable window before going to zero.
    pub scale_to_zero_grace: Duration,
    /// Fewest replicas.
    pub min: i32,
    /// Most replicas; 0 means unbounded.
    pub max: i32,
    /// Replicas at creation; a floor until the function first reaches it.
    pub initial: i32,
}

impl Default for DeciderSpec {
    fn default() -> Self {
        // The CRD defaults resolve without error; fall back to literal Knative defaults regardless.
        DeciderSpec::resolve(&ScaleSpec::default(), 0).unwrap_or(DeciderSpec {
            metric: ScaleMetric::Concurrency,
            total_value: 100.0,
            target_value: 70.0,
            panic_threshold: 2.0,
            max_scale_up_rate: 1000.0,
            max_scale_down_rate: 2.0,
            stable_window: Duration::from_secs(60),
            panic_window: Duration::from_secs(6),
            scale_down_delay: Duration::ZERO,
            scale_to_zero_grace: Duration::from_secs(30),
            min: 0,
            max: 0,
            initial: 1,
        })
    }
}

fn parse(field: &'static str, value: &str) -> Result<Duration, SpecError> {
    zeroscale_crds::duration::parse(value).map_err(|source| SpecError::Duration { field, source })
}

fn range(field: &'static str, reason: impl Into<String>) -> SpecError {
    SpecError::Range {
        field,
        reason: reason.into(),
    }
}

impl DeciderSpec {
    /// Resolves `scale` for a function whose hard per-pod limit is `concurrency` (0 = unlimited).
    pub fn resolve(scale: &ScaleSpec, concurrency: i32) -> Result<Self, SpecError> {
        let stable_window = parse("window", &scale.window)?;
        if !(MIN_WINDOW..=MAX_WINDOW).contains(&stable_window) {
            return Err(range("window", "must be between 6s and 1h"));
        }
        // Knative keeps windows in whole seconds.
        let stable_window = Duration::from_secs(stable_window.as_secs());
        if !(1.0..=100.0).contains(&scale.panic_window_percentage) {
            return Err(range("panicWindowPercentage", "must be between 1 and 100"));
        }
        let panic_secs = (stable_window.as_secs_f64() * scale.panic_window_percentage / 100.0).round();
        let panic_window = Duration::from_secs((panic_secs as u64).max(1));
        let utilization = scale.target_utilization_percentage;
        if !(utilization > 0.0 && utilization <= 100.0) {
            return Err(range("targetUtilizationPercentage", "must be in (0, 100]"));
        }
        if scale.max_scale_up_rate <= 1.0 {
            return Err(range("maxScaleUpRate", "must be greater than 1"));
        }
        if scale.max_scale_down_rate <= 1.0 {
            return Err(range("maxScaleDownRate", "must be greater than 1"));
        }
        if scale.min < 0 || scale.max < 0 || scale.initial < 0 {
            return Err(range("min", "min, max and initial must not be negative"));
        }
        if scale.max > 0 && scale.min > scale.max {
            return Err(range("min", "must not exceed max"));
        }
        let mut total_value = scale.target.unwrap_or(match scale.metric {
            ScaleMetric::Concurrency => 100.0,
            ScaleMetric::Rps => 200.0,
        });
        if total_value <= 0.0 {
            return Err(range("target", "must be positive"));
        }
        if scale.metric == ScaleMetric::Concurrency && concurrency > 0 {
            total_value = total_value.min(f64::from(concurrency));
        }
        Ok(Self {
            metric: scale.metric,
            total_value,
            target_value: (total_value * utilization / 100.0).max(MIN_TARGET_VALUE),
            panic_threshold: scale.panic_threshold_percentage / 100.0,
            max_scale_up_rate: scale.max_scale_up_rate,
            max_scale_down_rate: scale.max_scale_down_rate,
            stable_window,
            panic_window,
            scale_down_delay: parse("scaleDownDelay", &scale.scale_down_delay)?,
            scale_to_zero_grace: parse("scaleToZeroGracePeriod", &scale.scale_to_zero_grace_period)?,
            min: scale.min,
            max: scale.max,
            initial: scale.initial,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knative_defaults() {
        let spec = DeciderSpec::resolve(&ScaleSpec::default(), 0).unwrap();
        assert_eq!(spec.target_value, 70.0);
        assert_eq!(spec.stable_window, Duration::from_secs(60));
        assert_eq!(spec.panic_window, Duration::from_secs(6));
        assert_eq!(spec.panic_threshold, 2.0);
        assert_eq!(spec.scale_to_zero_grace, Duration::from_secs(30));
        assert_eq!(spec, DeciderSpec::default());
    }

    #[test]
    fn target_is_capped_by_container_concurrency() {
        let spec = DeciderSpec::resolve(&ScaleSpec::default(), 10).unwrap();
        assert_eq!(spec.total_value, 10.0);
        assert_eq!(spec.target_value, 7.0);
    }

    #[test]
    fn rps_default_target() {
        let scale = ScaleSpec {
            metric: ScaleMetric::Rps,
            ..ScaleSpec::default()
        };
        assert_eq!(DeciderSpec::resolve(&scale, 10).unwrap().target_value, 140.0);
    }

    #[test]
    fn short_windows_get_a_one_second_panic_window() {
        let scale = ScaleSpec {
            window: "6s".into(),
            ..ScaleSpec::default()
        };
        assert_eq!(
            DeciderSpec::resolve(&scale, 0).unwrap().panic_window,
            Duration::from_secs(1)
        );
    }

    #[test]
    fn invalid_fields_are_named() {
        let scale = ScaleSpec {
            window: "2s".into(),
            ..ScaleSpec::default()
        };
        let err = DeciderSpec::resolve(&scale, 0).unwrap_err();
        assert!(err.to_string().starts_with("spec.scale.window"), "{err}");
        let scale = ScaleSpec {
            scale_down_delay: "soon".into(),
            ..ScaleSpec::default()
        };
        assert!(DeciderSpec::resolve(&scale, 0).is_err());
    }
}
