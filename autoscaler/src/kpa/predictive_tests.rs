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

/// The warm span of the bins from `from` to `to` seconds, with the default 5 s slack.
fn span(from: u64, to: u64) -> Span {
    Span {
        from: secs(from.saturating_sub(5)),
        to: secs(to + 5),
    }
}

#[test]
fn periodic_arrivals_warm_at_the_predicted_moment_and_zero_in_between() {
    let mut p = Predictor::new(PredictiveParams::default());
    let last = periodic(&mut p, 100, 300, 20);
    // Every idle time is 300 s: bin 5, the only warm one (19 requests caught, worth far more
    // than the pod time a minute costs).
    assert_eq!(p.windows(), &Windows::Predicted(vec![span(300, 360)]));
    // Traffic just ended: the KPA still decides.
    assert_eq!(p.advise(last + secs(1)), Advice::Kpa);
    // Zero in between.
    for s in [5, 60, 200, 294] {
        assert_eq!(p.advise(last + secs(s)), Advice::Zero, "{s} s");
    }
    // Warm from the pre-warm moment until the end of the bin.
    assert_eq!(p.next_prewarm(last + secs(10)), Some(last + secs(295)));
    for s in [295, 300, 330, 364] {
        assert_eq!(p.advise(last + secs(s)), Advice::Warm, "{s} s");
    }
    assert_eq!(p.advise(last + secs(365)), Advice::Zero);
    assert_eq!(p.next_prewarm(last + secs(300)), None);
}

#[test]
fn short_idle_times_keep_one_pod_warm_through_their_bin() {
    let mut p = Predictor::new(PredictiveParams::default());
    let last = periodic(&mut p, 0, 20, 50);
    // Bin 0: no pre-warm, one pod stays from the last request until 1 min.
    assert_eq!(p.windows(), &Windows::Predicted(vec![span(0, 60)]));
    assert_eq!(p.advise(last + secs(30)), Advice::Warm);
    assert_eq!(p.advise(last + secs(66)), Advice::Zero);
}

#[test]
fn a_periodic_burst_is_caught_at_both_ends_and_zero_through_the_quiet_middle() {
    let mut p = Predictor::new(PredictiveParams::default());
    // Every 15 minutes a burst of three requests 20 s apart: idle times of 20 s, 20 s and 14 min
    // 20 s. The percentile window would keep a pod from the burst to the next one.
    let mut t = 0;
    for _ in 0..20 {
        for _ in 0..3 {
            p.activity(secs(t));
            t += 20;
        }
        t += 860 - 20;
    }
    let last = secs(t - 860);
    assert_eq!(
        p.windows(),
        &Windows::Predicted(vec![span(0, 60), span(840, 900)])
    );
    assert_eq!(p.advise(last + secs(30)), Advice::Warm);
    for s in [65, 300, 834] {
        assert_eq!(p.advise(last + secs(s)), Advice::Zero, "{s} s");
    }
    assert_eq!(p.next_prewarm(last + secs(66)), Some(last + secs(835)));
    assert_eq!(p.advise(last + secs(860)), Advice::Warm);
}

#[test]
fn a_rare_idle_time_between_two_modes_is_not_kept_warm() {
    let mut p = Predictor::new(PredictiveParams::default());
    // 40 idle times of 2 min, one of 10 min and 10 of an hour: minute 10 catches one request for
    // a minute of pod time in each of the 11 idle times (and the prior's 3) that reach it, so it
    // stays cold; the percentile window would have kept a pod from minute 2 onwards.
    let mut t = 0;
    p.activity(secs(t));
    for gap in std::iter::repeat_n(120, 40)
        .chain([600])
        .chain(std::iter::repeat_n(3600, 10))
    {
        t += gap;
        p.activity(secs(t));
    }
    assert_eq!(
        p.windows(),
        &Windows::Predicted(vec![span(120, 180), span(3600, 3660)])
    );
    assert_eq!(p.advise(secs(t + 610)), Advice::Zero);
    assert_eq!(p.advise(secs(t + 3630)), Advice::Warm);
}

#[test]
fn one_idle_time_in_a_bin_is_outweighed_by_the_prior_and_later_ones() {
    let mut p = Predictor::new(PredictiveParams::default());
    // Idle times of 10 min, 50 min and 50 min. A catch is worth 180 s. Minute 10 holds one and is
    // reached by 6 (2 later, 3 of the prior): 60 s × 5.5 > 180 s, so it stays cold; minute 50
    // holds two and is reached by 5: 2 × 180 s > 60 s × 4, warm.
    for t in [0, 600, 3600, 6600] {
        p.activity(secs(t));
    }
    assert_eq!(p.windows(), &Windows::Predicted(vec![span(3000, 3060)]));
    assert_eq!(p.advise(secs(6600 + 630)), Advice::Zero);
    assert_eq!(p.next_prewarm(secs(6610)), Some(secs(6600 + 2995)));
}

#[test]
fn not_enough_data_falls_back() {
    let mut p = Predictor::new(PredictiveParams::default());
    assert_eq!(p.advise(secs(1000)), Advice::Kpa);
    p.activity(secs(0));
    assert_eq!(p.windows(), &Windows::Fallback);
    assert_eq!(p.advise(secs(500)), Advice::Kpa);
    p.activity(secs(600));
    // One idle time is fewer than `min_samples` (2).
    assert_eq!(p.windows(), &Windows::Fallback);
    assert_eq!(p.next_prewarm(secs(610)), None);
    p.activity(secs(1200));
    assert!(matches!(p.windows(), Windows::Predicted(_)));
}

#[test]
fn the_first_traffic_and_each_idle_time_change_the_persisted_state() {
    let mut p = Predictor::new(PredictiveParams::default());
    assert_eq!(p.version(), 0);
    p.activity(secs(10));
    assert_eq!(
        p.version(),
        1,
        "the first traffic: when the first idle time begins"
    );
    p.activity(secs(11));
    assert_eq!(p.version(), 1, "traffic going on is no idle time");
    p.activity(secs(100));
    assert_eq!(p.version(), 2, "an idle time");
    let mut restored = Predictor::new(PredictiveParams::default());
    restored.restore(&p.to_state(), Some(secs(100)));
    restored.activity(secs(190));
    assert_eq!(restored.version(), 1, "a restored last traffic is not the first");
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
    assert_eq!(p.windows(), &Windows::Fallback);
    assert_eq!(p.advise(secs(t + 100)), Advice::Kpa);
}

#[test]
fn idle_times_beyond_the_range_are_forecast() {
    let mut p = Predictor::new(PredictiveParams::default());
    let last = periodic(&mut p, 0, 6 * 3600, 4);
    // Three idle times of 6 h, beyond the 4 h histogram: warm from 85 % to 115 % of the forecast,
    // a window cut to `max_keep_alive` (10 minutes) centred on the forecast moment.
    assert_eq!(
        p.windows(),
        &Windows::Predicted(vec![Span {
            from: secs(21_300),
            to: secs(21_900),
        }])
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
        burst_peaks: Vec::new(),
    };
    let mut q = Predictor::new(params);
    q.restore(&state, Some(secs(50)));
    let back = q.to_state();
    assert_eq!(back.bins, vec![IdleBin { minute: 2, count: 7 }]);
    // The windows come back with the histogram.
    assert_eq!(q.windows(), &Windows::Predicted(vec![span(120, 180)]));
    assert_eq!((back.out_of_range, back.forecast_seconds), (4, 0.0));
    assert_eq!(q.last_active(), Some(secs(50)));
}

/// The same policy through the real [`FunctionScaler`]: what the autoscaler and the simulator run.
mod through_the_scaler {
    use std::time::Duration;

    use zeroscale_crds::function::{ScalePolicy, ScaleSpec};

    use super::secs;
    use crate::kpa::{DeciderSpec, FunctionScaler, Observation, Reason, predictive::Windows};

    fn obs(current: i32) -> Observation {
        Observation {
            ready: current,
            current,
            activator_ready: true,
        }
    }

    /// The scaler of a `predictive` function with `concurrency`, created at 0 s.
    fn predictive_scaler(concurrency: i32) -> FunctionScaler {
        let scale = ScaleSpec {
            policy: ScalePolicy::Predictive,
            ..ScaleSpec::default()
        };
        let spec = DeciderSpec::resolve(&scale, concurrency).expect("valid");
        FunctionScaler::new(spec, Duration::ZERO, Duration::from_secs(3))
    }

    #[test]
    fn periodic_requests_get_a_prewarmed_pod_and_zero_in_between() {
        let mut s = predictive_scaler(1);
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
                // The idle times are 299 s (traffic ends 1 s after each request): bin 4, so one
                // pod is pre-warmed 240 s − 5 s after the last traffic, decided at the next 2 s
                // tick: 236 s after the request, 64 s before the next one.
                assert_eq!(d.reason, Reason::Prewarm, "at {t}");
                assert_eq!(t % 300, 236, "pre-warm at {t}");
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
        assert!(at_zero > 1250, "{at_zero} of 1800 decisions at zero");
    }

    #[test]
    fn an_activator_roll_does_not_wake_a_function_the_policy_put_at_zero() {
        let mut s = predictive_scaler(1);
        let mut current = 0;
        let mut checked = 0;
        // A request every 90 s (the e2e suite's period); 30 s after each one, still inside the
        // KPA's 60 s stable window, the activator is rolling and not ready.
        for t in (0..900u64).step_by(2) {
            let now = Duration::from_secs(t);
            if t % 90 == 0 {
                s.record_demand(now, "a", 1);
                current = s.decide(now, obs(current), current == 0).desired;
                s.record(now + Duration::from_secs(1), "a", 1.0);
                continue;
            }
            let rolling = t % 90 == 30;
            let o = Observation {
                activator_ready: !rolling,
                ..obs(current)
            };
            let d = s.decide(now, o, false);
            if rolling && current == 0 {
                assert_eq!(d.desired, 0, "woken at {t} by the activator roll: {d:?}");
                checked += 1;
            }
            current = d.desired;
        }
        // The pod goes a few seconds after each request once two idle times are learned.
        assert!(checked >= 5, "at zero during {checked} rolls");
    }

    #[test]
    fn traffic_before_the_spec_arrives_still_opens_the_first_idle_time() {
        // A demand can create the scaler (default policy) before the Function's spec is read.
        let mut s = FunctionScaler::new(DeciderSpec::default(), secs(0), secs(3));
        s.record_demand(secs(10), "a", 1);
        s.record(secs(11), "a", 1.0);
        assert!(s.predictor().is_none());
        let scale = ScaleSpec {
            policy: ScalePolicy::Predictive,
            ..ScaleSpec::default()
        };
        s.update_spec(DeciderSpec::resolve(&scale, 0).expect("valid"), secs(12));
        let p = s.predictor().expect("predictive");
        assert_eq!(p.last_active(), Some(secs(11)));
        s.record_demand(secs(101), "a", 1);
        s.record_demand(secs(191), "a", 1);
        let p = s.predictor().expect("predictive");
        assert!(
            matches!(p.windows(), Windows::Predicted(_)),
            "two idle times, the first from the traffic before the spec: {:?}",
            p.windows()
        );
    }

    #[test]
    fn a_burst_is_sized_in_pods_of_the_functions_capacity() {
        // `concurrency: 10`: 14 requests in flight after each idle gap need 2 pods, not 14.
        let mut s = predictive_scaler(10);
        assert_eq!(s.spec().pod_capacity(), 10.0);
        for burst in 0..12u64 {
            let start = burst * 300;
            s.record_demand(Duration::from_secs(start), "a", 14);
            for t in start + 1..start + 30 {
                s.record(Duration::from_secs(t), "a", 14.0);
            }
        }
        let p = s.predictor().expect("predictive");
        assert!(matches!(p.windows(), Windows::Predicted(_)));
        assert_eq!(p.warm_pods(), 2);
    }
}
