//! Containers killed for exceeding their memory limit (pure).
//!
//! The kubelet reports an OOM kill as `terminated.reason: OOMKilled`, first in the container's `state`,
//! then, once it restarts the container, in its `lastState`; a container that keeps being killed waits in
//! `CrashLoopBackOff`. Both turn into the reason `OOMKilled`, so users and waiting requests learn why.

use k8s_openapi::api::core::v1::{ContainerStateTerminated, ContainerStatus, Pod};
use zeroscale_crds::function::REASON_OOM_KILLED;

use super::Failure;

fn is_oom(terminated: &ContainerStateTerminated) -> bool {
    terminated.reason.as_deref() == Some(REASON_OOM_KILLED)
}

/// The memory limit of the pod's container `name`, as written (`64Mi`), if it has one.
fn memory_limit(pod: &Pod, name: &str) -> Option<String> {
    let container = pod.spec.as_ref()?.containers.iter().find(|c| c.name == name)?;
    let limit = container.resources.as_ref()?.limits.as_ref()?.get("memory")?;
    Some(limit.0.clone())
}

fn limit_phrase(pod: &Pod, container: &str) -> String {
    match memory_limit(pod, container) {
        Some(limit) => format!("its memory limit of {limit}"),
        None => "its memory limit".into(),
    }
}

/// The startup failure of a container that is being OOMKilled right now or keeps being OOMKilled
/// (`CrashLoopBackOff` after an OOM kill). The message names no back-off step, so it does not churn.
pub fn startup_failure(pod: &Pod, pod_name: &str, status: &ContainerStatus) -> Option<Failure> {
    let state = status.state.as_ref()?;
    let last = status.last_state.as_ref().and_then(|s| s.terminated.as_ref());
    let message = if let Some(t) = state.terminated.as_ref().filter(|t| is_oom(t)) {
        format!(
            "pod {pod_name}: container {} was OOMKilled: it exceeded {} (exit code {})",
            status.name,
            limit_phrase(pod, &status.name),
            t.exit_code
        )
    } else {
        let waiting = state.waiting.as_ref()?;
        if waiting.reason.as_deref() != Some("CrashLoopBackOff") || !last.is_some_and(is_oom) {
            return None;
        }
        format!(
            "pod {pod_name}: container {} keeps being OOMKilled: it exceeds {} (CrashLoopBackOff)",
            status.name,
            limit_phrase(pod, &status.name)
        )
    };
    Some(Failure {
        reason: REASON_OOM_KILLED.into(),
        message,
    })
}

/// The last OOM kill among the current pods' containers, for `ContainerHealthy`: the first pod by name
/// that is not being deleted and has a container whose current or last termination was an OOM kill.
/// The message carries the kill's time, so each new kill is a new message (and a new Event).
pub fn last_oom_kill(pods: &[Pod]) -> Option<Failure> {
    let mut sorted: Vec<&Pod> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    sorted.into_iter().find_map(|pod| {
        let name = pod.metadata.name.as_deref().unwrap_or("?");
        let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
        statuses.iter().find_map(|status| {
            let current = status.state.as_ref().and_then(|s| s.terminated.as_ref());
            let last = status.last_state.as_ref().and_then(|s| s.terminated.as_ref());
            let kill = current.filter(|t| is_oom(t)).or(last.filter(|t| is_oom(t)))?;
            let when = kill
                .finished_at
                .as_ref()
                .map(|t| format!(" at {}", t.0))
                .unwrap_or_default();
            Some(Failure {
                reason: REASON_OOM_KILLED.into(),
                message: format!(
                    "pod {name}: container {} was OOMKilled{when}: it exceeded {} (exit code {})",
                    status.name,
                    limit_phrase(pod, &status.name),
                    kill.exit_code
                ),
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn pod(name: &str, state: Value, last: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": { "name": name },
            "spec": { "containers": [{
                "name": "function", "image": "echo",
                "resources": { "limits": { "memory": "64Mi" } }
            }]},
            "status": { "containerStatuses": [{
                "name": "function", "image": "echo", "imageID": "", "ready": false, "restartCount": 1,
                "state": state, "lastState": last
            }]}
        }))
        .expect("pod")
    }

    fn oom(finished: &str) -> Value {
        json!({ "terminated": { "exitCode": 137, "reason": "OOMKilled", "finishedAt": finished } })
    }

    fn first(p: &Pod) -> &ContainerStatus {
        &p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .expect("statuses")[0]
    }

    #[test]
    fn a_container_killed_now_is_oom_killed_with_its_limit() {
        let p = pod("p", oom("2026-01-01T00:00:00Z"), json!({}));
        let f = startup_failure(&p, "p", first(&p)).expect("failure");
        assert_eq!(f.reason, "OOMKilled");
        assert_eq!(
            f.message,
            "pod p: container function was OOMKilled: it exceeded its memory limit of 64Mi (exit code 137)"
        );
    }

    #[test]
    fn a_crash_loop_after_oom_kills_is_oom_killed_with_a_stable_message() {
        let back_off = |m: &str| json!({ "waiting": { "reason": "CrashLoopBackOff", "message": m } });
        let a = pod("p", back_off("back-off 10s"), oom("2026-01-01T00:00:00Z"));
        let b = pod("p", back_off("back-off 20s"), oom("2026-01-01T00:00:30Z"));
        let fa = startup_failure(&a, "p", first(&a)).expect("failure");
        assert_eq!(fa.reason, "OOMKilled");
        assert!(fa.message.contains("keeps being OOMKilled"), "{}", fa.message);
        assert!(fa.message.contains("CrashLoopBackOff"), "{}", fa.message);
        assert_eq!(Some(fa), startup_failure(&b, "p", first(&b)));
    }

    #[test]
    fn other_exits_and_running_containers_are_not_oom_failures() {
        let error = json!({ "terminated": { "exitCode": 1, "reason": "Error" } });
        let crash = pod("p", json!({ "waiting": { "reason": "CrashLoopBackOff" } }), error);
        assert_eq!(startup_failure(&crash, "p", first(&crash)), None);
        let recovered = pod("p", json!({ "running": {} }), oom("2026-01-01T00:00:00Z"));
        assert_eq!(startup_failure(&recovered, "p", first(&recovered)), None);
    }

    #[test]
    fn the_last_kill_is_reported_even_after_a_restart() {
        let recovered = pod("b", json!({ "running": {} }), oom("2026-01-01T00:00:00Z"));
        let healthy = pod("a", json!({ "running": {} }), json!({}));
        let f = last_oom_kill(&[healthy.clone(), recovered]).expect("kill");
        assert_eq!(
            f.message,
            "pod b: container function was OOMKilled at 2026-01-01T00:00:00Z: it exceeded its memory limit of 64Mi (exit code 137)"
        );
        assert_eq!(last_oom_kill(&[healthy]), None);
        let mut going = pod("c", oom("2026-01-01T00:00:00Z"), json!({}));
        going.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            jiff::Timestamp::UNIX_EPOCH,
        ));
        assert_eq!(
            last_oom_kill(&[going]),
            None,
            "a pod being deleted is not current"
        );
    }
}
