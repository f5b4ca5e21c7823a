//! A Function's `spec.scale`, resolved into the numbers the decider works with.

use std::time::Duration;

use zeroscale_crds::function::{ParsedSchedule, ScaleMetric, ScalePolicy, ScaleSpec};

/// Knative's smallest allowed `target × utilization`.
const MIN_TARGET_VALUE: f64 = 0.01;

/// Why a `spec.scale` cannot be used: the API crate's own check, so the operator and the autoscaler
/// reject exactly the same specs with the same words.
pub type SpecError = zeroscale_crds::function::ScaleError;

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
    /// Who decides the 0 ↔ 1 boundary.
    pub policy: ScalePolicy,
    /// Windows of warm capacity (`spec.scale.schedules`), parsed by the shell (see
    /// [`super::schedule`]); empty when there are none or they do not parse.
    pub schedules: Vec<ParsedSchedule>,
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
            policy: ScalePolicy::Kpa,
            schedules: Vec::new(),
        })
    }
}

impl DeciderSpec {
    /// What one pod serves of the metric at most (`total_value`, never below Knative's floor): the
    /// predictive burst size divides the reports by it, so `concurrency: 10` and 14 requests in
    /// flight need 2 pods, not 14.
    pub fn pod_capacity(&self) -> f64 {
        self.total_value.max(MIN_TARGET_VALUE)
    }

    /// Resolves `scale` for a function whose hard per-pod limit is `concurrency` (0 = unlimited).
    /// Defaults, bounds and durations come from [`ScaleSpec::resolved`]; this adds Knative's
    /// whole-second windows and its floor on the target value.
    pub fn resolve(scale: &ScaleSpec, concurrency: i32) -> Result<Self, SpecError> {
        let r = scale.resolved(concurrency)?;
        // Knative keeps windows in whole seconds, and the panic window is at least one second.
        let stable_window = Duration::from_secs(r.window.as_secs());
        let panic_secs = (stable_window.as_secs_f64() * scale.panic_window_percentage / 100.0).round();
        let to_i32 = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        Ok(Self {
            metric: r.metric,
            total_value: r.target,
            target_value: (r.target * r.target_utilization).max(MIN_TARGET_VALUE),
            panic_threshold: r.panic_threshold,
            max_scale_up_rate: r.max_scale_up_rate,
            max_scale_down_rate: r.max_scale_down_rate,
            stable_window,
            panic_window: Duration::from_secs((panic_secs as u64).max(1)),
            scale_down_delay: r.scale_down_delay,
            scale_to_zero_grace: r.scale_to_zero_grace_period,
            min: to_i32(r.min),
            max: r.max.map_or(0, to_i32),
            initial: to_i32(r.initial),
            policy: scale.policy,
            schedules: Vec::new(),
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
