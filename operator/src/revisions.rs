//! Revisions (pure): which revisions a Function has, which are ready, where its traffic goes, and
//! which may be garbage-collected.
//!
//! A revision is a Deployment `<function>-<hash>` labelled `zeroscale.dev/revision` (see
//! `docs/api.md`). The operator reads them all at every reconcile and resolves `spec.traffic` (what
//! Git declares) into `status.traffic` (concrete revisions, which the activator follows):
//! `latestRevision: true` goes to the latest *ready* revision, so a revision that never becomes ready
//! never takes traffic.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use zeroscale_crds::function::{RevisionStatus, TrafficStatus, TrafficTarget, default_traffic};
use zeroscale_crds::revision::REVISION_LABEL;

use crate::status::{Failure, startup_failure};

/// One revision as observed: its Deployment's figures and whether its pods can start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// `<function>-<hash>`.
    pub name: String,
    /// Creation time of its Deployment in seconds (orders revisions, newest first).
    pub created: i64,
    /// `spec.replicas` (what the autoscaler wants).
    pub desired: i32,
    /// `status.replicas`.
    pub replicas: i32,
    /// `status.readyReplicas`.
    pub ready_replicas: i32,
    /// Why its pods cannot start.
    pub failure: Option<Failure>,
}

impl Observed {
    /// Reads a revision's Deployment and its pods (those labelled with its name).
    pub fn from_deployment(deployment: &Deployment, pods: &[Pod]) -> Option<Self> {
        let name = deployment.labels().get(REVISION_LABEL)?.clone();
        let mine: Vec<Pod> = pods
            .iter()
            .filter(|p| p.labels().get(REVISION_LABEL) == Some(&name))
            .cloned()
            .collect();
        let status = deployment.status.clone().unwrap_or_default();
        Some(Self {
            created: deployment
                .metadata
                .creation_timestamp
                .as_ref()
                .map_or(0, |t| t.0.as_second()),
            desired: deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0),
            replicas: status.replicas.unwrap_or(0),
            ready_replicas: status.ready_replicas.unwrap_or(0),
            failure: startup_failure(Some(deployment), &mine),
            name,
        })
    }
}

/// Newest first (by creation, then by name so that the order is total).
pub fn newest_first(revisions: &mut [Observed]) {
    revisions.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.name.cmp(&b.name)));
}

/// Whether `revision` is ready: it has a ready pod now, or was ready before (`previous`, the stored
/// `status.revisions`: a revision scaled to zero after serving stays ready). Without a pod, only the
/// Function's first revision with `scale.initial: 0` (`first_at_zero`: no pod proves anything
/// before the first request, and there is nothing else to serve) counts as ready when its Deployment
/// exists and its pods show no failure. A new revision must prove it (it starts with one pod, see
/// `ValidatedFunction::initial_replicas`), so a broken one never takes `latestRevision` traffic.
pub fn is_ready(revision: &Observed, previous: &[RevisionStatus], first_at_zero: bool) -> bool {
    revision.ready_replicas > 0
        || previous.iter().any(|p| p.name == revision.name && p.ready)
        || (first_at_zero && revision.failure.is_none() && revision.desired == 0)
}

/// Whether `revision` is the first of its Function, when no other revision has been ready, either
/// now (`revisions`) or before (`previous`).
pub fn is_first(revision: &Observed, revisions: &[Observed], previous: &[RevisionStatus]) -> bool {
    let other = |name: &str| name != revision.name;
    !revisions.iter().any(|r| other(&r.name) && r.ready_replicas > 0)
        && !previous.iter().any(|p| other(&p.name) && p.ready)
}

/// The latest ready revision: the current one if ready, else the one that was latest ready before
/// (if it still exists and is ready), else the newest ready one.
pub fn latest_ready(
    current: &str,
    revisions: &[Observed],
    ready: &BTreeSet<String>,
    previous: Option<&str>,
) -> Option<String> {
    if ready.contains(current) {
        return Some(current.to_string());
    }
    if let Some(previous) = previous
        && ready.contains(previous)
    {
        return Some(previous.to_string());
    }
    revisions
        .iter()
        .find(|r| ready.contains(&r.name))
        .map(|r| r.name.clone())
}

/// `spec.traffic` names revisions that do not exist.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("spec.traffic names revisions that do not exist: {}", .0.join(", "))]
pub struct MissingRevisions(pub Vec<String>);

/// Resolves `targets` (or the default, 100 % to the latest ready revision) into concrete routes.
/// `latestRevision` goes to `latest_ready`, or to `latest_created` while no revision has ever been
/// ready (a new Function: requests wait for its first pod). `tag_url` makes a tag's URL.
pub fn resolve_traffic(
    targets: Option<&[TrafficTarget]>,
    existing: &BTreeSet<String>,
    latest_ready: Option<&str>,
    latest_created: &str,
    tag_url: impl Fn(&str) -> String,
) -> Result<Vec<TrafficStatus>, MissingRevisions> {
    let default = default_traffic();
    let targets = targets.unwrap_or(&default);
    let latest = latest_ready.unwrap_or(latest_created);
    let missing: Vec<String> = targets
        .iter()
        .filter_map(|t| t.revision_name.clone())
        .filter(|name| !existing.contains(name))
        .collect();
    if !missing.is_empty() {
        return Err(MissingRevisions(missing));
    }
    Ok(targets
        .iter()
        .map(|t| TrafficStatus {
            revision_name: t.revision_name.clone().unwrap_or_else(|| latest.to_string()),
            percent: t.percent,
            tag: t.tag.clone(),
            latest_revision: t.is_latest().then_some(true),
            url: t.tag.as_deref().map(&tag_url),
        })
        .collect())
}

/// Revisions that must never be collected: those routed or tagged in `traffic`, those `spec.traffic`
/// names, and the latest created and latest ready.
pub fn protected(
    traffic: &[TrafficStatus],
    spec: Option<&[TrafficTarget]>,
    latest: &[Option<&str>],
) -> BTreeSet<String> {
    let routed = traffic
        .iter()
        .filter(|t| t.percent > 0 || t.tag.is_some())
        .map(|t| t.revision_name.clone());
    let named = spec.into_iter().flatten().filter_map(|t| t.revision_name.clone());
    let latest = latest.iter().flatten().map(|s| s.to_string());
    routed.chain(named).chain(latest).collect()
}

/// The revisions to delete: of those not `protected`, all but the newest `limit` (`revisions` is
/// newest first). The single place that decides what garbage collection may take.
pub fn collectable(revisions: &[Observed], protected: &BTreeSet<String>, limit: usize) -> Vec<String> {
    revisions
        .iter()
        .filter(|r| !protected.contains(&r.name))
        .skip(limit)
        .map(|r| r.name.clone())
        .collect()
}

/// `status.revisions`: every revision kept, newest first, with its share and its (first) tag.
pub fn statuses(
    revisions: &[Observed],
    ready: &BTreeSet<String>,
    traffic: &[TrafficStatus],
) -> Vec<RevisionStatus> {
    revisions
        .iter()
        .map(|r| {
            let mine = || traffic.iter().filter(|t| t.revision_name == r.name);
            let tagged = mine()
                .filter(|t| t.tag.is_some())
                .min_by(|a, b| a.tag.cmp(&b.tag));
            RevisionStatus {
                name: r.name.clone(),
                ready: ready.contains(&r.name),
                replicas: r.replicas,
                percent: mine().map(|t| t.percent).sum(),
                tag: tagged.and_then(|t| t.tag.clone()),
                url: tagged.and_then(|t| t.url.clone()),
                reason: r.failure.as_ref().map(|f| f.reason.clone()),
                message: r.failure.as_ref().map(|f| f.message.clone()),
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "revisions_tests.rs"]
mod tests;
