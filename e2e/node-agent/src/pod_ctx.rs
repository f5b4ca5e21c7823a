//! State shared by a pod's worker, its container workers and its status writer.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::Api;
use kube::api::{Patch, PatchParams};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::agent::Agent;
use crate::env::EnvSources;
use crate::netns::Sandbox;
use crate::pod_state::{ContainerPhase, PodRuntime};

/// One pod as it runs.
pub struct PodCtx {
    /// The agent.
    pub agent: Arc<Agent>,
    /// The pod as first seen (containers, probes and env come from here).
    pub pod: Pod,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The pod's network.
    pub sandbox: Sandbox,
    /// `.zeroscale/pods/<ns>_<name>`: pid files, working directory, service-account files.
    pub pod_dir: PathBuf,
    /// The service-account directory mounted into the pod, if it gets a token.
    pub sa_dir: Option<PathBuf>,
    /// What the status is computed from.
    pub state: Mutex<PodRuntime>,
    /// Wakes the status writer.
    pub changed: Notify,
}

impl PodCtx {
    /// Changes the runtime state and schedules a status write.
    pub fn update(&self, f: impl FnOnce(&mut PodRuntime)) {
        {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut state);
        }
        self.changed.notify_one();
    }

    /// Sets container `idx` waiting with `reason`.
    pub fn set_waiting(&self, idx: usize, reason: &str, message: String) {
        self.update(|s| {
            if let Some(c) = s.containers.get_mut(idx) {
                c.phase = ContainerPhase::Waiting {
                    reason: reason.to_string(),
                    message: Some(message),
                };
                c.ready = false;
                c.pid = None;
            }
        });
    }

    /// `<pod_dir>/<container>.pid`.
    pub fn pid_file(&self, container: &str) -> PathBuf {
        self.pod_dir.join(format!("{container}.pid"))
    }

    /// `<logs>/<ns>_<pod>_<container>.log`.
    pub fn log_file(&self, container: &str) -> PathBuf {
        self.agent
            .args
            .logs_dir()
            .join(format!("{}_{}_{container}.log", self.namespace, self.name))
    }

    /// Patches the pod status from the runtime state (strategic merge, so the scheduler's `PodScheduled`
    /// condition stays; the uid makes it a precondition).
    pub async fn write_status(&self) -> Result<(), kube::Error> {
        let status = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.render(Timestamp::now())
        };
        let patch = serde_json::json!({"metadata": {"uid": self.pod.metadata.uid}, "status": status});
        let api: Api<Pod> = Api::namespaced(self.agent.client.clone(), &self.namespace);
        api.patch_status(&self.name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await?;
        Ok(())
    }

    /// The ConfigMaps and Secrets the container references (missing ones are left out).
    pub async fn env_sources(&self, idx: usize) -> Result<EnvSources, kube::Error> {
        let mut sources = EnvSources::default();
        let Some(container) = self.pod.spec.as_ref().and_then(|s| s.containers.get(idx)) else {
            return Ok(sources);
        };
        let (cms, secrets) = crate::env::referenced_objects(container);
        let cm_api: Api<ConfigMap> = Api::namespaced(self.agent.client.clone(), &self.namespace);
        for name in cms {
            if let Some(cm) = cm_api.get_opt(&name).await? {
                sources.config_maps.insert(name, cm.data.unwrap_or_default());
            }
        }
        let secret_api: Api<Secret> = Api::namespaced(self.agent.client.clone(), &self.namespace);
        for name in secrets {
            if let Some(secret) = secret_api.get_opt(&name).await? {
                let data: BTreeMap<String, String> = secret
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                    .collect();
                sources.secrets.insert(name, data);
            }
        }
        Ok(sources)
    }
}

/// Writes the status whenever it changes until `cancel`; retries failed writes, stops when the pod is
/// gone.
pub async fn status_writer(ctx: Arc<PodCtx>, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = ctx.changed.notified() => {}
            _ = cancel.cancelled() => return,
        }
        loop {
            match ctx.write_status().await {
                Ok(()) => break,
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => return,
                Err(kube::Error::Api(e)) if e.code == 422 => {
                    // Invalid: retrying the same status cannot help; the next change writes anew.
                    tracing::error!(pod = %ctx.name, "status rejected: {}", e.message);
                    break;
                }
                Err(e) => {
                    tracing::warn!(pod = %ctx.name, "status update failed: {e}");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                        _ = cancel.cancelled() => return,
                    }
                }
            }
        }
    }
}
