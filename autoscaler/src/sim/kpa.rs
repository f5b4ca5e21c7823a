//! The `kpa` policy: the real [`FunctionScaler`] with Knative defaults decides, under a virtual clock.
//!
//! Model: one activator in front of the function reports, at the end of every second in which the
//! function had requests, the time-weighted average of its requests in flight plus queued (and one
//! final report after it goes quiet), as the real activator does. Decisions run every 2 s on a
//! fixed grid, and at once on demand when a request finds the function at zero. A pod created by a
//! scale-up becomes ready `cold_start` later; one invocation per pod at a time (`concurrency: 1`, so
//! the per-pod target is min(100, 1) × 70 % = 0.7). Waiting requests are served first come, first
//! served as pods become ready or free. Scale-down removes starting pods first, then idle ones, then
//! lets busy pods finish their invocation before they go. While a function is at zero with an empty
//! window, no tick runs: the clock skips to its next invocation.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, VecDeque},
    time::Duration,
};

use zeroscale_crds::function::{ScalePolicy, ScaleSpec};

use super::{
    accounting::{Found, Holder, Start, Tally},
    workload::{Invocation, Micros, SECOND},
};
use crate::kpa::{Advice, DeciderSpec, FunctionScaler, Observation, PredictiveParams, Reason, TICK_INTERVAL};

/// Name of the simulated activator replica.
const ACTIVATOR: &str = "sim";
const NEVER: Micros = Micros::MAX;

/// The Knative-default spec the simulator scales with (functions start at zero).
pub fn default_spec() -> DeciderSpec {
    let scale = ScaleSpec {
        initial: 0,
        ..ScaleSpec::default()
    };
    DeciderSpec::resolve(&scale, 1).unwrap_or_default()
}

/// The same spec with `policy: predictive`.
pub fn predictive_spec() -> DeciderSpec {
    DeciderSpec {
        policy: ScalePolicy::Predictive,
        ..default_spec()
    }
}

struct Function {
    scaler: FunctionScaler,
    tally: Tally,
    cold_start: Micros,
    /// Ready times of starting pods (non-decreasing: every pod starts in the same time).
    starting: VecDeque<Micros>,
    /// Idle ready pods by the time they became idle.
    idle: Vec<Micros>,
    /// End times of busy pods.
    busy: BinaryHeap<Reverse<Micros>>,
    /// Busy pods asked to go once their invocation ends.
    terminating: usize,
    /// Waiting invocations with what each found on arrival.
    queue: VecDeque<(Invocation, Found)>,
    /// Concurrency × µs accumulated in the current second, and when it was last brought up to date.
    area: u128,
    area_at: Micros,
    /// Whether the current second saw any request (a report is due at its end).
    active_second: bool,
    /// Whether the last report was non-zero (a final zero report is due).
    last_report_nonzero: bool,
    /// Who holds the only pod, as of the last decision or arrival (for the idle split).
    holder: Holder,
    /// Whether the pods were pre-warmed from zero and no invocation has arrived since.
    prewarmed: bool,
    /// Until when the idle split is up to date.
    split_at: Micros,
}

impl Function {
    fn concurrency(&self) -> u128 {
        (self.busy.len() + self.queue.len()) as u128
    }

    fn advance_area(&mut self, now: Micros) {
        let idle = self.starting.len() + self.idle.len();
        self.tally
            .idle_split(self.split_at, now, idle, self.busy.len(), self.holder);
        self.split_at = now;
        self.area += self.concurrency() * u128::from(now - self.area_at);
        self.area_at = now;
        self.active_second |= self.concurrency() > 0;
    }

    fn pods(&self) -> usize {
        self.starting.len() + self.idle.len() + self.busy.len() - self.terminating
    }

    fn observation(&self) -> Observation {
        let ready = self.idle.len() + self.busy.len() - self.terminating;
        let to_i32 = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        Observation {
            ready: to_i32(ready),
            current: to_i32(self.pods()),
            activator_ready: true,
        }
    }

    fn start(&mut self, now: Micros, inv: Invocation) {
        self.tally.served(now, now + inv.duration);
        self.busy.push(Reverse(now + inv.duration));
    }

    /// A pod became free at `now`, `fresh` from starting or else from finishing an invocation:
    /// it serves the queue (a cold start if fresh, a queued invocation if not) or goes idle.
    fn pod_free(&mut self, now: Micros, fresh: bool) {
        match self.queue.pop_front() {
            Some((inv, found)) => {
                if fresh {
                    self.tally.cold(found);
                } else {
                    self.tally.invocation(Start::Queued);
                }
                self.start(now, inv);
            }
            None => self.idle.push(now),
        }
    }

    fn scale_to(&mut self, now: Micros, desired: i32) {
        let desired = usize::try_from(desired).unwrap_or(0);
        let mut pods = self.pods();
        while pods < desired {
            if self.terminating > 0 {
                self.terminating -= 1;
            } else {
                self.tally.pod_created(now);
                self.starting.push_back(now + self.cold_start);
            }
            pods += 1;
        }
        while pods > desired {
            if self.starting.pop_back().is_some() {
                self.tally.pod_removed(now);
            } else if !self.idle.is_empty() {
                self.idle.remove(0);
                self.tally.pod_removed(now);
            } else {
                self.terminating += 1;
            }
            pods -= 1;
        }
    }

    fn decide(&mut self, now: Micros, demand: bool) {
        let at = Duration::from_micros(now);
        let from_zero = self.pods() == 0;
        let decision = self.scaler.decide(at, self.observation(), demand);
        self.scale_to(now, decision.desired);
        if decision.reason == Reason::Prewarm && from_zero {
            self.prewarmed = true;
        }
        if self.pods() == 0 {
            self.prewarmed = false;
        }
        let advice = match self.scaler.predictor() {
            Some(p) if !demand => p.advise(at),
            _ => Advice::Kpa,
        };
        self.holder = match advice {
            Advice::Warm if self.prewarmed => Holder::Prewarm,
            Advice::Warm => Holder::KeepAlive,
            Advice::Kpa | Advice::Zero => Holder::Kpa,
        };
    }

    fn arrival(&mut self, now: Micros, inv: Invocation) {
        // Traffic: the KPA decides again until the function is quiet.
        self.prewarmed = false;
        self.holder = Holder::Kpa;
        if self.idle.pop().is_some() {
            self.tally.invocation(Start::Warm);
            self.start(now, inv);
            return;
        }
        let found = if self.pods() == 0 {
            Found::Zero
        } else if self.busy.len() > self.terminating {
            Found::Busy
        } else {
            Found::Starting
        };
        self.queue.push_back((inv, found));
        if self.pods() == 0 {
            self.tally.at_zero += 1;
            let queued = self.queue.len() as u64;
            self.scaler
                .record_demand(Duration::from_micros(now), ACTIVATOR, queued);
            self.decide(now, true);
        }
    }

    fn completion(&mut self, now: Micros) {
        self.busy.pop();
        if self.terminating > 0 {
            self.terminating -= 1;
            self.tally.pod_removed(now);
        } else {
            self.pod_free(now, false);
        }
    }

    fn report(&mut self, now: Micros) {
        let concurrency = self.area as f64 / SECOND as f64;
        if self.active_second || self.last_report_nonzero {
            self.scaler
                .record(Duration::from_micros(now), ACTIVATOR, concurrency);
            self.last_report_nonzero = concurrency > 0.0;
        }
        self.area = 0;
        self.active_second = self.concurrency() > 0;
    }

    /// Whether nothing can happen until the next invocation.
    fn quiescent(&self, now: Micros) -> bool {
        self.pods() == 0
            && self.busy.is_empty()
            && self.queue.is_empty()
            && !self.active_second
            && !self.last_report_nonzero
            && self.scaler.is_idle_at_zero(Duration::from_micros(now), 0)
    }
}

fn next_multiple(now: Micros, step: Micros) -> Micros {
    (now / step + 1) * step
}

/// Runs `invocations` (sorted by arrival) through the KPA with `spec` (and, with `policy:
/// predictive` in it, the predictive policy on the 0 ↔ 1 boundary with its default parameters).
pub fn simulate(
    invocations: &[Invocation],
    spec: &DeciderSpec,
    cold_start: Micros,
    horizon: Micros,
) -> Tally {
    simulate_with(
        invocations,
        spec,
        &PredictiveParams::default(),
        cold_start,
        horizon,
    )
}

/// [`simulate`] with the predictive policy's parameters `params` (used only with `policy:
/// predictive`): how the parameters are searched, on the same production code.
pub fn simulate_with(
    invocations: &[Invocation],
    spec: &DeciderSpec,
    params: &PredictiveParams,
    cold_start: Micros,
    horizon: Micros,
) -> Tally {
    let tick = TICK_INTERVAL.as_micros() as Micros;
    let staleness = Duration::from_secs(3);
    let mut scaler = FunctionScaler::new(spec.clone(), Duration::ZERO, staleness);
    scaler.set_predictive_params(params.clone());
    let mut f = Function {
        scaler,
        tally: Tally::new(horizon),
        cold_start,
        starting: VecDeque::new(),
        idle: Vec::new(),
        busy: BinaryHeap::new(),
        terminating: 0,
        queue: VecDeque::new(),
        area: 0,
        area_at: 0,
        active_second: false,
        last_report_nonzero: false,
        holder: Holder::Kpa,
        prewarmed: false,
        split_at: 0,
    };
    let mut next = invocations.iter().copied().peekable();
    let (mut next_tick, mut next_second) = (NEVER, NEVER);
    loop {
        let arrival = next.peek().map_or(NEVER, |i| i.arrival);
        let ready = f.starting.front().copied().unwrap_or(NEVER);
        let done = f.busy.peek().map_or(NEVER, |r| r.0);
        let now = arrival.min(ready).min(done).min(next_tick).min(next_second);
        if now >= horizon {
            break;
        }
        if next_second == NEVER && now == arrival {
            // The activator's per-second reporting and the tick grid resume with traffic.
            f.area_at = now;
            next_second = next_multiple(now, SECOND);
            next_tick = next_multiple(now, tick);
        }
        f.advance_area(now);
        if now == done {
            f.completion(now);
        } else if now == ready {
            f.starting.pop_front();
            f.pod_free(now, true);
        } else if now == next_second {
            f.report(now);
            next_second += SECOND;
        } else if now == next_tick {
            f.decide(now, false);
            next_tick += tick;
        } else if let Some(inv) = next.next() {
            f.arrival(now, inv);
        }
        if f.quiescent(now) {
            // A predictive function at zero is decided again at its pre-warm moment.
            next_tick = f
                .scaler
                .next_wake(Duration::from_micros(now))
                .map_or(NEVER, |at| (at.as_micros() as Micros).div_ceil(tick) * tick);
            next_second = NEVER;
        }
    }
    f.advance_area(horizon);
    let alive = f.starting.len() + f.idle.len() + f.busy.len();
    for _ in 0..alive {
        f.tally.pod_removed(horizon);
    }
    // Invocations still waiting, or that never arrived, before the horizon are still counted, as
    // cold starts (the horizon is the end of the last minute, so there are next to none).
    for (_, found) in std::mem::take(&mut f.queue) {
        f.tally.cold(found);
    }
    for _ in next {
        f.tally.cold(Found::Zero);
    }
    f.tally
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(at_ms: u64, dur_ms: u64) -> Invocation {
        Invocation {
            arrival: at_ms * 1000,
            duration: dur_ms * 1000,
        }
    }

    #[test]
    fn first_request_is_cold_then_warm_then_zero_after_window_and_grace() {
        let spec = default_spec();
        let invs = [inv(10_000, 100), inv(20_000, 100)];
        let t = simulate(&invs, &spec, SECOND, 3600 * SECOND);
        assert_eq!((t.invocations, t.cold_starts), (2, 1));
        assert_eq!(t.cold_split.from_zero, 1);
        // Demand at 10 s asks ceil(1 / 0.7) = 2 pods, which is 200 % of one pod: panic holds the
        // two pods for a stable window, then one pod stays until the window has been free of
        // traffic (last report at 21 s, so 81 s) plus the 30 s grace: zero at the 112 s tick.
        assert_eq!(t.total_pod_seconds(), 2.0 * 62.0 + 40.0);
        assert_eq!(t.idle_pod_seconds(), 2.0 * 62.0 + 40.0 - 0.2);
    }

    #[test]
    fn predictive_prewarms_periodic_invocations_the_kpa_finds_cold() {
        let invs: Vec<_> = (0..12).map(|i| inv(i * 300_000, 100)).collect();
        let kpa = simulate(&invs, &default_spec(), SECOND, 3600 * SECOND);
        let predictive = simulate(&invs, &predictive_spec(), SECOND, 3600 * SECOND);
        // The KPA is at zero 90 s after each request: every one is cold.
        assert_eq!(kpa.cold_starts, 12);
        // Two idle times are known after the third request: from the fourth on, a pod is
        // pre-warmed 216 s after the traffic (bin 4 × 0.9) and is ready before the request.
        assert_eq!(predictive.cold_starts, 3);
        assert!(predictive.total_pod_seconds() < 12.0 * 300.0 / 2.0);
    }

    #[test]
    fn predictive_prewarms_the_pods_a_burst_after_idle_needs() {
        // Every 5 minutes, four invocations of 20 s within a second: one pre-warmed pod catches
        // the first; the learned burst size catches all four.
        let invs: Vec<_> = (0..24)
            .flat_map(|i| (0..4).map(move |j| inv(i * 300_000 + j * 200, 20_000)))
            .collect();
        let horizon = 2 * 3600 * SECOND;
        let one_pod = PredictiveParams {
            burst_sizing: false,
            ..PredictiveParams::default()
        };
        let one = simulate_with(&invs, &predictive_spec(), &one_pod, SECOND, horizon);
        let learned = simulate(&invs, &predictive_spec(), SECOND, horizon);
        // With one pod, the other three of every burst wait for a scale-up.
        assert!(one.cold_split.starting + one.cold_split.scale_up >= 3 * 20);
        assert!(
            learned.cold_starts + 40 < one.cold_starts,
            "{} vs {}",
            learned.cold_starts,
            one.cold_starts
        );
        for t in [&one, &learned] {
            let c = t.cold_split;
            assert_eq!(c.from_zero + c.starting + c.scale_up, t.cold_starts);
        }
    }

    #[test]
    fn a_request_behind_a_busy_pod_is_queued_not_cold() {
        let spec = default_spec();
        // The first request starts two pods (demand at zero asks ceil(1 / 0.7)); both are ready
        // at 11 s. The second and third arrive while one is busy and the other takes the second:
        // the third waits for the first to finish, with no pod starting for it.
        let invs = [inv(10_000, 3000), inv(12_000, 3000), inv(12_500, 100)];
        let t = simulate(&invs, &spec, SECOND, 600 * SECOND);
        assert_eq!((t.invocations, t.cold_starts, t.queued), (3, 1, 1));
    }

    #[test]
    fn bursts_scale_out() {
        let spec = default_spec();
        let invs: Vec<_> = (0..200).map(|i| inv(1000 + i * 10, 5000)).collect();
        let t = simulate(&invs, &spec, SECOND, 600 * SECOND);
        assert_eq!(t.invocations, 200);
        assert!(t.cold_starts > 1);
        assert!(t.total_pod_seconds() > 100.0);
    }
}
