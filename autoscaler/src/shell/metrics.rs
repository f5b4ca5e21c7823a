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
use std::sync::atomic::AtomicU64;

pub use zeroscale_common::metrics::FunctionLabels;

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

type FloatGauge = Gauge<f64, AtomicU64>;

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
    pub signals: Family<SignalLabels, Counter>,
    /// `zeroscale_autoscaler_leader`: 1 while this replica holds the Lease.
    pub leader: Gauge,
    /// `zeroscale_autoscaler_activator_ready`: 1 while the activator answers its readiness URL.
    pub activator_ready: Gauge,
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
            signals: Family::default(),
            leader: Gauge::default(),
            activator_ready: Gauge::default(),
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
            metrics.signals.clone(),
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
