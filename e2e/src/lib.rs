//! Zeroscale end-to-end helpers and suite against the local cluster.
//!
//! Tests in `e2e/tests/*.rs` run against the cluster `make cluster-up` starts (see
//! `docs/local-cluster.md`); `scripts/e2e.sh` brings it up, runs them one at a time and tears it down.
//! Every helper that needs the cluster fails loudly (panics naming `make cluster-up`) when it is not up,
//! so a missing cluster never passes silently.
//!
//! ```no_run
//! # async fn example() {
//! use std::time::Duration;
//! let client = zeroscale_e2e::client().await;
//! let ns = zeroscale_e2e::TestNamespace::new(&client, "demo").await;
//! zeroscale_e2e::apply_yaml(ns.name(), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n").await;
//! let out = zeroscale_e2e::wait_for(Duration::from_secs(10), "configmap x", || async {
//!     let out = zeroscale_e2e::kubectl(&["get", "cm", "x", "-n", ns.name()]).await;
//!     out.status.success().then_some(out)
//! })
//! .await;
//! # let _ = out;
//! # }
//! ```

pub mod cluster;
pub mod components;
pub mod crds;
pub mod functions;
pub mod http;
pub mod images;
pub mod installed;
pub mod kubectl;
pub mod metrics;
pub mod namespace;
pub mod node;
pub mod operator;
pub mod paths;
pub mod pods;
pub mod ports;
pub mod process;
pub mod sink;
pub mod timing;
pub mod wait;

pub use cluster::{ClusterError, client, try_client};
pub use components::{Activator, Autoscaler, json_log_lines};
pub use crds::{FUNCTION_CRD, TRIGGER_CRD, install_eventing_crds, install_function_crd};
pub use functions::{
    deployment_image, deployment_replicas, function_condition, function_deployment, function_manifest,
};
pub use http::{HttpError, HttpResponse, http_get, http_request};
pub use images::{
    BUSYBOX_IMAGE, ECHO_IMAGE, ECHO_NODE_IMAGE, ECHO_PYTHON_IMAGE, KUBECTL_IMAGE, MISSING_IMAGE, REGISTRY,
    component_image, ensure_tag, image_digest,
};
pub use installed::{Installed, ensure_installed, try_ensure_installed};
pub use kubectl::{
    KubectlError, apply_yaml, apply_yaml_cluster, kubectl, kubectl_ok, namespace_report, try_kubectl,
};
pub use metrics::{admin_ready, counter_value, has_sample, metric_value, scrape, wait_admin_ready};
pub use namespace::TestNamespace;
pub use node::{
    CriContainer, container_pid, containerd_socket, containers, pod_logs, process_alive, running_containers,
    try_crictl,
};
pub use operator::Operator;
pub use paths::{
    bin_path, kube_bin_dir, kubeconfig_path, kubectl_path, logs_dir, repo_root, state_dir, target_dir,
};
pub use pods::{last_terminated, pod_ip, pod_is_ready, restart_count, wait_pod, waiting_reason};
pub use ports::{free_addr, free_port};
pub use process::{ProcessError, ProcessGuard, spawn_component, try_spawn_component};
pub use sink::{EventSink, Received};
pub use timing::{record_figure, record_timing, timings_path};
pub use wait::{WaitError, try_wait_for, wait_for};
