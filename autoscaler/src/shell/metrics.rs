//! The autoscaler's metrics (prometheus-client), rendered by the admin server's `/metrics`.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

pub use zeroscale_common::metrics::FunctionLabels;
use zeroscale_common::metrics::{FloatGauge, unix_now};

/// Outcome of a `/scale` write.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    /// `ok`, `not_found`, `conflict` or `error`.
    pub outcome: &'static str,
}

/// Kind of a received signal and what became of it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignalLabels {
    /// `dev.zeroscale.demand`, `dev.zeroscale.stats` or `unknown`.
    pub kind: &'static str,
    /// `accepted` or `rejected`.
    pub outcome: &'static str,
}

/// The signal counters, plus the wall-clock time the latest demand event was accepted: `bench/coldstart`
/// lines it up with the activator's stamp of the request's arrival (another process on the same node).
#[derive(Clone, Debug, Default)]
pub struct SignalCounters {
    counts: Family<SignalLabels, Counter>,
    last_demand: FloatGauge,
}

impl SignalCounters {
    /// The counter for `labels`; counting an accepted demand event also stamps the wall clock.
    pub fn get_or_create(&self, labels: &SignalLabels) -> SignalCounter {
        let stamp = (labels.kind == zeroscale_common::signals::DEMAND_TYPE && labels.outcome == "accepted")
            .then(|| self.last_demand.clone());
        SignalCounter {
            count: self.counts.get_or_create(labels).clone(),
            stamp,
        }
    }
}

/// One signal counter handle (see [`SignalCounters::get_or_create`]).
#[derive(Debug)]
pub struct SignalCounter {
    count: Counter,
    stamp: Option<FloatGauge>,
}

impl SignalCounter {
    /// Counts one signal; returns the previous count.
    pub fn inc(&self) -> u64 {
        if let Some(stamp) = &self.stamp {
            stamp.set(unix_now());
        }
        self.count.inc()
    }

    /// Signals counted so far.
    pub fn get(&self) -> u64 {
        self.count.get()
    }
}

/// The autoscaler's metrics; names carry the `zeroscale_autoscaler_` prefix once registered.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// `zeroscale_autoscaler_desired_replicas{namespace,function}`.
    pub desired: Family<FunctionLabels, Gauge>,
    /// `zeroscale_autoscaler_ready_replicas{namespace,function}`.
    pub ready: Family<FunctionLabels, Gauge>,
    /// `zeroscale_autoscaler_observed_concurrency{namespace,function}` (stable window; the scaled
    /// metric, which is requests per second for `metric: rps`).
    pub observed: Family<FunctionLabels, FloatGauge>,
    /// `zeroscale_autoscaler_observed_panic_concurrency{namespace,function}` (panic window).
    pub observed_panic: Family<FunctionLabels, FloatGauge>,
    /// `zeroscale_autoscaler_panic{namespace,function}`: 1 while in panic mode.
    pub panic: Family<FunctionLabels, Gauge>,
    /// `zeroscale_autoscaler_decision_duration_seconds`: one tick over every function, or one
    /// immediate demand decision.
    pub decision_duration: Histogram,
    /// `zeroscale_autoscaler_scale_writes_total{outcome}`.
    pub scale_writes: Family<WriteLabels, Counter>,
    /// `zeroscale_autoscaler_demand_to_patch_seconds`: demand event arrival → `/scale` patch sent.
    pub demand_to_patch: Histogram,
    /// `zeroscale_autoscaler_signals_total{kind,outcome}`.
    pub signals: SignalCounters,
    /// `zeroscale_autoscaler_leader`: 1 while this replica holds the Lease.
    pub leader: Gauge,
    /// `zeroscale_autoscaler_activator_ready`: 1 while the activator answers its readiness URL.
    pub activator_ready: Gauge,
    /// `zeroscale_autoscaler_activator_probes_total`: readiness probes of the activator sent.
    pub activator_probes: Counter,
    /// `zeroscale_autoscaler_activator_unable_probes_total`: probes after which the activator
    /// counted as unable (no 200 within the last 3 s), each holding back every scale to zero.
    pub activator_unable_probes: Counter,
}

impl Metrics {
    /// Creates the metrics and registers them under `registry` (which carries the `zeroscale` prefix).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            desired: Family::default(),
            ready: Family::default(),
            observed: Family::default(),
            observed_panic: Family::default(),
            panic: Family::default(),
            // 1 µs … ~16 ms.
            decision_duration: Histogram::new(exponential_buckets(1e-6, 2.0, 15)),
            scale_writes: Family::default(),
            // 50 µs … ~0.4 s: the target is 5 ms.
            demand_to_patch: Histogram::new(exponential_buckets(5e-5, 2.0, 14)),
            signals: SignalCounters::default(),
            leader: Gauge::default(),
            activator_ready: Gauge::default(),
            activator_probes: Counter::default(),
            activator_unable_probes: Counter::default(),
        };
        let sub = registry.sub_registry_with_prefix("autoscaler");
        sub.register(
            "desired_replicas",
            "Replicas the autoscaler wants",
            metrics.desired.clone(),
        );
        sub.register(
            "ready_replicas",
            "Ready replicas seen at the last decision",
            metrics.ready.clone(),
        );
        sub.register(
            "observed_concurrency",
            "Stable-window average of the scaled metric",
            metrics.observed.clone(),
        );
        sub.register(
            "observed_panic_concurrency",
            "Panic-window average of the scaled metric",
            metrics.observed_panic.clone(),
        );
        sub.register(
            "panic",
            "1 while the function is in panic mode",
            metrics.panic.clone(),
        );
        sub.register(
            "decision_duration_seconds",
            "Time of one decision tick over every function, or of one demand decision",
            metrics.decision_duration.clone(),
        );
        sub.register(
            "scale_writes",
            "Writes to /scale, by outcome",
            metrics.scale_writes.clone(),
        );
        sub.register(
            "demand_to_patch_seconds",
            "Time from a demand event's arrival to its /scale patch being sent",
            metrics.demand_to_patch.clone(),
        );
        sub.register(
            "signals",
            "Signal CloudEvents received, by kind and outcome",
            metrics.signals.counts.clone(),
        );
        sub.register(
            "demand_accepted_timestamp_seconds",
            "Wall-clock time the latest demand event was accepted",
            metrics.signals.last_demand.clone(),
        );
        sub.register(
            "leader",
            "1 while this replica holds the leader Lease",
            metrics.leader.clone(),
        );
        sub.register(
            "activator_ready",
            "1 while the activator answers its readiness URL (required to scale to zero)",
            metrics.activator_ready.clone(),
        );
        sub.register(
            "activator_probes",
            "Readiness probes of the activator sent (one a second)",
            metrics.activator_probes.clone(),
        );
        sub.register(
            "activator_unable_probes",
            "Readiness probes after which the activator counted as unable (no 200 within 3 s): scale to zero held back",
            metrics.activator_unable_probes.clone(),
        );
        metrics
    }

    /// Forgets the series of a deleted function.
    pub fn remove(&self, labels: &FunctionLabels) {
        self.desired.remove(labels);
        self.ready.remove(labels);
        self.observed.remove(labels);
        self.observed_panic.remove(labels);
        self.panic.remove(labels);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;
    use zeroscale_common::signals::{DEMAND_TYPE, STATS_TYPE};

    fn render(registry: &Registry) -> String {
        let mut text = String::new();
        encode(&mut text, registry).expect("encode");
        text
    }

    fn stamp(text: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with("zeroscale_autoscaler_demand_accepted_timestamp_seconds "))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn only_an_accepted_demand_stamps_the_wall_clock() {
        let mut registry = Registry::with_prefix("zeroscale");
        let metrics = Metrics::register(&mut registry);
        let labels = |kind, outcome| SignalLabels { kind, outcome };
        metrics
            .signals
            .get_or_create(&labels(STATS_TYPE, "accepted"))
            .inc();
        metrics
            .signals
            .get_or_create(&labels(DEMAND_TYPE, "rejected"))
            .inc();
        assert_eq!(stamp(&render(&registry)), Some(0.0));
        metrics
            .signals
            .get_or_create(&labels(DEMAND_TYPE, "accepted"))
            .inc();
        let stamped = stamp(&render(&registry)).expect("stamp");
        assert!(stamped > 1.7e9, "a Unix time in seconds: {stamped}");
        assert_eq!(
            metrics
                .signals
                .get_or_create(&labels(DEMAND_TYPE, "accepted"))
                .get(),
            1
        );
    }
}
