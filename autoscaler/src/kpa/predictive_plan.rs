//! The predictive policy's windows: from the idle-time histogram (the warm bins, by the
//! `cold_start_cost` rule, merged into spans), or from the forecast when most idle times fall
//! beyond the histogram's range, or none (the KPA decides) when the history is not representative.
//! The state machine that feeds the histogram and answers at a moment is in `predictive.rs`.

use std::time::Duration;

use super::Predictor;

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

impl Predictor {
    fn in_range(&self) -> u64 {
        self.counts.iter().map(|&c| u64::from(c)).sum()
    }

    pub(super) fn total(&self) -> u64 {
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

    /// The windows of the current histogram.
    pub(super) fn plan(&self) -> Windows {
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
}
