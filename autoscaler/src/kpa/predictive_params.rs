//! The predictive policy's parameters and their defaults (chosen on the trace samples, see
//! `docs/simulator.md`).

use std::time::Duration;

/// The policy's parameters (chosen on the trace samples, see `docs/simulator.md`).
#[derive(Clone, Debug, PartialEq)]
pub struct PredictiveParams {
    /// Width of one histogram bin.
    pub bin: Duration,
    /// Number of bins: the histogram covers `bin × bins`.
    pub bins: usize,
    /// What one cold start avoided is worth in idle pod time: a bin is warm when the idle times
    /// ending in it, times this, exceed the pod time one pod would idle through it.
    pub cold_start_cost: Duration,
    /// Idle times assumed beyond the histogram's range on top of those seen: a prior against
    /// warming a bin on the evidence of one or two idle times.
    pub prior: f64,
    /// Safety margin (a fraction) taken off the start of a warm span and added to its end.
    pub margin: f64,
    /// Time taken off the start of a warm span and added to its end on top of the margin: idle
    /// times are measured from per-second reports and demand, so one on a bin edge may be counted
    /// in either bin (a request every 5 minutes); this keeps the pod over the edge.
    pub slack: Duration,
    /// Fewest idle times before the histogram is trusted.
    pub min_samples: u32,
    /// Smallest coefficient of variation of the bin counts for a representative histogram.
    pub min_cv: f64,
    /// Share of out-of-range idle times above which the forecast replaces the histogram.
    pub max_out_of_range: f64,
    /// Margin around the forecast idle time (pre-warm at `1 − m`, keep warm until `1 + m`).
    pub forecast_margin: f64,
    /// Longest warm span around a forecast idle time: a wider margin is narrowed around the
    /// forecast moment.
    pub max_keep_alive: Duration,
    /// A silence shorter than this is not an idle time (per-second reports are 1 s apart).
    pub min_gap: Duration,
    /// Time without traffic before the policy, not the KPA, decides.
    pub quiet: Duration,
    /// When the total count reaches this, every count halves (older idle times weigh less).
    pub decay_at: u32,
    /// Whether a warm span pre-warms, and a burst holds, the pods the learned burst peaks are
    /// worth by the `cold_start_cost` rule (`predictive_burst`); off keeps one pod, as before
    /// bursts were learned (the A/B). Not a tuned parameter: the rule decides the count.
    pub burst_sizing: bool,
    /// How long after traffic resumes its peak is measured, and the burst's pods are held.
    pub burst_window: Duration,
    /// Shortest idle time after which resumed traffic is a burst to measure (shorter silences
    /// are the same traffic, the KPA's domain).
    pub burst_idle: Duration,
}

impl Default for PredictiveParams {
    fn default() -> Self {
        Self {
            bin: Duration::from_secs(60),
            bins: 240,
            cold_start_cost: Duration::from_secs(180),
            prior: 3.0,
            margin: 0.0,
            slack: Duration::from_secs(5),
            min_samples: 2,
            min_cv: 2.0,
            max_out_of_range: 0.5,
            forecast_margin: 0.15,
            max_keep_alive: Duration::from_secs(600),
            min_gap: Duration::from_millis(1500),
            quiet: Duration::from_secs(2),
            decay_at: 10_000,
            burst_sizing: true,
            burst_window: Duration::from_secs(60),
            burst_idle: Duration::from_secs(30),
        }
    }
}
