//! How many pods a predictive function's burst after an idle gap needs (`spec.scale.policy:
//! predictive`).
//!
//! Some functions are invoked in bursts: fourteen invocations of half a minute each every five
//! minutes, say. One pre-warmed pod catches the first invocation of such a burst; the others each
//! wait for a scale-up, which the KPA starts only at its next tick once the reports show the load.
//! A fixed keep-alive keeps the burst's pods from the last one, and so catches them. This learns,
//! per function, the peak concurrency of the first `burst_window` after every idle time of at
//! least `burst_idle` (the sum of the activators' per-second reports in one second, rounded up:
//! with one invocation per pod, the pods that second needed), as a histogram by pod count. From it
//! the policy's own cost/benefit rule, the one its warm bins use, sizes the burst: the `k`-th pod
//! is kept when `cold_start_cost` × the share of bursts that needed `k` pods (the scale-up cold
//! starts it avoids per burst) exceeds the pod time it is held per burst: the burst window for
//! the floor that holds the burst's pods (so the KPA, whose stable window still averages the
//! silence before, does not scale them away), the pre-warm span as well for pods pre-warmed. No
//! parameter of its own is tuned. Pure: `now` is always a parameter.

use std::time::Duration;

/// Most pods a learned burst may ask for (the histogram's range; larger peaks count here).
pub const MAX_BURST_PODS: usize = 64;

/// The burst being measured: since when, and its peak so far.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Burst {
    start: Duration,
    /// The whole second the reports being summed belong to, and their sum.
    second: u64,
    sum: f64,
    peak: u32,
}

/// The histogram of burst peaks of one function, and the burst being measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BurstSizer {
    /// Bursts seen, by the pods they needed (index 0 unused: a burst needs at least one).
    peaks: Vec<u32>,
    current: Option<Burst>,
}

impl BurstSizer {
    /// Traffic resumed at `now` after an idle time of `idle`: the burst being measured, if any,
    /// is recorded, and a new one starts when the idle time was at least `min_idle`.
    pub fn resumed(&mut self, now: Duration, idle: Duration, min_idle: Duration) {
        self.finish();
        if idle >= min_idle {
            self.current = Some(Burst {
                start: now,
                second: now.as_secs(),
                sum: 0.0,
                peak: 1,
            });
        }
    }

    /// A report of `value` requests in flight (one activator's share) at `now`; reports of the
    /// same whole second add up. Counts only within `window` of the burst's start.
    pub fn load(&mut self, now: Duration, value: f64, window: Duration) {
        let Some(b) = self.current.as_mut().filter(|b| now < b.start + window) else {
            return;
        };
        if now.as_secs() != b.second {
            b.second = now.as_secs();
            b.sum = 0.0;
        }
        b.sum += value.max(0.0);
        b.peak = b.peak.max(pods(b.sum));
    }

    /// Requests waiting for a function with no ready pod at `now`: the burst needs a pod each.
    pub fn demand(&mut self, now: Duration, queued: u64, window: Duration) {
        if let Some(b) = self.current.as_mut().filter(|b| now < b.start + window) {
            b.peak = b.peak.max(u32::try_from(queued).unwrap_or(u32::MAX));
        }
    }

    fn finish(&mut self) {
        if let Some(b) = self.current.take() {
            let i = usize::try_from(b.peak)
                .unwrap_or(MAX_BURST_PODS)
                .clamp(1, MAX_BURST_PODS);
            if self.peaks.len() <= i {
                self.peaks.resize(i + 1, 0);
            }
            self.peaks[i] = self.peaks[i].saturating_add(1);
        }
    }

    /// Halves every count (older bursts weigh less, as the idle-time histogram's counts do).
    pub fn decay(&mut self) {
        self.peaks.iter_mut().for_each(|c| *c /= 2);
    }

    /// The pods to keep warm for a burst, by the policy's cost/benefit rule (the one the warm
    /// bins use): the `k`-th pod is worth warming when `cold_start_cost` × the share of bursts
    /// that reached `k` pods (the scale-up cold starts it avoids per burst: one for each burst
    /// that needed it) exceeds `held`, the pod time it costs per burst. The share falls with `k`,
    /// so the warm pods are the first `n`. One with fewer than `min_samples` bursts.
    pub fn pods(&self, cold_start_cost: Duration, held: Duration, min_samples: u32) -> i32 {
        let total: u64 = self.peaks.iter().map(|&c| u64::from(c)).sum();
        if total == 0 || total < u64::from(min_samples) {
            return 1;
        }
        let (worth, held) = (cold_start_cost.as_secs_f64(), held.as_secs_f64());
        let mut reaching = total;
        let mut n = 1;
        for k in 2..self.peaks.len() {
            reaching -= u64::from(self.peaks[k - 1]);
            if worth * reaching as f64 / total as f64 <= held {
                break;
            }
            n = k;
        }
        i32::try_from(n).unwrap_or(i32::MAX)
    }

    /// Whether `now` is within `window` of the start of the burst being measured.
    pub fn in_burst(&self, now: Duration, window: Duration) -> bool {
        self.current
            .is_some_and(|b| now >= b.start && now < b.start + window)
    }

    /// The histogram to persist: bursts by the pods they needed (index = pods; 0 unused),
    /// without trailing zeros.
    pub fn to_state(&self) -> Vec<u32> {
        let mut peaks = self.peaks.clone();
        while peaks.last() == Some(&0) {
            peaks.pop();
        }
        peaks
    }

    /// Restores a persisted histogram (larger pod counts than [`MAX_BURST_PODS`] count there).
    pub fn restore(&mut self, peaks: &[u32]) {
        self.peaks.clear();
        for (i, &c) in peaks.iter().enumerate().skip(1) {
            let i = i.min(MAX_BURST_PODS);
            if self.peaks.len() <= i {
                self.peaks.resize(i + 1, 0);
            }
            self.peaks[i] = self.peaks[i].saturating_add(c);
        }
        self.current = None;
    }
}

/// Pods needed for `load` requests in flight, one per pod (a little under a whole counts whole).
fn pods(load: f64) -> u32 {
    let n = (load - 1e-6).ceil();
    if n >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        n.max(1.0) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(60);
    const IDLE: Duration = Duration::from_secs(30);
    const COST: Duration = Duration::from_secs(180);

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn a_burst_peak_sums_the_reports_of_one_second_within_the_window() {
        let mut b = BurstSizer::default();
        b.resumed(ms(100_000), ms(300_000), IDLE);
        assert!(b.in_burst(ms(100_000), WINDOW));
        // Two activators' shares of the same second add up: 3.5 requests need 4 pods.
        b.load(ms(100_200), 1.5, WINDOW);
        b.load(ms(100_700), 2.0, WINDOW);
        // The next second starts a new sum.
        b.load(ms(101_100), 1.0, WINDOW);
        // Past the window nothing counts.
        b.load(ms(160_000), 9.0, WINDOW);
        assert!(!b.in_burst(ms(160_000), WINDOW));
        // The next idle gap records the burst.
        b.resumed(ms(400_000), ms(200_000), IDLE);
        assert_eq!(b.to_state(), vec![0, 0, 0, 0, 1]);
        assert_eq!(b.pods(COST, WINDOW, 1), 4);
    }

    #[test]
    fn short_silences_are_not_bursts_and_demand_counts_a_pod_per_request() {
        let mut b = BurstSizer::default();
        b.resumed(ms(10_000), ms(5_000), IDLE);
        b.load(ms(10_500), 7.0, WINDOW);
        assert!(!b.in_burst(ms(10_500), WINDOW));
        b.resumed(ms(50_000), ms(40_000), IDLE);
        b.demand(ms(50_000), 5, WINDOW);
        b.load(ms(51_000), 2.0, WINDOW);
        b.resumed(ms(200_000), ms(100_000), IDLE);
        assert_eq!(b.to_state(), vec![0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn a_pod_is_warm_when_the_bursts_that_need_it_are_worth_its_time() {
        let mut b = BurstSizer::default();
        // Eight bursts: three needed 1 pod, one 2, four 6. Pod 2 helps 5 of 8, pods 3-6 help 4.
        b.restore(&[0, 3, 1, 0, 0, 0, 4]);
        // Held 60 s: 180 s × 5/8 = 112.5 > 60 and 180 s × 4/8 = 90 > 60: all six.
        assert_eq!(b.pods(COST, WINDOW, 1), 6);
        // Held 100 s: pod 2 still earns its time (112.5), pod 3 no longer (90).
        assert_eq!(b.pods(COST, Duration::from_secs(100), 1), 2);
        // Held 120 s: not even pod 2.
        assert_eq!(b.pods(COST, Duration::from_secs(120), 1), 1);
        // Too few bursts: one pod.
        assert_eq!(b.pods(COST, WINDOW, 9), 1);
        b.decay();
        assert_eq!(b.to_state(), vec![0, 1, 0, 0, 0, 0, 2]);
    }

    #[test]
    fn a_pod_that_rarely_helps_is_declined() {
        let mut b = BurstSizer::default();
        // One burst in ten needed 3 pods: pods 2 and 3 save 0.1 cold starts a burst each,
        // worth 18 s against 60 s held.
        b.restore(&[0, 9, 0, 1]);
        assert_eq!(b.pods(COST, WINDOW, 1), 1);
        // At one in three: 180 s / 3 = 60 s, not more than the 60 s held: declined.
        b.restore(&[0, 2, 0, 1]);
        assert_eq!(b.pods(COST, WINDOW, 1), 1);
        // At one in two: 90 s > 60 s.
        b.restore(&[0, 1, 0, 1]);
        assert_eq!(b.pods(COST, WINDOW, 1), 3);
    }

    #[test]
    fn the_state_round_trips_and_clamps_large_peaks() {
        let mut b = BurstSizer::default();
        let mut state = vec![7, 2, 0, 1];
        state.resize(MAX_BURST_PODS + 5, 0);
        state[MAX_BURST_PODS + 4] = 3;
        b.restore(&state);
        // Index 0 is unused; beyond the range counts at the range's end.
        let back = b.to_state();
        assert_eq!(back.len(), MAX_BURST_PODS + 1);
        assert_eq!((back[0], back[1], back[3], back[MAX_BURST_PODS]), (0, 2, 1, 3));
        assert_eq!(
            b.pods(COST, WINDOW, 1),
            i32::try_from(MAX_BURST_PODS).expect("small")
        );
        b.restore(&[]);
        assert_eq!(b.to_state(), Vec::<u32>::new());
    }
}
