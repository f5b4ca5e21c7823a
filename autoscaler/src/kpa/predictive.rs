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
//! Pure: `now` is always a parameter. This file is the state machine (what traffic teaches it, what
//! it advises at a moment, the persisted state); the windows' maths is `predictive_plan.rs`, the
//! burst size `predictive_burst.rs`, the parameters `predictive_params.rs`.

use std::time::Duration;

use zeroscale_crds::function::{IdleBin, Prediction};

use super::predictive_burst::BurstSizer;

pub use self::params::PredictiveParams;
pub use self::plan::{Span, Windows};

#[path = "predictive_params.rs"]
mod params;
#[path = "predictive_plan.rs"]
mod plan;

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

/// The learned idle-time distribution of one function, and when it last had traffic.
#[derive(Clone, Debug, PartialEq)]
pub struct Predictor {
    params: PredictiveParams,
    counts: Vec<u32>,
    out_of_range: u32,
    forecast: f64,
    last_active: Option<Duration>,
    /// Bumps with the first traffic and every idle time recorded since creation: changes whenever
    /// the state worth persisting changes.
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

    /// Bumps with the first traffic and every recorded idle time; the shell persists the state when
    /// it changes.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// When the function last had traffic.
    pub fn last_active(&self) -> Option<Duration> {
        self.last_active
    }

    /// Records traffic at `now`; the silence before it, if long enough, is an idle time.
    pub fn activity(&mut self, now: Duration) {
        match self.last_active {
            Some(last) if now <= last => return,
            Some(last) if now - last >= self.params.min_gap => {
                let gap = now - last;
                self.burst.resumed(now, gap, self.params.burst_idle);
                self.record_idle(gap);
            }
            Some(_) => {}
            // The first traffic is worth persisting: an autoscaler restarting before the next
            // request would otherwise not know when the first idle time began, and lose it.
            None => self.version += 1,
        }
        self.last_active = Some(now);
    }

    /// A report from one activator at `now`, in pods' worth (requests in flight ÷ what one pod
    /// serves; after [`Self::activity`]): measures the burst that traffic resuming after an idle
    /// gap makes.
    pub fn load(&mut self, now: Duration, value: f64) {
        self.burst.load(now, value, self.params.burst_window);
    }

    /// `queued` pods' worth of requests wait at `now` for a function with no ready pod (after
    /// [`Self::activity`]).
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

    /// The current windows.
    pub fn windows(&self) -> &Windows {
        &self.windows
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
