//! Wiring: builds the table, the proxy, the listeners, the admin server, the signal sender and the
//! function source, and runs them until shutdown.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use prometheus_client::registry::Registry;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use zeroscale_common::admin::{self, Readiness};
use zeroscale_eventing::delivery::DeliveryDefaults;

use crate::{
    Args,
    events::{Eventing, EventsConfig, EventsError, IngressAuth, TriggerSource as EventTriggerSource},
    host::Domains,
    metrics::Metrics,
    peers::{PeerSet, PeerSource, Peering, PeersConfig},
    probe::{ActivatorWakeups, PROBE_INTERVAL},
    proxy::Proxy,
    queue::{BufferBudget, QueueLimits},
    server::{self, ServerLimits},
    settings::Port,
    signal_sender::{SignalSender, UrlError},
    static_config::{StaticConfig, StaticConfigError},
    table::RoutingTable,
    upstream::{UpstreamConfig, Upstreams},
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
            drain_timeout: Duration::from_secs(30),
            server_limits: ServerLimits::default(),
            probe_interval: PROBE_INTERVAL,
            stats_interval: Duration::from_secs(1),
            upstream: UpstreamConfig::default(),
            source: FunctionSource::Manual,
            events: None,
            peers: None,
        }
    }
}

impl From<&Args> for ActivatorConfig {
    fn from(a: &Args) -> Self {
        Self {
            external_addr: a.external_addr,
            internal_addr: a.internal_addr,
            admin_addr: a.admin_addr,
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
                        lease_namespace: a.lease_namespace.clone(),
                        lease_name: a.lease_name.clone(),
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
        }
    }
}

fn peers_config(a: &Args) -> Option<PeersConfig> {
    let service = a.peers_service.trim();
    if service.is_empty() {
        return None;
    }
    let Some(pod_ip) = a.pod_ip else {
        tracing::warn!("--peers-service is set but --pod-ip (POD_IP) is not: no peering");
        return None;
    };
    Some(PeersConfig {
        source: PeerSource::Kubernetes {
            service: service.to_string(),
        },
        pod_ip,
    })
}

/// Why the activator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A port could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The autoscaler URL is invalid.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// The static configuration is unusable.
    #[error(transparent)]
    StaticConfig(#[from] StaticConfigError),
    /// No Kubernetes client could be built.
    #[error("cannot create a kubernetes client: {0}")]
    Kube(#[from] kube::Error),
    /// Eventing could not start.
    #[error(transparent)]
    Events(#[from] EventsError),
}

/// A running activator.
#[derive(Debug)]
pub struct Activator {
    /// Bound external data port.
    pub external_addr: SocketAddr,
    /// Bound in-cluster data port.
    pub internal_addr: SocketAddr,
    /// Bound admin port.
    pub admin_addr: SocketAddr,
    /// Bound broker port, when eventing runs.
    pub broker_addr: Option<SocketAddr>,
    /// The routing table (feed it directly with [`FunctionSource::Manual`]).
    pub table: Arc<RoutingTable>,
    /// Readiness as reported on `/ready`.
    pub readiness: Readiness,
    /// Peering, when configured (tests change a static peer set through it).
    pub peers: Option<Arc<Peering>>,
    stop: CancellationToken,
    /// Stops the in-cluster port and what keeps the table current; cancelled only after the broker
    /// drained, because its deliveries to Functions go through that port.
    internal_stop: CancellationToken,
    admin_stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    admin_task: JoinHandle<()>,
    eventing: Option<Eventing>,
    drain_timeout: Duration,
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, StartError> {
    server::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

impl Activator {
    /// Binds every port and starts serving.
    pub async fn start(config: ActivatorConfig) -> Result<Self, StartError> {
        let mut registry = Registry::default();
        let metrics = Arc::new(Metrics::register(&mut registry));
        let readiness = Readiness::default();
        let signals = Arc::new(
            SignalSender::new(&config.autoscaler_url, &config.pod_name)?
                .with_token(config.autoscaler_token.as_deref()),
        );
        let wakeups = Arc::new(ActivatorWakeups::new(Arc::clone(&signals), config.probe_interval));
        let budget = BufferBudget::new(config.buffer_memory_limit);
        let table = Arc::new(RoutingTable::new(
            config.queue_limits,
            budget,
            Arc::clone(&metrics),
            wakeups,
        ));
        let stop = CancellationToken::new();
        let internal_stop = CancellationToken::new();
        let mut tasks = Vec::new();
        let peers_ready = Readiness::default();
        let wants_client = matches!(config.source, FunctionSource::Kubernetes)
            || matches!(
                config.peers.as_ref().map(|p| &p.source),
                Some(PeerSource::Kubernetes { .. })
            )
            || matches!(
                config.events.as_ref().map(|e| &e.triggers),
                Some(EventTriggerSource::Kubernetes { .. })
            )
            || matches!(
                config.events.as_ref().map(|e| &e.auth),
                Some(IngressAuth::Kubernetes)
            );
        let client = if wants_client {
            Some(kube::Client::try_default().await?)
        } else {
            None
        };

        match &config.source {
            FunctionSource::Static(path) => {
                StaticConfig::load(path).await?.apply(&table);
                readiness.set(true);
            }
            FunctionSource::Manual => readiness.set(true),
            FunctionSource::Kubernetes => {
                let client = match &client {
                    Some(client) => client.clone(),
                    None => kube::Client::try_default().await?,
                };
                // With peering from Kubernetes, `/ready` also waits for the peer list (below), so
                // a replica never takes traffic before it knows who owns what.
                let functions_ready = match &config.peers {
                    Some(PeersConfig {
                        source: PeerSource::Kubernetes { .. },
                        ..
                    }) => {
                        let functions_ready = Readiness::default();
                        tasks.push(tokio::spawn(ready_when_both(
                            functions_ready.clone(),
                            peers_ready.clone(),
                            readiness.clone(),
                            internal_stop.clone(),
                        )));
                        functions_ready
                    }
                    _ => readiness.clone(),
                };
                let watch = crate::kube_watch::run(client, Arc::clone(&table), functions_ready);
                let stop = internal_stop.clone();
                tasks.push(tokio::spawn(async move {
                    tokio::select! { () = watch => {}, () = stop.cancelled() => {} }
                }));
            }
        }

        let upstreams = Upstreams::new(config.upstream);
        let external = bind(config.external_addr).await?;
        let internal = bind(config.internal_addr).await?;
        let admin_listener = bind(config.admin_addr).await?;
        let (external_addr, internal_addr) = (local(&external), local(&internal));
        let mut proxy = Proxy::new(
            Arc::clone(&table),
            config.domains.clone(),
            upstreams,
            Arc::clone(&metrics),
        );
        let peers = config.peers.as_ref().map(|p| {
            let self_addr = SocketAddr::new(p.pod_ip, internal_addr.port());
            let initial = match &p.source {
                PeerSource::Static(list) => PeerSet::new(list.iter().copied(), []),
                PeerSource::Kubernetes { .. } => PeerSet::default(),
            };
            let pod_name = &config.pod_name;
            Arc::new(Peering::new(
                self_addr,
                pod_name,
                initial,
                config.upstream,
                &mut registry,
            ))
        });
        if let (Some(peers), Some(p)) = (&peers, &config.peers) {
            proxy = proxy.with_peers(Arc::clone(peers));
            if let (PeerSource::Kubernetes { service }, Some(client)) = (&p.source, &client) {
                let watch = crate::peers::watch::run(
                    client.clone(),
                    service.clone(),
                    internal_addr.port(),
                    Arc::clone(peers),
                    peers_ready,
                );
                let stop = internal_stop.clone();
                tasks.push(tokio::spawn(async move {
                    tokio::select! { () = watch => {}, () = stop.cancelled() => {} }
                }));
            }
        }
        let proxy = Arc::new(proxy);
        let admin_addr = local(&admin_listener);
        let eventing = match config.events {
            Some(events) => Some(
                Eventing::start(
                    events,
                    internal_addr,
                    &config.domains.cluster,
                    client,
                    &mut registry,
                )
                .await?,
            ),
            None => None,
        };
        let broker_addr = eventing.as_ref().map(|e| e.broker_addr);
        let ports = [
            (external, Port::External, stop.clone()),
            (internal, Port::Internal, internal_stop.clone()),
        ];
        for (listener, port, stop) in ports {
            let serve = server::serve(
                listener,
                port,
                Arc::clone(&proxy),
                config.server_limits,
                stop,
                config.drain_timeout,
            );
            tasks.push(tokio::spawn(serve));
        }
        let admin_stop = CancellationToken::new();
        let admin_task = tokio::spawn(serve_admin(
            admin_listener,
            readiness.clone(),
            registry,
            admin_stop.clone(),
            metrics,
            Arc::clone(&table),
        ));
        tasks.push(tokio::spawn(Arc::clone(&signals).run_stats(
            Arc::clone(&table),
            config.stats_interval,
            internal_stop.clone(),
        )));
        tracing::info!(%external_addr, %internal_addr, %admin_addr, "activator serving");
        Ok(Self {
            external_addr,
            internal_addr,
            admin_addr,
            broker_addr,
            table,
            readiness,
            peers,
            stop,
            internal_stop,
            admin_stop,
            tasks,
            admin_task,
            eventing,
            drain_timeout: config.drain_timeout,
        })
    }

    /// The broker's routes, when eventing runs (feed them with [`EventTriggerSource::Manual`]).
    pub fn event_routes(&self) -> Option<&zeroscale_eventing::router::RoutingTable> {
        self.eventing.as_ref().map(|e| &e.routes)
    }

    /// Reports not ready on `/ready` while still serving everything as usual (the drain delay after
    /// SIGTERM, see `--drain-delay`).
    pub fn set_unready(&self) {
        self.readiness.set(false);
    }

    /// Starts draining: not ready, no new connections, open requests finish within the drain period.
    /// With eventing, the in-cluster port keeps serving until the broker has drained (see
    /// [`Activator::wait`]).
    pub fn shutdown(&self) {
        self.readiness.set(false);
        self.stop.cancel();
        if self.eventing.is_none() {
            self.internal_stop.cancel();
        }
    }

    /// Waits until the broker (refusing new events, up to the drain period) and then the data ports
    /// have drained (after [`Activator::shutdown`]), then stops the admin port, which stays up
    /// through the drain so probes see "not ready".
    pub async fn wait(self) {
        if let Some(eventing) = self.eventing {
            eventing.shutdown(self.drain_timeout).await;
        }
        self.internal_stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        self.admin_stop.cancel();
        let _ = self.admin_task.await;
    }
}

/// Sets `readiness` once both the function watches and the peer watch have synced (checked every
/// 20 ms until then; readiness is only ever turned off again by shutdown).
async fn ready_when_both(
    functions: Readiness,
    peers: Readiness,
    readiness: Readiness,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        if functions.get() && peers.get() {
            readiness.set(true);
            return;
        }
    }
}

fn local(listener: &tokio::net::TcpListener) -> SocketAddr {
    listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
}

async fn serve_admin(
    listener: tokio::net::TcpListener,
    readiness: Readiness,
    registry: Registry,
    stop: CancellationToken,
    metrics: Arc<Metrics>,
    table: Arc<RoutingTable>,
) {
    // Keep the buffered-bytes gauge current without touching it on the request path.
    let gauge = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        metrics.buffered_bytes().set(i64::try_from(table.buffered_bytes()).unwrap_or(i64::MAX));
                    }
                    () = stop.cancelled() => break,
                }
            }
        })
    };
    let router = admin::router(readiness, Arc::new(registry));
    if let Err(e) = axum::serve(listener, router)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
    {
        tracing::warn!(error = %e, "admin server failed");
    }
    gauge.abort();
}
