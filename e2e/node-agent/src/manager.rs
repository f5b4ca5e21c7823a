//! Watches the Pods bound to this node and keeps one worker per pod; cleans up what a previous run of
//! the agent left behind.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::agent::Agent;
use crate::netns;
use crate::pod_worker::run_pod;

struct Worker {
    pod: watch::Sender<Pod>,
    gone: CancellationToken,
    task: JoinHandle<()>,
}

/// Removes everything a previous agent left: processes in our pod namespaces, the namespaces, stray
/// veths and pod directories. Pods that still exist are then started afresh by the watch (their restart
/// counts go up by one), which is what a kubelet does after its containers vanished.
pub async fn clean_leftovers(agent: &Agent) {
    for ns in netns::list(&agent.args.netns_prefix).await {
        let (_, veth) = (
            "",
            format!("zsv{}", ns.trim_start_matches(&agent.args.netns_prefix)),
        );
        tracing::info!(netns = %ns, "removing a pod sandbox left by a previous run");
        netns::delete(&ns, &veth).await;
    }
    for veth in netns::stray_veths().await {
        netns::delete("", &veth).await;
    }
    let _ = std::fs::remove_dir_all(agent.args.pods_dir());
    let _ = std::fs::create_dir_all(agent.args.pods_dir());
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

fn upsert(agent: &Arc<Agent>, workers: &mut HashMap<String, Worker>, pod: Pod) {
    let id = uid(&pod);
    if let Some(w) = workers.get(&id)
        && !w.task.is_finished()
    {
        w.pod.send_replace(pod);
        return;
    }
    // A pod that already has an IP keeps it (the API rejects a changed pod IP); reserving it here, before
    // any worker allocates, keeps it from being handed to another pod.
    let will_run = pod.metadata.deletion_timestamp.is_none()
        && !matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        );
    let existing_ip = pod
        .status
        .as_ref()
        .filter(|_| will_run)
        .and_then(|s| s.pod_ip.as_deref())
        .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
        .filter(|ip| {
            let reserved = agent.ipam().reserve(*ip);
            if !reserved {
                tracing::error!(pod = ?pod.metadata.name, %ip, "pod IP is taken or outside the pod CIDR");
            }
            reserved
        });
    let (tx, rx) = watch::channel(pod);
    let gone = CancellationToken::new();
    let task = tokio::spawn(run_pod(agent.clone(), rx, gone.clone(), existing_ip));
    workers.insert(id, Worker { pod: tx, gone, task });
}

fn vanish(workers: &mut HashMap<String, Worker>, id: &str) {
    if let Some(w) = workers.remove(id) {
        w.gone.cancel();
    }
}

/// Watches the node's pods forever.
pub async fn run(agent: Arc<Agent>) {
    let api: Api<Pod> = Api::all(agent.client.clone());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={}", agent.args.node_name));
    let mut events = watcher::watcher(api, config).default_backoff().boxed();
    let mut workers: HashMap<String, Worker> = HashMap::new();
    // During a (re)list, pods are collected first and started at InitDone, so every existing pod IP is
    // reserved before a new pod can be given an address.
    let mut listed: Option<Vec<Pod>> = None;
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => listed = Some(Vec::new()),
            Ok(Event::InitApply(pod)) => listed.get_or_insert_with(Vec::new).push(pod),
            Ok(Event::InitDone) => {
                let pods = listed.take().unwrap_or_default();
                let ids: HashSet<String> = pods.iter().map(uid).collect();
                // Pods deleted while the watch was down.
                let stale: Vec<String> = workers.keys().filter(|id| !ids.contains(*id)).cloned().collect();
                for id in stale {
                    vanish(&mut workers, &id);
                }
                let (with_ip, without_ip): (Vec<Pod>, Vec<Pod>) = pods
                    .into_iter()
                    .partition(|p| p.status.as_ref().and_then(|s| s.pod_ip.as_ref()).is_some());
                for pod in with_ip.into_iter().chain(without_ip) {
                    upsert(&agent, &mut workers, pod);
                }
            }
            Ok(Event::Apply(pod)) => upsert(&agent, &mut workers, pod),
            Ok(Event::Delete(pod)) => vanish(&mut workers, &uid(&pod)),
            Err(e) => tracing::warn!("pod watch: {e}"),
        }
    }
}
