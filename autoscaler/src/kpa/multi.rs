//! Every function's scaler, keyed by function: what the IO shell and the tick benchmark drive.

use std::{collections::HashMap, time::Duration};

use zeroscale_common::signals::{Demand, FunctionKey, Stats};

use super::{
    scaler::{Decision, FunctionScaler, Observation},
    spec::DeciderSpec,
};

/// The scalers of all functions this autoscaler knows of.
#[derive(Debug)]
pub struct MultiScaler {
    scalers: HashMap<FunctionKey, FunctionScaler>,
    staleness: Duration,
}

impl MultiScaler {
    /// An empty set; silent activator replicas are carried forward for `staleness`.
    pub fn new(staleness: Duration) -> Self {
        Self {
            scalers: HashMap::new(),
            staleness,
        }
    }

    fn scaler(&mut self, key: &FunctionKey, now: Duration) -> &mut FunctionScaler {
        let staleness = self.staleness;
        self.scalers
            .entry(key.clone())
            .or_insert_with(|| FunctionScaler::new(DeciderSpec::default(), now, staleness))
    }

    /// Sets the spec of `key` (creating its scaler if needed).
    pub fn set_spec(&mut self, key: &FunctionKey, spec: DeciderSpec, now: Duration) {
        match self.scalers.get_mut(key) {
            Some(scaler) => scaler.update_spec(spec, now),
            None => {
                self.scalers
                    .insert(key.clone(), FunctionScaler::new(spec, now, self.staleness));
            }
        }
    }

    /// Forgets `key` (its Function was deleted).
    pub fn remove(&mut self, key: &FunctionKey) {
        self.scalers.remove(key);
    }

    /// Keeps only the functions `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&FunctionKey, &FunctionScaler) -> bool) {
        self.scalers.retain(|k, s| keep(k, s));
    }

    /// The scaler of `key`, if any.
    pub fn get(&self, key: &FunctionKey) -> Option<&FunctionScaler> {
        self.scalers.get(key)
    }

    /// The scaler of `key`, to change, if any.
    pub fn get_mut(&mut self, key: &FunctionKey) -> Option<&mut FunctionScaler> {
        self.scalers.get_mut(key)
    }

    /// Every function's scaler.
    pub fn iter(&self) -> impl Iterator<Item = (&FunctionKey, &FunctionScaler)> {
        self.scalers.iter()
    }

    /// Number of functions tracked.
    pub fn len(&self) -> usize {
        self.scalers.len()
    }

    /// Whether no function is tracked.
    pub fn is_empty(&self) -> bool {
        self.scalers.is_empty()
    }

    /// Sets every function's schedule floor from its windows at the wall-clock instant `wall`.
    pub fn apply_schedules(&mut self, wall: jiff::Timestamp) {
        for scaler in self.scalers.values_mut() {
            let floor = super::schedule::floor_at(&scaler.spec().schedules, wall);
            scaler.set_schedule_floor(floor);
        }
    }

    /// Records a stats report. Stats may arrive before the Function is known (the default spec is
    /// used until it is), so nothing an activator reports is lost at start-up.
    pub fn record_stats(&mut self, now: Duration, stats: &Stats) {
        let value = stats.concurrency;
        self.scaler(&stats.function, now)
            .record(now, &stats.activator, value);
    }

    /// Records demand and decides at once when the function is at zero (never below one replica), or
    /// when it is waking (scaled up, no pod ready yet) and the waiting requests need more pods than it
    /// is scaling to: a burst from zero gets its pods started together, not one at once and the rest
    /// at a tick after the first is ready (#19's P5). Otherwise the demand is only recorded.
    pub fn record_demand(
        &mut self,
        now: Duration,
        demand: &Demand,
        obs: Option<Observation>,
    ) -> Option<Decision> {
        let scaler = self.scaler(&demand.function, now);
        scaler.record_demand(now, &demand.activator, demand.queued);
        let obs = obs?;
        if obs.current == 0 {
            return Some(scaler.decide(now, obs, true));
        }
        if obs.ready > 0 {
            return None;
        }
        let decision = scaler.decide(now, obs, true);
        (decision.desired > obs.current).then_some(decision)
    }

    /// One decision for every function `observe` knows (it returns `None` for functions whose
    /// Deployment is not known yet). Functions idle at zero are skipped: nothing can change for them
    /// until traffic arrives, which keeps a tick cheap with many idle functions.
    pub fn tick(
        &mut self,
        now: Duration,
        mut observe: impl FnMut(&FunctionKey) -> Option<Observation>,
        mut on_decision: impl FnMut(&FunctionKey, Observation, Decision),
    ) {
        for (key, scaler) in &mut self.scalers {
            let Some(obs) = observe(key) else { continue };
            if scaler.is_idle_at_zero(now, obs.current) {
                continue;
            }
            let decision = scaler.decide(now, obs, false);
            on_decision(key, obs, decision);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kpa::Reason;

    fn demand(queued: u64) -> Demand {
        Demand {
            function: FunctionKey::new("ns", "f"),
            activator: "a".into(),
            queued,
        }
    }

    fn obs(current: i32) -> Option<Observation> {
        Some(Observation {
            ready: current,
            current,
            activator_ready: true,
        })
    }

    #[test]
    fn demand_at_zero_decides_at_once_and_only_at_zero() {
        let mut m = MultiScaler::new(Duration::from_secs(3));
        let now = Duration::from_secs(500);
        let d = m
            .record_demand(now, &demand(1), obs(0))
            .expect("a decision at zero");
        assert_eq!(d.desired, 1);
        // Already scaled up, and as many pods ready: recorded, no immediate decision.
        assert!(m.record_demand(now, &demand(1), obs(1)).is_none());
        // Deployment unknown: recorded only.
        assert!(m.record_demand(now, &demand(1), None).is_none());
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn a_waking_function_scales_further_at_once_for_a_growing_queue() {
        let mut m = MultiScaler::new(Duration::from_secs(3));
        let key = FunctionKey::new("ns", "f");
        let spec = DeciderSpec {
            max: 5,
            ..DeciderSpec::default()
        };
        let target = spec.target_value;
        m.set_spec(&key, spec, Duration::ZERO);
        let now = Duration::from_secs(500);
        let waking = |current| {
            Some(Observation {
                ready: 0,
                current,
                activator_ready: true,
            })
        };
        assert_eq!(
            m.record_demand(now, &demand(1), obs(0)).map(|d| d.desired),
            Some(1)
        );
        // The queue grew while the first pod starts: more pods at once, up to `max`.
        let queued = (target * 40.0) as u64;
        let d = m
            .record_demand(now, &demand(queued), waking(1))
            .expect("a decision while waking");
        assert_eq!((d.desired, d.reason), (5, Reason::Demand));
        // Already scaling to as many as the queue needs: recorded only.
        assert!(m.record_demand(now, &demand(queued), waking(5)).is_none());
        // A pod is ready: the tick decides, as for any function serving traffic.
        let ready = Some(Observation {
            ready: 1,
            current: 1,
            activator_ready: true,
        });
        assert!(m.record_demand(now, &demand(queued), ready).is_none());
    }

    #[test]
    fn tick_skips_functions_idle_at_zero() {
        let mut m = MultiScaler::new(Duration::from_secs(3));
        let key = FunctionKey::new("ns", "f");
        m.set_spec(&key, DeciderSpec::default(), Duration::ZERO);
        let mut decided = 0;
        m.tick(Duration::from_secs(1000), |_| obs(0), |_, _, _| decided += 1);
        assert_eq!(decided, 0);
        m.tick(Duration::from_secs(1002), |_| obs(2), |_, _, _| decided += 1);
        assert_eq!(decided, 1);
    }

    #[test]
    fn apply_schedules_reads_each_function_s_windows_at_the_wall_clock() {
        let mut m = MultiScaler::new(Duration::from_secs(3));
        let key = FunctionKey::new("ns", "f");
        let schedules =
            zeroscale_crds::function::parse_schedules(&[zeroscale_crds::function::ScaleSchedule {
                start: "0 9 * * *".into(),
                end: "0 17 * * *".into(),
                time_zone: Some("America/New_York".into()),
                min: 2,
            }])
            .expect("valid");
        let spec = DeciderSpec {
            schedules,
            ..DeciderSpec::default()
        };
        m.set_spec(&key, spec, Duration::ZERO);
        let wall = |s: &str| s.parse::<jiff::Timestamp>().expect("timestamp");
        // 09:30 in New York in December is 14:30 UTC.
        m.apply_schedules(wall("2026-12-03T14:30:00Z"));
        let mut decided = Vec::new();
        m.tick(
            Duration::from_secs(1000),
            |_| obs(0),
            |_, _, d| decided.push(d.desired),
        );
        assert_eq!(decided, vec![2]);
        m.apply_schedules(wall("2026-12-03T22:30:00Z"));
        assert_eq!(m.get(&key).map(FunctionScaler::schedule_floor), Some(0));
    }
}
