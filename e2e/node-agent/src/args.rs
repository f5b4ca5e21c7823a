//! Command-line flags (each also an environment variable `ZEROSCALE_NODE_AGENT_<FLAG>`).

use std::net::Ipv4Addr;
use std::path::PathBuf;

/// The node agent's settings.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "zeroscale-node-agent",
    version,
    about = "Process-based node agent of the local cluster"
)]
pub struct Args {
    /// Kubeconfig with the node's credentials (`system:node:<name>`).
    #[arg(long, env = "ZEROSCALE_NODE_AGENT_KUBECONFIG")]
    pub kubeconfig: PathBuf,
    /// The Node's name.
    #[arg(
        long,
        env = "ZEROSCALE_NODE_AGENT_NODE_NAME",
        default_value = "zeroscale-node"
    )]
    pub node_name: String,
    /// The cluster state directory (`<repo>/.zeroscale`): pod dirs go to `pods/`, container logs to
    /// `logs/`.
    #[arg(long, env = "ZEROSCALE_NODE_AGENT_STATE_DIR")]
    pub state_dir: PathBuf,
    /// The bridge pod veths are attached to.
    #[arg(long, env = "ZEROSCALE_NODE_AGENT_BRIDGE", default_value = "zs0")]
    pub bridge: String,
    /// The bridge's address: the node IP, and where pods reach the API server.
    #[arg(long, env = "ZEROSCALE_NODE_AGENT_BRIDGE_IP", default_value = "10.244.0.1")]
    pub bridge_ip: Ipv4Addr,
    /// Pod addresses are taken from this subnet (the bridge's).
    #[arg(long, env = "ZEROSCALE_NODE_AGENT_POD_CIDR", default_value = "10.244.0.0/16")]
    pub pod_cidr: String,
    /// The service CIDR (the API server's `--service-cluster-ip-range`): pods route it via the bridge
    /// address, where the agent proxies every ClusterIP.
    #[arg(
        long,
        env = "ZEROSCALE_NODE_AGENT_SERVICE_CIDR",
        default_value = "10.96.0.0/16"
    )]
    pub service_cidr: String,
    /// The cluster domain of Service names in the pods' `/etc/hosts`.
    #[arg(
        long,
        env = "ZEROSCALE_NODE_AGENT_CLUSTER_DOMAIN",
        default_value = "cluster.local"
    )]
    pub cluster_domain: String,
    /// Kubeconfig allowed to list and watch Services and EndpointSlices (`system:kube-proxy`); unset:
    /// no Service networking (ClusterIPs unreachable, `/etc/hosts` names no Service).
    #[arg(long, env = "ZEROSCALE_NODE_AGENT_PROXY_KUBECONFIG")]
    pub proxy_kubeconfig: Option<PathBuf>,
    /// UDP port of the cluster DNS on the bridge address (with `--proxy-kubeconfig`); 0 turns it off.
    #[arg(long, env = "ZEROSCALE_NODE_AGENT_DNS_PORT", default_value_t = 53)]
    pub dns_port: u16,
    /// Prefix of the pods' network namespaces (everything with it is ours to delete).
    #[arg(long, env = "ZEROSCALE_NODE_AGENT_NETNS_PREFIX", default_value = "zs-")]
    pub netns_prefix: String,
    /// Where `zeroscale/<x>` images find `zeroscale-<x>` (default: `<repo>/target/debug`).
    #[arg(long, env = "ZEROSCALE_NODE_AGENT_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Where `zeroscale/<x>:release` images find `zeroscale-<x>` (default: `release/` beside the
    /// `--bin-dir`, i.e. `<repo>/target/release`).
    #[arg(long, env = "ZEROSCALE_NODE_AGENT_RELEASE_BIN_DIR")]
    pub release_bin_dir: Option<PathBuf>,
    /// Extra image mappings (`<image>[:tag] = <executable>` per line).
    #[arg(long, env = "ZEROSCALE_NODE_AGENT_IMAGE_MAP")]
    pub image_map: Option<PathBuf>,
    /// The cluster CA certificate, given to pods as `ca.crt`.
    #[arg(long, env = "ZEROSCALE_NODE_AGENT_CA_FILE")]
    pub ca_file: PathBuf,
    /// The API server's port on the bridge address.
    #[arg(long, env = "ZEROSCALE_NODE_AGENT_API_PORT", default_value_t = 6443)]
    pub api_port: u16,
    /// CPU capacity the Node reports.
    #[arg(long, env = "ZEROSCALE_NODE_AGENT_CPU", default_value = "16")]
    pub cpu: String,
    /// Memory capacity the Node reports.
    #[arg(long, env = "ZEROSCALE_NODE_AGENT_MEMORY", default_value = "64Gi")]
    pub memory: String,
    /// Maximum pods the Node accepts.
    #[arg(long, env = "ZEROSCALE_NODE_AGENT_MAX_PODS", default_value_t = 250)]
    pub max_pods: u32,
    /// First crash-loop back-off delay in milliseconds (doubles up to `--backoff-max-ms`).
    #[arg(long, env = "ZEROSCALE_NODE_AGENT_BACKOFF_INITIAL_MS", default_value_t = 1000)]
    pub backoff_initial_ms: u64,
    /// Maximum crash-loop back-off delay in milliseconds.
    #[arg(long, env = "ZEROSCALE_NODE_AGENT_BACKOFF_MAX_MS", default_value_t = 30_000)]
    pub backoff_max_ms: u64,
    /// Port of the kubelet API (`kubectl logs`) on the bridge address; 0 turns it off.
    #[arg(long, env = "ZEROSCALE_NODE_AGENT_KUBELET_PORT", default_value_t = 10250)]
    pub kubelet_port: u16,
    /// Serving certificate of the kubelet API (signed by the cluster CA, SAN = bridge address).
    #[arg(long, env = "ZEROSCALE_NODE_AGENT_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// Key of `--tls-cert-file`.
    #[arg(long, env = "ZEROSCALE_NODE_AGENT_TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// Until a readiness probe first succeeds, retry it at least this often (ms; 0: only at
    /// `periodSeconds`), so a pod that starts listening a moment after its start is Ready at once.
    #[arg(
        long,
        env = "ZEROSCALE_NODE_AGENT_STARTUP_PROBE_INTERVAL_MS",
        default_value_t = 50
    )]
    pub startup_probe_interval_ms: u64,
}

impl Args {
    /// The repository root (the state directory's parent): base of relative paths in the image map.
    pub fn repo_root(&self) -> PathBuf {
        self.state_dir
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/"))
    }

    /// Directory of per-pod state.
    pub fn pods_dir(&self) -> PathBuf {
        self.state_dir.join("pods")
    }

    /// The hosts file every pod gets as `/etc/hosts`.
    pub fn hosts_file(&self) -> PathBuf {
        self.state_dir.join("run/hosts")
    }

    /// Directory of container logs.
    pub fn logs_dir(&self) -> PathBuf {
        self.state_dir.join("logs")
    }
}
