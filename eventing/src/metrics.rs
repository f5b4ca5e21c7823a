//! Prometheus metrics of the broker and event delivery (SPEC §8 "event deliveries by outcome").
//!
//! | Metric | Labels | Meaning |
//! |---|---|---|
//! | `zeroscale_events_accepted_total` | `namespace` | events the ingress answered 202 (or a source or reply published) |
//! | `zeroscale_events_rejected_total` | `reason` | requests the ingress refused, by reason |
//! | `zeroscale_event_deliveries_total` | `namespace`, `trigger`, `outcome` | finished deliveries: `delivered`, `dead_lettered`, `undeliverable` |
//! | `zeroscale_event_retries_total` | `namespace`, `trigger` | attempts after the first |
//! | `zeroscale_events_dropped_total` | `reason` | accepted events given up without delivery (`ttl_exhausted`, `reply_overloaded`, `shutdown`) |
//! | `zeroscale_event_delivery_duration_seconds` | `namespace`, `trigger` | acceptance to final outcome, retries included |
//! | `zeroscale_broker_buffered_bytes` | — | bytes of accepted events not yet finished |
//!
//! Per Trigger and subscriber Function: queue depth, oldest event age, redeliveries and dead letters,
//! in [`crate::backlog::metrics`].

use std::time::Duration;

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

use crate::backlog::metrics::TriggerMetrics;

/// Labels of a per-namespace metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NamespaceLabels {
    /// Namespace of the broker.
    pub namespace: String,
}

/// Labels of a per-reason metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Why (a fixed, short vocabulary so the label cannot grow without bound).
    pub reason: &'static str,
}

/// Labels of a per-Trigger metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TriggerLabels {
    /// Namespace of the Trigger.
    pub namespace: String,
    /// Name of the Trigger.
    pub trigger: String,
}

/// Labels of the delivery outcome counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// Namespace of the Trigger.
    pub namespace: String,
    /// Name of the Trigger.
    pub trigger: String,
    /// `delivered`, `dead_lettered` or `undeliverable`.
    pub outcome: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn delivery_histogram() -> Histogram {
    // 1 ms to ~20 min: a warm delivery, a cold start, and a long retry schedule.
    Histogram::new(exponential_buckets(0.001, 2.5, 16))
}

/// Every metric of the eventing core. Cheap to clone (the families are shared).
#[derive(Clone, Debug)]
pub struct EventMetrics {
    accepted: Family<NamespaceLabels, Counter>,
    rejected: Family<ReasonLabels, Counter>,
    deliveries: Family<OutcomeLabels, Counter>,
    retries: Family<TriggerLabels, Counter>,
    dropped: Family<ReasonLabels, Counter>,
    duration: HistogramFamily<TriggerLabels>,
    buffered_bytes: Gauge,
    triggers: TriggerMetrics,
}

impl Default for EventMetrics {
    fn default() -> Self {
        Self {
            accepted: Family::default(),
            rejected: Family::default(),
            deliveries: Family::default(),
            retries: Family::default(),
            dropped: Family::default(),
            duration: Family::new_with_constructor(delivery_histogram),
            buffered_bytes: Gauge::default(),
            triggers: TriggerMetrics::default(),
        }
    }
}

impl EventMetrics {
    /// Creates the metrics and registers them in `registry` (names in the module docs).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "zeroscale_events_accepted",
            "Events accepted by the broker",
            metrics.accepted.clone(),
        );
        registry.register(
            "zeroscale_events_rejected",
            "Requests the broker ingress refused, by reason",
            metrics.rejected.clone(),
        );
        registry.register(
            "zeroscale_event_deliveries",
            "Finished event deliveries by outcome",
            metrics.deliveries.clone(),
        );
        registry.register(
            "zeroscale_event_retries",
            "Delivery attempts after the first",
            metrics.retries.clone(),
        );
        registry.register(
            "zeroscale_events_dropped",
            "Accepted events given up without delivery, by reason",
            metrics.dropped.clone(),
        );
        registry.register(
            "zeroscale_event_delivery_duration_seconds",
            "Time from acceptance to the final outcome of a delivery, retries included",
            metrics.duration.clone(),
        );
        registry.register(
            "zeroscale_broker_buffered_bytes",
            "Bytes of accepted events whose deliveries have not finished",
            metrics.buffered_bytes.clone(),
        );
        metrics.triggers.register(registry);
        metrics
    }

    /// The per-Trigger, per-subscriber metrics (queue depth, oldest age, redeliveries, dead letters).
    pub fn triggers(&self) -> &TriggerMetrics {
        &self.triggers
    }

    /// An event was accepted into `namespace`'s broker.
    pub fn accepted(&self, namespace: &str) {
        self.accepted
            .get_or_create(&NamespaceLabels {
                namespace: namespace.to_string(),
            })
            .inc();
    }

    /// The ingress refused a request for `reason`.
    pub fn rejected(&self, reason: &'static str) {
        self.rejected.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// A delivery for `trigger` finished with `outcome` after `elapsed`.
    pub fn finished(&self, trigger: &TriggerLabels, outcome: &'static str, elapsed: Duration) {
        let labels = OutcomeLabels {
            namespace: trigger.namespace.clone(),
            trigger: trigger.trigger.clone(),
            outcome,
        };
        self.deliveries.get_or_create(&labels).inc();
        self.duration
            .get_or_create(trigger)
            .observe(elapsed.as_secs_f64());
    }

    /// A delivery for `trigger` is about to be retried.
    pub fn retried(&self, trigger: &TriggerLabels) {
        self.retries.get_or_create(trigger).inc();
    }

    /// An accepted event was given up for `reason`.
    pub fn dropped(&self, reason: &'static str) {
        self.dropped.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// The bytes of accepted, unfinished events changed by `delta`.
    pub fn buffered(&self, delta: i64) {
        self.buffered_bytes.inc_by(delta);
    }

    /// Count of `outcome` deliveries for `trigger` so far (for tests and diagnostics).
    pub fn deliveries(&self, namespace: &str, trigger: &str, outcome: &'static str) -> u64 {
        let labels = OutcomeLabels {
            namespace: namespace.into(),
            trigger: trigger.into(),
            outcome,
        };
        self.deliveries.get(&labels).map(|c| c.get()).unwrap_or(0)
    }

    /// Count of rejections for `reason` so far (for tests and diagnostics).
    pub fn rejections(&self, reason: &'static str) -> u64 {
        self.rejected
            .get(&ReasonLabels { reason })
            .map(|c| c.get())
            .unwrap_or(0)
    }

    /// Count of events dropped for `reason` so far (for tests and diagnostics).
    pub fn drops(&self, reason: &'static str) -> u64 {
        self.dropped
            .get(&ReasonLabels { reason })
            .map(|c| c.get())
            .unwrap_or(0)
    }

    /// Count of retries for `trigger` so far (for tests and diagnostics).
    pub fn retry_count(&self, namespace: &str, trigger: &str) -> u64 {
        let labels = TriggerLabels {
            namespace: namespace.into(),
            trigger: trigger.into(),
        };
        self.retries.get(&labels).map(|c| c.get()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_names_render_with_the_zeroscale_prefix() {
        let mut registry = Registry::default();
        let metrics = EventMetrics::register(&mut registry);
        metrics.accepted("default");
        metrics.rejected("malformed");
        let trigger = TriggerLabels {
            namespace: "default".into(),
            trigger: "t".into(),
        };
        metrics.retried(&trigger);
        metrics.finished(&trigger, "delivered", Duration::from_millis(5));
        metrics.dropped("ttl_exhausted");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            r#"zeroscale_events_accepted_total{namespace="default"} 1"#,
            r#"zeroscale_events_rejected_total{reason="malformed"} 1"#,
            r#"zeroscale_event_retries_total{namespace="default",trigger="t"} 1"#,
            r#"zeroscale_event_deliveries_total{namespace="default",trigger="t",outcome="delivered"} 1"#,
            r#"zeroscale_events_dropped_total{reason="ttl_exhausted"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert_eq!(metrics.deliveries("default", "t", "delivered"), 1);
        assert_eq!(metrics.retry_count("default", "t"), 1);
    }
}
