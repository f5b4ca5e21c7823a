//! `spec.scale`: how a Function scales (Knative KPA semantics and defaults).

use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::schedule::{MAX_SCHEDULES, ScaleSchedule, schedules_within_max};

/// Durations the API accepts, as a regular expression both CEL (`matches`) and humantime agree on:
/// whole numbers with the units `ns`, `us`, `ms`, `s`, `m` and `h`, such as `30s`, `500ms` or `1h30m`.
pub const DURATION_PATTERN: &str = "^([0-9]+(ns|us|ms|s|m|h))+$";

/// The metric a function scales on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScaleMetric {
    /// Requests in flight per pod.
    #[default]
    Concurrency,
    /// Requests per second per pod.
    Rps,
}

/// Who decides when a function goes to zero and comes back (`spec.scale.policy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ScalePolicy {
    /// Knative KPA: one pod stays for the stable window plus the grace period after the last request.
    #[default]
    Kpa,
    /// Learn the function's idle times: scale to zero between requests and pre-warm one pod shortly
    /// before the predicted next one; KPA above one pod and while the history is not representative.
    Predictive,
}

/// How a function scales (Knative KPA semantics and defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = scale_rules)]
pub struct ScaleSpec {
    /// Fewest replicas; 0 allows scaling to zero.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub min: i32,
    /// Most replicas; 0 means unbounded. When set, `min` and `initial` must not exceed it.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub max: i32,
    /// Replicas at creation (the larger of this and `min`); afterwards the autoscaler decides.
    #[serde(default = "default_initial")]
    #[schemars(range(min = 0))]
    pub initial: i32,
    /// Metric to scale on: `concurrency` (requests in flight per pod) or `rps` (requests per second per pod).
    #[serde(default)]
    pub metric: ScaleMetric,
    /// Per-pod target of the metric; defaults to 100 for `concurrency` (capped by `spec.concurrency` when
    /// that is set) and 200 for `rps`. Must not exceed `spec.concurrency` when that is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.01))]
    pub target: Option<f64>,
    /// Share of the target to aim for, in percent (1–100).
    #[serde(default = "default_target_utilization")]
    #[schemars(range(min = 1, max = 100))]
    pub target_utilization_percentage: f64,
    /// Stable window over which demand is averaged, a duration between `6s` and `1h`, such as `60s`.
    #[serde(default = "default_window")]
    #[schemars(length(max = 32))]
    pub window: String,
    /// Panic window as a percentage of the stable window (1–100).
    #[serde(default = "default_panic_window_percentage")]
    #[schemars(range(min = 1, max = 100))]
    pub panic_window_percentage: f64,
    /// Enter panic mode when the panic-window demand reaches this percentage of current capacity (110–1000).
    #[serde(default = "default_panic_threshold_percentage")]
    #[schemars(range(min = 110, max = 1000))]
    pub panic_threshold_percentage: f64,
    /// Idle time after the stable window before scaling to zero, a duration up to `1h`, such as `30s`.
    #[serde(default = "default_grace")]
    #[schemars(length(max = 32))]
    pub scale_to_zero_grace_period: String,
    /// Hold the peak this long before scaling down, a duration up to `1h`, such as `0s`.
    #[serde(default = "default_scale_down_delay")]
    #[schemars(length(max = 32))]
    pub scale_down_delay: String,
    /// Largest factor by which one decision may multiply the ready pods; greater than 1.
    #[serde(default = "default_max_scale_up_rate")]
    pub max_scale_up_rate: f64,
    /// Largest factor by which one decision may divide the ready pods; greater than 1.
    #[serde(default = "default_max_scale_down_rate")]
    pub max_scale_down_rate: f64,
    /// Who decides the 0 ↔ 1 boundary: `kpa` (default) or `predictive` (learned keep-alive and
    /// pre-warming, see docs/autoscaler.md).
    #[serde(default)]
    pub policy: ScalePolicy,
    /// Windows of warm capacity (at most 16): from each firing of `start` to the next firing of
    /// `end`, in `timeZone`, the function keeps at least the entry's `min` replicas.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_SCHEDULES))]
    pub schedules: Vec<ScaleSchedule>,
    /// Most requests in flight for the function across all its pods and all activator replicas
    /// (reserved concurrency); 0 means no cap. Requests over it wait in the function's queue.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub max_concurrency: i32,
    /// Most requests waiting for the function in the activator; beyond it they are answered 429
    /// (with `maxConcurrency`) or 503, with a `Retry-After` from the observed drain rate. Default
    /// (unset) the activator's `--queue-max-requests`, which also caps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_queued: Option<i32>,
}

impl Default for ScaleSpec {
    fn default() -> Self {
        Self {
            min: 0,
            max: 0,
            initial: default_initial(),
            metric: ScaleMetric::default(),
            target: None,
            target_utilization_percentage: default_target_utilization(),
            window: default_window(),
            panic_window_percentage: default_panic_window_percentage(),
            panic_threshold_percentage: default_panic_threshold_percentage(),
            scale_to_zero_grace_period: default_grace(),
            scale_down_delay: default_scale_down_delay(),
            max_scale_up_rate: default_max_scale_up_rate(),
            max_scale_down_rate: default_max_scale_down_rate(),
            policy: ScalePolicy::default(),
            schedules: Vec::new(),
            max_concurrency: 0,
            max_queued: None,
        }
    }
}

fn default_initial() -> i32 {
    1
}
fn default_target_utilization() -> f64 {
    70.0
}
fn default_window() -> String {
    "60s".to_string()
}
fn default_panic_window_percentage() -> f64 {
    10.0
}
fn default_panic_threshold_percentage() -> f64 {
    200.0
}
fn default_grace() -> String {
    "30s".to_string()
}
fn default_scale_down_delay() -> String {
    "0s".to_string()
}
fn default_max_scale_up_rate() -> f64 {
    1000.0
}
fn default_max_scale_down_rate() -> f64 {
    2.0
}

/// A CEL rule with the message the API server returns when it fails.
pub(crate) fn rule(rule: impl Into<String>, message: impl Into<String>) -> Value {
    json!({ "rule": rule.into(), "message": message.into() })
}

/// Two rules for a duration field: it parses, and (when it parses) it lies within `[min, max]`.
fn duration_rules(field: &str, min: &str, max: &str, example: &str) -> [Value; 2] {
    let parses = format!("self.{field}.matches('{DURATION_PATTERN}')");
    [
        rule(
            parses.clone(),
            format!("spec.scale.{field} must be a duration such as {example} (units ns, us, ms, s, m, h)"),
        ),
        rule(
            format!(
                "!{parses} || (duration(self.{field}) >= duration('{min}') && duration(self.{field}) <= duration('{max}'))"
            ),
            format!("spec.scale.{field} must be between {min} and {max}"),
        ),
    ]
}

/// Adds the cross-field CEL rules of `spec.scale`.
fn scale_rules(schema: &mut Schema) {
    let mut rules = vec![
        rule(
            "self.max == 0 || self.min <= self.max",
            "spec.scale.min must not exceed spec.scale.max",
        ),
        rule(
            "self.max == 0 || self.initial <= self.max",
            "spec.scale.initial must not exceed spec.scale.max",
        ),
        rule(
            "self.maxScaleUpRate > 1.0",
            "spec.scale.maxScaleUpRate must be greater than 1",
        ),
        rule(
            "self.maxScaleDownRate > 1.0",
            "spec.scale.maxScaleDownRate must be greater than 1",
        ),
        schedules_within_max(),
    ];
    rules.extend(duration_rules("window", "6s", "1h", "60s"));
    rules.extend(duration_rules("scaleToZeroGracePeriod", "0s", "1h", "30s"));
    rules.extend(duration_rules("scaleDownDelay", "0s", "1h", "0s or 5m"));
    schema.insert("x-kubernetes-validations".into(), Value::Array(rules));
}
