//! One function's autoscaler: collector + decider + the rules Knative's PA reconciler applies on
//! top of the decision (bounds, initial scale, scale to zero).

use std::time::Duration;

use zeroscale_crds::function::ScalePolicy;

use super::{
    collector::Collector,
    decider::{Decider, ScaleResult},
    predictive::{Advice, PredictiveParams, Predictor},
    spec::DeciderSpec,
};

/// What the rest of the world says about a function at decision time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observation {
    /// Pods that are ready.
    pub ready: i32,
    /// The scale currently asked of the Deployment (`spec.replicas`).
    pub current: i32,
    /// Whether the activator is able to receive this function's traffic (required to go to zero).
    pub activator_ready: bool,
}

impl Observation {
    /// Whether the function may be (or stay) at zero: the activator can take its traffic, or it is
    /// at zero already. An activator that cannot take the traffic holds the last pod; it is no
    /// reason to start one (an activator roll would wake every function at zero).
    pub fn zero_allowed(&self) -> bool {
        self.activator_ready || self.current == 0
    }
}

/// Why a decision has the value it has (the `reason` of a `dev.zeroscale.function.scaled` event).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// A request is waiting for a function at zero.
    Demand,
    /// The stable-window average.
    Stable,
    /// Panic mode.
    Panic,
    /// The stable window saw no traffic, the grace period passed and the activator can take traffic.
    ScaleToZero,
    /// `min`, `max` or `initial` overrode the computed value.
    Bounds,
    /// The predictive policy pre-warms one pod before the predicted next request.
    Prewarm,
    /// An open `spec.scale.schedules` window raised the floor.
    Schedule,
}

impl Reason {
    /// The reason as written in events: `demand`, `stable`, `panic`, `scale-to-zero`, `bounds`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Demand => "demand",
            Reason::Stable => "stable",
            Reason::Panic => "panic",
            Reason::ScaleToZero => "scale-to-zero",
            Reason::Bounds => "bounds",
            Reason::Prewarm => "prewarm",
            Reason::Schedule => "schedule",
        }
    }

    /// The reason in PascalCase, for Kubernetes Event actions.
    pub fn action_suffix(self) -> &'static str {
        match self {
            Reason::Demand => "Demand",
            Reason::Stable => "Stable",
            Reason::Panic => "Panic",
            Reason::ScaleToZero => "ScaleToZero",
            Reason::Bounds => "Bounds",
            Reason::Prewarm => "Prewarm",
            Reason::Schedule => "Schedule",
        }
    }
}

/// The outcome of one decision.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision {
    /// Replicas to ask for.
    pub desired: i32,
    /// Why.
    pub reason: Reason,
    /// Whether the decider is in panic mode.
    pub panic: bool,
    /// Stable-window average of the metric.
    pub observed_stable: f64,
    /// Panic-window average of the metric.
    pub observed_panic: f64,
}

/// The whole autoscaling state of one function.
#[derive(Clone, Debug)]
pub struct FunctionScaler {
    spec: DeciderSpec,
    collector: Collector,
    /// Created at the first decision, when the ready pod count is known.
    decider: Option<Decider>,
    /// When this scaler started watching; a function must be watched for a full stable window
    /// before it may go to zero.
    tracked_since: Duration,
    /// Since when the stable window has been free of traffic with the scale still above zero.
    idle_since: Option<Duration>,
    /// Whether the function has reached its initial scale (or been scaled below it).
    initialized: bool,
    staleness: Duration,
    /// The learned idle times of a `predictive` function.
    predictor: Option<Predictor>,
    /// When traffic was last reported, whatever the policy: a predictor made later (a signal can
    /// create the scaler, with the default policy, before the Function's spec is read) starts from
    /// it, so the function's first request still opens its first idle time.
    last_traffic: Option<Duration>,
    /// The floor the open schedule windows impose (0 outside every window), set by the caller from
    /// the wall clock with [`FunctionScaler::set_schedule_floor`].
    schedule_floor: i32,
}

fn predictor_for(spec: &DeciderSpec) -> Option<Predictor> {
    (spec.policy == ScalePolicy::Predictive).then(|| Predictor::new(PredictiveParams::default()))
}

impl FunctionScaler {
    /// A scaler created at `now`; silent replicas are carried forward for `staleness`.
    pub fn new(spec: DeciderSpec, now: Duration, staleness: Duration) -> Self {
        Self {
            collector: Collector::new(spec.stable_window, spec.panic_window, staleness),
            predictor: predictor_for(&spec),
            last_traffic: None,
            spec,
            decider: None,
            tracked_since: now,
            idle_since: None,
            initialized: false,
            staleness,
            schedule_floor: 0,
        }
    }

    /// The spec in use.
    pub fn spec(&self) -> &DeciderSpec {
        &self.spec
    }

    /// Switches to a new spec; window changes restart the buckets (and the cautious start).
    pub fn update_spec(&mut self, spec: DeciderSpec, now: Duration) {
        if spec == self.spec {
            return;
        }
        if spec.policy != self.spec.policy {
            self.predictor = predictor_for(&spec);
            if let (Some(p), Some(at)) = (&mut self.predictor, self.last_traffic) {
                p.activity(at);
            }
        }
        if spec.stable_window != self.spec.stable_window || spec.panic_window != self.spec.panic_window {
            self.collector = Collector::new(spec.stable_window, spec.panic_window, self.staleness);
            self.decider = None;
            self.tracked_since = now;
        } else if let Some(decider) = &mut self.decider {
            decider.update(&self.spec, &spec);
        }
        self.spec = spec;
    }

    /// Records a stats report of `value` from activator `replica`.
    pub fn record(&mut self, now: Duration, replica: &str, value: f64) {
        self.collector.record(now, replica, value);
        if value > 0.0 {
            self.last_traffic = Some(now);
            if let Some(p) = &mut self.predictor {
                p.activity(now);
                p.load(now, value / self.spec.pod_capacity());
            }
        }
    }

    /// Records demand: `queued` requests wait at `replica` for a function with no ready pod. The
    /// activator's first per-second report for the same second replaces (averages with) it.
    pub fn record_demand(&mut self, now: Duration, replica: &str, queued: u64) {
        self.collector.record(now, replica, queued.max(1) as f64);
        self.last_traffic = Some(now);
        if let Some(p) = &mut self.predictor {
            p.activity(now);
            // The burst size counts pods: a pod takes `pod_capacity` of the waiting requests.
            let pods = (queued as f64 / self.spec.pod_capacity()).ceil();
            p.demand(
                now,
                if pods >= u64::MAX as f64 {
                    u64::MAX
                } else {
                    pods as u64
                },
            );
        }
    }

    /// Sets the floor of the open schedule windows ([`super::schedule::floor_at`] of the spec's
    /// schedules at the wall-clock now); 0 outside every window hands the function back to the KPA.
    pub fn set_schedule_floor(&mut self, floor: i32) {
        self.schedule_floor = floor.max(0);
    }

    /// The floor of the open schedule windows.
    pub fn schedule_floor(&self) -> i32 {
        self.schedule_floor
    }

    /// Replaces the predictive policy's parameters (and forgets what it learned) of a `predictive`
    /// function; others are unchanged. The autoscaler uses the defaults; the simulator's
    /// parameter search sets others.
    pub fn set_predictive_params(&mut self, params: PredictiveParams) {
        if let Some(p) = &mut self.predictor
            && p.params() != &params
        {
            *p = Predictor::new(params);
        }
    }

    /// The predictive policy's state, for a `predictive` function.
    pub fn predictor(&self) -> Option<&Predictor> {
        self.predictor.as_ref()
    }

    /// The predictive policy's state, to restore it after a restart.
    pub fn predictor_mut(&mut self) -> Option<&mut Predictor> {
        self.predictor.as_mut()
    }

    /// When a `predictive` function waiting at zero must be decided again (its pre-warm moment).
    pub fn next_wake(&self, now: Duration) -> Option<Duration> {
        self.predictor.as_ref()?.next_prewarm(now)
    }

    /// Whether the decider is in panic mode.
    pub fn in_panic(&self) -> bool {
        self.decider.as_ref().is_some_and(Decider::in_panic)
    }

    /// Whether any report arrived during the last stable window.
    pub fn has_recent_data(&self, now: Duration) -> bool {
        !self.collector.is_empty(now)
    }

    /// Whether the function is quiescent at zero: nothing to decide until new traffic arrives.
    pub fn is_idle_at_zero(&self, now: Duration, current: i32) -> bool {
        current == 0
            && self.schedule_floor == 0
            && self.collector.is_empty(now)
            && !self.in_panic()
            && self
                .predictor
                .as_ref()
                .is_none_or(|p| p.advise(now) != Advice::Warm)
    }

    /// One decision at `now`. `demand` marks a decision made at once for waiting requests: it never
    /// returns less than one replica (unless `max` forbids any).
    pub fn decide(&mut self, now: Duration, obs: Observation, demand: bool) -> Decision {
        self.collector.advance(now);
        let (observed_stable, observed_panic) = self.collector.averages(now);
        let spec = &self.spec;
        let decider = self
            .decider
            .get_or_insert_with(|| Decider::new(spec, now, obs.ready));
        let ScaleResult {
            desired: computed,
            panic,
        } = decider.scale(spec, now, observed_stable, observed_panic, obs.ready);
        let mut reason = if panic { Reason::Panic } else { Reason::Stable };

        // Knative floors at the initial scale until the function has first reached it. Scaled
        // below it already means it got there before (a restarted autoscaler must not re-apply it).
        if obs.ready >= spec.initial || obs.current < spec.initial {
            self.initialized = true;
        }
        let mut floor = spec.min;
        if !self.initialized {
            floor = floor.max(spec.initial);
        }
        if demand {
            floor = floor.max(1);
        }
        let scheduled = self.schedule_floor > floor && self.schedule_floor > computed;
        floor = floor.max(self.schedule_floor);
        let mut desired = computed.max(floor);
        if spec.max > 0 {
            desired = desired.min(spec.max);
        }
        if desired != computed {
            reason = if scheduled {
                Reason::Schedule
            } else {
                Reason::Bounds
            };
        }
        if demand && desired > 0 {
            reason = Reason::Demand;
        }

        if desired > 0 || obs.current == 0 {
            self.idle_since = None;
        } else {
            // The decider wants zero: the stable window averaged zero. Go there only once the
            // function has been watched for a full window, the grace period has passed since that
            // was first true, and the activator can take the function's traffic.
            let watched = now >= self.tracked_since + spec.stable_window;
            if watched && self.idle_since.is_none() {
                self.idle_since = Some(now);
            }
            let graced = self
                .idle_since
                .is_some_and(|since| now >= since + spec.scale_to_zero_grace);
            if graced && obs.zero_allowed() {
                reason = Reason::ScaleToZero;
            } else {
                desired = 1;
            }
        }
        if !demand && let Some(p) = &self.predictor {
            let warm = Warm {
                pods: p.warm_pods_at(now),
                burst_floor: p.burst_floor(now),
            };
            (desired, reason) = apply_advice(p.advise(now), warm, desired, reason, spec, obs);
        }
        Decision {
            desired,
            reason,
            panic,
            observed_stable,
            observed_panic,
        }
    }
}

/// The pods the predictive policy keeps warm.
#[derive(Clone, Copy, Debug)]
struct Warm {
    /// In a warm span: the learned burst size (at least one).
    pods: i32,
    /// While a burst after an idle gap runs: its learned size, or 0.
    burst_floor: i32,
}

/// The predictive policy's say over the 0 ↔ 1 boundary: the learned burst size (at least one pod)
/// while it advises warm (the KPA may ask for more), zero while it advises zero (when `min` and
/// the activator allow), and the burst size through a burst after an idle gap.
fn apply_advice(
    advice: Advice,
    warm: Warm,
    desired: i32,
    reason: Reason,
    spec: &DeciderSpec,
    obs: Observation,
) -> (i32, Reason) {
    let ceiling = if spec.max > 0 { spec.max } else { i32::MAX };
    match advice {
        Advice::Kpa if desired < warm.burst_floor => (warm.burst_floor.min(ceiling), Reason::Prewarm),
        Advice::Kpa => (desired, reason),
        Advice::Warm if desired < warm.pods && ceiling >= 1 => (warm.pods.min(ceiling), Reason::Prewarm),
        Advice::Warm => (desired, reason),
        Advice::Zero if spec.min == 0 && obs.zero_allowed() => (0, Reason::ScaleToZero),
        Advice::Zero => (desired.min(spec.min.max(1)), reason),
    }
}
