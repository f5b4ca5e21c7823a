//! Status: what the operator reports on a Function, computed from what it applied and observed (pure).
//!
//! - `DeploymentReady` is `False` with the underlying reason while a pod cannot start (image pull
//!   error, crash loop, unschedulable) or the Deployment failed, `False`/`Progressing` while a new
//!   template rolls out or the first pod starts, and `True` once a pod of the current template has
//!   been ready (it then stays `True` while the autoscaler scales from zero: `Active` tells that).
//! - `RoutesReady` is `True` once both Services are applied.
//! - `Active` is `True` with ready pods or at zero by choice, `Unknown`/`Activating` while pods start.
//! - `ContainerHealthy` is `False`/`OOMKilled` while a current pod's container was last killed for
//!   exceeding its memory limit (informational: the restarted container may serve again).
//! - The conditions and counts describe the latest created revision (its Deployment and pods).
//! - `Ready` is `False`/`RevisionMissing` while `spec.traffic` names a revision that does not exist;
//!   otherwise `DeploymentReady ∧ RoutesReady`, carrying the reason of one that is not `True`: a failure
//!   before a rollout or start that is merely under way.

mod conditions;
mod failure;
mod oom;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;
use zeroscale_crds::function::*;
use zeroscale_crds::{Function, FunctionStatus};

pub use conditions::{DesiredCondition, merge};
pub use failure::{Failure, startup_failure};

/// What the reconciler saw and did this time.
#[derive(Clone, Debug, Default)]
pub struct Observed<'a> {
    /// The Deployment as last applied or read; `None` when it does not exist.
    pub deployment: Option<&'a Deployment>,
    /// The function's pods.
    pub pods: &'a [Pod],
    /// Why the Deployment could not be applied, if it could not.
    pub deployment_error: Option<Failure>,
    /// Why the Services could not be applied, if they could not.
    pub routes_error: Option<Failure>,
    /// Why the spec is invalid, if it is.
    pub spec_error: Option<String>,
    /// Why `spec.traffic` cannot be routed (reason `RevisionMissing`), if it cannot.
    pub traffic_error: Option<Failure>,
}

fn previous<'a>(function: &'a Function, type_: &str) -> Option<&'a Condition> {
    function
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

fn deployment_ready(
    function: &Function,
    observed: &Observed<'_>,
    failure: Option<&Failure>,
) -> DesiredCondition {
    const TYPE: &str = CONDITION_DEPLOYMENT_READY;
    if let Some(e) = &observed.deployment_error {
        return DesiredCondition::no(TYPE, &e.reason, e.message.clone());
    }
    let Some(deployment) = observed.deployment else {
        return DesiredCondition::no(
            TYPE,
            REASON_DEPLOYMENT_MISSING,
            "the Deployment does not exist yet",
        );
    };
    if let Some(f) = failure {
        return DesiredCondition::no(TYPE, &f.reason, f.message.clone());
    }
    let prev = previous(function, TYPE);
    let desired = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = deployment.status.clone().unwrap_or_default();
    let stale = status.observed_generation.unwrap_or(0) < deployment.metadata.generation.unwrap_or(0);
    if stale {
        // The Deployment controller has not seen the latest spec (often just a /scale write): keep
        // what we said before rather than flapping.
        return match prev {
            Some(p) => DesiredCondition {
                type_: TYPE,
                status: if p.status == "True" { "True" } else { "False" },
                reason: p.reason.clone(),
                message: p.message.clone(),
            },
            None => DesiredCondition::no(TYPE, REASON_PROGRESSING, "waiting for the Deployment controller"),
        };
    }
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    // Pods of an older template remain: a rollout is under way. (A scale-up is not a rollout: all its
    // pods belong to the current ReplicaSet.)
    if total > updated {
        let message = format!("rolling out a new template: {updated} of {total} pods updated");
        return DesiredCondition::no(TYPE, REASON_PROGRESSING, message);
    }
    if desired == 0 {
        return DesiredCondition::yes(TYPE, REASON_SCALED_TO_ZERO, "scaled to zero");
    }
    if status.available_replicas.unwrap_or(0) > 0 || status.ready_replicas.unwrap_or(0) > 0 {
        return DesiredCondition::yes(TYPE, REASON_AVAILABLE, "");
    }
    match prev {
        Some(p) if p.status == "True" => DesiredCondition::yes(TYPE, &p.reason, p.message.clone()),
        _ => DesiredCondition::no(
            TYPE,
            REASON_PROGRESSING,
            "waiting for the first pod to become ready",
        ),
    }
}

fn active(observed: &Observed<'_>, failure: Option<&Failure>) -> DesiredCondition {
    const TYPE: &str = CONDITION_ACTIVE;
    let spec = observed.deployment.and_then(|d| d.spec.as_ref());
    let desired = spec.and_then(|s| s.replicas).unwrap_or(0);
    let ready = observed
        .deployment
        .and_then(|d| d.status.as_ref())
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    match (ready, desired, failure) {
        (r, _, _) if r > 0 => DesiredCondition::yes(TYPE, REASON_HAS_READY_PODS, ""),
        (_, 0, _) => DesiredCondition::yes(TYPE, REASON_SCALED_TO_ZERO, "scaled to zero"),
        (_, _, Some(f)) => DesiredCondition::no(TYPE, &f.reason, f.message.clone()),
        _ => DesiredCondition::unknown(TYPE, REASON_ACTIVATING, "waiting for a pod to become ready"),
    }
}

/// Computes the status of `function` (of `namespace`) from what was applied and observed. `domain` makes
/// the external URL; `now` stamps new transitions.
pub fn compute(
    function: &Function,
    namespace: &str,
    observed: &Observed<'_>,
    domain: &str,
    now: &Time,
) -> FunctionStatus {
    let name = function.name_any();
    let failure = startup_failure(observed.deployment, observed.pods);
    let deployment = deployment_ready(function, observed, failure.as_ref());
    let routes = match &observed.routes_error {
        None => DesiredCondition::yes(CONDITION_ROUTES_READY, REASON_ROUTES_CREATED, ""),
        Some(e) => DesiredCondition::no(CONDITION_ROUTES_READY, &e.reason, e.message.clone()),
    };
    let active = active(observed, failure.as_ref());
    let container_healthy = match oom::last_oom_kill(observed.pods) {
        Some(kill) => DesiredCondition::no(CONDITION_CONTAINER_HEALTHY, &kill.reason, kill.message),
        None => DesiredCondition::yes(CONDITION_CONTAINER_HEALTHY, REASON_HEALTHY, ""),
    };
    let ready = if let Some(e) = &observed.spec_error {
        DesiredCondition::no(CONDITION_READY, REASON_INVALID_SPEC, e.clone())
    } else if let Some(e) = &observed.traffic_error {
        DesiredCondition::no(CONDITION_READY, &e.reason, e.message.clone())
    } else {
        // A failure (of either) says more than a rollout or start that is merely under way.
        let waiting =
            |c: &&DesiredCondition| c.reason == REASON_PROGRESSING || c.reason == REASON_DEPLOYMENT_MISSING;
        let not_true: Vec<&DesiredCondition> = [&deployment, &routes]
            .into_iter()
            .filter(|c| !c.is_true())
            .collect();
        match not_true.iter().find(|c| !waiting(c)).or(not_true.first()) {
            None => DesiredCondition::yes(CONDITION_READY, REASON_READY, ""),
            Some(c) => DesiredCondition::no(CONDITION_READY, &c.reason, c.message.clone()),
        }
    };
    let previous = function
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let generation = function.metadata.generation;
    let conditions = merge(
        previous,
        vec![ready, deployment, routes, active, container_healthy],
        generation,
        now,
    );

    let dep_status = observed
        .deployment
        .and_then(|d| d.status.clone())
        .unwrap_or_default();
    let desired = observed
        .deployment
        .and_then(|d| d.spec.as_ref())
        .and_then(|s| s.replicas)
        .unwrap_or(0);
    let ready_replicas = dep_status.ready_replicas.unwrap_or(0);
    FunctionStatus {
        observed_generation: generation,
        url: Some(format!("http://{name}.{namespace}.{domain}")),
        address: Some(format!("http://{name}.{namespace}.svc")),
        replicas: dep_status.replicas.unwrap_or(0),
        ready_replicas,
        desired_replicas: desired,
        replicas_summary: Some(format!("{ready_replicas}/{desired}")),
        conditions,
        // The autoscaler's field (server-side apply keeps it under its own field manager).
        prediction: None,
        // Revisions, traffic and the rollout: filled in by the reconciler from its revision plan.
        ..FunctionStatus::default()
    }
}

#[cfg(test)]
mod tests;
