//! The Node object: registration with capacity and addresses, and heartbeats (Lease every 10 s, node
//! status every 10 s) so the node lifecycle controller keeps it Ready.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use crate::args::Args;

/// How often the Lease and the node status are renewed.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
const LEASE_NAMESPACE: &str = "kube-node-lease";
const MANAGER: &str = "zeroscale-node-agent";

/// Errors of node registration.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// An API call failed.
    #[error("{what}: {source}")]
    Api {
        /// What was attempted.
        what: &'static str,
        /// What went wrong.
        #[source]
        source: kube::Error,
    },
    /// The built object did not deserialize (a bug).
    #[error("node object: {0}")]
    Object(#[from] serde_json::Error),
}

fn node_status(args: &Args, now: Timestamp) -> serde_json::Value {
    let resources = json!({
        "cpu": args.cpu, "memory": args.memory, "pods": args.max_pods.to_string(), "ephemeral-storage": "100Gi"
    });
    let now = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let condition = |type_: &str, status: &str, reason: &str, message: &str| {
        json!({"type": type_, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    json!({
        "capacity": resources,
        "allocatable": resources,
        "addresses": [
            {"type": "InternalIP", "address": args.bridge_ip.to_string()},
            {"type": "Hostname", "address": args.node_name},
        ],
        "conditions": [
            condition("Ready", "True", "KubeletReady", "zeroscale node agent is posting ready status"),
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "no memory pressure"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "no disk pressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "no PID pressure"),
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": args.kubelet_port}},
        "nodeInfo": {
            "architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
            "operatingSystem": "linux",
            "osImage": "zeroscale local node (processes)",
            "kernelVersion": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
            "containerRuntimeVersion": "process://zeroscale-node-agent",
            "kubeletVersion": "v1.34.4",
            "kubeProxyVersion": "",
            "machineID": "", "systemUUID": "", "bootID": "",
        },
    })
}

/// Creates the Node if needed and sets its status; the kubelet-style labels identify it.
pub async fn register(client: &kube::Client, args: &Args) -> Result<(), NodeError> {
    let api: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": args.node_name, "labels": {
            "kubernetes.io/hostname": args.node_name, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
        }},
        "spec": {"podCIDR": args.pod_cidr, "podCIDRs": [args.pod_cidr]},
    }))?;
    match api.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(source) => {
            return Err(NodeError::Api {
                what: "create node",
                source,
            });
        }
    }
    update_status(client, args).await
}

async fn update_status(client: &kube::Client, args: &Args) -> Result<(), NodeError> {
    let api: Api<Node> = Api::all(client.clone());
    let patch = json!({"status": node_status(args, Timestamp::now())});
    api.patch_status(
        &args.node_name,
        &PatchParams::default(),
        &Patch::Strategic(&patch),
    )
    .await
    .map_err(|source| NodeError::Api {
        what: "update node status",
        source,
    })?;
    Ok(())
}

async fn renew_lease(client: &kube::Client, args: &Args) -> Result<(), NodeError> {
    let api: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let now = Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string();
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": args.node_name, "namespace": LEASE_NAMESPACE},
        "spec": {"holderIdentity": args.node_name, "leaseDurationSeconds": 40, "renewTime": now},
    });
    api.patch(
        &args.node_name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&lease),
    )
    .await
    .map_err(|source| NodeError::Api {
        what: "renew node lease",
        source,
    })?;
    Ok(())
}

/// Renews the Lease and the node status forever; failures are logged and retried at the next beat.
pub async fn heartbeat(client: kube::Client, args: Args) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tick.tick().await;
        if let Err(e) = renew_lease(&client, &args).await {
            tracing::warn!("{e}");
        }
        if let Err(e) = update_status(&client, &args).await {
            tracing::warn!("{e}");
            // A deleted Node comes back, as the kubelet re-registers.
            if let Err(e) = register(&client, &args).await {
                tracing::warn!("{e}");
            }
        }
    }
}
