//! Revisions at reconcile time: the plan (pure: what the status says about revisions and traffic, what
//! to delete) and the deletions it calls for (revisions past `revisionHistoryLimit`, and the single
//! Deployment and private Service of a Function from before revisions).
//!
//! Migration: a Function created before revisions has a Deployment named `<function>` (without the
//! revision label) and a Service `<function>-private`. The operator creates the first revision next to
//! them and deletes both in the same reconcile; the first request after the upgrade may be a cold start.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::DeleteParams;
use kube::{Api, Client, ResourceExt};
use zeroscale_crds::function::{RevisionStatus, TrafficStatus, private_service_name};
use zeroscale_crds::revision::{REVISION_LABEL, is_revision_of};

use crate::apply::controlled_by;
use crate::error::{Child, FunctionError};
use crate::revisions::{self, MissingRevisions, Observed};
use crate::rollout;
use crate::validate::ValidatedFunction;

/// What the reconciler does about revisions this time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// The revision the current spec makes.
    pub latest_created: String,
    /// The newest ready revision.
    pub latest_ready: Option<String>,
    /// `status.traffic`: resolved, or the previous routes when `spec.traffic` names a missing revision.
    pub traffic: Vec<TrafficStatus>,
    /// Revisions `spec.traffic` names that do not exist.
    pub missing: Option<MissingRevisions>,
    /// `status.revisions`, without those collected.
    pub revisions: Vec<RevisionStatus>,
    /// Revisions to delete (Deployment and private Service).
    pub collect: Vec<String>,
    /// Whether the Function still has its Deployment from before revisions (to delete).
    pub legacy: bool,
    /// Pods over every revision kept, for `status.replicas`, `readyReplicas`, `desiredReplicas` and
    /// the REPLICAS column.
    pub replicas: Replicas,
    /// What the automated canary decided (`None` while no revision is ready or the traffic names a
    /// missing revision: `status.rollout` then stays as it was).
    pub rollout: Option<rollout::Decision>,
}

/// Pods summed over a Function's revisions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Replicas {
    /// Pods the revisions' Deployments have.
    pub replicas: i32,
    /// Of those, ready.
    pub ready: i32,
    /// Pods the autoscaler wants for them.
    pub desired: i32,
}

impl Replicas {
    /// The sums over `revisions`.
    pub fn total(revisions: &[Observed]) -> Self {
        revisions.iter().fold(Self::default(), |sum, r| Self {
            replicas: sum.replicas.saturating_add(r.replicas),
            ready: sum.ready.saturating_add(r.ready_replicas),
            desired: sum.desired.saturating_add(r.desired),
        })
    }
}

/// Plans the revisions of `function` from its Deployments and pods (pure).
pub fn plan(
    function: &ValidatedFunction<'_>,
    deployments: &[Deployment],
    pods: &[Pod],
    domain: &str,
    canary: &rollout::Observation,
) -> Plan {
    let ours = |d: &&Deployment| controlled_by(&d.metadata, function.function);
    let legacy = deployments
        .iter()
        .filter(ours)
        .any(|d| d.name_any() == function.name && !d.labels().contains_key(REVISION_LABEL));
    let mut observed: Vec<Observed> = deployments
        .iter()
        .filter(ours)
        .filter(|d| is_revision_of(&d.name_any(), function.name))
        .filter_map(|d| Observed::from_deployment(d, pods))
        .collect();
    revisions::newest_first(&mut observed);
    let previous = function.function.status.clone().unwrap_or_default();
    let initial_zero = function.scale.initial == 0;
    let ready: BTreeSet<String> = observed
        .iter()
        .filter(|r| {
            let first_at_zero = initial_zero && revisions::is_first(r, &observed, &previous.revisions);
            revisions::is_ready(r, &previous.revisions, first_at_zero)
        })
        .map(|r| r.name.clone())
        .collect();
    let current = function.revision.as_str();
    let latest_ready = revisions::latest_ready(
        current,
        &observed,
        &ready,
        previous.latest_ready_revision_name.as_deref(),
    );
    let existing: BTreeSet<String> = observed.iter().map(|r| r.name.clone()).collect();
    let (name, namespace) = (function.name, function.namespace);
    let tag_url = |tag: &str| format!("http://{tag}-{name}.{namespace}.{domain}");
    let spec_traffic = function.spec.traffic.as_deref();
    let (traffic, missing) = match revisions::resolve_traffic(
        spec_traffic,
        &existing,
        latest_ready.as_deref(),
        current,
        tag_url,
    ) {
        Ok(traffic) => (traffic, None),
        Err(missing) => (previous.traffic.clone(), Some(missing)),
    };
    // The canary divides the latest revision's share between itself and the stable revision.
    let decision = latest_ready
        .as_deref()
        .filter(|_| missing.is_none())
        .map(|latest| {
            rollout::decide(rollout::Input {
                rollout: function.rollout.as_ref(),
                previous: previous.rollout.as_ref(),
                serving: previous.latest_ready_revision_name.as_deref(),
                latest_ready: latest,
                window: &canary.window,
                now: canary.now,
            })
        });
    let traffic = match (&decision, latest_ready.as_deref()) {
        (Some(d), Some(latest)) => rollout::split::apply(&traffic, latest, &d.split),
        _ => traffic,
    };
    let mut protected =
        revisions::protected(&traffic, spec_traffic, &[Some(current), latest_ready.as_deref()]);
    // Never the canary or its rollback target while a rollout runs or after it rolled back.
    let rollout_status = match &decision {
        Some(d) => d.status.as_ref(),
        None => previous.rollout.as_ref(),
    };
    protected.extend(rollout::protected(rollout_status));
    let limit = usize::try_from(function.spec.revision_history_limit).unwrap_or(0);
    let collect = revisions::collectable(&observed, &protected, limit);
    observed.retain(|r| !collect.contains(&r.name));
    Plan {
        replicas: Replicas::total(&observed),
        latest_created: current.to_string(),
        revisions: revisions::statuses(&observed, &ready, &traffic),
        latest_ready,
        traffic,
        missing,
        collect,
        legacy,
        rollout: decision,
    }
}

async fn delete<K>(api: &Api<K>, kind: Child, name: &str) -> Result<(), FunctionError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(source) => Err(FunctionError::Delete {
            kind,
            name: name.to_string(),
            source,
        }),
    }
}

/// Deletes what `plan` collects: each revision's Deployment and private Service, and the children
/// from before revisions.
pub async fn clean_up(
    client: &Client,
    function: &ValidatedFunction<'_>,
    plan: &Plan,
) -> Result<(), FunctionError> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), function.namespace);
    let services: Api<Service> = Api::namespaced(client.clone(), function.namespace);
    for name in &plan.collect {
        tracing::info!(function = function.name, revision = %name, "collecting a revision past revisionHistoryLimit");
        delete(&deployments, Child::Deployment, name).await?;
        delete(&services, Child::Service, name).await?;
    }
    if plan.legacy {
        tracing::info!(
            function = function.name,
            "deleting the Deployment from before revisions"
        );
        delete(&deployments, Child::Deployment, function.name).await?;
        delete(&services, Child::Service, &private_service_name(function.name)).await?;
    }
    Ok(())
}
