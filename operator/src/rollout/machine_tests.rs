//! The state machine on a virtual clock: a simulated reconcile loop feeding it counts every 2 s.

use jiff::{SignedDuration, Timestamp};
use zeroscale_common::revision_stats::Counts;
use zeroscale_crds::function::{ResolvedRollout, RolloutPhase, RolloutSpec, RolloutStatus};

use super::machine::*;

const OLD: &str = "echo-aaaaaaaaaa";
const NEW: &str = "echo-bbbbbbbbbb";

fn rollout(steps: &[i32], p99_ms: Option<i64>) -> ResolvedRollout {
    RolloutSpec {
        steps: steps.to_vec(),
        interval: "10s".into(),
        max_error_rate: "5%".into(),
        max_p99_latency_ms: p99_ms,
        min_requests: 20,
    }
    .resolve()
    .unwrap()
}

/// What the reconciler does around the machine: keeps `status.rollout` and the window, starting a
/// new window whenever a step starts.
struct Sim {
    rollout: Option<ResolvedRollout>,
    now: Timestamp,
    status: Option<RolloutStatus>,
    serving: Option<String>,
    window: Window,
    transitions: Vec<(u64, Transition)>,
    start: Timestamp,
}

impl Sim {
    fn new(rollout: Option<ResolvedRollout>) -> Self {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        Self {
            rollout,
            now,
            status: None,
            serving: Some(OLD.into()),
            window: Window::default(),
            transitions: Vec::new(),
            start: now,
        }
    }

    /// Advances the clock by `secs`, counts `requests` to the canary of which `errors` failed, each
    /// answered after `latency_ms`, and decides.
    fn tick(&mut self, secs: i64, requests: u64, errors: u64, latency_ms: u64) -> Decision {
        self.now += SignedDuration::from_secs(secs);
        for i in 0..requests {
            let status = if i < errors { 500 } else { 200 };
            self.window.counts.record(status, Some(latency_ms));
        }
        let decision = decide(Input {
            rollout: self.rollout.as_ref(),
            previous: self.status.as_ref(),
            serving: self.serving.as_deref(),
            latest_ready: NEW,
            window: &self.window,
            now: self.now,
        });
        if let Some(t) = &decision.transition {
            let at = u64::try_from(self.now.duration_since(self.start).as_secs()).unwrap();
            self.transitions.push((at, t.clone()));
            if matches!(t, Transition::Started | Transition::Advanced(_)) {
                self.window = Window {
                    since: Some(self.now),
                    counts: Counts::default(),
                };
            }
        }
        self.status = decision.status.clone();
        self.serving = Some(NEW.into());
        decision
    }
}

#[test]
fn without_rollout_the_latest_ready_revision_takes_everything_at_once() {
    let mut sim = Sim::new(None);
    let d = sim.tick(0, 0, 0, 1);
    assert_eq!(
        d.split,
        Split {
            revision: NEW.into(),
            percent: 100,
            stable: None
        }
    );
    assert_eq!(d.status, None);
    assert!(!d.in_progress());
}

#[test]
fn a_first_revision_takes_everything_at_once() {
    let mut sim = Sim::new(Some(rollout(&[10, 50, 100], None)));
    sim.serving = None;
    let d = sim.tick(0, 0, 0, 1);
    assert_eq!(d.split.percent, 100);
    assert_eq!(d.status.unwrap().phase, RolloutPhase::Promoted);
    assert_eq!(d.transition, None);
}

#[test]
fn a_healthy_canary_is_promoted_through_every_step() {
    let mut sim = Sim::new(Some(rollout(&[10, 50, 100], None)));
    let first = sim.tick(0, 0, 0, 1);
    assert_eq!(
        first.split,
        Split {
            revision: NEW.into(),
            percent: 10,
            stable: Some(OLD.into())
        }
    );
    let mut percents = vec![first.split.percent];
    for _ in 0..30 {
        // 30 requests every 2 s, 1 failed of 30 (3.3 %, under 5 %).
        let d = sim.tick(2, 30, 1, 40);
        if percents.last() != Some(&d.split.percent) {
            percents.push(d.split.percent);
        }
    }
    assert_eq!(percents, [10, 50, 100]);
    let at: Vec<_> = sim.transitions.iter().map(|(s, t)| (*s, t.clone())).collect();
    assert_eq!(
        at,
        [
            (0, Transition::Started),
            (10, Transition::Advanced(1)),
            (20, Transition::Advanced(2)),
            (30, Transition::Promoted),
        ]
    );
    let status = sim.status.unwrap();
    assert_eq!(
        (status.phase, status.revision.as_str(), status.stable.clone()),
        (RolloutPhase::Promoted, NEW, None)
    );
    // Promoted stays promoted.
    let mut sim2 = Sim::new(Some(rollout(&[10, 50, 100], None)));
    sim2.status = Some(status);
    assert_eq!(sim2.tick(2, 30, 30, 40).split.percent, 100);
    assert_eq!(sim2.transitions, []);
}

#[test]
fn an_error_rate_breach_rolls_back_within_one_interval() {
    let mut sim = Sim::new(Some(rollout(&[10, 50, 100], None)));
    sim.tick(0, 0, 0, 1);
    // 20 % failures: 6 requests per 2 s, the minimum sample (20) is reached after 8 s.
    let mut rolled = None;
    for _ in 0..5 {
        let d = sim.tick(2, 6, 2, 40);
        if d.status
            .as_ref()
            .is_some_and(|s| s.phase == RolloutPhase::RolledBack)
        {
            rolled = Some(d);
            break;
        }
    }
    let d = rolled.expect("rolled back within one interval (10 s)");
    assert_eq!(
        d.split,
        Split {
            revision: OLD.into(),
            percent: 100,
            stable: None
        }
    );
    let (at, transition) = sim.transitions.last().unwrap().clone();
    assert!(at <= 10, "rolled back after {at} s");
    let Transition::RolledBack(Breach::ErrorRate { errors, requests, .. }) = transition else {
        panic!("{transition:?}");
    };
    assert_eq!((errors, requests), (8, 24));
    let status = d.status.unwrap();
    let message = status.message.clone().unwrap();
    assert!(
        message.contains("error rate 33.3% (8 of 24 requests failed) above maxErrorRate 5%"),
        "{message}"
    );
    assert_eq!(
        (status.requests, status.errors, status.stable.as_deref()),
        (24, 8, Some(OLD))
    );
    // It stays rolled back: all traffic to the old revision, whatever comes next.
    let later = sim.tick(60, 100, 0, 1);
    assert_eq!(later.split.revision, OLD);
    assert_eq!(later.transition, None);
}

#[test]
fn a_p99_breach_rolls_back_with_the_measured_latency() {
    let mut sim = Sim::new(Some(rollout(&[10, 100], Some(200))));
    sim.tick(0, 0, 0, 1);
    sim.tick(2, 10, 0, 800);
    let d = sim.tick(2, 10, 0, 800);
    assert_eq!(d.split.revision, OLD);
    let message = d.status.unwrap().message.unwrap();
    assert!(
        message.contains("p99 latency 1000 ms above maxP99LatencyMs 200"),
        "{message}"
    );
}

#[test]
fn too_few_requests_hold_the_step_and_never_promote() {
    let mut sim = Sim::new(Some(rollout(&[10, 50, 100], None)));
    sim.tick(0, 0, 0, 1);
    for _ in 0..30 {
        // Only 5 requests per 10 s: never the 20 a step needs.
        let d = sim.tick(2, u64::from(sim.now.as_second() % 10 == 0), 0, 1);
        assert_eq!(d.split.percent, 10);
    }
    let status = sim.status.clone().unwrap();
    assert_eq!(status.phase, RolloutPhase::Progressing);
    assert!(status.message.unwrap().starts_with("holding step 1 (10%)"));
    // Failures below the minimum sample do not roll back either: 100 % of 3 requests.
    assert!(
        breach(&rollout(&[100], None), &{
            let mut c = Counts::default();
            (0..3).for_each(|_| c.record(503, None));
            c
        })
        .is_none()
    );
}

#[test]
fn a_restart_continues_at_the_same_step_and_measures_a_full_interval() {
    let mut sim = Sim::new(Some(rollout(&[10, 50, 100], None)));
    sim.tick(0, 0, 0, 1);
    sim.tick(10, 30, 0, 1);
    assert_eq!(sim.status.as_ref().unwrap().step, 1);
    sim.tick(4, 30, 0, 1);
    // The operator restarts: status.rollout survives, the window does not.
    sim.window = Window::default();
    let d = sim.tick(2, 0, 0, 1);
    assert_eq!((d.split.percent, d.transition.clone()), (50, None));
    sim.window.since = Some(sim.now);
    // 6 s after the restart: the step began 12 s ago but was measured only 6 s: held.
    let d = sim.tick(6, 40, 0, 1);
    assert_eq!((d.split.percent, d.transition), (50, None));
    let d = sim.tick(4, 0, 0, 1);
    assert_eq!(d.transition, Some(Transition::Advanced(2)));
}

#[test]
fn a_newer_revision_during_a_canary_restarts_from_the_stable_one() {
    let mut sim = Sim::new(Some(rollout(&[10, 50, 100], None)));
    sim.tick(0, 0, 0, 1);
    let progressing = RolloutStatus {
        revision: "echo-cccccccccc".into(),
        ..sim.status.clone().unwrap()
    };
    sim.status = Some(progressing);
    let d = sim.tick(2, 0, 0, 1);
    assert_eq!(d.transition, Some(Transition::Started));
    assert_eq!(d.split.stable.as_deref(), Some(OLD));
    // A revert to the stable revision during a canary: it takes its traffic back at once.
    let reverted = decide(Input {
        rollout: sim.rollout.as_ref(),
        previous: sim.status.as_ref(),
        serving: Some(NEW),
        latest_ready: OLD,
        window: &Window::default(),
        now: sim.now,
    });
    assert_eq!(
        reverted.split,
        Split {
            revision: OLD.into(),
            percent: 100,
            stable: None
        }
    );
    assert_eq!(reverted.status.unwrap().phase, RolloutPhase::Promoted);
}
