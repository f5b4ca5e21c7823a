//! The crashes: `kill -9` of a container's process on the node (the host pid from crictl), so the
//! kubelet restarts the container in the same pod. That is a crash of the process, not a deletion of
//! the pod: NATS's emptyDir store survives it, as a PersistentVolume would survive a pod deletion.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use zeroscale_e2e::{
    client, container_pid, installed::SYSTEM_NAMESPACE, pod_is_ready, restart_count, running_containers,
    wait_for,
};

/// How long a killed container may take to run and be ready again.
const RESTART_TIMEOUT: Duration = Duration::from_secs(120);

/// SIGKILLs the process of container `container` of pod `pod` in `zeroscale-system`; returns its
/// restart count before the kill.
pub async fn kill_container(pod: &str, container: &str) -> i32 {
    let pods: Api<Pod> = Api::namespaced(client().await, SYSTEM_NAMESPACE);
    let before = match pods.get(pod).await {
        Ok(p) => restart_count(&p, container),
        Err(e) => panic!("cannot read pod {pod}: {e}"),
    };
    let running = running_containers(SYSTEM_NAMESPACE).await;
    let Some(found) = running.iter().find(|c| c.pod == pod && c.name == container) else {
        panic!("no running container {container} in pod {pod} (crictl: {running:?})");
    };
    let pid = container_pid(&found.id)
        .await
        .unwrap_or_else(|| panic!("no pid for container {container} of {pod}"));
    let killed = tokio::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .await
        .expect("kill runs");
    assert!(killed.success(), "kill -9 {pid} ({container} of {pod})");
    println!("event stores: killed {container} of {pod} (pid {pid})");
    before
}

/// Waits until container `container` of `pod` was restarted after `before` restarts and the pod is
/// ready again.
pub async fn wait_restarted(pod: &str, container: &str, before: i32) {
    let pods: Api<Pod> = Api::namespaced(client().await, SYSTEM_NAMESPACE);
    let what = format!("{container} of {pod} restarted and ready");
    wait_for(RESTART_TIMEOUT, &what, || async {
        let p = pods.get_opt(pod).await.ok().flatten()?;
        (restart_count(&p, container) > before && pod_is_ready(&p)).then_some(())
    })
    .await;
}

/// The ready activator pod holding the most accepted events in memory (the largest
/// `zeroscale_broker_buffered_bytes`, read through the API server's pod proxy; the first by name on
/// a tie, as with JetStream, where no replica holds any) and that figure.
pub async fn fullest_activator() -> (String, f64) {
    let mut pods = zeroscale_e2e::installed::ready_component_pods("activator").await;
    pods.sort();
    let mut fullest: Option<(String, f64)> = None;
    for pod in pods {
        let text = zeroscale_e2e::installed::pod_metrics(&pod)
            .await
            .unwrap_or_default();
        let bytes = zeroscale_e2e::metric_value(&text, "zeroscale_broker_buffered_bytes").unwrap_or(0.0);
        if fullest.as_ref().is_none_or(|(_, most)| bytes > *most) {
            fullest = Some((pod, bytes));
        }
    }
    fullest.expect("a ready activator pod")
}
