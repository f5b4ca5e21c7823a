//! Reading what the node agent reports about the processes it runs, and pod-status helpers.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;

use crate::paths::pods_dir;
use crate::wait_for;

/// Waits up to 60 s until pod `name` exists and satisfies `check`; returns it. Panics naming `what`.
pub async fn wait_pod(pods: &Api<Pod>, name: &str, what: &str, check: impl Fn(&Pod) -> bool) -> Pod {
    wait_for(
        Duration::from_secs(60),
        &format!("pod {name}: {what}"),
        || async { pods.get_opt(name).await.ok().flatten().filter(|p| check(p)) },
    )
    .await
}

/// One container process the node agent runs, read from its pid file
/// `.zeroscale/pods/<namespace>_<pod>/<container>.pid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerProcess {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// The container's name.
    pub container: String,
    /// The process id.
    pub pid: u32,
}

/// Whether a process with this id exists (and is not a zombie).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .map(|(_, rest)| !rest.starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// The live container processes of pods in `namespace`, according to the node agent's pid files.
pub fn container_processes(namespace: &str) -> Vec<ContainerProcess> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(pods_dir()) else {
        return found;
    };
    for entry in entries.flatten() {
        let dir_name = entry.file_name().to_string_lossy().into_owned();
        let Some((ns, pod)) = dir_name.split_once('_') else {
            continue;
        };
        if ns != namespace {
            continue;
        }
        found.extend(read_pid_files(&entry.path(), ns, pod));
    }
    found.sort_by(|a, b| (&a.pod, &a.container).cmp(&(&b.pod, &b.container)));
    found
}

fn read_pid_files(dir: &Path, ns: &str, pod: &str) -> Vec<ContainerProcess> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(container) = file.strip_suffix(".pid") else {
            continue;
        };
        let pid = std::fs::read_to_string(entry.path())
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        if let Some(pid) = pid.filter(|pid| process_alive(*pid)) {
            found.push(ContainerProcess {
                namespace: ns.to_string(),
                pod: pod.to_string(),
                container: container.to_string(),
                pid,
            });
        }
    }
    found
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

fn container_status<'a>(
    pod: &'a Pod,
    container: &str,
) -> Option<&'a k8s_openapi::api::core::v1::ContainerStatus> {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|v| v.iter().find(|cs| cs.name == container))
}
