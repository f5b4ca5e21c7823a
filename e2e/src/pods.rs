//! Pod-status helpers: waiting for a pod, readiness, IP, container waiting reasons and restarts.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;

use crate::wait_for;

/// Waits up to 120 s (a first pull of the image included) until pod `name` exists and satisfies
/// `check`; returns it. Panics naming `what`.
pub async fn wait_pod(pods: &Api<Pod>, name: &str, what: &str, check: impl Fn(&Pod) -> bool) -> Pod {
    wait_for(
        Duration::from_secs(120),
        &format!("pod {name}: {what}"),
        || async { pods.get_opt(name).await.ok().flatten().filter(|p| check(p)) },
    )
    .await
}

/// Whether the pod's `Ready` condition is `True`.
pub fn pod_is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The pod's IP, once it has one.
pub fn pod_ip(pod: &Pod) -> Option<String> {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .filter(|ip| !ip.is_empty())
}

/// The waiting reason of the named container (e.g. `CrashLoopBackOff`, `ImagePullBackOff`).
pub fn waiting_reason(pod: &Pod, container: &str) -> Option<String> {
    container_status(pod, container)
        .and_then(|cs| cs.state.as_ref())
        .and_then(|st| st.waiting.as_ref())
        .and_then(|w| w.reason.clone())
}

/// The restart count of the named container (0 when it has no status yet).
pub fn restart_count(pod: &Pod, container: &str) -> i32 {
    container_status(pod, container)
        .map(|cs| cs.restart_count)
        .unwrap_or(0)
}

/// Whether the named container's previous run is reported as terminated (`lastState.terminated`).
pub fn last_terminated(pod: &Pod, container: &str) -> bool {
    container_status(pod, container)
        .and_then(|cs| cs.last_state.as_ref())
        .is_some_and(|s| s.terminated.is_some())
}

fn container_status<'a>(
    pod: &'a Pod,
    container: &str,
) -> Option<&'a k8s_openapi::api::core::v1::ContainerStatus> {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|v| v.iter().find(|cs| cs.name == container))
}
