//! Process-based node agent for the local Zeroscale test cluster: a "kubelet" that registers a Node,
//! heartbeats it, and runs each Pod bound to it as host processes in a per-pod network namespace.
//! See `docs/local-cluster.md` for the image mapping, networking, probes and limits.

pub mod agent;
pub mod args;
pub mod backoff;
pub mod container;
pub mod dns;
pub mod dns_server;
pub mod env;
pub mod images;
pub mod ipam;
pub mod kubelet_api;
pub mod log_tail;
pub mod manager;
pub mod netns;
pub mod node;
pub mod pod_ctx;
pub mod pod_state;
pub mod pod_worker;
pub mod probe;
pub mod probe_loop;
pub mod prober;
pub mod process;
pub mod sa_token;
pub mod services;
pub mod svc_model;
pub mod svc_proxy;

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use args::Args;

use agent::Agent;
use backoff::BackoffPolicy;
use images::ImageMap;
use ipam::Ipam;

/// How long pods wait at agent start for Service networking's first sync.
const SERVICE_SYNC_WAIT: Duration = Duration::from_secs(10);

/// Errors that stop the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The kubeconfig is unusable.
    #[error("kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    /// The client could not be built.
    #[error("client: {0}")]
    Client(#[from] kube::Error),
    /// The image map is unusable.
    #[error(transparent)]
    Images(#[from] images::ImageError),
    /// The pod CIDR is unusable.
    #[error(transparent)]
    Ipam(#[from] ipam::IpamError),
    /// The service CIDR is not `a.b.c.d/n`.
    #[error("bad service CIDR {0:?}")]
    ServiceCidr(String),
    /// A file could not be read or created.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
}

async fn make_client(path: &std::path::Path) -> Result<kube::Client, AgentError> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

/// Raises the soft open-files limit to the hard one: the Service proxy holds two descriptors per
/// forwarded connection, and pods (the activator under a burst) inherit the limit.
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::warn!("cannot raise the open-files limit from {soft} to {hard}: {e}");
    }
}

/// Runs the agent until SIGTERM/SIGINT. Pods keep running when the agent exits (like a kubelet
/// restart); the next start cleans them up and starts them afresh; `make cluster-down` removes them.
pub async fn run(args: Args) -> Result<(), AgentError> {
    raise_fd_limit();
    let io = |path: &std::path::Path| {
        let path = path.display().to_string();
        move |source| AgentError::Io { path, source }
    };
    let client = make_client(&args.kubeconfig).await?;
    let bin_dir = args
        .bin_dir
        .clone()
        .unwrap_or_else(|| args.repo_root().join("target/debug"));
    let release_dir = args.release_bin_dir.clone().unwrap_or_else(|| {
        bin_dir
            .parent()
            .map(|p| p.join("release"))
            .unwrap_or_else(|| bin_dir.join("release"))
    });
    let mut images = ImageMap::new(bin_dir, release_dir);
    if let Some(file) = &args.image_map {
        images.load(file, &args.repo_root())?;
    }
    let ca_pem = std::fs::read(&args.ca_file).map_err(io(&args.ca_file))?;
    std::fs::create_dir_all(args.logs_dir()).map_err(io(&args.logs_dir()))?;
    let sa_mount = std::path::Path::new(process::SA_MOUNT);
    std::fs::create_dir_all(sa_mount).map_err(io(sa_mount))?;
    // The cluster DNS is bound first: pods get a resolv.conf pointing at it only when it runs.
    let dns_socket = match (&args.proxy_kubeconfig, args.dns_port) {
        (Some(_), port) if port != 0 => match tokio::net::UdpSocket::bind((args.bridge_ip, port)).await {
            Ok(socket) => Some(socket),
            Err(e) => {
                tracing::warn!(
                    "cluster DNS on {}:{port} unavailable ({e}); pods get /etc/hosts only",
                    args.bridge_ip
                );
                None
            }
        },
        _ => None,
    };
    let agent = Arc::new(Agent {
        dns: dns_socket.as_ref().map(|_| args.bridge_ip),
        client: client.clone(),
        ipam: Mutex::new(Ipam::new(&args.pod_cidr, args.bridge_ip)?),
        images,
        ca_pem,
        backoff: BackoffPolicy {
            initial: Duration::from_millis(args.backoff_initial_ms),
            max: Duration::from_millis(args.backoff_max_ms),
            ..BackoffPolicy::default()
        },
        args: args.clone(),
    });
    manager::clean_leftovers(&agent).await;
    // Pods bind-mount the hosts file, so it exists before the first pod starts; Service networking
    // fills it in. A restarted agent keeps the previous content until its first sync.
    let hosts = args.hosts_file();
    if let Some(dir) = hosts.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    if !hosts.is_file() {
        let none = Default::default();
        services::write_hosts(&hosts, &svc_model::hosts_file(&none, &args.cluster_domain))
            .map_err(io(&hosts))?;
    }
    let (synced_tx, synced) = tokio::sync::oneshot::channel();
    let (dns_names, dns_rx) = tokio::sync::watch::channel(Default::default());
    if let Some(socket) = dns_socket {
        tokio::spawn(dns_server::serve(socket, dns_rx));
    }
    if let Some(path) = &args.proxy_kubeconfig {
        let cidr = services::parse_cidr(&args.service_cidr)
            .ok_or_else(|| AgentError::ServiceCidr(args.service_cidr.clone()))?;
        let net = services::ServiceNet {
            bridge: args.bridge.clone(),
            cidr,
            domain: args.cluster_domain.clone(),
            hosts_file: hosts,
            dns_names,
        };
        tokio::spawn(services::run(make_client(path).await?, net, synced_tx));
    } else {
        let _ = synced_tx.send(());
    }
    if let (Some(cert), Some(key), true) = (&args.tls_cert_file, &args.tls_key_file, args.kubelet_port != 0) {
        let addr = format!("{}:{}", args.bridge_ip, args.kubelet_port);
        let api = kubelet_api::serve(
            addr,
            cert.clone(),
            key.clone(),
            args.ca_file.clone(),
            args.logs_dir(),
        );
        tokio::spawn(async move {
            if let Err(e) = api.await {
                tracing::error!("kubelet API (kubectl logs) unavailable: {e}");
            }
        });
    }
    while let Err(e) = node::register(&client, &args).await {
        tracing::warn!("registering node {}: {e}; retrying", args.node_name);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tracing::info!(node = %args.node_name, "node registered");
    tokio::spawn(node::heartbeat(client, args));
    // Pods started before the first sync would miss Service names and ClusterIPs; a sync that takes
    // longer (API server slow) does not hold the pods up for good.
    if tokio::time::timeout(SERVICE_SYNC_WAIT, synced).await.is_err() {
        tracing::warn!("Service networking not synced after {SERVICE_SYNC_WAIT:?}; starting pods anyway");
    }
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(io(sa_mount))?;
    tokio::select! {
        _ = manager::run(agent) => {}
        _ = term.recv() => tracing::info!("SIGTERM: exiting, pods keep running"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: exiting, pods keep running"),
    }
    Ok(())
}
