//! The predictive policy's learned burst size on a virtual clock.

use std::time::Duration;

use super::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A burst every `period` seconds, `n` times from 0: `load` requests in flight, reported every
/// second for `busy` seconds. Returns the last report.
fn bursts(p: &mut Predictor, period: u64, n: u64, busy: u64, load: f64) -> Duration {
    let mut last = Duration::ZERO;
    for i in 0..n {
        for s in 0..busy {
            last = secs(i * period + s);
            p.activity(last);
            p.load(last, load);
        }
    }
    last
}

#[test]
fn a_bursty_function_is_prewarmed_with_its_burst_size_at_the_predicted_moment() {
    let mut p = Predictor::new(PredictiveParams::default());
    // Six requests in flight for 30 s every 5 minutes: idle times of 271 s, bin 4.
    let last = bursts(&mut p, 300, 12, 30, 6.0);
    assert!(matches!(p.windows(), Windows::Predicted(_)));
    assert_eq!(p.warm_pods(), 6);
    // Zero in between, six pods from the pre-warm moment.
    assert_eq!(p.advise(last + secs(100)), Advice::Zero);
    assert_eq!(p.warm_pods_at(last + secs(100)), 1);
    let at = p.next_prewarm(last + secs(10)).expect("a pre-warm is planned");
    assert_eq!(at, last + secs(235));
    assert_eq!(p.advise(at), Advice::Warm);
    assert_eq!(p.warm_pods_at(at), 6);
    // The next burst: its pods are held through the burst window, then the KPA decides alone.
    let start = last + secs(271);
    p.activity(start);
    p.load(start, 1.0);
    assert_eq!(p.burst_floor(start + secs(30)), 6);
    assert_eq!(p.burst_floor(start + secs(60)), 0);
}

#[test]
fn burst_sizing_off_keeps_one_pod_for_the_a_b() {
    let mut p = Predictor::new(PredictiveParams {
        burst_sizing: false,
        ..PredictiveParams::default()
    });
    let last = bursts(&mut p, 300, 12, 30, 6.0);
    let at = p.next_prewarm(last + secs(10)).expect("a pre-warm is planned");
    assert_eq!((p.warm_pods_at(at), p.burst_floor(last)), (1, 0));
}

#[test]
fn a_keep_alive_span_after_traffic_keeps_one_pod() {
    let mut p = Predictor::new(PredictiveParams::default());
    // Three requests in flight for 5 s every 45 s: idle times of 41 s, bin 0, a span from 0.
    let last = bursts(&mut p, 45, 30, 5, 3.0);
    assert_eq!(p.warm_pods(), 3);
    assert_eq!(p.advise(last + secs(20)), Advice::Warm);
    assert_eq!(p.warm_pods_at(last + secs(20)), 1);
}

#[test]
fn a_noisy_bursty_function_falls_back_to_the_kpa() {
    let mut p = Predictor::new(PredictiveParams::default());
    let mut t = 0;
    for i in 0..480u64 {
        p.activity(secs(t));
        p.load(secs(t), 5.0);
        t += (i % 240) * 60 + 30;
    }
    assert_eq!(p.windows(), &Windows::Fallback);
    assert_eq!(p.advise(secs(t + 100)), Advice::Kpa);
    assert_eq!((p.warm_pods(), p.burst_floor(secs(t - 1))), (1, 0));
}

#[test]
fn the_burst_sizes_survive_a_restart_and_an_older_state_still_restores() {
    let mut p = Predictor::new(PredictiveParams::default());
    bursts(&mut p, 300, 12, 30, 6.0);
    let state = p.to_state();
    // Eleven bursts followed an idle gap; the last is still being measured (not persisted).
    assert_eq!(state.burst_peaks.iter().sum::<u32>(), 10);
    let mut q = Predictor::new(PredictiveParams::default());
    q.restore(&state, None);
    assert_eq!((q.warm_pods(), q.to_state()), (6, state.clone()));
    // A status written before bursts were learned has no `burstPeaks`: one pod, as then.
    let mut json = serde_json::to_value(&state).expect("encodes");
    assert!(json.get("burstPeaks").is_some());
    json.as_object_mut().expect("an object").remove("burstPeaks");
    let old: Prediction = serde_json::from_value(json).expect("an older state decodes");
    assert!(old.burst_peaks.is_empty());
    let mut r = Predictor::new(PredictiveParams::default());
    r.restore(&old, None);
    assert!(matches!(r.windows(), Windows::Predicted(_)));
    assert_eq!(r.warm_pods(), 1);
}

#[test]
fn extra_pods_a_burst_rarely_needs_are_held_through_it_but_not_prewarmed() {
    let mut p = Predictor::new(PredictiveParams::default());
    // Every 5 minutes a burst, every other one of six requests, else of one: pods 2-6 each
    // save half a cold start per burst, 90 s at a cold start cost of 180 s.
    let mut last = Duration::ZERO;
    for i in 0..12u64 {
        let load = if i % 2 == 0 { 6.0 } else { 1.0 };
        for s in 0..30 {
            last = secs(i * 300 + s);
            p.activity(last);
            p.load(last, load);
        }
    }
    // Held through the 60 s burst window they are worth it (90 s > 60 s) ...
    assert_eq!(p.warm_pods(), 6);
    // ... but pre-warmed they also wait through the 70 s span: 90 s < 130 s, one pod.
    let at = p.next_prewarm(last + secs(10)).expect("a pre-warm is planned");
    assert_eq!(p.warm_pods_at(at), 1);
    let start = last + secs(271);
    p.activity(start);
    p.load(start, 6.0);
    assert_eq!(p.burst_floor(start + secs(30)), 6);
}
