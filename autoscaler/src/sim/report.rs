//! The simulator's JSON report.

use serde::Serialize;

use super::{
    accounting::{IdleSplit, Tally},
    workload::SECOND,
};

/// Where a function's idle pod-seconds went (`kpa` and `predictive` only; see [`IdleSplit`]).
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct IdleSplitReport {
    /// The only pod, held by the KPA's rules (its window and grace after traffic).
    pub kpa: f64,
    /// The only pod, held by the predictive keep-alive window after traffic.
    pub keep_alive: f64,
    /// The only pod, pre-warmed and waiting for an arrival.
    pub prewarm: f64,
    /// Idle pods beyond the first.
    pub above_one: f64,
}

impl From<IdleSplit> for IdleSplitReport {
    fn from(s: IdleSplit) -> Self {
        let secs = |us: u128| us as f64 / SECOND as f64;
        Self {
            kpa: secs(s.kpa),
            keep_alive: secs(s.keep_alive),
            prewarm: secs(s.prewarm),
            above_one: secs(s.above_one),
        }
    }
}

/// Results of one function under one policy.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FunctionReport {
    /// `HashFunction` of the trace.
    pub hash: String,
    /// Invocations.
    pub invocations: u64,
    /// Invocations that waited for a pod to start.
    pub cold_starts: u64,
    /// `cold_starts / invocations × 100`.
    pub cold_start_pct: f64,
    /// Invocations that waited only for a busy pod to finish (not cold starts).
    pub queued: u64,
    /// Invocations that found the function with no pod at all (starting or up).
    pub at_zero: u64,
    /// Cold starts of invocations that found no pod at all (`at_zero` served by a new pod).
    pub cold_from_zero: u64,
    /// Cold starts of invocations that found only starting pods (a pre-warm or scale-up too late).
    pub cold_starting: u64,
    /// Cold starts of invocations that found every ready pod busy (a scale-up).
    pub cold_scale_up: u64,
    /// Pod-seconds without an invocation running (start-up included).
    pub idle_pod_seconds: f64,
    /// All pod-seconds.
    pub total_pod_seconds: f64,
    /// Where the idle pod-seconds went (`kpa` and `predictive` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_split: Option<IdleSplitReport>,
}

impl FunctionReport {
    /// The report of `hash` from its tally.
    pub fn new(hash: &str, tally: &Tally) -> Self {
        Self {
            hash: hash.to_string(),
            invocations: tally.invocations,
            cold_starts: tally.cold_starts,
            cold_start_pct: pct(tally.cold_starts, tally.invocations),
            queued: tally.queued,
            at_zero: tally.at_zero,
            cold_from_zero: tally.cold_split.from_zero,
            cold_starting: tally.cold_split.starting,
            cold_scale_up: tally.cold_split.scale_up,
            idle_pod_seconds: tally.idle_pod_seconds(),
            total_pod_seconds: tally.total_pod_seconds(),
            idle_split: tally.split.map(IdleSplitReport::from),
        }
    }
}

/// How the workload was modelled, so a report can be reproduced.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Model {
    /// Trace directory.
    pub trace: String,
    /// Seed of arrivals and durations.
    pub seed: u64,
    /// Arrival model.
    pub arrivals: &'static str,
    /// Duration model.
    pub durations: &'static str,
    /// Pod capacity model.
    pub capacity: &'static str,
    /// Time from pod creation to ready, in seconds.
    pub cold_start_seconds: f64,
}

/// Results of one policy over a whole trace.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PolicyReport {
    /// Policy name: `kpa`, `fixed_1m`, ...
    pub policy: String,
    /// Functions simulated.
    pub functions: usize,
    /// Invocations.
    pub invocations: u64,
    /// Cold starts: invocations that waited for a pod to start.
    pub cold_starts: u64,
    /// `cold_starts / invocations × 100`.
    pub cold_start_pct: f64,
    /// Invocations that waited only for a busy pod to finish.
    pub queued: u64,
    /// `queued / invocations × 100`.
    pub queued_pct: f64,
    /// Invocations that found the function with no pod at all.
    pub at_zero: u64,
    /// Cold starts from zero, all functions (see [`FunctionReport::cold_from_zero`]).
    pub cold_from_zero: u64,
    /// Cold starts behind starting pods, all functions.
    pub cold_starting: u64,
    /// Cold starts of scale-ups, all functions.
    pub cold_scale_up: u64,
    /// Idle pod-seconds, all functions.
    pub idle_pod_seconds: f64,
    /// Pod-seconds, all functions.
    pub total_pod_seconds: f64,
    /// Median over functions of their cold-start %.
    pub per_function_cold_start_pct_p50: f64,
    /// 75th percentile over functions of their cold-start % (the paper's headline statistic).
    pub per_function_cold_start_pct_p75: f64,
    /// The workload model.
    pub model: Model,
    /// Per-function results, in trace order.
    pub per_function: Vec<FunctionReport>,
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// The `q` quantile (0–1) of `values` by linear interpolation between closest ranks.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n => {
            let rank = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
            sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
        }
    }
}

impl PolicyReport {
    /// Sums the per-function results of `policy`.
    pub fn new(policy: &str, model: Model, per_function: Vec<FunctionReport>) -> Self {
        let invocations = per_function.iter().map(|f| f.invocations).sum();
        let cold_starts = per_function.iter().map(|f| f.cold_starts).sum();
        let queued = per_function.iter().map(|f| f.queued).sum();
        let pcts: Vec<f64> = per_function.iter().map(|f| f.cold_start_pct).collect();
        Self {
            policy: policy.to_string(),
            functions: per_function.len(),
            invocations,
            cold_starts,
            cold_start_pct: pct(cold_starts, invocations),
            queued,
            queued_pct: pct(queued, invocations),
            at_zero: per_function.iter().map(|f| f.at_zero).sum(),
            cold_from_zero: per_function.iter().map(|f| f.cold_from_zero).sum(),
            cold_starting: per_function.iter().map(|f| f.cold_starting).sum(),
            cold_scale_up: per_function.iter().map(|f| f.cold_scale_up).sum(),
            idle_pod_seconds: per_function.iter().map(|f| f.idle_pod_seconds).sum(),
            total_pod_seconds: per_function.iter().map(|f| f.total_pod_seconds).sum(),
            per_function_cold_start_pct_p50: quantile(&pcts, 0.5),
            per_function_cold_start_pct_p75: quantile(&pcts, 0.75),
            model,
            per_function,
        }
    }
}

/// The flat benchmark keys of `reports`: `sim.<policy>.cold_start_pct` and
/// `sim.<policy>.idle_pod_seconds` (plus the queued %, the per-function p75 and total pod-seconds).
pub fn bench_keys(reports: &[PolicyReport]) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    for r in reports {
        let mut put = |key: &str, v: f64| {
            let rounded = (v * 1000.0).round() / 1000.0;
            out.insert(format!("sim.{}.{key}", r.policy), serde_json::json!(rounded));
        };
        put("cold_start_pct", r.cold_start_pct);
        put("queued_pct", r.queued_pct);
        put("idle_pod_seconds", r.idle_pod_seconds);
        put("total_pod_seconds", r.total_pod_seconds);
        put(
            "per_function_cold_start_pct_p75",
            r.per_function_cold_start_pct_p75,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate() {
        assert_eq!(quantile(&[4.0, 1.0, 3.0, 2.0], 0.5), 2.5);
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.75), 4.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}
