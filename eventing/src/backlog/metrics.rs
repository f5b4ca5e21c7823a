//! The per-Trigger, per-subscriber metric families of [`super`].
//!
//! | Metric | Type | Meaning |
//! |---|---|---|
//! | `zeroscale_trigger_queue_depth` | gauge | events accepted for the Trigger, not yet acknowledged or dead-lettered |
//! | `zeroscale_trigger_oldest_event_age_seconds` | gauge | age of the oldest of them (0 when none) |
//! | `zeroscale_trigger_redeliveries_total` | counter | deliveries of an event to the subscriber after its first |
//! | `zeroscale_trigger_dead_lettered_total` | counter | events the dead-letter sink accepted after the subscriber's attempts were used up |
//!
//! All labelled `namespace`, `trigger`, `function`.

use std::sync::atomic::AtomicU64;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use super::Backlog;
use crate::{delivery::Target, metrics::TriggerLabels};

/// Labels of a per-Trigger metric that also names the subscriber Function, so a function's figures
/// are a `sum by (namespace, function)` away.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SubscriberLabels {
    /// Namespace of the Trigger.
    pub namespace: String,
    /// Name of the Trigger.
    pub trigger: String,
    /// The subscriber Function's name; empty for a `uri` subscriber.
    pub function: String,
}

impl SubscriberLabels {
    /// The labels of `trigger` delivering to `subscriber`.
    pub fn of(trigger: &TriggerLabels, subscriber: &Target) -> Self {
        let function = match subscriber {
            Target::Function(key) => key.name.clone(),
            Target::Uri(_) => String::new(),
        };
        Self {
            namespace: trigger.namespace.clone(),
            trigger: trigger.trigger.clone(),
            function,
        }
    }
}

/// The families (names in the module docs). Cheap to clone; clones share the families.
#[derive(Clone, Debug, Default)]
pub struct TriggerMetrics {
    depth: Family<SubscriberLabels, Gauge>,
    oldest_age: Family<SubscriberLabels, Gauge<f64, AtomicU64>>,
    redeliveries: Family<SubscriberLabels, Counter>,
    dead_lettered: Family<SubscriberLabels, Counter>,
}

impl TriggerMetrics {
    /// Registers the families in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "zeroscale_trigger_queue_depth",
            "Events accepted for a Trigger and not yet acknowledged or dead-lettered (sampled)",
            self.depth.clone(),
        );
        registry.register(
            "zeroscale_trigger_oldest_event_age_seconds",
            "Age of the oldest event a Trigger has not yet acknowledged or dead-lettered (sampled)",
            self.oldest_age.clone(),
        );
        registry.register(
            "zeroscale_trigger_redeliveries",
            "Deliveries of an event to a Trigger's subscriber after its first",
            self.redeliveries.clone(),
        );
        registry.register(
            "zeroscale_trigger_dead_lettered",
            "Events the dead-letter sink accepted after the subscriber's attempts were used up",
            self.dead_lettered.clone(),
        );
    }

    /// An event is delivered to `labels`' subscriber again (a retry, or the store's redelivery).
    pub fn redelivered(&self, labels: &SubscriberLabels) {
        self.redeliveries.get_or_create(labels).inc();
    }

    /// An event of `labels` is in the dead-letter sink.
    pub fn dead_lettered(&self, labels: &SubscriberLabels) {
        self.dead_lettered.get_or_create(labels).inc();
    }

    /// Sets `labels`' sampled backlog.
    pub fn set_backlog(&self, labels: &SubscriberLabels, backlog: Backlog) {
        self.depth
            .get_or_create(labels)
            .set(i64::try_from(backlog.depth).unwrap_or(i64::MAX));
        self.oldest_age
            .get_or_create(labels)
            .set(backlog.oldest_age.as_secs_f64());
    }

    /// Removes `labels`' backlog series (its Trigger is gone or delivers elsewhere now).
    pub fn forget_backlog(&self, labels: &SubscriberLabels) {
        self.depth.remove(labels);
        self.oldest_age.remove(labels);
    }

    /// `labels`' last sampled backlog, if any (for tests and diagnostics).
    pub fn backlog(&self, labels: &SubscriberLabels) -> Option<Backlog> {
        let depth = self.depth.get(labels)?.get();
        let age = self.oldest_age.get(labels)?.get();
        Some(Backlog {
            depth: u64::try_from(depth).unwrap_or(0),
            oldest_age: std::time::Duration::try_from_secs_f64(age).unwrap_or_default(),
        })
    }

    /// `labels`' redeliveries so far (for tests and diagnostics).
    pub fn redeliveries(&self, labels: &SubscriberLabels) -> u64 {
        self.redeliveries.get(labels).map(|c| c.get()).unwrap_or(0)
    }

    /// `labels`' dead-lettered events so far (for tests and diagnostics).
    pub fn dead_letters(&self, labels: &SubscriberLabels) -> u64 {
        self.dead_lettered.get(labels).map(|c| c.get()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use zeroscale_common::signals::FunctionKey;

    use super::*;

    fn trigger() -> TriggerLabels {
        TriggerLabels {
            namespace: "shop".into(),
            trigger: "orders".into(),
        }
    }

    #[test]
    fn labels_name_the_subscriber_function_or_nothing_for_a_uri() {
        let function = Target::Function(FunctionKey::new("shop", "billing"));
        assert_eq!(SubscriberLabels::of(&trigger(), &function).function, "billing");
        let uri = Target::uri("http://sink.shop.svc/").expect("valid uri");
        assert_eq!(SubscriberLabels::of(&trigger(), &uri).function, "");
    }

    #[test]
    fn families_render_with_their_labels_and_a_forgotten_backlog_disappears() {
        let mut registry = Registry::default();
        let metrics = TriggerMetrics::default();
        metrics.register(&mut registry);
        let labels = SubscriberLabels::of(&trigger(), &Target::Function(FunctionKey::new("shop", "billing")));
        metrics.redelivered(&labels);
        metrics.redelivered(&labels);
        metrics.dead_lettered(&labels);
        metrics.set_backlog(
            &labels,
            Backlog {
                depth: 12,
                oldest_age: Duration::from_millis(2500),
            },
        );
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        let set = r#"{namespace="shop",trigger="orders",function="billing"}"#;
        for line in [
            format!("zeroscale_trigger_queue_depth{set} 12"),
            format!("zeroscale_trigger_oldest_event_age_seconds{set} 2.5"),
            format!("zeroscale_trigger_redeliveries_total{set} 2"),
            format!("zeroscale_trigger_dead_lettered_total{set} 1"),
        ] {
            assert!(text.contains(&line), "missing {line} in\n{text}");
        }
        assert_eq!(metrics.backlog(&labels).map(|b| b.depth), Some(12));
        metrics.forget_backlog(&labels);
        assert_eq!(metrics.backlog(&labels), None);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        assert!(!text.contains("zeroscale_trigger_queue_depth{"), "{text}");
    }
}
