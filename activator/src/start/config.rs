//! What the activator is configured with ([`ActivatorConfig`]) and how the flags ([`Args`]) map to it.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use zeroscale_eventing::delivery::DeliveryDefaults;

use crate::{
    Args,
    events::{EventsConfig, IngressAuth, TriggerSource as EventTriggerSource},
    host::Domains,
    metering::ResourceDefaults,
    peers::{PeerSource, PeersConfig},
    probe::PROBE_INTERVAL,
    queue::QueueLimits,
    server::ServerLimits,
    upstream::UpstreamConfig,
};

/// Where function knowledge comes from.
#[derive(Clone, Debug)]
pub enum FunctionSource {
    /// Watches on the Kubernetes API.
    Kubernetes,
    /// A YAML file read once.
    Static(PathBuf),
    /// Nothing: the caller feeds [`Activator::table`] (tests).
    Manual,
}

/// Everything the activator is configured with.
#[derive(Clone, Debug)]
pub struct ActivatorConfig {
    /// External data port.
    pub external_addr: SocketAddr,
    /// In-cluster data port.
    pub internal_addr: SocketAddr,
    /// Admin port.
    pub admin_addr: SocketAddr,
    /// Recognised domains.
    pub domains: Domains,
    /// Autoscaler events URL; empty disables signals.
    pub autoscaler_url: String,
    /// Bearer token sent with every signal (the autoscaler's `--events-token`).
    pub autoscaler_token: Option<String>,
    /// Identity in signals.
    pub pod_name: String,
    /// Per-function queue limits.
    pub queue_limits: QueueLimits,
    /// Global cap on bytes accounted to parked requests.
    pub buffer_memory_limit: usize,
    /// Cap on bytes accounted to the parked requests of one namespace; 0 disables the quota.
    pub namespace_buffer_memory_limit: usize,
    /// Time allowed for open requests after shutdown starts.
    pub drain_timeout: Duration,
    /// Protections of the data ports.
    pub server_limits: ServerLimits,
    /// Probe period for starting pods.
    pub probe_interval: Duration,
    /// Stats period.
    pub stats_interval: Duration,
    /// Upstream pools.
    pub upstream: UpstreamConfig,
    /// Function source.
    pub source: FunctionSource,
    /// The broker and its Triggers; `None` runs no eventing.
    pub events: Option<EventsConfig>,
    /// Peering with the other replicas; `None`: every function is served here.
    pub peers: Option<PeersConfig>,
    /// Metering and usage records.
    pub metering: MeteringConfig,
    /// Whether one access-log line is written per request.
    pub access_log: bool,
}

/// Metering and usage records (see [`crate::metering`]).
#[derive(Clone, Debug)]
pub struct MeteringConfig {
    /// Where usage records go; `None` sends none.
    pub usage_sink: Option<http::Uri>,
    /// Period of usage records.
    pub flush_interval: Duration,
    /// Most usage records kept while the sink does not take them.
    pub buffer_records: usize,
    /// What functions without `resources` are billed for.
    pub defaults: ResourceDefaults,
}

impl Default for MeteringConfig {
    fn default() -> Self {
        Self {
            usage_sink: None,
            flush_interval: Duration::from_secs(10),
            buffer_records: 10_000,
            defaults: ResourceDefaults::default(),
        }
    }
}

impl Default for ActivatorConfig {
    /// Loopback ports chosen by the OS, signals off, manual source: the shape tests start from.
    fn default() -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            external_addr: any,
            internal_addr: any,
            admin_addr: any,
            domains: Domains::default(),
            autoscaler_url: String::new(),
            autoscaler_token: None,
            pod_name: "activator-test".into(),
            queue_limits: QueueLimits {
                max_requests: 10_000,
                max_bytes: 32 << 20,
            },
            buffer_memory_limit: 128 << 20,
            namespace_buffer_memory_limit: 64 << 20,
            drain_timeout: Duration::from_secs(30),
            server_limits: ServerLimits::default(),
            probe_interval: PROBE_INTERVAL,
            stats_interval: Duration::from_secs(1),
            upstream: UpstreamConfig::default(),
            source: FunctionSource::Manual,
            events: None,
            peers: None,
            metering: MeteringConfig::default(),
            access_log: false,
        }
    }
}

impl From<&Args> for ActivatorConfig {
    fn from(a: &Args) -> Self {
        Self {
            external_addr: a.external_addr,
            internal_addr: a.internal_addr,
            admin_addr: a.admin.admin_addr,
            domains: Domains {
                cluster: a.cluster_domain.clone(),
                external: a.external_domain.clone(),
            },
            autoscaler_url: a.autoscaler_url.clone(),
            autoscaler_token: Some(a.autoscaler_token.trim().to_string()).filter(|t| !t.is_empty()),
            pod_name: a.pod_name.clone(),
            queue_limits: QueueLimits {
                max_requests: a.queue_max_requests,
                max_bytes: a.queue_max_bytes,
            },
            buffer_memory_limit: a.buffer_memory_limit,
            namespace_buffer_memory_limit: a.namespace_buffer_memory_limit,
            drain_timeout: a.drain_timeout,
            server_limits: ServerLimits {
                header_read_timeout: a.header_read_timeout,
                max_header_bytes: a.max_header_bytes,
                ..ServerLimits::default()
            },
            probe_interval: a.probe_interval,
            stats_interval: a.stats_interval,
            upstream: UpstreamConfig::default(),
            source: match &a.static_config {
                Some(path) => FunctionSource::Static(path.clone()),
                None => FunctionSource::Kubernetes,
            },
            events: a.broker_addr.0.map(|broker_addr| EventsConfig {
                broker_addr,
                triggers: match &a.static_triggers {
                    Some(path) => EventTriggerSource::Static(path.clone()),
                    None => EventTriggerSource::Kubernetes {
                        namespace: Some(a.trigger_namespace.trim())
                            .filter(|ns| !ns.is_empty())
                            .map(Into::into),
                        lease_namespace: a.lease.lease_namespace.clone(),
                        lease_name: a.lease.lease_name.clone(),
                    },
                },
                ingress: Default::default(),
                broker: Default::default(),
                store: a.event_store.config(),
                defaults: DeliveryDefaults {
                    allowed_hosts: a.allowed_hosts(),
                    ..Default::default()
                },
                auth: if a.broker_auth {
                    IngressAuth::Kubernetes
                } else {
                    IngressAuth::Off
                },
            }),
            peers: peers_config(a),
            metering: MeteringConfig {
                usage_sink: Some(a.usage_sink.trim())
                    .filter(|s| !s.is_empty())
                    .and_then(|s| s.parse().ok()),
                flush_interval: a.usage_flush_interval,
                buffer_records: a.usage_buffer_records,
                defaults: ResourceDefaults {
                    memory_bytes: a.metering_default_memory.ceil() as u64,
                    cpu_millis: (a.metering_default_cpu * 1000.0).ceil() as u64,
                },
            },
            access_log: a.access_log,
        }
    }
}

fn peers_config(a: &Args) -> Option<PeersConfig> {
    let service = a.peers_service.trim();
    let (source, flag) = if !a.static_peers.is_empty() {
        (PeerSource::Static(a.static_peers.clone()), "--static-peers")
    } else if !service.is_empty() {
        let service = service.to_string();
        (PeerSource::Kubernetes { service }, "--peers-service")
    } else {
        return None;
    };
    let Some(pod_ip) = a.pod_ip else {
        tracing::warn!("{flag} is set but --pod-ip (POD_IP) is not: no peering");
        return None;
    };
    Some(PeersConfig { source, pod_ip })
}
