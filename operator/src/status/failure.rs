//! Why a function cannot start, read from its pods and its Deployment (pure).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use zeroscale_crds::function::STARTUP_FAILURE_REASONS;

/// A reason (one of [`STARTUP_FAILURE_REASONS`]) and a message for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Machine-readable reason, carried into the `Ready` condition.
    pub reason: String,
    /// What happened, naming the pod and container.
    pub message: String,
}

fn container_failure(pod: &Pod, name: &str, status: &ContainerStatus) -> Option<Failure> {
    // An OOM kill says more than the CrashLoopBackOff the kubelet reports after it.
    if let Some(failure) = super::oom::startup_failure(pod, name, status) {
        return Some(failure);
    }
    let pod = name;
    let waiting = status.state.as_ref()?.waiting.as_ref()?;
    let reason = waiting.reason.as_deref()?;
    if !STARTUP_FAILURE_REASONS.contains(&reason) {
        return None;
    }
    let last_exit = status.last_state.as_ref().and_then(|s| s.terminated.as_ref());
    // Kubelet messages of a crash loop change with every back-off step; ours stay put, so the
    // status does not churn while nothing really changes.
    let message = match (reason, last_exit) {
        ("CrashLoopBackOff", Some(exit)) => format!(
            "pod {pod}: container {} keeps exiting (last exit code {}{})",
            status.name,
            exit.exit_code,
            exit.reason
                .as_deref()
                .map(|r| format!(", {r}"))
                .unwrap_or_default()
        ),
        ("CrashLoopBackOff", None) => format!("pod {pod}: container {} keeps exiting", status.name),
        _ => match waiting.message.as_deref() {
            Some(m) if !m.is_empty() => format!("pod {pod}: container {}: {m}", status.name),
            _ => format!("pod {pod}: container {}: {reason}", status.name),
        },
    };
    Some(Failure {
        reason: reason.to_string(),
        message,
    })
}

fn pod_failure(pod: &Pod) -> Option<Failure> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let name = pod.metadata.name.as_deref().unwrap_or("?");
    let status = pod.status.as_ref()?;
    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    if let Some(failure) = containers.filter_map(|c| container_failure(pod, name, c)).next() {
        return Some(failure);
    }
    let unschedulable = status.conditions.iter().flatten().find(|c| {
        c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable")
    })?;
    Some(Failure {
        reason: "Unschedulable".into(),
        message: format!(
            "pod {name}: {}",
            unschedulable.message.as_deref().unwrap_or("cannot be scheduled")
        ),
    })
}

/// The first startup failure among the pods (by name, so the answer is stable), else the Deployment's
/// own failures: `Progressing=False` with `ProgressDeadlineExceeded`, or `ReplicaFailure=True`.
pub fn startup_failure(deployment: Option<&Deployment>, pods: &[Pod]) -> Option<Failure> {
    let mut sorted: Vec<&Pod> = pods.iter().collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    if let Some(failure) = sorted.into_iter().find_map(pod_failure) {
        return Some(failure);
    }
    let conditions = deployment?.status.as_ref()?.conditions.as_ref()?;
    conditions.iter().find_map(|c| {
        let failed = (c.type_ == "Progressing" && c.status == "False")
            || (c.type_ == "ReplicaFailure" && c.status == "True");
        failed.then(|| Failure {
            reason: c.reason.clone().unwrap_or_else(|| c.type_.clone()),
            message: c.message.clone().unwrap_or_default(),
        })
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentStatus};
    use serde_json::json;

    use super::*;

    fn pod(name: &str, status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({ "metadata": { "name": name }, "status": status })).expect("pod")
    }

    fn waiting(reason: &str, message: &str) -> serde_json::Value {
        json!({ "containerStatuses": [{
            "name": "function", "image": "x", "imageID": "", "ready": false, "restartCount": 3,
            "state": { "waiting": { "reason": reason, "message": message } },
            "lastState": { "terminated": { "exitCode": 2, "reason": "Error" } }
        }]})
    }

    #[test]
    fn image_pull_errors_carry_the_kubelet_message() {
        let pods = [pod(
            "p",
            waiting("ImagePullBackOff", "image \"nope\" is not mapped"),
        )];
        let f = startup_failure(None, &pods).expect("failure");
        assert_eq!(f.reason, "ImagePullBackOff");
        assert_eq!(
            f.message,
            "pod p: container function: image \"nope\" is not mapped"
        );
    }

    #[test]
    fn crash_loops_report_the_exit_code_with_a_stable_message() {
        let a =
            startup_failure(None, &[pod("p", waiting("CrashLoopBackOff", "back-off 10s"))]).expect("crash");
        let b =
            startup_failure(None, &[pod("p", waiting("CrashLoopBackOff", "back-off 20s"))]).expect("crash");
        assert_eq!(a.reason, "CrashLoopBackOff");
        assert_eq!(a, b);
        assert!(a.message.contains("last exit code 2, Error"), "{}", a.message);
    }

    #[test]
    fn a_root_image_under_run_as_non_root_carries_the_kubelet_reason_and_message() {
        let message = "container has runAsNonRoot and image will run as root (pod: \"f-1_ns(uid)\", container: function)";
        let pods = [pod("p", waiting("CreateContainerConfigError", message))];
        let f = startup_failure(None, &pods).expect("failure");
        assert_eq!(f.reason, "CreateContainerConfigError");
        assert!(
            f.message.starts_with(
                "pod p: container function: container has runAsNonRoot and image will run as root"
            ),
            "{}",
            f.message
        );
    }

    #[test]
    fn oom_kills_take_precedence_over_the_crash_loop() {
        let status = json!({ "containerStatuses": [{
            "name": "function", "image": "x", "imageID": "", "ready": false, "restartCount": 4,
            "state": { "waiting": { "reason": "CrashLoopBackOff", "message": "back-off 40s" } },
            "lastState": { "terminated": { "exitCode": 137, "reason": "OOMKilled" } }
        }]});
        let f = startup_failure(None, &[pod("p", status)]).expect("failure");
        assert_eq!(f.reason, "OOMKilled");
        assert!(zeroscale_crds::function::STARTUP_FAILURE_REASONS.contains(&f.reason.as_str()));
    }

    #[test]
    fn starting_containers_are_not_failures() {
        assert_eq!(
            startup_failure(None, &[pod("p", waiting("ContainerCreating", ""))]),
            None
        );
        assert_eq!(startup_failure(None, &[pod("p", json!({}))]), None);
    }

    #[test]
    fn unschedulable_pods_are_failures() {
        let status = json!({ "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes are available"
        }]});
        let f = startup_failure(None, &[pod("p", status)]).expect("failure");
        assert_eq!(
            (f.reason.as_str(), f.message.as_str()),
            ("Unschedulable", "pod p: 0/1 nodes are available")
        );
    }

    #[test]
    fn deployment_deadline_is_a_failure() {
        let d = Deployment {
            status: Some(DeploymentStatus {
                conditions: Some(vec![DeploymentCondition {
                    type_: "Progressing".into(),
                    status: "False".into(),
                    reason: Some("ProgressDeadlineExceeded".into()),
                    message: Some("ReplicaSet \"f-1\" has timed out progressing.".into()),
                    ..DeploymentCondition::default()
                }]),
                ..DeploymentStatus::default()
            }),
            ..Deployment::default()
        };
        assert_eq!(
            startup_failure(Some(&d), &[]).map(|f| f.reason),
            Some("ProgressDeadlineExceeded".into())
        );
    }
}
