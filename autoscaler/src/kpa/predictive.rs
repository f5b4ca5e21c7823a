//! The predictive keep-alive policy (`spec.scale.policy: predictive`): the hybrid histogram policy of
//! Shahrad et al., "Serverless in the Wild" (USENIX ATC 2020), deciding only the 0 ↔ 1 boundary.
//!
//! It learns a histogram of the function's idle times (time from its last traffic to its next) in
//! 1-minute bins over a few hours. From it, it plans the **warm spans**: the minutes after the last
//! traffic during which one pod is kept (or pre-warmed) for the next request; in between, zero. A
//! minute is warm when the requests it is likely to catch are worth the pod time it costs: when
//! `cold_start_cost` × (idle times ending in that minute) exceeds the pod-seconds one pod would idle
//! through it (every idle time that reaches it). The paper takes one window from the 5th to the 99th
//! percentile; this rule, our change (`docs/simulator.md`), drops the minutes a request rarely
//! arrives in, such as the quiet middle of a periodic function's gap, and the thin tail. When most
//! idle times fall beyond the histogram's range it forecasts the next one from their moving average
//! instead. When the history is not representative (too few idle times, or bin counts too flat: a
//! low coefficient of variation) it says nothing and the KPA decides, as for any other function.
//! Pure: `now` is always a parameter.

use std::time::Duration;

use zeroscale_crds::function::{IdleBin, Prediction};

use super::predictive_burst::BurstSizer;

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

/// What the policy says about one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Advice {
    /// No opinion: traffic is recent, or the history is not representative. The KPA decides.
    Kpa,
    /// One pod should be warm (at least one; the KPA may ask for more).
    Warm,
    /// The function should be at zero.
    Zero,
}

/// A stretch of time after the last traffic during which one pod is warm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Start, after the last traffic (the pre-warm moment).
    pub from: Duration,
    /// End, after the last traffic.
    pub to: Duration,
}

/// Where the policy's windows come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Windows {
    /// Not representative: the KPA decides.
    Fallback,
    /// From the histogram or the forecast: one pod warm during these spans after the last traffic
    /// (sorted, disjoint; none means zero until the next request), zero outside them.
    Predicted(Vec<Span>),
}

/// The learned idle-time distribution of one function, and when it last had traffic.
#[derive(Clone, Debug, PartialEq)]
pub struct Predictor {
    params: PredictiveParams,
    counts: Vec<u32>,
    out_of_range: u32,
    forecast: f64,
    last_active: Option<Duration>,
    /// Idle times recorded since creation: changes whenever the state worth persisting changes.
    version: u64,
    /// The windows of the current histogram, computed when it changes.
    windows: Windows,
    /// The pods a burst after an idle gap needs.
    burst: BurstSizer,
}

impl Predictor {
    /// An empty history.
    pub fn new(params: PredictiveParams) -> Self {
        Self {
            counts: vec![0; params.bins],
            params,
            out_of_range: 0,
            forecast: 0.0,
            last_active: None,
            version: 0,
            windows: Windows::Fallback,
            burst: BurstSizer::default(),
        }
    }

    /// The parameters.
    pub fn params(&self) -> &PredictiveParams {
        &self.params
    }

    /// Bumps on every recorded idle time; the shell persists the state when it changes.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// When the function last had traffic.
    pub fn last_active(&self) -> Option<Duration> {
        self.last_active
    }

    /// Records traffic at `now`; the silence before it, if long enough, is an idle time.
    pub fn activity(&mut self, now: Duration) {
        if let Some(last) = self.last_active {
            if now <= last {
                return;
            }
            let gap = now - last;
            if gap >= self.params.min_gap {
                self.burst.resumed(now, gap, self.params.burst_idle);
                self.record_idle(gap);
            }
        }
        self.last_active = Some(now);
    }

    /// A report of `value` requests in flight from one activator at `now` (after
    /// [`Self::activity`]): measures the burst that traffic resuming after an idle gap makes.
    pub fn load(&mut self, now: Duration, value: f64) {
        self.burst.load(now, value, self.params.burst_window);
    }

    /// `queued` requests wait at `now` for a function with no ready pod (after [`Self::activity`]).
    pub fn demand(&mut self, now: Duration, queued: u64) {
        self.burst.demand(now, queued, self.params.burst_window);
    }

    /// The pods a burst after an idle gap holds through `burst_window`: those the learned burst
    /// peaks are worth for that time (at least one), or one while the history is not
    /// representative or burst sizing is off.
    pub fn warm_pods(&self) -> i32 {
        self.burst_pods(self.params.burst_window)
    }

    /// The pods worth holding `held` per burst by the `cold_start_cost` rule.
    fn burst_pods(&self, held: Duration) -> i32 {
        match self.windows {
            Windows::Predicted(_) if self.params.burst_sizing => {
                self.burst
                    .pods(self.params.cold_start_cost, held, self.params.min_samples)
            }
            _ => 1,
        }
    }

    /// The pods to keep warm at `now`: in a pre-warm span (one that starts after a stretch at
    /// zero), those worth their time, which is the span (a pre-warmed pod waits in it for the
    /// burst) and then the burst window; one in a keep-alive span right after traffic (the
    /// traffic that just ended was the burst, and the KPA already holds what it needed).
    pub fn warm_pods_at(&self, now: Duration) -> i32 {
        let (Some(last), Windows::Predicted(spans)) = (self.last_active, &self.windows) else {
            return 1;
        };
        let since = now.saturating_sub(last);
        match spans.iter().find(|s| since >= s.from && since < s.to) {
            Some(s) if s.from > Duration::ZERO => self.burst_pods(self.params.burst_window + (s.to - s.from)),
            _ => 1,
        }
    }

    /// The floor while a burst after an idle gap runs (within `burst_window` of its start): the
    /// pods worth holding through the burst window ([`Self::warm_pods`]), so the KPA, whose
    /// stable window still holds the silence before, does not scale them away; 0 when that is
    /// one pod.
    pub fn burst_floor(&self, now: Duration) -> i32 {
        match self.warm_pods() {
            n if n > 1 && self.burst.in_burst(now, self.params.burst_window) => n,
            _ => 0,
        }
    }

    fn record_idle(&mut self, idle: Duration) {
        let bin = (idle.as_secs_f64() / self.params.bin.as_secs_f64()) as usize;
        match self.counts.get_mut(bin) {
            Some(c) => *c = c.saturating_add(1),
            None => {
                self.out_of_range = self.out_of_range.saturating_add(1);
                let secs = idle.as_secs_f64();
                self.forecast = if self.forecast > 0.0 {
                    (self.forecast + secs) / 2.0
                } else {
                    secs
                };
            }
        }
        if self.total() >= u64::from(self.params.decay_at) {
            self.counts.iter_mut().for_each(|c| *c /= 2);
            self.out_of_range /= 2;
            self.burst.decay();
        }
        self.version += 1;
        self.windows = self.plan();
    }

    fn in_range(&self) -> u64 {
        self.counts.iter().map(|&c| u64::from(c)).sum()
    }

    fn total(&self) -> u64 {
        self.in_range() + u64::from(self.out_of_range)
    }

    /// Coefficient of variation of the bin counts (0 for an empty histogram).
    pub fn cv(&self) -> f64 {
        let n = self.counts.len() as f64;
        let mean = self.in_range() as f64 / n;
        if mean == 0.0 {
            return 0.0;
        }
        let var = self
            .counts
            .iter()
            .map(|&c| (f64::from(c) - mean).powi(2))
            .sum::<f64>()
            / n;
        var.sqrt() / mean
    }

    /// The current windows.
    pub fn windows(&self) -> &Windows {
        &self.windows
    }

    /// The windows of the current histogram.
    fn plan(&self) -> Windows {
        let p = &self.params;
        let total = self.total();
        if total < u64::from(p.min_samples) {
            return Windows::Fallback;
        }
        if u64::from(self.out_of_range) as f64 > p.max_out_of_range * total as f64 && self.forecast > 0.0 {
            // Warm from `1 − m` to `1 + m` of the forecast; a window wider than `max_keep_alive`
            // is narrowed around the forecast moment, where the next request is likeliest.
            let half = (self.forecast * p.forecast_margin).min(p.max_keep_alive.as_secs_f64() / 2.0);
            return Windows::Predicted(vec![Span {
                from: Duration::from_secs_f64(self.forecast - half),
                to: Duration::from_secs_f64(self.forecast + half),
            }]);
        }
        let n = self.in_range();
        if n < u64::from(p.min_samples) || self.cv() < p.min_cv {
            return Windows::Fallback;
        }
        Windows::Predicted(self.warm_spans())
    }

    /// The warm bins, merged into spans with the margin. One pod warm through bin `i` idles through
    /// it for every idle time that reaches it: a whole bin for those ending later (and out of
    /// range), half of one, on average, for those ending in it. It saves a cold start for each of
    /// those ending in it. Both add up over bins, so each bin is decided on its own.
    fn warm_spans(&self) -> Vec<Span> {
        let p = &self.params;
        let bin = p.bin.as_secs_f64();
        let worth = p.cold_start_cost.as_secs_f64();
        let mut later = f64::from(self.out_of_range) + p.prior;
        let mut warm = vec![false; self.counts.len()];
        for (i, &c) in self.counts.iter().enumerate().rev() {
            let c = f64::from(c);
            warm[i] = c > 0.0 && worth * c > bin * (later + c / 2.0);
            later += c;
        }
        let mut spans: Vec<Span> = Vec::new();
        let mut i = 0;
        while i < warm.len() {
            if !warm[i] {
                i += 1;
                continue;
            }
            let start = i;
            while i < warm.len() && warm[i] {
                i += 1;
            }
            let from = Duration::from_secs_f64(start as f64 * bin * (1.0 - p.margin)).saturating_sub(p.slack);
            let to = Duration::from_secs_f64(i as f64 * bin * (1.0 + p.margin)) + p.slack;
            match spans.last_mut() {
                Some(last) if last.to >= from => last.to = to,
                _ => spans.push(Span { from, to }),
            }
        }
        spans
    }

    /// The advice at `now`.
    pub fn advise(&self, now: Duration) -> Advice {
        let Some(last) = self.last_active else {
            return Advice::Kpa;
        };
        let since = now.saturating_sub(last);
        if since < self.params.quiet {
            return Advice::Kpa;
        }
        match &self.windows {
            Windows::Fallback => Advice::Kpa,
            Windows::Predicted(spans) => {
                if spans.iter().any(|s| since >= s.from && since < s.to) {
                    Advice::Warm
                } else {
                    Advice::Zero
                }
            }
        }
    }

    /// The next moment after `now` at which the advice turns to [`Advice::Warm`], if one is
    /// planned: what a caller skipping idle functions must wake up for.
    pub fn next_prewarm(&self, now: Duration) -> Option<Duration> {
        let last = self.last_active?;
        let Windows::Predicted(spans) = &self.windows else {
            return None;
        };
        // The first warm moment still ahead: a span's start, or `quiet` inside the first span.
        spans.iter().find_map(|s| {
            let at = last + s.from.max(self.params.quiet);
            (at > now && at < last + s.to).then_some(at)
        })
    }

    /// The state to persist (`status.prediction`, without the wall-clock time of the last traffic,
    /// which only the shell knows).
    pub fn to_state(&self) -> Prediction {
        let bins = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, &count)| IdleBin {
                minute: u32::try_from(i).unwrap_or(u32::MAX),
                count,
            })
            .collect();
        Prediction {
            bins,
            out_of_range: self.out_of_range,
            forecast_seconds: self.forecast,
            last_active_time: None,
            burst_peaks: self.burst.to_state(),
        }
    }

    /// Restores a persisted state; `last_active` is the last traffic on this predictor's clock, if
    /// known. Bins beyond the range count as out of range; a bad forecast counts as none.
    pub fn restore(&mut self, state: &Prediction, last_active: Option<Duration>) {
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.out_of_range = state.out_of_range;
        for b in &state.bins {
            match usize::try_from(b.minute)
                .ok()
                .and_then(|i| self.counts.get_mut(i))
            {
                Some(c) => *c = c.saturating_add(b.count),
                None => self.out_of_range = self.out_of_range.saturating_add(b.count),
            }
        }
        let f = state.forecast_seconds;
        self.forecast = if f.is_finite() && f > 0.0 { f } else { 0.0 };
        if last_active.is_some() {
            self.last_active = last_active;
        }
        self.burst.restore(&state.burst_peaks);
        self.windows = self.plan();
    }
}

#[cfg(test)]
#[path = "predictive_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "predictive_burst_tests.rs"]
mod burst_tests;
