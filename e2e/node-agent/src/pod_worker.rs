//! One pod from acceptance to deletion: sandbox, service-account files, containers, status, and on
//! deletion SIGTERM → grace period → SIGKILL, then the sandbox goes and the pod is deleted for good.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, Preconditions};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::agent::Agent;
use crate::container::run_container;
use crate::netns::{self, sandbox_names};
use crate::pod_ctx::{PodCtx, status_writer};
use crate::pod_state::{ContainerRuntime, PodRuntime};
use crate::sa_token::{token_volume, write_credentials};

/// Grace period used when the pod object vanished without a graceful deletion (force delete).
const FORCED_GRACE: Duration = Duration::from_secs(2);

/// The grace period of a pod being deleted, or `None` if it is not.
fn deletion_grace(pod: &Pod) -> Option<Duration> {
    pod.metadata.deletion_timestamp.as_ref()?;
    let secs = pod
        .metadata
        .deletion_grace_period_seconds
        .or_else(|| pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds))
        .unwrap_or(30);
    Some(Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
}

/// Waits for the pod to be deleted (its grace) or to vanish (`FORCED_GRACE`, and `true`).
async fn wait_deleted(rx: &mut watch::Receiver<Pod>, gone: &CancellationToken) -> (Duration, bool) {
    loop {
        if let Some(grace) = deletion_grace(&rx.borrow_and_update()) {
            return (grace, false);
        }
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return (FORCED_GRACE, true) },
            _ = gone.cancelled() => return (FORCED_GRACE, true),
        }
    }
}

/// Deletes the pod object for good (grace 0), only if it is still the same pod.
async fn delete_for_good(client: &kube::Client, pod: &Pod) {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: pod.metadata.uid.clone(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => tracing::info!(pod = %name, namespace = %ns, "deleted"),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
        Err(e) => tracing::warn!(pod = %name, "final delete failed: {e}"),
    }
}

/// The runtime state a pod starts with; restart counts continue from the existing status (after an agent
/// restart the old processes are gone, which counts as one more restart).
fn initial_runtime(pod: &Pod, agent: &Agent) -> PodRuntime {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .unwrap_or_default();
    let containers = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| {
            let restarts = statuses
                .iter()
                .find(|s| s.name == c.name)
                .map(|s| {
                    let ran = s
                        .state
                        .as_ref()
                        .is_some_and(|st| st.running.is_some() || st.terminated.is_some());
                    s.restart_count + i32::from(ran)
                })
                .unwrap_or(0);
            ContainerRuntime::new(&c.name, c.image.as_deref().unwrap_or_default(), restarts)
        })
        .collect();
    let start = pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0)
        .unwrap_or_else(Timestamp::now);
    let mut runtime = PodRuntime {
        containers,
        host_ip: agent.args.bridge_ip.to_string(),
        start_time: Some(start),
        restart_policy: pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.clone())
            .unwrap_or_else(|| "Always".into()),
        ..Default::default()
    };
    runtime.sandbox_ready = false;
    runtime
}

/// Runs one pod. `rx` carries the pod's latest version; `gone` fires when the object vanished;
/// `existing_ip` is the pod's IP from its status, already reserved (after an agent restart).
pub async fn run_pod(
    agent: Arc<Agent>,
    mut rx: watch::Receiver<Pod>,
    gone: CancellationToken,
    existing_ip: Option<std::net::Ipv4Addr>,
) {
    let pod = rx.borrow_and_update().clone();
    let (ns, name, uid) = (
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.name.clone().unwrap_or_default(),
        pod.metadata.uid.clone().unwrap_or_default(),
    );
    let terminal = matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    );
    if deletion_grace(&pod).is_some() || terminal {
        // Nothing of it runs here (deleted before it started, or finished before an agent restart).
        if let Some(ip) = existing_ip {
            agent.ipam().release(ip);
        }
        let (_, vanished) = wait_deleted(&mut rx, &gone).await;
        if !vanished {
            delete_for_good(&agent.client, &pod).await;
        }
        return;
    }
    tracing::info!(pod = %name, namespace = %ns, "accepted");

    let (netns_name, veth) = sandbox_names(&agent.args.netns_prefix, &uid);
    let attach = netns::Attach {
        bridge: &agent.args.bridge,
        gateway: agent.args.bridge_ip,
        service_cidr: &agent.args.service_cidr,
    };
    let sandbox = loop {
        let allocated = match existing_ip {
            Some(ip) => Ok(ip),
            None => agent.ipam().allocate(),
        };
        let result = match allocated {
            Ok(ip) => {
                let len = agent.ipam().prefix_len();
                let created = netns::create(&netns_name, &veth, attach, ip, len).await;
                if created.is_err() && existing_ip.is_none() {
                    agent.ipam().release(ip);
                }
                created.map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(sandbox) => break sandbox,
            Err(e) => {
                tracing::warn!(pod = %name, "sandbox setup failed, retrying: {e}");
                let give_up = tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => false,
                    _ = gone.cancelled() => true,
                    changed = rx.changed() => changed.is_err() || deletion_grace(&rx.borrow_and_update()).is_some(),
                };
                if give_up {
                    // Deleted before it ever ran: nothing to stop.
                    if let Some(ip) = existing_ip {
                        agent.ipam().release(ip);
                    }
                    let latest = rx.borrow().clone();
                    if !gone.is_cancelled() && deletion_grace(&latest).is_some() {
                        delete_for_good(&agent.client, &latest).await;
                    }
                    return;
                }
            }
        }
    };

    let pod_dir = agent.args.pods_dir().join(format!("{ns}_{name}"));
    let _ = std::fs::remove_dir_all(&pod_dir);
    let _ = std::fs::create_dir_all(&pod_dir);
    let _ = std::fs::write(pod_dir.join("uid"), &uid);
    let _ = std::fs::write(pod_dir.join("ip"), sandbox.ip.to_string());
    let background = CancellationToken::new();
    let sa_dir = match token_volume(&pod) {
        Some(volume) => {
            let dir = pod_dir.join("serviceaccount");
            // The Node authorizer learns about a new pod a moment after it is bound: retry briefly.
            let mut refresh_in = None;
            for _ in 0..50 {
                match write_credentials(&agent.client, &pod, &volume, &agent.ca_pem, &dir).await {
                    Ok(d) => {
                        refresh_in = Some(d);
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(pod = %name, "service-account token: {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
            if let Some(mut every) = refresh_in {
                let (client, pod, ca, dir, stop) = (
                    agent.client.clone(),
                    pod.clone(),
                    agent.ca_pem.clone(),
                    dir.clone(),
                    background.clone(),
                );
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            _ = tokio::time::sleep(every) => {}
                            _ = stop.cancelled() => return,
                        }
                        match write_credentials(&client, &pod, &volume, &ca, &dir).await {
                            Ok(d) => every = d,
                            Err(e) => {
                                tracing::warn!("token refresh: {e}");
                                every = Duration::from_secs(10);
                            }
                        }
                    }
                });
            }
            Some(dir)
        }
        None => None,
    };

    let mut runtime = initial_runtime(&pod, &agent);
    runtime.pod_ip = Some(sandbox.ip.to_string());
    runtime.sandbox_ready = true;
    let ctx = Arc::new(PodCtx {
        agent: agent.clone(),
        pod: pod.clone(),
        namespace: ns.clone(),
        name: name.clone(),
        sandbox: sandbox.clone(),
        pod_dir: pod_dir.clone(),
        sa_dir,
        state: Mutex::new(runtime),
        changed: Notify::new(),
    });
    ctx.changed.notify_one();
    tokio::spawn(status_writer(ctx.clone(), background.clone()));

    let (stop_tx, stop_rx) = watch::channel(None);
    let mut containers = JoinSet::new();
    let count = ctx
        .state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .containers
        .len();
    for idx in 0..count {
        containers.spawn(run_container(ctx.clone(), idx, stop_rx.clone()));
    }
    // Containers run until the pod is deleted; when all have finished for good (restartPolicy Never or
    // OnFailure) the pod is terminal and just waits for its deletion.
    let (grace, vanished) = wait_deleted(&mut rx, &gone).await;
    tracing::info!(pod = %name, ?grace, "terminating");
    let _ = stop_tx.send(Some(grace));
    while containers.join_next().await.is_some() {}
    background.cancel();
    if !vanished {
        let _ = ctx.write_status().await;
    }
    netns::delete(&sandbox.netns, &sandbox.veth).await;
    agent.ipam().release(sandbox.ip);
    let _ = std::fs::remove_dir_all(&pod_dir);
    if !vanished {
        let latest = rx.borrow().clone();
        delete_for_good(&agent.client, &latest).await;
    }
}
