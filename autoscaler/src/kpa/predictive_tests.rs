//! The predictive policy on a virtual clock.

use std::time::Duration;

use super::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Traffic at every `period` seconds, `n` times from `start`.
fn periodic(p: &mut Predictor, start: u64, period: u64, n: u64) -> Duration {
    for i in 0..n {
        p.activity(secs(start + i * period));
    }
    secs(start + (n - 1) * period)
}

#[test]
fn periodic_arrivals_warm_at_the_predicted_moment_and_zero_in_between() {
    let mut p = Predictor::new(PredictiveParams::default());
    let last = periodic(&mut p, 100, 300, 20);
    // Every idle time is 300 s: bin 5. Head 5 min × 0.9 = 270 s, tail 6 min × 1.1 = 396 s.
    assert_eq!(
        p.windows(),
        Windows::Predicted {
            prewarm: secs(270),
            keep_alive: secs(126),
        }
    );
    // Traffic just ended: the KPA still decides.
    assert_eq!(p.advise(last + secs(1)), Advice::Kpa);
    // Zero in between.
    for s in [5, 60, 200, 269] {
        assert_eq!(p.advise(last + secs(s)), Advice::Zero, "{s} s");
    }
    // Warm from the pre-warm moment, before the next arrival at 300 s, until the tail.
    assert_eq!(p.next_prewarm(last + secs(10)), Some(last + secs(270)));
    for s in [270, 299, 300, 395] {
        assert_eq!(p.advise(last + secs(s)), Advice::Warm, "{s} s");
    }
    assert_eq!(p.advise(last + secs(396)), Advice::Zero);
    assert_eq!(p.next_prewarm(last + secs(300)), None);
}

#[test]
fn short_idle_times_keep_one_pod_warm_until_the_tail() {
    let mut p = Predictor::new(PredictiveParams::default());
    let last = periodic(&mut p, 0, 20, 50);
    // Bin 0: no pre-warm window, keep-alive until 1 min × 1.1.
    assert_eq!(
        p.windows(),
        Windows::Predicted {
            prewarm: Duration::ZERO,
            keep_alive: secs(66),
        }
    );
    assert_eq!(p.advise(last + secs(30)), Advice::Warm);
    assert_eq!(p.advise(last + secs(70)), Advice::Zero);
}

#[test]
fn not_enough_data_falls_back() {
    let mut p = Predictor::new(PredictiveParams::default());
    assert_eq!(p.advise(secs(1000)), Advice::Kpa);
    p.activity(secs(0));
    assert_eq!(p.windows(), Windows::Fallback);
    assert_eq!(p.advise(secs(500)), Advice::Kpa);
    p.activity(secs(600));
    // One idle time is fewer than `min_samples` (2).
    assert_eq!(p.windows(), Windows::Fallback);
    assert_eq!(p.next_prewarm(secs(610)), None);
    p.activity(secs(1200));
    assert!(matches!(p.windows(), Windows::Predicted { .. }));
}

#[test]
fn a_noisy_function_falls_back() {
    let mut p = Predictor::new(PredictiveParams::default());
    // Idle times spread evenly over the whole range: a flat histogram, CV far below 2.
    let mut t = 0;
    for i in 0..480u64 {
        p.activity(secs(t));
        t += (i % 240) * 60 + 30;
    }
    assert!(p.cv() < 0.5, "cv {}", p.cv());
    assert_eq!(p.windows(), Windows::Fallback);
    assert_eq!(p.advise(secs(t + 100)), Advice::Kpa);
}

#[test]
fn idle_times_beyond_the_range_are_forecast() {
    let mut p = Predictor::new(PredictiveParams::default());
    let last = periodic(&mut p, 0, 6 * 3600, 4);
    // Three idle times of 6 h, beyond the 4 h histogram: pre-warm at 85 %, warm until 115 %.
    assert_eq!(
        p.windows(),
        Windows::Predicted {
            prewarm: secs(18_360),
            keep_alive: secs(6_480),
        }
    );
    assert_eq!(p.advise(last + secs(3 * 3600)), Advice::Zero);
    assert_eq!(p.advise(last + secs(6 * 3600)), Advice::Warm);
}

#[test]
fn counts_decay_and_the_state_round_trips() {
    let params = PredictiveParams {
        decay_at: 10,
        ..PredictiveParams::default()
    };
    let mut p = Predictor::new(params.clone());
    periodic(&mut p, 0, 120, 11);
    // The tenth idle time reaches `decay_at`: every count halves, 10 → 5.
    assert_eq!(p.to_state().bins, vec![IdleBin { minute: 2, count: 5 }]);
    let state = Prediction {
        bins: vec![
            IdleBin { minute: 2, count: 7 },
            IdleBin {
                minute: 9999,
                count: 3,
            },
        ],
        out_of_range: 1,
        forecast_seconds: f64::NAN,
        last_active_time: None,
    };
    let mut q = Predictor::new(params);
    q.restore(&state, Some(secs(50)));
    let back = q.to_state();
    assert_eq!(back.bins, vec![IdleBin { minute: 2, count: 7 }]);
    assert_eq!((back.out_of_range, back.forecast_seconds), (4, 0.0));
    assert_eq!(q.last_active(), Some(secs(50)));
}
