//! What a Trigger's spec says, checked without IO: the reconcile-time checks of `docs/eventing.md`
//! (filters, delivery, schedule, `kubernetes` source) and what is left to look up in the cluster (the
//! Functions it names, the kind its `kubernetes` source watches).

use std::collections::BTreeSet;

use kube::api::GroupVersionKind;
use zeroscale_crds::trigger::{
    Destination, TRIGGER_REASON_HOST_NOT_ALLOWED, TRIGGER_REASON_INVALID_DELIVERY,
    TRIGGER_REASON_INVALID_FILTER, TRIGGER_REASON_INVALID_SCHEDULE, TRIGGER_REASON_INVALID_URI,
    TRIGGER_REASON_KIND_NOT_FOUND, TRIGGER_REASON_SOURCE_NOT_ALLOWED, Trigger,
};
use zeroscale_eventing::delivery::{DeliveryConfig, DeliveryConfigError, DeliveryDefaults, Target};
use zeroscale_eventing::filter::Filters;
use zeroscale_eventing::kubernetes::{KubernetesSourceError, WatchTarget};
use zeroscale_eventing::outbound::AllowedHosts;
use zeroscale_eventing::schedule::Schedule;

/// Reason (operator-local): `spec.source` does not set exactly one source. Admission rejects that; a
/// Trigger stored under an older CRD can still carry it.
pub const REASON_INVALID_SOURCE: &str = "InvalidSource";

/// The cluster DNS domain of the in-cluster addresses written to the status.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// Why a condition is not `True`: a condition reason and a message for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// CamelCase reason, one of the `TRIGGER_REASON_*` constants.
    pub reason: &'static str,
    /// What is wrong, naming the field.
    pub message: String,
}

impl Problem {
    fn new(reason: &'static str, message: impl ToString) -> Self {
        Self {
            reason,
            message: message.to_string(),
        }
    }
}

/// A destination (`subscriber` or `deadLetterSink`) whose shape is valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dest {
    /// A Function of the Trigger's namespace: it must exist.
    Function(String),
    /// An absolute http(s) URI.
    Uri(String),
}

impl Dest {
    /// The address written to the status: a Function is reached through its public Service
    /// (`http://<name>.<namespace>.svc.cluster.local`), which leads to the activator, so an event wakes it at zero.
    pub fn address(&self, namespace: &str) -> String {
        match self {
            Dest::Function(name) => format!("http://{name}.{namespace}.svc.{CLUSTER_DOMAIN}"),
            Dest::Uri(uri) => uri.clone(),
        }
    }
}

/// The source, as far as the spec alone tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceCheck {
    /// Valid; the message says what runs.
    Valid(String),
    /// Invalid or not allowed.
    Invalid(Problem),
    /// Valid if the API server serves this kind (a `kubernetes` source).
    NeedsKind(GroupVersionKind),
}

/// Everything the spec tells about a Trigger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecCheck {
    /// Namespace of the Trigger.
    pub namespace: String,
    /// `broker`, `schedule` or `kubernetes`; `None` when not exactly one is set.
    pub source_kind: Option<&'static str>,
    /// The source.
    pub source: SourceCheck,
    /// Filters and delivery settings (they only affect `Ready`).
    pub routing: Result<(), Problem>,
    /// The subscriber.
    pub subscriber: Result<Dest, Problem>,
    /// The dead-letter sink, when one is set.
    pub dead_letter: Option<Result<Dest, Problem>>,
}

impl SpecCheck {
    /// Checks the spec of `trigger` (of its namespace) with the default allow-list (in-cluster Services
    /// only).
    #[cfg(test)]
    pub(crate) fn of(trigger: &Trigger) -> Self {
        let namespace = trigger.metadata.namespace.as_deref().expect("a namespace");
        Self::with_hosts(trigger, namespace, &AllowedHosts::new(CLUSTER_DOMAIN))
    }

    /// Checks the spec of `trigger`, which lives in `namespace`; `uri` destinations must name a host
    /// `allowed` contains.
    pub fn with_hosts(trigger: &Trigger, namespace: &str, allowed: &AllowedHosts) -> Self {
        let namespace = namespace.to_string();
        let spec = &trigger.spec;
        let source_kind = spec.source.kind();
        let source = check_source(trigger, &namespace, source_kind);
        // Each filter on its own, so the message names the one at fault (`cesql` errors add the line
        // and column inside the expression).
        let filters = spec.filters.iter().enumerate().try_for_each(|(i, f)| {
            Filters::compile(std::slice::from_ref(f))
                .map(|_| ())
                .map_err(|e| Problem::new(TRIGGER_REASON_INVALID_FILTER, format!("spec.filters[{i}]: {e}")))
        });
        // The sink is resolved on its own below, so only the other delivery settings are judged here.
        let delivery =
            match DeliveryConfig::from_spec(&namespace, &spec.delivery, &DeliveryDefaults::default()) {
                Ok(_) | Err(DeliveryConfigError::DeadLetterSink(_)) => Ok(()),
                Err(e) => Err(Problem::new(TRIGGER_REASON_INVALID_DELIVERY, e)),
            };
        let dead_letter = spec
            .delivery
            .dead_letter_sink
            .as_ref()
            .map(|d| destination(&namespace, d, "spec.delivery.deadLetterSink", allowed));
        Self {
            source_kind,
            source,
            routing: filters.and(delivery),
            subscriber: destination(&namespace, &spec.subscriber, "spec.subscriber", allowed),
            dead_letter,
            namespace,
        }
    }

    /// The Functions the Trigger names (subscriber and dead-letter sink), which must exist.
    pub fn functions(&self) -> BTreeSet<String> {
        [Some(&self.subscriber), self.dead_letter.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|d| match d {
                Ok(Dest::Function(name)) => Some(name.clone()),
                _ => None,
            })
            .collect()
    }

    /// The kind to look up in API discovery, if any.
    pub fn kind(&self) -> Option<&GroupVersionKind> {
        match &self.source {
            SourceCheck::NeedsKind(gvk) => Some(gvk),
            _ => None,
        }
    }
}

/// Whether `trigger` names the Function `name` of its namespace as subscriber or dead-letter sink.
pub fn references_function(trigger: &Trigger, name: &str) -> bool {
    let names = |d: &Destination| d.function.as_deref() == Some(name);
    names(&trigger.spec.subscriber) || trigger.spec.delivery.dead_letter_sink.as_ref().is_some_and(names)
}

fn destination(
    namespace: &str,
    destination: &Destination,
    field: &str,
    allowed: &AllowedHosts,
) -> Result<Dest, Problem> {
    match Target::resolve(namespace, destination) {
        Ok(Target::Function(key)) => Ok(Dest::Function(key.name)),
        Ok(Target::Uri(uri)) => match allowed.check(&uri) {
            Ok(()) => Ok(Dest::Uri(uri.to_string())),
            Err(e) => Err(Problem::new(
                TRIGGER_REASON_HOST_NOT_ALLOWED,
                format!("{field}.uri: {e}"),
            )),
        },
        Err(e) => Err(Problem::new(TRIGGER_REASON_INVALID_URI, format!("{field}: {e}"))),
    }
}

fn check_source(trigger: &Trigger, namespace: &str, kind: Option<&'static str>) -> SourceCheck {
    let source = &trigger.spec.source;
    match (kind, &source.schedule, &source.kubernetes) {
        (Some("broker"), _, _) => {
            SourceCheck::Valid(format!("events POSTed to the broker of namespace {namespace}"))
        }
        (Some("schedule"), Some(schedule), _) => match Schedule::parse(schedule) {
            Ok(_) => SourceCheck::Valid(format!(
                "cron {:?} in {}",
                schedule.cron.trim(),
                schedule.time_zone.as_deref().unwrap_or("UTC")
            )),
            Err(e) => SourceCheck::Invalid(Problem::new(TRIGGER_REASON_INVALID_SCHEDULE, e)),
        },
        (Some("kubernetes"), _, Some(k8s)) => match WatchTarget::resolve(namespace, k8s) {
            Ok(target) => SourceCheck::NeedsKind(target.gvk),
            // A malformed apiVersion names nothing the API server can serve.
            Err(e @ KubernetesSourceError::ApiVersion(_)) => {
                SourceCheck::Invalid(Problem::new(TRIGGER_REASON_KIND_NOT_FOUND, e))
            }
            Err(e) => SourceCheck::Invalid(Problem::new(TRIGGER_REASON_SOURCE_NOT_ALLOWED, e)),
        },
        _ => SourceCheck::Invalid(Problem::new(
            REASON_INVALID_SOURCE,
            "spec.source must set exactly one of broker, schedule or kubernetes",
        )),
    }
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
