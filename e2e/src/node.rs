//! What the real node runs, seen through the container runtime: `crictl` against containerd's CRI
//! socket (the kubelet's own view of containers), and container output through `kubectl logs`.
//!
//! Tests prefer the API (pod status, `restartCount`, EndpointSlices); crictl is for what only the
//! node knows: which containers exist, from which image, and the host pid of a container's process.

use serde_json::Value;
use tokio::process::Command;

use crate::kubectl::try_kubectl;
use crate::paths::{kube_bin_dir, state_dir};

/// Environment variable that overrides the containerd socket crictl talks to.
pub const CONTAINERD_SOCKET_ENV: &str = "ZEROSCALE_CONTAINERD_SOCKET";

/// containerd's CRI socket: `$ZEROSCALE_CONTAINERD_SOCKET`, else where `make cluster-up` starts it
/// (`.zeroscale/run/containerd.sock`, `ZS_CONTAINERD_SOCK` in e2e/cluster/lib.sh).
pub fn containerd_socket() -> String {
    std::env::var(CONTAINERD_SOCKET_ENV)
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| state_dir().join("run/containerd.sock").display().to_string())
}

/// Errors from running crictl.
#[derive(Debug, thiserror::Error)]
pub enum CrictlError {
    /// crictl could not be started.
    #[error("cannot run {path} (built by e2e/cluster/build.sh into .zeroscale/bin): {source}")]
    Spawn {
        /// The crictl path.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// crictl exited non-zero.
    #[error("`crictl {args}` failed ({status}): {stderr}")]
    Failed {
        /// The arguments.
        args: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Its standard error.
        stderr: String,
    },
    /// crictl printed something that is not the JSON asked for.
    #[error("`crictl {args}` printed no JSON: {source}")]
    Json {
        /// The arguments.
        args: String,
        /// The parse error.
        source: serde_json::Error,
    },
}

/// Runs the pinned crictl against [`containerd_socket`] and returns its standard output.
pub async fn try_crictl(args: &[&str]) -> Result<String, CrictlError> {
    let path = kube_bin_dir().join("crictl");
    let endpoint = format!("unix://{}", containerd_socket());
    let out = Command::new(&path)
        .args([
            "--runtime-endpoint",
            &endpoint,
            "--image-endpoint",
            &endpoint,
            "--timeout",
            "10s",
        ])
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| CrictlError::Spawn {
            path: path.display().to_string(),
            source,
        })?;
    if !out.status.success() {
        return Err(CrictlError::Failed {
            args: args.join(" "),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Like [`try_crictl`], parsing the output as JSON; panics with the error.
async fn crictl_json(args: &[&str]) -> Value {
    let parsed = try_crictl(args).await.and_then(|out| {
        serde_json::from_str(&out).map_err(|source| CrictlError::Json {
            args: args.join(" "),
            source,
        })
    });
    match parsed {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

/// One container as the runtime lists it (`crictl ps -o json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriContainer {
    /// The container id.
    pub id: String,
    /// The container's name in its pod.
    pub name: String,
    /// The pod's name.
    pub pod: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The image reference the pod asked for (e.g. `localhost:5000/zeroscale/echo:0.1.0`), else the
    /// image the runtime reports.
    pub image: String,
    /// The runtime's state, e.g. `CONTAINER_RUNNING`, `CONTAINER_EXITED`.
    pub state: String,
}

impl CriContainer {
    /// Whether the container is running.
    pub fn running(&self) -> bool {
        self.state == "CONTAINER_RUNNING"
    }
}

/// Parses `crictl ps -o json` output.
pub fn parse_containers(doc: &Value) -> Vec<CriContainer> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let empty = Vec::new();
    doc["containers"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|c| {
            let labels = &c["labels"];
            // The kubelet passes the resolved image id and, beside it, what the pod spec said.
            let image = [&c["image"]["userSpecifiedImage"], &c["image"]["image"]]
                .into_iter()
                .map(text)
                .find(|s| !s.is_empty())
                .unwrap_or_default();
            CriContainer {
                id: text(&c["id"]),
                name: text(&c["metadata"]["name"]),
                pod: text(&labels["io.kubernetes.pod.name"]),
                namespace: text(&labels["io.kubernetes.pod.namespace"]),
                image,
                state: text(&c["state"]),
            }
        })
        .collect()
}

/// Every container of pods in `namespace` the runtime knows of (running or exited).
pub async fn containers(namespace: &str) -> Vec<CriContainer> {
    let label = format!("io.kubernetes.pod.namespace={namespace}");
    parse_containers(&crictl_json(&["ps", "-a", "--label", &label, "-o", "json"]).await)
}

/// The running containers of pods in `namespace`.
pub async fn running_containers(namespace: &str) -> Vec<CriContainer> {
    let mut found: Vec<CriContainer> = containers(namespace)
        .await
        .into_iter()
        .filter(CriContainer::running)
        .collect();
    found.sort_by(|a, b| (&a.pod, &a.name).cmp(&(&b.pod, &b.name)));
    found
}

/// The host pid of a running container's first process (`crictl inspect`, `info.pid`).
pub async fn container_pid(id: &str) -> Option<u32> {
    let doc = crictl_json(&["inspect", "-o", "json", id]).await;
    doc["info"]["pid"]
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
        .filter(|p| *p > 0)
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

/// A container's output as `kubectl logs` serves it (through the kubelet); empty when there is none
/// yet. `previous` asks for the run before the current one.
pub async fn pod_logs(namespace: &str, pod: &str, container: &str, previous: bool) -> String {
    let mut args = vec!["logs", pod, "-c", container, "-n", namespace];
    if previous {
        args.push("--previous");
    }
    try_kubectl(&args, None).await.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_crictl_ps_json() {
        let doc = serde_json::json!({"containers": [{
            "id": "abc",
            "metadata": {"name": "echo", "attempt": 0},
            "image": {"image": "sha256:1234", "userSpecifiedImage": "localhost:5000/zeroscale/echo:0.1.0"},
            "state": "CONTAINER_RUNNING",
            "labels": {"io.kubernetes.pod.name": "echo-1", "io.kubernetes.pod.namespace": "ns"},
        }, {
            "id": "def",
            "metadata": {"name": "main"},
            "image": {"image": "localhost:5000/zeroscale/busybox:0.1.0"},
            "state": "CONTAINER_EXITED",
            "labels": {"io.kubernetes.pod.name": "b", "io.kubernetes.pod.namespace": "ns"},
        }]});
        let found = parse_containers(&doc);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].image, "localhost:5000/zeroscale/echo:0.1.0");
        assert_eq!(
            (found[0].pod.as_str(), found[0].namespace.as_str()),
            ("echo-1", "ns")
        );
        assert!(found[0].running());
        assert_eq!(found[1].image, "localhost:5000/zeroscale/busybox:0.1.0");
        assert!(!found[1].running());
        assert!(parse_containers(&serde_json::json!({})).is_empty());
    }

    #[test]
    fn our_own_process_is_alive() {
        assert!(process_alive(std::process::id()));
    }
}
