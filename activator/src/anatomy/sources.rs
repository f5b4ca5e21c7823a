//! Where the cluster's stamps of a cold start come from: the autoscaler's annotations on the
//! Deployment and the served pod's status; and the Event that reports the result.

use std::{net::IpAddr, time::Duration};

use jiff::Timestamp;
use k8s_openapi::api::{apps::v1::Deployment, core::v1::ObjectReference, core::v1::Pod};
use kube::{
    Api, Client,
    api::ListParams,
    runtime::events::{Event, EventType, Recorder, Reporter},
};
use zeroscale_common::signals::FunctionKey;
use zeroscale_crds::revision::split_revision_name;

use super::phases::Stamps;
use crate::kube_watch::FUNCTION_LABEL;

/// Annotation the autoscaler leaves on a Deployment it scaled from zero: its decision time.
pub const DECIDED_ANNOTATION: &str = "zeroscale.dev/scale-decided-at";
/// Annotation the autoscaler leaves on a Deployment it scaled from zero: its patch time.
pub const PATCHED_ANNOTATION: &str = "zeroscale.dev/scale-patched-at";

/// Stamps of the autoscaler older than the request by more than this belong to an earlier cold start.
const STALE_BY: i64 = 50_000;

fn micros(text: &str) -> Option<i64> {
    text.parse::<Timestamp>().ok().map(|t| t.as_microsecond())
}

/// The autoscaler's decision and patch stamps for a cold start that began at `arrived`.
async fn scale_stamps(client: &Client, key: &FunctionKey, arrived: i64) -> (Option<i64>, Option<i64>) {
    let api: Api<Deployment> = Api::namespaced(client.clone(), &key.namespace);
    // The annotations are written just after the patch, long before the pod is ready; a few tries
    // cover a slow API server.
    for _ in 0..5 {
        match api.get_opt(&key.name).await {
            Ok(Some(deployment)) => {
                let annotations = deployment.metadata.annotations.unwrap_or_default();
                let get = |name| annotations.get(name).and_then(|v| micros(v));
                let (decided, patched) = (get(DECIDED_ANNOTATION), get(PATCHED_ANNOTATION));
                if decided.is_some_and(|d| d >= arrived - STALE_BY) {
                    return (decided, patched);
                }
            }
            Ok(None) => return (None, None),
            Err(e) => {
                tracing::debug!(function = %key, error = %e, "cannot read the deployment for the cold-start anatomy")
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (None, None)
}

/// The served pod's scheduled, container-started and ready stamps.
async fn pod_stamps(
    client: &Client,
    key: &FunctionKey,
    ip: IpAddr,
) -> (Option<i64>, Option<i64>, Option<i64>) {
    let api: Api<Pod> = Api::namespaced(client.clone(), &key.namespace);
    let params = ListParams::default().labels(&format!("{FUNCTION_LABEL}={}", key.name));
    let pods = match api.list(&params).await {
        Ok(pods) => pods,
        Err(e) => {
            tracing::debug!(function = %key, error = %e, "cannot list pods for the cold-start anatomy");
            return (None, None, None);
        }
    };
    let ip = ip.to_string();
    let Some(status) = pods
        .items
        .into_iter()
        .filter_map(|p| p.status)
        .find(|s| s.pod_ip.as_deref() == Some(ip.as_str()))
    else {
        return (None, None, None);
    };
    let condition = |name: &str| {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == name && c.status == "True")
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| t.0.as_microsecond())
    };
    // The last container to start is the one the pod waited for.
    let started = status
        .container_statuses
        .iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.running.as_ref()?.started_at.as_ref())
        .map(|t| t.0.as_microsecond())
        .max();
    (condition("PodScheduled"), started, condition("Ready"))
}

/// `stamps` with what the cluster knows added.
pub async fn complete(client: &Client, key: &FunctionKey, pod: IpAddr, mut stamps: Stamps) -> Stamps {
    let (decided, patched) = scale_stamps(client, key, stamps.arrived).await;
    let (scheduled, started, ready) = pod_stamps(client, key, pod).await;
    stamps.decided = decided;
    stamps.patched = patched;
    stamps.scheduled = scheduled;
    stamps.started = started;
    stamps.ready = ready;
    stamps
}

/// Publishes the `ColdStart` Event on the Function `key` (its `uid` makes it show in `kubectl
/// describe fn`).
pub async fn publish_event(
    client: &Client,
    pod_name: &str,
    key: &FunctionKey,
    uid: Option<String>,
    note: String,
) {
    let reporter = Reporter {
        controller: "zeroscale-activator".into(),
        instance: Some(pod_name.to_string()),
    };
    // A recorder of its own: kube's folds Events with the same reason into a series keeping the
    // first note, and every cold start's note differs.
    let recorder = Recorder::new(client.clone(), reporter);
    // The routing entry is a revision (`<function>-<hash>`): the Event is the Function's, and names
    // the revision's Deployment as its secondary object.
    let (function, revision) = split_revision_name(&key.name);
    let reference = ObjectReference {
        api_version: Some("zeroscale.dev/v1alpha1".into()),
        kind: Some("Function".into()),
        name: Some(function.to_string()),
        namespace: Some(key.namespace.clone()),
        uid,
        ..ObjectReference::default()
    };
    let secondary = revision.map(|revision| ObjectReference {
        api_version: Some("apps/v1".into()),
        kind: Some("Deployment".into()),
        name: Some(revision.to_string()),
        namespace: Some(key.namespace.clone()),
        ..ObjectReference::default()
    });
    let event = Event {
        type_: EventType::Normal,
        reason: "ColdStart".into(),
        note: Some(note),
        action: "ColdStart".into(),
        secondary,
    };
    if let Err(e) = recorder.publish(&event, &reference).await {
        tracing::warn!(function = %key, error = %e, "cannot publish the cold-start event");
    }
}
