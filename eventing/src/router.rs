//! Which Triggers an event goes to: each Trigger compiled into a [`Route`] (filters, subscriber,
//! delivery), and the table of routes per namespace that the broker fans out over.

use std::{
    collections::HashMap,
    sync::{Arc, PoisonError, RwLock},
};

use cloudevents::Event;
use kube::ResourceExt;
use zeroscale_crds::trigger::Trigger;

use crate::{
    delivery::{DeliveryConfig, DeliveryConfigError, DeliveryDefaults, Target, TargetError},
    filter::{FilterError, Filters},
    metrics::TriggerLabels,
    outbound::HostNotAllowed,
};

/// A Trigger that cannot be routed; each variant maps to a `Ready=False` reason.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RouteError {
    /// The Trigger has no namespace (it was not read from the API server).
    #[error("trigger has no namespace")]
    NoNamespace,
    /// `spec.source` does not set exactly one source.
    #[error("spec.source must set exactly one of broker, schedule or kubernetes")]
    Source,
    /// A filter is invalid.
    #[error("spec.filters: {0}")]
    Filter(#[from] FilterError),
    /// The subscriber does not resolve.
    #[error("spec.subscriber: {0}")]
    Subscriber(#[from] TargetError),
    /// `spec.delivery` is invalid.
    #[error(transparent)]
    Delivery(#[from] DeliveryConfigError),
    /// The subscriber or dead-letter `uri` points at a host outside the allow-list.
    #[error("{field}: {source}")]
    HostNotAllowed {
        /// `spec.subscriber.uri` or `spec.delivery.deadLetterSink.uri`.
        field: &'static str,
        /// The refused host.
        #[source]
        source: HostNotAllowed,
    },
}

/// The source a route's events come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// The namespace's broker ingress (and replies re-published to it).
    Broker,
    /// The Trigger's own schedule.
    Schedule,
    /// The Trigger's own watch of Kubernetes objects.
    Kubernetes,
}

/// One Trigger, compiled.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    /// Namespace and name, as metric labels.
    pub trigger: TriggerLabels,
    /// Where its events come from.
    pub source: SourceKind,
    /// Its filters.
    pub filters: Filters,
    /// Its subscriber.
    pub subscriber: Target,
    /// Its retry schedule and dead-letter sink.
    pub delivery: DeliveryConfig,
}

impl Route {
    /// Compiles `trigger`, checking everything admission cannot (attribute names, durations, URIs).
    pub fn compile(trigger: &Trigger, defaults: &DeliveryDefaults) -> Result<Route, RouteError> {
        let namespace = trigger.namespace().ok_or(RouteError::NoNamespace)?;
        let source = match trigger.spec.source.kind() {
            Some("broker") => SourceKind::Broker,
            Some("schedule") => SourceKind::Schedule,
            Some("kubernetes") => SourceKind::Kubernetes,
            _ => return Err(RouteError::Source),
        };
        let subscriber = Target::resolve(&namespace, &trigger.spec.subscriber)?;
        let delivery = DeliveryConfig::from_spec(&namespace, &trigger.spec.delivery, defaults)?;
        check_host("spec.subscriber.uri", &subscriber, defaults)?;
        if let Some(sink) = &delivery.dead_letter {
            check_host("spec.delivery.deadLetterSink.uri", sink, defaults)?;
        }
        Ok(Route {
            filters: Filters::compile(&trigger.spec.filters)?,
            subscriber,
            delivery,
            trigger: TriggerLabels {
                namespace,
                trigger: trigger.name_any(),
            },
            source,
        })
    }
}

/// Refuses a `uri` destination whose host the allow-list does not contain; Functions are always
/// allowed (they are reached through the activator).
fn check_host(field: &'static str, target: &Target, defaults: &DeliveryDefaults) -> Result<(), RouteError> {
    match target {
        Target::Uri(uri) => defaults
            .allowed_hosts
            .check(uri)
            .map_err(|source| RouteError::HostNotAllowed { field, source }),
        Target::Function(_) => Ok(()),
    }
}

/// Routes of every namespace, shared between the component that keeps them current (the Trigger
/// watch) and the broker that reads them for every event. Reads never wait on IO: the lock is only
/// held to clone out the matching routes.
#[derive(Clone, Debug, Default)]
pub struct RoutingTable {
    inner: Arc<RwLock<HashMap<String, Vec<Arc<Route>>>>>,
}

impl RoutingTable {
    /// Adds or replaces the route of one Trigger.
    pub fn upsert(&self, route: Route) {
        let mut table = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        let routes = table.entry(route.trigger.namespace.clone()).or_default();
        routes.retain(|r| r.trigger.trigger != route.trigger.trigger);
        routes.push(Arc::new(route));
    }

    /// Removes the route of Trigger `name` in `namespace`, if present.
    pub fn remove(&self, namespace: &str, name: &str) {
        let mut table = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(routes) = table.get_mut(namespace) {
            routes.retain(|r| r.trigger.trigger != name);
            if routes.is_empty() {
                table.remove(namespace);
            }
        }
    }

    /// The route of Trigger `name` in `namespace`, if present.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<Route>> {
        let table = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        table
            .get(namespace)?
            .iter()
            .find(|r| r.trigger.trigger == name)
            .cloned()
    }

    /// Whether `namespace` has a broker: at least one Trigger with a `broker` source. The ingress
    /// answers 404 for the others, as for a path that names no namespace.
    pub fn has_broker(&self, namespace: &str) -> bool {
        let table = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        table
            .get(namespace)
            .is_some_and(|routes| routes.iter().any(|r| r.source == SourceKind::Broker))
    }

    /// Every route of every namespace.
    pub fn all(&self) -> Vec<Arc<Route>> {
        let table = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        table.values().flatten().cloned().collect()
    }

    /// Every broker-source route (each is one durable consumer of a JetStream store).
    pub fn broker_routes(&self) -> Vec<Arc<Route>> {
        let table = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        table
            .values()
            .flatten()
            .filter(|r| r.source == SourceKind::Broker)
            .cloned()
            .collect()
    }

    /// The broker-source routes of `namespace` whose filters match `event`.
    pub fn matching(&self, namespace: &str, event: &Event) -> Vec<Arc<Route>> {
        let table = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        table
            .get(namespace)
            .map(|routes| {
                routes
                    .iter()
                    .filter(|r| r.source == SourceKind::Broker && r.filters.matches(event))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use cloudevents::{EventBuilder, EventBuilderV10};
    use serde_json::json;

    use super::*;

    fn trigger(namespace: &str, name: &str, spec: serde_json::Value) -> Trigger {
        serde_json::from_value(json!({
            "apiVersion": "zeroscale.dev/v1alpha1", "kind": "Trigger",
            "metadata": {"namespace": namespace, "name": name},
            "spec": spec,
        }))
        .unwrap()
    }

    fn broker(namespace: &str, name: &str, filters: serde_json::Value) -> Route {
        let spec = json!({"source": {"broker": {}}, "subscriber": {"function": name}, "filters": filters});
        Route::compile(&trigger(namespace, name, spec), &DeliveryDefaults::default()).unwrap()
    }

    fn event(ty: &str) -> Event {
        EventBuilderV10::new()
            .id("1")
            .ty(ty)
            .source("/s")
            .build()
            .unwrap()
    }

    fn names(routes: Vec<Arc<Route>>) -> Vec<String> {
        let mut names: Vec<_> = routes.iter().map(|r| r.trigger.trigger.clone()).collect();
        names.sort();
        names
    }

    #[test]
    fn fans_out_to_every_matching_broker_trigger_of_the_namespace() {
        let table = RoutingTable::default();
        table.upsert(broker("shop", "all", json!([])));
        table.upsert(broker("shop", "orders", json!([{"prefix": {"type": "order."}}])));
        table.upsert(broker("shop", "refunds", json!([{"exact": {"type": "refund"}}])));
        table.upsert(broker("other", "all", json!([])));
        assert_eq!(
            names(table.matching("shop", &event("order.created"))),
            ["all", "orders"]
        );
        assert_eq!(
            names(table.matching("shop", &event("refund"))),
            ["all", "refunds"]
        );
        assert_eq!(
            names(table.matching("empty", &event("refund"))),
            Vec::<String>::new()
        );
    }

    #[test]
    fn schedule_and_kubernetes_triggers_do_not_receive_broker_events() {
        let table = RoutingTable::default();
        let spec = json!({"source": {"schedule": {"cron": "* * * * *"}}, "subscriber": {"function": "f"}});
        table.upsert(Route::compile(&trigger("ns", "tick", spec), &DeliveryDefaults::default()).unwrap());
        assert!(table.matching("ns", &event("x")).is_empty());
        assert_eq!(
            table.get("ns", "tick").map(|r| r.source),
            Some(SourceKind::Schedule)
        );
    }

    #[test]
    fn only_namespaces_with_broker_triggers_have_a_broker() {
        let table = RoutingTable::default();
        assert!(!table.has_broker("ns"));
        let spec = json!({"source": {"schedule": {"cron": "* * * * *"}}, "subscriber": {"function": "f"}});
        table.upsert(Route::compile(&trigger("ns", "tick", spec), &DeliveryDefaults::default()).unwrap());
        assert!(
            !table.has_broker("ns"),
            "a schedule Trigger takes no broker events"
        );
        table.upsert(broker("ns", "t", json!([])));
        assert!(table.has_broker("ns"));
        assert!(!table.has_broker("other"));
        table.remove("ns", "t");
        assert!(!table.has_broker("ns"));
    }

    #[test]
    fn upsert_replaces_and_remove_deletes() {
        let table = RoutingTable::default();
        table.upsert(broker("ns", "t", json!([{"exact": {"type": "a"}}])));
        table.upsert(broker("ns", "t", json!([{"exact": {"type": "b"}}])));
        assert!(table.matching("ns", &event("a")).is_empty());
        assert_eq!(table.matching("ns", &event("b")).len(), 1);
        table.remove("ns", "t");
        assert!(table.matching("ns", &event("b")).is_empty());
        assert!(table.get("ns", "t").is_none());
    }

    #[test]
    fn compile_reports_what_admission_cannot_check() {
        let defaults = DeliveryDefaults::default();
        let bad_filter = json!({"source": {"broker": {}}, "subscriber": {"function": "f"},
                                "filters": [{"exact": {"Type": "x"}}]});
        assert!(matches!(
            Route::compile(&trigger("ns", "t", bad_filter), &defaults),
            Err(RouteError::Filter(_))
        ));
        let two = json!({"source": {"broker": {}}, "subscriber": {"function": "f", "uri": "http://x"}});
        assert!(matches!(
            Route::compile(&trigger("ns", "t", two), &defaults),
            Err(RouteError::Subscriber(_))
        ));
        let outside = json!({"source": {"broker": {}}, "subscriber": {"uri": "http://10.0.0.1:8080/"}});
        match Route::compile(&trigger("ns", "t", outside), &defaults) {
            Err(RouteError::HostNotAllowed { field, source }) => {
                assert_eq!(field, "spec.subscriber.uri");
                assert_eq!(source.host, "10.0.0.1");
            }
            other => panic!("{other:?}"),
        }
        let sink = json!({"source": {"broker": {}}, "subscriber": {"uri": "http://ok.ns.svc/"},
                          "delivery": {"deadLetterSink": {"uri": "https://dlq.example.com/"}}});
        assert!(matches!(
            Route::compile(&trigger("ns", "t", sink.clone()), &defaults),
            Err(RouteError::HostNotAllowed {
                field: "spec.delivery.deadLetterSink.uri",
                ..
            })
        ));
        let mut allowing = defaults.clone();
        allowing.allowed_hosts = allowing.allowed_hosts.with_list("*.example.com").unwrap();
        assert!(Route::compile(&trigger("ns", "t", sink), &allowing).is_ok());
        let none = json!({"source": {}, "subscriber": {"function": "f"}});
        assert_eq!(
            Route::compile(&trigger("ns", "t", none), &defaults),
            Err(RouteError::Source)
        );
    }
}
