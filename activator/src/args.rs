//! Command-line flags; each also reads `ZEROSCALE_ACTIVATOR_<FLAG>` from the environment. The admin,
//! log and Lease flags are the ones every component shares (`zeroscale_common::cli`).

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    str::FromStr,
    time::Duration,
};

use clap::Parser;
use zeroscale_common::cli::{Activator, AdminArgs, LeaseArgs, LogArgs};
use zeroscale_eventing::outbound::AllowedHosts;

fn duration(value: &str) -> Result<Duration, String> {
    zeroscale_crds::duration::parse(value).map_err(|e| e.to_string())
}

fn usage_sink(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(String::new());
    }
    let uri: http::Uri = value
        .parse()
        .map_err(|e| format!("invalid usage sink {value:?}: {e}"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http"), Some(_)) => Ok(value.to_string()),
        _ => Err(format!("usage sink {value:?} must be an http:// URI with a host")),
    }
}

fn quantity(value: &str) -> Result<f64, String> {
    crate::metering::resources::quantity(value)
        .ok_or_else(|| format!("{value:?} is not a Kubernetes quantity (such as 128Mi or 500m)"))
}

fn allowed_hosts(value: &str) -> Result<String, String> {
    AllowedHosts::default()
        .with_list(value)
        .map(|_| value.to_string())
        .map_err(|e| e.to_string())
}

/// The broker port's address, or `off` (or empty) to run no eventing at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BrokerAddr(pub Option<SocketAddr>);

impl FromStr for BrokerAddr {
    type Err = std::net::AddrParseError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim() {
            "" | "off" => Ok(Self(None)),
            addr => addr.parse().map(|a| Self(Some(a))),
        }
    }
}

impl fmt::Display for BrokerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(addr) => write!(f, "{addr}"),
            None => f.write_str("off"),
        }
    }
}

/// Flags of `zeroscale-activator`.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "zeroscale-activator",
    version,
    about = "Zeroscale activator: buffers, wakes and proxies"
)]
pub struct Args {
    /// Address of the external data port (public functions only).
    #[arg(
        long,
        env = "ZEROSCALE_ACTIVATOR_EXTERNAL_ADDR",
        default_value = "0.0.0.0:8080"
    )]
    pub external_addr: SocketAddr,
    /// Address of the in-cluster data port (every function).
    #[arg(
        long,
        env = "ZEROSCALE_ACTIVATOR_INTERNAL_ADDR",
        default_value = "0.0.0.0:8081"
    )]
    pub internal_addr: SocketAddr,
    /// `--admin-addr`.
    #[command(flatten)]
    pub admin: AdminArgs<Activator>,
    /// Cluster DNS domain, for hosts `<name>.<ns>.svc.<cluster-domain>`.
    #[arg(
        long,
        env = "ZEROSCALE_ACTIVATOR_CLUSTER_DOMAIN",
        default_value = "cluster.local"
    )]
    pub cluster_domain: String,
    /// External domain, for hosts `<name>.<ns>.<external-domain>`.
    #[arg(
        long,
        env = "ZEROSCALE_ACTIVATOR_EXTERNAL_DOMAIN",
        default_value = "example.com"
    )]
    pub external_domain: String,
    /// Where demand and stats CloudEvents go; empty disables signals.
    #[arg(
        long,
        env = "ZEROSCALE_ACTIVATOR_AUTOSCALER_URL",
        default_value = "http://zeroscale-autoscaler.zeroscale-system.svc:8080/"
    )]
    pub autoscaler_url: String,
    /// Bearer token sent with every signal; the autoscaler's `--events-token` (the chart passes both
    /// from one Secret). Empty: none.
    #[arg(
        long,
        env = "ZEROSCALE_ACTIVATOR_AUTOSCALER_TOKEN",
        default_value = "",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub autoscaler_token: String,
    /// This activator's identity in signals (its pod name).
    #[arg(long, env = "POD_NAME", default_value = "zeroscale-activator")]
    pub pod_name: String,
    /// Read functions and endpoints from this YAML file instead of the Kubernetes API.
    #[arg(long, env = "ZEROSCALE_ACTIVATOR_STATIC_CONFIG")]
    pub static_config: Option<PathBuf>,
    /// Most requests waiting per function.
    #[arg(
        long,
        env = "ZEROSCALE_ACTIVATOR_QUEUE_MAX_REQUESTS",
        default_value_t = 10_000
    )]
    pub queue_max_requests: usize,
    /// Most bytes accounted to waiting requests per function.
    #[arg(long, env = "ZEROSCALE_ACTIVATOR_QUEUE_MAX_BYTES", default_value_t = 32 << 20)]
    pub queue_max_bytes: usize,
    /// Most bytes accounted to waiting requests over all functions.
    #[arg(long, env = "ZEROSCALE_ACTIVATOR_BUFFER_MEMORY_LIMIT", default_value_t = 128 << 20)]
    pub buffer_memory_limit: usize,
    /// Most bytes accounted to waiting requests over all functions of one namespace, so one
    /// namespace's burst cannot take the buffer of another; 0 disables the quota (the global
    /// `--buffer-memory-limit` still applies).
    #[arg(
        long,
        env = "ZEROSCALE_ACTIVATOR_NAMESPACE_BUFFER_MEMORY_LIMIT",
        default_value_t = 64 << 20
    )]
    pub namespace_buffer_memory_limit: usize,
    /// How long the activator keeps serving as usual after SIGTERM, reporting not ready, before it
    /// stops accepting connections: the time Services and the other replicas take to stop sending to
    /// it, so no client connects to a closed port and no peer writes onto a connection it closed.
    #[arg(long, env = "ZEROSCALE_ACTIVATOR_DRAIN_DELAY", default_value = "5s", value_parser = duration)]
    pub drain_delay: Duration,
    /// How long open requests may take to finish after SIGTERM.
    #[arg(long, env = "ZEROSCALE_ACTIVATOR_DRAIN_TIMEOUT", default_value = "30s", value_parser = duration)]
    pub drain_timeout: Duration,
    /// Time a client has to send a request head.
    #[arg(long, env = "ZEROSCALE_ACTIVATOR_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub header_read_timeout: Duration,
    /// Largest request head in bytes (at least 8192).
    #[arg(long, env = "ZEROSCALE_ACTIVATOR_MAX_HEADER_BYTES", default_value_t = 64 * 1024)]
    pub max_header_bytes: usize,
    /// Interval of direct probes of starting pods while requests wait.
    #[arg(long, env = "ZEROSCALE_ACTIVATOR_PROBE_INTERVAL", default_value = "2ms", value_parser = duration)]
    pub probe_interval: Duration,
    /// Period of the stats signal.
    #[arg(long, env = "ZEROSCALE_ACTIVATOR_STATS_INTERVAL", default_value = "1s", value_parser = duration)]
    pub stats_interval: Duration,
    /// Where usage records (`dev.zeroscale.usage` CloudEvents) are sent: an HTTP URI such as a
    /// namespace's broker; empty sends none (the `zeroscale_faas_*` metrics are kept either way).
    #[arg(long, env = "ZEROSCALE_ACTIVATOR_USAGE_SINK", default_value = "", value_parser = usage_sink)]
    pub usage_sink: String,
    /// Period of usage records: each function's usage is flushed this often (and on shutdown).
    #[arg(long, env = "ZEROSCALE_ACTIVATOR_USAGE_FLUSH_INTERVAL", default_value = "10s", value_parser = duration)]
    pub usage_flush_interval: Duration,
    /// Most usage records kept while the sink does not take them; beyond it the oldest is dropped
    /// and counted in `zeroscale_usage_records_dropped_total`.
    #[arg(
        long,
        env = "ZEROSCALE_ACTIVATOR_USAGE_BUFFER_RECORDS",
        default_value_t = 10_000
    )]
    pub usage_buffer_records: usize,
    /// Memory a function without a memory limit or request is billed for (a Kubernetes quantity).
    #[arg(long, env = "ZEROSCALE_ACTIVATOR_METERING_DEFAULT_MEMORY", default_value = "128Mi", value_parser = quantity)]
    pub metering_default_memory: f64,
    /// CPU a function without a CPU limit or request is billed for (a Kubernetes quantity).
    #[arg(long, env = "ZEROSCALE_ACTIVATOR_METERING_DEFAULT_CPU", default_value = "100m", value_parser = quantity)]
    pub metering_default_cpu: f64,
    /// Log one JSON line per request (target `access`: function, revision, status, duration,
    /// queued time, cold or warm, pod, request id).
    #[arg(
        long,
        env = "ZEROSCALE_ACTIVATOR_ACCESS_LOG",
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    pub access_log: bool,
    /// Tokio worker threads: 1 runs everything on one thread (lowest latency and memory; scale out
    /// with replicas), more add throughput per replica, 0 means one per CPU.
    #[arg(long, env = "ZEROSCALE_ACTIVATOR_WORKER_THREADS", default_value_t = 1)]
    pub worker_threads: usize,
    /// Address of the broker ingress (`POST /<namespace>` CloudEvents); `off` runs no eventing.
    #[arg(long, env = "ZEROSCALE_ACTIVATOR_BROKER_ADDR", default_value = "0.0.0.0:8082")]
    pub broker_addr: BrokerAddr,
    /// Require a ServiceAccount token (audience `zeroscale-broker`) allowed to `create`
    /// `brokers.zeroscale.dev` in the event's namespace on the broker ingress; checked with
    /// TokenReview and SubjectAccessReview, so it needs the Kubernetes API.
    #[arg(
        long,
        env = "ZEROSCALE_ACTIVATOR_BROKER_AUTH",
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    pub broker_auth: bool,
    /// Hosts besides in-cluster Services (`*.svc`, `*.svc.<cluster-domain>`) that a Trigger's
    /// `uri` subscriber or dead-letter sink may name: comma-separated host names and `*.suffix`
    /// patterns. Triggers naming other hosts are not routed.
    #[arg(long, env = "ZEROSCALE_ACTIVATOR_ALLOWED_HOSTS", default_value = "", value_parser = allowed_hosts)]
    pub allowed_hosts: String,
    /// Watch Triggers in this namespace only; empty watches every namespace.
    #[arg(long, env = "ZEROSCALE_ACTIVATOR_TRIGGER_NAMESPACE", default_value = "")]
    pub trigger_namespace: String,
    /// `--lease-namespace` and `--lease-name`: the Lease that picks the one replica running schedule
    /// and kubernetes sources.
    #[command(flatten)]
    pub lease: LeaseArgs<Activator>,
    /// Read Triggers from this YAML file instead of the Kubernetes API (benches, no cluster).
    #[arg(long, env = "ZEROSCALE_ACTIVATOR_STATIC_TRIGGERS")]
    pub static_triggers: Option<PathBuf>,
    /// The event store (`--event-store`, `--nats-*`; `events/store_args.rs`).
    #[command(flatten)]
    pub event_store: crate::events::store_args::EventStoreArgs,
    /// The activator's own in-cluster Service: the ready pods of its EndpointSlices are the peer
    /// activators, and each function is served by one of them (its owner), so a pod's `concurrency`
    /// holds across replicas. Empty: no peering (a single replica).
    #[arg(long, env = "ZEROSCALE_ACTIVATOR_PEERS_SERVICE", default_value = "")]
    pub peers_service: String,
    /// A fixed peer set instead of `--peers-service`: the ready replicas' in-cluster data ports
    /// (`ip:port`, comma-separated, this one's included), for peering without Kubernetes (benches,
    /// local experiments, as `--static-config` serves functions without it).
    #[arg(
        long,
        env = "ZEROSCALE_ACTIVATOR_STATIC_PEERS",
        value_delimiter = ',',
        conflicts_with = "peers_service",
        requires = "pod_ip"
    )]
    pub static_peers: Vec<SocketAddr>,
    /// This activator's pod IP, as its peers reach it (peering needs it).
    #[arg(long, env = "POD_IP")]
    pub pod_ip: Option<IpAddr>,
    /// `--log-format`.
    #[command(flatten)]
    pub log: LogArgs<Activator>,
    /// `--otlp-endpoint`, `--trace-sampling-ratio` (`trace/args.rs`).
    #[command(flatten)]
    pub tracing: crate::trace::TracingArgs,
}

impl Args {
    /// The outbound allow-list: in-cluster Services of `--cluster-domain` plus `--allowed-hosts`.
    pub fn allowed_hosts(&self) -> AllowedHosts {
        let base = AllowedHosts::new(&self.cluster_domain);
        // The flag's parser already refused malformed lists.
        base.clone().with_list(&self.allowed_hosts).unwrap_or(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse() {
        let args = Args::parse_from(["zeroscale-activator"]);
        assert_eq!(args.external_addr.port(), 8080);
        assert_eq!(args.internal_addr.port(), 8081);
        assert_eq!(args.drain_timeout, Duration::from_secs(30));
        assert_eq!(args.drain_delay, Duration::from_secs(5));
        assert_eq!(args.probe_interval, Duration::from_millis(2));
        assert_eq!(
            args.broker_addr,
            BrokerAddr(Some("0.0.0.0:8082".parse().unwrap()))
        );
    }

    #[test]
    fn peering_needs_a_service_and_the_pod_ip() {
        let args = Args::parse_from(["zeroscale-activator"]);
        assert!(crate::ActivatorConfig::from(&args).peers.is_none());
        let args = Args::parse_from([
            "zeroscale-activator",
            "--peers-service",
            "act",
            "--pod-ip",
            "10.244.0.5",
        ]);
        let peers = crate::ActivatorConfig::from(&args).peers.unwrap();
        assert_eq!(peers.pod_ip, "10.244.0.5".parse::<IpAddr>().unwrap());
        assert!(matches!(peers.source, crate::peers::PeerSource::Kubernetes { service } if service == "act"));
        let args = Args::parse_from(["zeroscale-activator", "--peers-service", "act"]);
        assert!(crate::ActivatorConfig::from(&args).peers.is_none());
    }

    #[test]
    fn a_static_peer_set_needs_the_pod_ip_and_excludes_the_service() {
        let list = ["--static-peers", "127.0.0.1:18491,127.0.0.1:18591"];
        let args = Args::parse_from(["zeroscale-activator", list[0], list[1], "--pod-ip", "127.0.0.1"]);
        let peers = crate::ActivatorConfig::from(&args).peers.unwrap();
        let expected: Vec<SocketAddr> = vec![
            "127.0.0.1:18491".parse().unwrap(),
            "127.0.0.1:18591".parse().unwrap(),
        ];
        assert!(matches!(peers.source, crate::peers::PeerSource::Static(l) if l == expected));
        let alone = Args::try_parse_from(["zeroscale-activator", list[0], list[1]]);
        let err = alone.expect_err("--static-peers without --pod-ip").to_string();
        assert!(err.contains("--pod-ip"), "{err}");
        let both = Args::try_parse_from(["zeroscale-activator", list[0], list[1], "--peers-service", "act"]);
        let err = both.expect_err("--static-peers with --peers-service").to_string();
        assert!(err.contains("cannot be used with"), "{err}");
        let bad = Args::try_parse_from(["zeroscale-activator", "--static-peers", "127.0.0.1"]);
        assert!(
            bad.expect_err("a peer without a port")
                .to_string()
                .contains("invalid value")
        );
    }

    #[test]
    fn guard_flags_parse() {
        let args = Args::parse_from([
            "zeroscale-activator",
            "--broker-auth=true",
            "--allowed-hosts",
            "sink.example.com,*.hooks.example.org",
            "--autoscaler-token",
            "s3cret",
        ]);
        assert!(args.broker_auth);
        let allowed = args.allowed_hosts();
        assert!(allowed.allows("sink.example.com") && allowed.allows("a.hooks.example.org"));
        assert!(allowed.allows("f.ns.svc.cluster.local") && !allowed.allows("other.example.com"));
        let config = crate::ActivatorConfig::from(&args);
        assert_eq!(config.autoscaler_token.as_deref(), Some("s3cret"));
        assert!(matches!(
            config.events.map(|e| e.auth),
            Some(crate::events::IngressAuth::Kubernetes)
        ));
        let error = Args::try_parse_from(["zeroscale-activator", "--allowed-hosts", "http://x"]).unwrap_err();
        assert!(error.to_string().contains("invalid allowed host"), "{error}");
        let defaults = Args::parse_from(["zeroscale-activator"]);
        assert!(!defaults.broker_auth);
        assert!(crate::ActivatorConfig::from(&defaults).autoscaler_token.is_none());
    }

    #[test]
    fn the_broker_can_be_switched_off() {
        for off in ["off", ""] {
            let args = Args::parse_from(["zeroscale-activator", "--broker-addr", off]);
            assert_eq!(args.broker_addr, BrokerAddr(None));
        }
        assert!(Args::try_parse_from(["zeroscale-activator", "--broker-addr", "nowhere"]).is_err());
    }
}
