//! Reconcile metrics (prometheus-client), rendered by the admin server's `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram};
use prometheus_client::registry::Registry;

use crate::api_requests::ApiRequestLabels;

/// Labels of the reconcile counters and histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// Kind of the reconciled object (`Function` or `Trigger`).
    pub kind: &'static str,
}

/// Labels of the error counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Kind of the reconciled object.
    pub kind: &'static str,
    /// What failed, from [`crate::error::FunctionError::metric_reason`] or
    /// [`crate::trigger::error::TriggerError::metric_reason`].
    pub reason: &'static str,
}

/// Labels of the platform-event counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlatformLabels {
    /// CloudEvents type (`dev.zeroscale.function.ready` or `.failed`).
    pub r#type: &'static str,
    /// `sent`, `no_broker` (404: the namespace has no broker Trigger), `failed` (after the last
    /// attempt, or a final answer such as 401) or `dropped` (the queue was full).
    pub outcome: &'static str,
}

fn duration_histogram() -> Histogram {
    // 1 ms … ~16 s.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.001, 2.0, 15,
    ))
}

/// The operator's metrics; names carry the `zeroscale_operator_` prefix once registered.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// `zeroscale_operator_reconciles_total{kind}`.
    pub reconciles: Family<KindLabels, Counter>,
    /// `zeroscale_operator_reconcile_errors_total{kind,reason}`.
    pub errors: Family<ErrorLabels, Counter>,
    /// `zeroscale_operator_reconcile_duration_seconds{kind}`.
    pub duration: Family<KindLabels, Histogram, fn() -> Histogram>,
    /// `zeroscale_operator_leader`: 1 while this replica holds the Lease.
    pub leader: Gauge,
    /// `zeroscale_operator_platform_events_total{type,outcome}`.
    pub platform_events: Family<PlatformLabels, Counter>,
    /// `zeroscale_operator_api_requests_total{verb,resource}`, counted by [`crate::api_requests::layer`].
    pub api_requests: Family<ApiRequestLabels, Counter>,
}

impl Metrics {
    /// Creates the metrics and registers them under `registry` (which should carry the `zeroscale` prefix).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            reconciles: Family::default(),
            errors: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            leader: Gauge::default(),
            platform_events: Family::default(),
            api_requests: Family::default(),
        };
        let sub = registry.sub_registry_with_prefix("operator");
        sub.register(
            "reconciles",
            "Reconciliations started",
            metrics.reconciles.clone(),
        );
        sub.register(
            "reconcile_errors",
            "Reconciliations that failed, by reason",
            metrics.errors.clone(),
        );
        sub.register(
            "reconcile_duration_seconds",
            "Time one reconciliation took",
            metrics.duration.clone(),
        );
        sub.register(
            "leader",
            "1 while this replica holds the leader Lease",
            metrics.leader.clone(),
        );
        sub.register(
            "platform_events",
            "Platform CloudEvents (function ready/failed) sent to the events sink, by outcome",
            metrics.platform_events.clone(),
        );
        sub.register(
            "api_requests",
            "Requests to the Kubernetes API server, by verb and resource",
            metrics.api_requests.clone(),
        );
        metrics
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_with_the_zeroscale_prefix() {
        let mut registry = Registry::with_prefix("zeroscale");
        let m = Metrics::register(&mut registry);
        m.reconciles.get_or_create(&KindLabels { kind: "Function" }).inc();
        m.errors
            .get_or_create(&ErrorLabels {
                kind: "Function",
                reason: "apply",
            })
            .inc();
        m.duration
            .get_or_create(&KindLabels { kind: "Function" })
            .observe(0.01);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        assert!(
            text.contains("zeroscale_operator_reconciles_total{kind=\"Function\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("zeroscale_operator_reconcile_errors_total{kind=\"Function\",reason=\"apply\"} 1")
        );
        assert!(text.contains("zeroscale_operator_reconcile_duration_seconds_count{kind=\"Function\"} 1"));
    }
}
