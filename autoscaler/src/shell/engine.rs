//! The decision loop: the single owner of the [`MultiScaler`]. It receives signals, ticks every
//! `--tick-interval`, reads Functions and Deployments from the reflector stores, and hands scale
//! changes to the [`Writer`]. Owning the state in one task keeps it free of locks; the endpoint
//! only decodes and forwards.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use tokio::sync::{mpsc, watch};
use zeroscale_common::signals::FunctionKey;
use zeroscale_crds::function::parse_schedules;

use super::{
    activator::ActivatorReadiness,
    cluster::ClusterView,
    events::Signal,
    metrics::{FunctionLabels, Metrics},
    prediction::{self, Predictions},
    writer::{ScaleWrite, Writer},
};
use crate::kpa::{DeciderSpec, Decision, MultiScaler, Observation};

/// Where the decision clock starts: a day, so that a last-traffic time restored from a Function's
/// status (up to a day old) is representable on it.
const CLOCK_ORIGIN: Duration = Duration::from_secs(86_400);

/// A write we sent whose effect the Deployment watch has not shown yet.
const PENDING_FOR: Duration = Duration::from_secs(10);

/// Everything the decision loop needs.
pub struct Engine {
    /// The scalers.
    pub scalers: MultiScaler,
    /// Origin of the decision clock.
    pub epoch: Instant,
    /// Functions and Deployments.
    pub cluster: ClusterView,
    /// Applies scale changes.
    pub writer: Writer,
    /// Metrics.
    pub metrics: Metrics,
    /// Whether the activator can take traffic.
    pub activator: ActivatorReadiness,
    /// Whether this replica leads (only the leader writes).
    pub leader: watch::Receiver<bool>,
    /// Last value written per function, and when.
    pub pending: HashMap<FunctionKey, (i32, Instant)>,
    /// Functions whose spec failed to resolve, so the warning is logged once per spec.
    pub bad_specs: HashMap<FunctionKey, String>,
    /// Restored and written `status.prediction` of predictive functions.
    pub predictions: Predictions,
}

fn labels(key: &FunctionKey) -> FunctionLabels {
    FunctionLabels::from(key)
}

impl Engine {
    fn now(&self) -> Duration {
        self.epoch.elapsed() + CLOCK_ORIGIN
    }

    /// The observation of `key`; `None` while its Deployment is unknown. A write we just sent
    /// counts as the current scale until the watch shows it, so it is not repeated.
    fn observe(&self, key: &FunctionKey) -> Option<Observation> {
        let scale = self.cluster.deployment(key)?;
        let mut current = scale.replicas;
        if let Some(&(written, at)) = self.pending.get(key)
            && at.elapsed() < PENDING_FOR
        {
            current = written;
        }
        Some(Observation {
            ready: scale.ready,
            current,
            activator_ready: self.activator.is_ready(),
        })
    }

    /// Brings every scaler's spec in line with its Function; forgets deleted functions.
    fn sync_specs(&mut self) {
        let now = self.now();
        let functions = self.cluster.functions();
        let mut known = std::collections::HashSet::with_capacity(functions.len());
        for (f, (key, reachable)) in functions
            .iter()
            .flat_map(|f| ClusterView::scaled_keys(f).into_iter().map(move |k| (f, k)))
        {
            let scale = if reachable {
                f.spec.scale.clone()
            } else {
                zeroscale_crds::ScaleSpec {
                    min: 0,
                    ..f.spec.scale.clone()
                }
            };
            // A revision is scaled on the concurrency it was made with, not the Function's current one.
            let concurrency = self
                .cluster
                .revision_runtime(&key)
                .map_or(f.spec.concurrency, |r| r.concurrency);
            let resolved = DeciderSpec::resolve(&scale, concurrency).map(|spec| {
                // A schedule that cannot run is reported by the operator as `Ready=False`; here the
                // function keeps its other settings and scales without the windows. A revision that
                // takes no traffic gets no warm capacity from them either, as it gets no `min`.
                match parse_schedules(&f.spec.scale.schedules) {
                    Ok(schedules) if reachable => DeciderSpec { schedules, ..spec },
                    Ok(_) => spec,
                    Err(e) => {
                        tracing::debug!(function = %key, error = %e, "schedules ignored");
                        spec
                    }
                }
            });
            let spec = match resolved {
                Ok(spec) => {
                    self.bad_specs.remove(&key);
                    spec
                }
                Err(e) => {
                    let message = e.to_string();
                    if self.bad_specs.get(&key) != Some(&message) {
                        tracing::warn!(function = %key, error = %message, "invalid scale spec; using defaults");
                        self.bad_specs.insert(key.clone(), message);
                    }
                    DeciderSpec::default()
                }
            };
            self.scalers.set_spec(&key, spec, now);
            if let Some(scaler) = self.scalers.get_mut(&key) {
                self.predictions.restore(&key, f, scaler, now);
            }
            known.insert(key);
        }
        let metrics = &self.metrics;
        // Stats may name a function before its watch event arrives: keep those with recent data.
        self.scalers.retain(|key, scaler| {
            let keep = known.contains(key) || scaler.has_recent_data(now);
            if !keep {
                metrics.remove(&labels(key));
            }
            keep
        });
        self.pending
            .retain(|key, (_, at)| known.contains(key) && at.elapsed() < PENDING_FOR);
        self.predictions.retain(|key| known.contains(key));
    }

    /// Writes the predictions that changed (leader only: one writer, like `/scale`). A scaler is a
    /// revision (`<function>-<hash>`): its Function is found through its Deployment's label, and only
    /// the Function's [`prediction::keeper`] writes.
    fn persist_predictions(&mut self) {
        if !*self.leader.borrow() {
            return;
        }
        let now = self.now();
        self.predictions.note_failures();
        let mut due = Vec::new();
        for (key, scaler) in self.scalers.iter() {
            if let Some(p) = scaler.predictor()
                && self.predictions.due(key, p.version())
                && let Some(function) = self.cluster.function_of(key)
                && prediction::keeper(&function) == Some(key.name.as_str())
                && let Some(name) = function.metadata.name.clone()
            {
                due.push((key.clone(), name, p.version(), prediction::state(p, now)));
            }
        }
        for (key, function, version, state) in due {
            self.predictions.mark(&key, version);
            let failed = self.predictions.failure_sender();
            prediction::spawn_write(self.writer.client().clone(), key, function, state, failed);
        }
    }

    fn record(&self, key: &FunctionKey, obs: Observation, d: &Decision) {
        let l = labels(key);
        self.metrics.desired.get_or_create(&l).set(i64::from(d.desired));
        self.metrics.ready.get_or_create(&l).set(i64::from(obs.ready));
        self.metrics.observed.get_or_create(&l).set(d.observed_stable);
        self.metrics
            .observed_panic
            .get_or_create(&l)
            .set(d.observed_panic);
        self.metrics.panic.get_or_create(&l).set(i64::from(d.panic));
    }

    fn apply(&mut self, key: &FunctionKey, obs: Observation, d: Decision, demand_arrived: Option<Instant>) {
        self.record(key, obs, &d);
        if d.desired == obs.current || !*self.leader.borrow() {
            return;
        }
        self.pending.insert(key.clone(), (d.desired, Instant::now()));
        let write = ScaleWrite {
            function: key.clone(),
            from: obs.current,
            to: d.desired,
            reason: d.reason,
            demand_arrived,
            decided: jiff::Timestamp::now(),
        };
        self.writer.spawn(write, self.cluster.function_of(key));
    }

    fn on_signal(&mut self, signal: Signal) {
        let now = self.now();
        match signal {
            Signal::Stats(stats) => self.scalers.record_stats(now, &stats),
            Signal::Demand { demand, arrived } => {
                let started = Instant::now();
                let obs = self.observe(&demand.function);
                if let Some(d) = self.scalers.record_demand(now, &demand, obs) {
                    self.metrics
                        .decision_duration
                        .observe(started.elapsed().as_secs_f64());
                    if let Some(obs) = obs {
                        self.apply(&demand.function, obs, d, Some(arrived));
                    }
                } else if obs.is_none() {
                    tracing::debug!(function = %demand.function, "demand for a function whose Deployment is unknown");
                }
            }
        }
    }

    fn on_tick(&mut self) {
        self.sync_specs();
        let started = Instant::now();
        let now = self.now();
        let mut decisions = Vec::new();
        // Take the scalers out so the observation closure can borrow the rest of `self`.
        let mut scalers = std::mem::replace(&mut self.scalers, MultiScaler::new(Duration::ZERO));
        // Schedules are wall-clock windows; the decision clock is monotonic.
        scalers.apply_schedules(jiff::Timestamp::now());
        let this = &*self;
        scalers.tick(
            now,
            |key| this.observe(key),
            |key, obs, d| decisions.push((key.clone(), obs, d)),
        );
        self.scalers = scalers;
        self.metrics
            .decision_duration
            .observe(started.elapsed().as_secs_f64());
        for (key, obs, d) in decisions {
            self.apply(&key, obs, d, None);
        }
        self.persist_predictions();
    }

    /// Runs until `signals` closes or `shutdown` resolves. `failed_writes` names functions whose
    /// `/scale` write failed: the next decision retries instead of trusting the unwritten value.
    pub async fn run(
        mut self,
        mut signals: mpsc::Receiver<Signal>,
        mut failed_writes: mpsc::UnboundedReceiver<FunctionKey>,
        tick: Duration,
        shutdown: impl Future<Output = ()>,
    ) {
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                signal = signals.recv() => match signal {
                    Some(signal) => self.on_signal(signal),
                    None => break,
                },
                Some(key) = failed_writes.recv() => {
                    self.pending.remove(&key);
                }
                _ = ticker.tick() => self.on_tick(),
            }
        }
    }
}
