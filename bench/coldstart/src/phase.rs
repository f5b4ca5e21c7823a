//! When each cold start begins, relative to the kubelet's relist (pure, so it is unit-tested).
//!
//! The kubelet writes a new pod's IP into its status only at its next PLEG relist, once a second
//! (`docs/benchmarks.md`, "Session 24"). Until then nobody, the activator included, knows where the
//! pod is, so a cold start's time depends on where in that second it began. Cold starts run back to
//! back all begin just after the relist that published the one before: every sample would then wait
//! nearly a whole period, which independent requests do not. Each one therefore first waits a
//! different fraction of the period, spread evenly, so the samples cover every phase as requests
//! arriving at random would.

use std::time::Duration;

/// The kubelet's generic PLEG relist period (`genericPlegRelistPeriod`, not configurable).
pub const KUBELET_RELIST: Duration = Duration::from_secs(1);

/// The golden ratio's fractional part: successive multiples of it spread evenly over [0, 1) for any
/// number of samples (a low-discrepancy sequence), without a random generator.
const SPREAD: f64 = 0.618_033_988_749_895;

/// How long to wait before the `i`-th cold start (from 0) so that the starts cover `period`'s phases
/// evenly; zero when `period` is zero (back to back).
pub fn stagger(i: usize, period: Duration) -> Duration {
    let fraction = (0.5 + i as f64 * SPREAD).fract();
    period.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starts_cover_the_period_evenly() {
        for n in [5, 14, 20] {
            let mut phases: Vec<f64> = (0..n).map(|i| stagger(i, KUBELET_RELIST).as_secs_f64()).collect();
            assert!(phases.iter().all(|p| (0.0..1.0).contains(p)), "{phases:?}");
            phases.sort_by(f64::total_cmp);
            // Every tenth of the period holds a start once there are 14 or more; never a gap
            // of more than a third of the period.
            let widest = phases
                .windows(2)
                .map(|w| w[1] - w[0])
                .chain([phases[0] + 1.0 - phases[n - 1]])
                .fold(0.0, f64::max);
            assert!(widest < 0.34, "n {n}: widest gap {widest}");
            if n >= 14 {
                for tenth in 0..10 {
                    let lo = f64::from(tenth) / 10.0;
                    assert!(
                        phases.iter().any(|p| (lo..lo + 0.1).contains(p)),
                        "n {n}: none in {lo}"
                    );
                }
            }
        }
    }

    #[test]
    fn consecutive_starts_do_not_share_a_phase() {
        let a = stagger(3, KUBELET_RELIST);
        let b = stagger(4, KUBELET_RELIST);
        assert!(a.abs_diff(b) > Duration::from_millis(100), "{a:?} {b:?}");
    }

    #[test]
    fn a_zero_period_is_back_to_back() {
        assert_eq!(stagger(7, Duration::ZERO), Duration::ZERO);
    }
}
