//! A Trigger's status, computed from its spec check and what the cluster said (pure).
//!
//! - `SubscriberResolved`: the subscriber and the dead-letter sink have an address (a Function they
//!   name exists; a URI is absolute http(s)). `False` with `FunctionNotFound` or `InvalidURI`.
//! - `SourceReady`: the source is valid (`broker`; a cron and time zone that parse; a `kubernetes`
//!   source in the Trigger's own namespace, not on Secrets, on a kind the API server serves). `False`
//!   with `InvalidSchedule`, `SourceNotAllowed` or `KindNotFound`.
//! - `Ready`: both hold and the filters and delivery settings are valid; otherwise `False` with the
//!   reason of the first problem in the order filters/delivery, source, subscriber.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::GroupVersionKind;
use zeroscale_crds::trigger::{
    TRIGGER_CONDITION_READY, TRIGGER_CONDITION_SOURCE_READY, TRIGGER_CONDITION_SUBSCRIBER_RESOLVED,
    TRIGGER_REASON_FUNCTION_NOT_FOUND, TRIGGER_REASON_KIND_NOT_FOUND, TRIGGER_REASON_READY,
    TRIGGER_REASON_RESOLVED, TRIGGER_REASON_SOURCE_RUNNING, Trigger, TriggerStatus,
};

use super::check::{Dest, Problem, SourceCheck, SpecCheck};
use crate::status::{DesiredCondition, merge};

/// What the cluster said about the names the spec refers to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lookups {
    /// Functions named by the Trigger that do not exist in its namespace.
    pub missing_functions: BTreeSet<String>,
    /// Whether the API server serves the `kubernetes` source's kind: `Err` says why not. `None` when the
    /// source needs no lookup.
    pub kind: Option<Result<(), String>>,
}

fn describe(gvk: &GroupVersionKind) -> String {
    if gvk.group.is_empty() {
        format!("{} ({})", gvk.kind, gvk.version)
    } else {
        format!("{} ({}/{})", gvk.kind, gvk.group, gvk.version)
    }
}

fn source(check: &SpecCheck, lookups: &Lookups) -> Result<String, Problem> {
    match &check.source {
        SourceCheck::Valid(message) => Ok(message.clone()),
        SourceCheck::Invalid(problem) => Err(problem.clone()),
        SourceCheck::NeedsKind(gvk) => match &lookups.kind {
            Some(Ok(())) => Ok(format!(
                "watches {} objects in namespace {}",
                describe(gvk),
                check.namespace
            )),
            Some(Err(why)) => Err(Problem {
                reason: TRIGGER_REASON_KIND_NOT_FOUND,
                message: format!(
                    "spec.source.kubernetes: the API server does not serve {}: {why}",
                    describe(gvk)
                ),
            }),
            None => Err(Problem {
                reason: TRIGGER_REASON_KIND_NOT_FOUND,
                message: format!("spec.source.kubernetes: {} was not looked up", describe(gvk)),
            }),
        },
    }
}

/// The address of a destination, or why it has none.
fn resolve(
    check: &SpecCheck,
    dest: &Result<Dest, Problem>,
    field: &str,
    lookups: &Lookups,
) -> Result<String, Problem> {
    match dest {
        Err(problem) => Err(problem.clone()),
        Ok(Dest::Function(name)) if lookups.missing_functions.contains(name) => Err(Problem {
            reason: TRIGGER_REASON_FUNCTION_NOT_FOUND,
            message: format!(
                "{field}: function {name} not found in namespace {}",
                check.namespace
            ),
        }),
        Ok(dest) => Ok(dest.address(&check.namespace)),
    }
}

fn condition(type_: &'static str, result: &Result<String, Problem>, ok_reason: &str) -> DesiredCondition {
    match result {
        Ok(message) => DesiredCondition::yes(type_, ok_reason, message.clone()),
        Err(p) => DesiredCondition::no(type_, p.reason, p.message.clone()),
    }
}

/// Computes the status of `trigger`. `lastScheduleTime` is carried over: the component that runs the
/// schedule owns it.
pub fn compute(trigger: &Trigger, check: &SpecCheck, lookups: &Lookups, now: &Time) -> TriggerStatus {
    let previous = trigger.status.clone().unwrap_or_default();
    let generation = trigger.metadata.generation;
    let subscriber = resolve(check, &check.subscriber, "spec.subscriber", lookups);
    let dead_letter = check
        .dead_letter
        .as_ref()
        .map(|d| resolve(check, d, "spec.delivery.deadLetterSink", lookups));
    let destinations = match (&subscriber, &dead_letter) {
        (Err(p), _) | (Ok(_), Some(Err(p))) => Err(p.clone()),
        (Ok(to), None) => Ok(format!("events go to {to}")),
        (Ok(to), Some(Ok(dlq))) => Ok(format!("events go to {to}, dead letters to {dlq}")),
    };
    let source = source(check, lookups);
    let ready = match (&check.routing, &source, &destinations) {
        (Err(p), _, _) | (Ok(()), Err(p), _) | (Ok(()), Ok(_), Err(p)) => Err(p.clone()),
        (Ok(()), Ok(_), Ok(to)) => Ok(to.clone()),
    };
    let desired = vec![
        condition(TRIGGER_CONDITION_READY, &ready, TRIGGER_REASON_READY),
        condition(
            TRIGGER_CONDITION_SUBSCRIBER_RESOLVED,
            &destinations,
            TRIGGER_REASON_RESOLVED,
        ),
        condition(
            TRIGGER_CONDITION_SOURCE_READY,
            &source,
            TRIGGER_REASON_SOURCE_RUNNING,
        ),
    ];
    TriggerStatus {
        observed_generation: generation,
        source_kind: check.source_kind.map(str::to_string),
        subscriber_uri: subscriber.ok(),
        dead_letter_sink_uri: dead_letter.and_then(Result::ok),
        last_schedule_time: previous.last_schedule_time.clone(),
        conditions: merge(&previous.conditions, desired, generation, now),
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
