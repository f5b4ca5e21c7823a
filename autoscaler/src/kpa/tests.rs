//! Virtual-clock tests of the whole per-function decision (Knative test names where one exists).

use std::time::Duration;

use zeroscale_crds::function::ScaleSpec;

use super::{DeciderSpec, FunctionScaler, Observation, Reason, TICK_INTERVAL};

const STALENESS: Duration = Duration::from_secs(3);

/// A function under a virtual clock: one activator reports every second, a decision every 2 s, and
/// the Deployment follows each decision at once (ready = desired) unless a test pins `ready`.
struct Harness {
    scaler: FunctionScaler,
    now: Duration,
    ready: i32,
    current: i32,
    activator_ready: bool,
    follow: bool,
    last_panic: bool,
    last_reason: Reason,
}

impl Harness {
    fn new(scale: ScaleSpec, ready: i32) -> Self {
        let spec = DeciderSpec::resolve(&scale, 0).expect("valid spec");
        let now = Duration::from_secs(1000);
        Self {
            scaler: FunctionScaler::new(spec, now, STALENESS),
            now,
            ready,
            current: ready,
            activator_ready: true,
            follow: true,
            last_panic: false,
            last_reason: Reason::Stable,
        }
    }

    fn obs(&self) -> Observation {
        Observation {
            ready: self.ready,
            current: self.current,
            activator_ready: self.activator_ready,
        }
    }

    fn apply(&mut self, desired: i32) -> i32 {
        self.current = desired;
        if self.follow {
            self.ready = desired;
        }
        desired
    }

    /// Advances `secs` seconds with `concurrency` reported each second; decides every 2 s.
    /// Returns the last decision.
    fn run(&mut self, secs: u64, concurrency: f64) -> i32 {
        let mut desired = self.current;
        for _ in 0..secs {
            self.now += Duration::from_secs(1);
            self.scaler.record(self.now, "activator-a", concurrency);
            if self.now.as_secs().is_multiple_of(TICK_INTERVAL.as_secs()) {
                desired = self.tick();
            }
        }
        desired
    }

    /// Advances `secs` seconds with no report at all (the activator is quiet).
    fn quiet(&mut self, secs: u64) -> i32 {
        let mut desired = self.current;
        for _ in 0..secs {
            self.now += Duration::from_secs(1);
            if self.now.as_secs().is_multiple_of(TICK_INTERVAL.as_secs()) {
                desired = self.tick();
            }
        }
        desired
    }

    fn tick(&mut self) -> i32 {
        let d = self.scaler.decide(self.now, self.obs(), false);
        self.last_panic = d.panic;
        self.last_reason = d.reason;
        self.apply(d.desired)
    }
}

/// target 10 per pod at 100 % utilization keeps the arithmetic readable.
fn scale10() -> ScaleSpec {
    ScaleSpec {
        target: Some(10.0),
        target_utilization_percentage: 100.0,
        ..ScaleSpec::default()
    }
}

#[test]
fn test_autoscaler_stable_mode_step_up_within_one_tick() {
    let mut h = Harness::new(scale10(), 1);
    assert_eq!(h.run(61, 10.0), 1);
    // Load jumps to 10× the target at second 1062; the tick at 1062 already scales up (the panic
    // window holds 5 s at 10 and 1 s at 100: 25 → 3 pods), in panic mode.
    let desired = h.run(1, 100.0);
    assert_eq!(desired, 3, "desired {desired} after one tick");
    assert!(h.last_panic, "a 10× jump is over the panic threshold");
    // Two seconds later the panic window holds 3 s of the new load: 55 → 6 pods.
    assert_eq!(h.run(2, 100.0), 6);
}

#[test]
fn test_autoscaler_stable_mode_default_target() {
    // Knative defaults: target 100 × 70 % = 70 per pod.
    let mut h = Harness::new(ScaleSpec::default(), 1);
    assert_eq!(h.run(60, 140.0), 2);
    assert_eq!(h.run(60, 141.0), 3);
}

#[test]
fn test_autoscaler_panic_entry_at_threshold() {
    // Just below 200 %: ceil(19/10) / 1 pod = 2 → 200 % enters panic; 10/10 → 100 % does not.
    let mut h = Harness::new(scale10(), 1);
    h.follow = false;
    h.run(10, 10.0);
    assert!(!h.last_panic);
    h.run(10, 19.0);
    assert!(h.last_panic, "panic-window desired / ready = 2 must enter panic");
}

#[test]
fn test_autoscaler_panic_exit_one_window_after_last_over_threshold_tick() {
    let mut h = Harness::new(scale10(), 1);
    h.follow = false;
    h.run(10, 5.0);
    h.run(6, 30.0); // 3 pods wanted on 1 ready pod: 300 %.
    assert!(h.last_panic);
    let last_over = h.now;
    // Load falls back; the panic window drains within 6 s and no tick is over the threshold after.
    h.run(10, 5.0);
    let mut exit = None;
    while h.now < last_over + Duration::from_secs(70) {
        h.run(2, 5.0);
        if !h.last_panic && exit.is_none() {
            exit = Some(h.now);
        }
    }
    let exit = exit.expect("panic must end");
    // The panic time was refreshed by every over-threshold tick; find the last one by replaying
    // is not needed: exit is the first tick strictly after (last over-threshold tick + 60 s).
    assert!(
        exit > last_over + Duration::from_secs(60),
        "exit at {exit:?}, last over at {last_over:?}"
    );
    assert!(
        exit <= last_over + Duration::from_secs(60 + 6 + 2),
        "exit at {exit:?} is late"
    );
}

#[test]
fn test_autoscaler_no_scale_down_during_panic() {
    let mut h = Harness::new(scale10(), 1);
    h.run(4, 10.0);
    let peak = h.run(4, 200.0);
    assert!(h.last_panic);
    assert!(peak >= 10, "peak {peak}");
    // Load vanishes: the count holds for the whole panic period.
    for _ in 0..25 {
        let d = h.run(2, 0.0);
        if h.last_panic {
            assert_eq!(d, peak, "scaled down during panic");
        }
    }
    // Panic ended within a window and a bit; then halving starts.
    h.run(20, 0.0);
    assert!(!h.last_panic);
    assert!(h.current < peak);
}

#[test]
fn test_autoscaler_rate_limit_scale_down_halves_per_decision() {
    let mut h = Harness::new(scale10(), 1);
    h.run(2, 0.0);
    // Eight pods are ready and the load is zero: each decision may at most halve the ready pods.
    h.ready = 8;
    h.current = 8;
    let mut seen = vec![];
    for _ in 0..4 {
        seen.push(h.run(2, 0.0));
    }
    assert_eq!(seen, vec![4, 2, 1, 1]);
}

#[test]
fn test_autoscaler_rate_limit_scale_up() {
    let scale = ScaleSpec {
        max_scale_up_rate: 2.0,
        ..scale10()
    };
    let mut h = Harness::new(scale, 1);
    h.follow = false;
    h.run(4, 10.0);
    assert_eq!(h.run(2, 1000.0), 2, "one ready pod may at most double");
}

#[test]
fn test_autoscaler_scale_down_delay_holds_the_peak() {
    let scale = ScaleSpec {
        scale_down_delay: "30s".into(),
        ..scale10()
    };
    let mut h = Harness::new(scale, 1);
    h.run(70, 40.0);
    assert_eq!(h.current, 4);
    let peak_at = h.now;
    // Traffic drops to one pod's worth; the stable average follows within a window but the delay
    // window keeps the peak for 30 s after the last decision that wanted 4.
    let mut last_four = peak_at;
    while h.now < peak_at + Duration::from_secs(200) {
        if h.run(2, 10.0) == 4 {
            last_four = h.now;
        }
    }
    assert_eq!(h.current, 1);
    // The computed value fell below 4 some time after the drop; the delay keeps 4 for ≥ 30 s more.
    let mut h2 = Harness::new(
        ScaleSpec {
            scale_down_delay: "0s".into(),
            ..scale10()
        },
        1,
    );
    h2.run(70, 40.0);
    let mut undelayed_last_four = h2.now;
    while h2.now < Duration::from_secs(1070 + 200) {
        if h2.run(2, 10.0) == 4 {
            undelayed_last_four = h2.now;
        }
    }
    assert!(
        last_four >= undelayed_last_four + Duration::from_secs(28),
        "{last_four:?} vs {undelayed_last_four:?}"
    );
}

#[test]
fn test_autoscaler_min_max_initial() {
    let mut h = Harness::new(ScaleSpec { min: 2, ..scale10() }, 2);
    assert_eq!(h.quiet(400), 2, "min holds without traffic");
    assert_eq!(h.last_reason, Reason::Bounds);

    let mut h = Harness::new(ScaleSpec { max: 3, ..scale10() }, 1);
    assert_eq!(h.run(10, 1000.0), 3, "max caps a burst");

    // initial 3: while the function has not reached 3 ready pods it is held at 3.
    let mut h = Harness::new(
        ScaleSpec {
            initial: 3,
            ..scale10()
        },
        0,
    );
    h.follow = false;
    h.current = 3;
    assert_eq!(h.quiet(200), 3);
    // Once it has reached its initial scale, normal decisions resume.
    h.ready = 3;
    h.follow = true;
    h.quiet(200);
    assert_eq!(h.current, 0);
}

#[test]
fn test_autoscaler_scale_to_zero_only_after_window_and_grace() {
    let scale = ScaleSpec {
        window: "6s".into(),
        ..scale10()
    };
    let mut h = Harness::new(scale, 1);
    h.run(20, 5.0);
    let last_traffic = h.now;
    h.run(1, 0.0); // the activator's final report
    let mut zero_at = None;
    while h.now < last_traffic + Duration::from_secs(60) {
        if h.quiet(1) == 0 && zero_at.is_none() {
            zero_at = Some(h.now);
            assert_eq!(h.last_reason, Reason::ScaleToZero);
        }
    }
    let zero_at = zero_at.expect("reaches zero");
    assert!(
        zero_at >= last_traffic + Duration::from_secs(6 + 30),
        "too early: {zero_at:?}"
    );
    assert!(
        zero_at <= last_traffic + Duration::from_secs(6 + 30 + 4),
        "too late: {zero_at:?}"
    );
}

#[test]
fn test_autoscaler_no_scale_to_zero_while_activator_cannot_take_traffic() {
    let scale = ScaleSpec {
        window: "6s".into(),
        ..scale10()
    };
    let mut h = Harness::new(scale, 1);
    h.run(10, 5.0);
    h.activator_ready = false;
    assert_eq!(h.quiet(300), 1);
    h.activator_ready = true;
    assert_eq!(h.quiet(2), 0);
}

#[test]
fn test_autoscaler_restart_does_not_scale_down() {
    // A fresh scaler (restarted autoscaler) finds 5 ready pods and has no history.
    let mut h = Harness::new(scale10(), 5);
    let start = h.now;
    while h.now < start + Duration::from_secs(60) {
        assert_eq!(
            h.run(2, 1.0),
            5,
            "scaled down at {:?} before a full window",
            h.now - start
        );
    }
    assert!(h.run(10, 1.0) < 5, "scales down after the window");

    // With one ready pod and no traffic, it waits a window and the grace period before zero.
    let mut h = Harness::new(scale10(), 1);
    let start = h.now;
    while h.now < start + Duration::from_secs(89) {
        assert_eq!(h.quiet(1), 1);
    }
    assert_eq!(h.quiet(4), 0);
}

#[test]
fn test_autoscaler_demand_at_zero_scales_to_one_immediately() {
    let mut h = Harness::new(scale10(), 0);
    h.quiet(300);
    assert_eq!(h.current, 0);
    // A request finds the function at zero; the decision happens now, not at the next tick.
    h.now += Duration::from_millis(300);
    h.scaler.record_demand(h.now, "activator-a", 1);
    let d = h.scaler.decide(h.now, h.obs(), true);
    assert_eq!(d.desired, 1);
    assert_eq!(d.reason, Reason::Demand);
    // A large queue scales further at once.
    let mut h = Harness::new(scale10(), 0);
    h.quiet(300);
    h.scaler.record_demand(h.now, "activator-a", 45);
    assert_eq!(h.scaler.decide(h.now, h.obs(), true).desired, 5);
}

#[test]
fn test_autoscaler_silent_replica_carried_forward_then_dropped() {
    let mut h = Harness::new(
        ScaleSpec {
            window: "6s".into(),
            ..scale10()
        },
        1,
    );
    // Replica b carries most of the load and then goes silent without a final report.
    for _ in 0..10 {
        h.now += Duration::from_secs(1);
        h.scaler.record(h.now, "activator-a", 5.0);
        h.scaler.record(h.now, "activator-b", 45.0);
    }
    let silent_from = h.now;
    let decide_at = |h: &mut Harness, secs: u64| {
        while h.now < silent_from + Duration::from_secs(secs) {
            h.now += Duration::from_secs(1);
            h.scaler.record(h.now, "activator-a", 5.0);
        }
        h.scaler.decide(h.now, h.obs(), false)
    };
    // Two seconds into the silence, b's 45 is still counted: 5 pods wanted.
    let d = decide_at(&mut h, 3);
    assert!(d.observed_panic >= 50.0 * 0.5, "carried forward: {d:?}");
    // Long after the staleness bound, only a's 5 remains.
    let d = decide_at(&mut h, 3 + 1 + 6);
    assert_eq!(d.observed_panic, 5.0);
}

#[test]
fn a_schedule_window_raises_the_floor_and_its_end_hands_back_to_the_kpa() {
    let mut h = Harness::new(ScaleSpec::default(), 0);
    // Idle at zero: nothing to decide until the window opens.
    h.quiet(120);
    assert_eq!(h.current, 0);
    assert!(h.scaler.is_idle_at_zero(h.now, 0));
    h.scaler.set_schedule_floor(3);
    assert!(
        !h.scaler.is_idle_at_zero(h.now, 0),
        "an open window is work to do"
    );
    assert_eq!(h.quiet(2), 3);
    assert_eq!(h.last_reason, Reason::Schedule);
    // Traffic above the floor is the KPA's: 500 in flight at the default target 100 × 70 % wants 8.
    assert_eq!(h.run(70, 500.0), 8);
    assert_ne!(h.last_reason, Reason::Schedule);
    // Quiet again, the window keeps 3.
    assert_eq!(h.quiet(120), 3);
    // The window closes: the KPA takes over and, idle, goes to zero after the grace period.
    h.scaler.set_schedule_floor(0);
    let after_end = h.quiet(2);
    assert!(after_end < 3, "lowered at the end of the window, got {after_end}");
    assert_eq!(h.quiet(40), 0);
}

#[test]
fn max_caps_a_schedule_floor() {
    let scale = ScaleSpec {
        max: 2,
        ..ScaleSpec::default()
    };
    let mut h = Harness::new(scale, 0);
    h.scaler.set_schedule_floor(5);
    assert_eq!(h.quiet(2), 2);
}
