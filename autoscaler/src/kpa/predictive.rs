//! The predictive keep-alive policy (`spec.scale.policy: predictive`): the hybrid histogram policy of
//! Shahrad et al., "Serverless in the Wild" (USENIX ATC 2020), deciding only the 0 ↔ 1 boundary.
//!
//! It learns a histogram of the function's idle times (time from its last traffic to its next) in
//! 1-minute bins over a few hours. From the head and tail percentiles it derives a **pre-warm
//! window** (how long after the last traffic the function may sit at zero) and a **keep-alive
//! window** (how long one pod then stays warm, at most `max_keep_alive`: our addition, see
//! `docs/simulator.md`). When most idle times fall beyond the histogram's
//! range it forecasts the next one from their moving average instead. When the history is not
//! representative (too few idle times, or bin counts too flat: a low coefficient of variation) it
//! says nothing and the KPA decides, as for any other function. Pure: `now` is always a parameter.

use std::time::Duration;

use zeroscale_crds::function::{IdleBin, Prediction};

/// The policy's parameters (chosen on the trace samples, see `docs/simulator.md`).
#[derive(Clone, Debug, PartialEq)]
pub struct PredictiveParams {
    /// Width of one histogram bin.
    pub bin: Duration,
    /// Number of bins: the histogram covers `bin × bins`.
    pub bins: usize,
    /// Head percentile (a fraction) giving the pre-warm window.
    pub head: f64,
    /// Tail percentile (a fraction) giving the end of the keep-alive window.
    pub tail: f64,
    /// Safety margin taken off the pre-warm window and added to the keep-alive window.
    pub margin: f64,
    /// Fewest idle times before the histogram is trusted.
    pub min_samples: u32,
    /// Smallest coefficient of variation of the bin counts for a representative histogram.
    pub min_cv: f64,
    /// Share of out-of-range idle times above which the forecast replaces the histogram.
    pub max_out_of_range: f64,
    /// Margin around the forecast idle time (pre-warm at `1 − m`, keep warm until `1 + m`).
    pub forecast_margin: f64,
    /// A silence shorter than this is not an idle time (per-second reports are 1 s apart).
    pub min_gap: Duration,
    /// Time without traffic before the policy, not the KPA, decides.
    pub quiet: Duration,
    /// When the total count reaches this, every count halves (older idle times weigh less).
    pub decay_at: u32,
    /// Longest time one pod stays warm in one window: a wider spread of idle times than this is
    /// covered from its head only (the rest would cost more pod time than the cold starts it saves).
    pub max_keep_alive: Duration,
}

impl Default for PredictiveParams {
    fn default() -> Self {
        Self {
            bin: Duration::from_secs(60),
            bins: 240,
            head: 0.05,
            tail: 0.99,
            margin: 0.10,
            min_samples: 2,
            min_cv: 2.0,
            max_out_of_range: 0.5,
            forecast_margin: 0.15,
            min_gap: Duration::from_millis(1500),
            quiet: Duration::from_secs(2),
            decay_at: 10_000,
            max_keep_alive: Duration::from_secs(600),
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

/// Where the policy's windows come from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Windows {
    /// Not representative: the KPA decides.
    Fallback,
    /// From the histogram or the forecast: zero for `prewarm` after the last traffic, then one pod
    /// warm for `keep_alive`.
    Predicted {
        /// Time at zero after the last traffic.
        prewarm: Duration,
        /// Time one pod stays warm after the pre-warm window.
        keep_alive: Duration,
    },
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
                self.record_idle(gap);
            }
        }
        self.last_active = Some(now);
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
        }
        self.version += 1;
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

    /// The first bin where the cumulative count reaches `q` of `n`.
    fn percentile_bin(&self, q: f64, n: u64) -> usize {
        let want = ((q * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen >= want {
                return i;
            }
        }
        self.counts.len() - 1
    }

    /// The current windows.
    pub fn windows(&self) -> Windows {
        let p = &self.params;
        let total = self.total();
        if total < u64::from(p.min_samples) {
            return Windows::Fallback;
        }
        if u64::from(self.out_of_range) as f64 > p.max_out_of_range * total as f64 && self.forecast > 0.0 {
            // Warm from `1 − m` to `1 + m` of the forecast; a window wider than `max_keep_alive`
            // is narrowed around the forecast moment, where the next request is likeliest.
            let half = (self.forecast * p.forecast_margin).min(p.max_keep_alive.as_secs_f64() / 2.0);
            return Windows::Predicted {
                prewarm: Duration::from_secs_f64(self.forecast - half),
                keep_alive: Duration::from_secs_f64(2.0 * half),
            };
        }
        let n = self.in_range();
        if n < u64::from(p.min_samples) || self.cv() < p.min_cv {
            return Windows::Fallback;
        }
        let bin = p.bin.as_secs_f64();
        let head = self.percentile_bin(p.head, n) as f64 * bin;
        let tail = (self.percentile_bin(p.tail, n) + 1) as f64 * bin;
        let prewarm = head * (1.0 - p.margin);
        // The head is where most of a wide spread's requests are (the pre-warm window is its 5th
        // percentile); past `max_keep_alive` more warmth costs more than the cold starts it saves.
        Windows::Predicted {
            prewarm: Duration::from_secs_f64(prewarm),
            keep_alive: Duration::from_secs_f64(tail * (1.0 + p.margin) - prewarm).min(p.max_keep_alive),
        }
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
        match self.windows() {
            Windows::Fallback => Advice::Kpa,
            Windows::Predicted { prewarm, keep_alive } => {
                if since >= prewarm && since < prewarm + keep_alive {
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
        match self.windows() {
            Windows::Predicted { prewarm, .. } => {
                let at = last + prewarm.max(self.params.quiet);
                (at > now).then_some(at)
            }
            Windows::Fallback => None,
        }
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
    }
}

#[cfg(test)]
#[path = "predictive_tests.rs"]
mod tests;
