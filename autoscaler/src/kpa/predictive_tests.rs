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
fn a_wide_spread_is_kept_warm_from_its_head_for_at_most_max_keep_alive() {
    let mut p = Predictor::new(PredictiveParams::default());
    // Idle times alternating 30 min and 2 h: head bin 30, tail bin 120.
    let mut last = secs(0);
    for i in 0..40u64 {
        p.activity(last);
        last += secs(if i % 2 == 0 { 1800 } else { 7200 });
    }
    p.activity(last);
    // Pre-warm at 30 min × 0.9 = 1620 s; the tail (121 min × 1.1) is cut to 10 minutes of warmth.
    assert_eq!(
        p.windows(),
        Windows::Predicted {
            prewarm: secs(1620),
            keep_alive: secs(600),
        }
    );
    assert_eq!(p.advise(last + secs(1619)), Advice::Zero);
    assert_eq!(p.advise(last + secs(1800)), Advice::Warm);
    assert_eq!(p.advise(last + secs(2220)), Advice::Zero);
    assert_eq!(p.advise(last + secs(7200)), Advice::Zero);
}

#[test]
fn idle_times_beyond_the_range_are_forecast() {
    let mut p = Predictor::new(PredictiveParams::default());
    let last = periodic(&mut p, 0, 6 * 3600, 4);
    // Three idle times of 6 h, beyond the 4 h histogram: warm from 85 % to 115 % of the forecast,
    // a window cut to `max_keep_alive` (10 min) centred on the forecast moment.
    assert_eq!(
        p.windows(),
        Windows::Predicted {
            prewarm: secs(21_300),
            keep_alive: secs(600),
        }
    );
    assert_eq!(p.advise(last + secs(3 * 3600)), Advice::Zero);
    assert_eq!(p.advise(last + secs(21_299)), Advice::Zero);
    assert_eq!(p.advise(last + secs(6 * 3600)), Advice::Warm);
    assert_eq!(p.advise(last + secs(21_900)), Advice::Zero);
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

/// The same policy through the real [`FunctionScaler`]: what the autoscaler and the simulator run.
mod through_the_scaler {
    use std::time::Duration;

    use zeroscale_crds::function::{ScalePolicy, ScaleSpec};

    use crate::kpa::{DeciderSpec, FunctionScaler, Observation, Reason};

    fn obs(current: i32) -> Observation {
        Observation {
            ready: current,
            current,
            activator_ready: true,
        }
    }

    #[test]
    fn periodic_requests_get_a_prewarmed_pod_and_zero_in_between() {
        let scale = ScaleSpec {
            policy: ScalePolicy::Predictive,
            ..ScaleSpec::default()
        };
        let spec = DeciderSpec::resolve(&scale, 1).expect("valid");
        let mut s = FunctionScaler::new(spec, Duration::ZERO, Duration::from_secs(3));
        let mut current = 0;
        let mut at_zero = 0;
        let mut warm_before_arrival = 0;
        // A one-second request every 300 s, decisions every 2 s.
        for t in (0..3600u64).step_by(2) {
            let now = Duration::from_secs(t);
            if t % 300 == 0 {
                if t >= 900 && current > 0 {
                    warm_before_arrival += 1;
                }
                s.record_demand(now, "a", 1);
                let d = s.decide(now, obs(current), current == 0);
                current = d.desired;
                s.record(now + Duration::from_secs(1), "a", 1.0);
                continue;
            }
            let d = s.decide(now, obs(current), false);
            if current == 0 && d.desired == 1 && t >= 900 {
                // The idle times are 299 s (traffic ends 1 s after each request): bin 4, so the
                // pre-warm window is 240 s × 0.9 = 216 s after the last traffic, decided at the
                // next 2 s tick: 218 s after the request, 82 s before the next one.
                assert_eq!(d.reason, Reason::Prewarm, "at {t}");
                assert_eq!(t % 300, 218, "pre-warm at {t}");
            }
            current = d.desired;
            if current == 0 {
                at_zero += 1;
            }
        }
        // Two idle times are known when the third request arrives (600 s): from the fourth on
        // (900 s … 3300 s) every request finds a warm pod.
        assert_eq!(warm_before_arrival, 9);
        // At zero for most of the hour: a few seconds after each request until the pre-warm (the
        // KPA alone holds the pod for its window plus grace, 90 s).
        assert!(at_zero > 1150, "{at_zero} of 1800 decisions at zero");
    }
}
