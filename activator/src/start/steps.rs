//! The steps [`super::Activator::start`] runs, in order, each on a [`Wiring`] that carries what the
//! earlier steps made: the core (table, metrics, signal sender), the Kubernetes client, the shutdown
//! stages and the tasks to wait for.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use prometheus_client::registry::Registry;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use zeroscale_common::admin::{self, Readiness};

use super::{ActivatorConfig, FunctionSource, StartError};
use crate::{
    access_log::AccessLog,
    anatomy::AnatomySink,
    events::{Eventing, IngressAuth, TriggerSource as EventTriggerSource},
    function::record::{RecordSink, Recorder},
    function::{Hooks, MeterSink},
    metering::{
        MeterConfig, MeterFamilies,
        reporter::{HttpSink, Reporter},
        usage::{Outbox, OutboxMetrics},
    },
    metrics::Metrics,
    peers::{PeerSet, PeerSource, Peering},
    probe::ActivatorWakeups,
    proxy::Proxy,
    queue::BufferBudget,
    revision_stats::{self, RevisionStats},
    server,
    settings::Port,
    signal_sender::SignalSender,
    static_config::StaticConfig,
    table::RoutingTable,
    upstream::Upstreams,
    usage_report,
};

/// The activator while it starts.
pub(super) struct Wiring {
    pub(super) config: ActivatorConfig,
    pub(super) registry: Registry,
    pub(super) metrics: Arc<Metrics>,
    pub(super) table: Arc<RoutingTable>,
    /// Per-revision counts for the operator's canary, served on the admin port.
    pub(super) revision_stats: Arc<RevisionStats>,
    pub(super) signals: Arc<SignalSender>,
    /// Present when anything configured reads the Kubernetes API.
    pub(super) client: Option<kube::Client>,
    /// What `/ready` reports.
    pub(super) readiness: Readiness,
    /// One flag per watch, set on its first full list; `/ready` waits for all of them.
    pub(super) synced: Vec<Readiness>,
    /// First shutdown stage: the external port stops taking connections.
    pub(super) stop: CancellationToken,
    /// Second stage, after the broker drained (its deliveries go through the in-cluster port): the
    /// in-cluster port and everything that keeps the table current.
    pub(super) internal_stop: CancellationToken,
    pub(super) tasks: Vec<JoinHandle<()>>,
}

/// The bound data and admin ports.
pub(super) struct Listeners {
    pub(super) external: TcpListener,
    pub(super) internal: TcpListener,
    pub(super) admin: TcpListener,
}

impl Listeners {
    /// Binds the external, in-cluster and admin ports (port 0: one the OS picks).
    pub(super) async fn bind(config: &ActivatorConfig) -> Result<Self, StartError> {
        Ok(Self {
            external: bind(config.external_addr).await?,
            internal: bind(config.internal_addr).await?,
            admin: bind(config.admin_addr).await?,
        })
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    server::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

/// The address `listener` is bound to.
pub(super) fn local(listener: &TcpListener) -> SocketAddr {
    listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
}

/// Whether anything in `config` reads the Kubernetes API (functions, peers, Triggers, broker auth).
fn wants_client(config: &ActivatorConfig) -> bool {
    matches!(config.source, FunctionSource::Kubernetes)
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
        )
}

impl Wiring {
    /// The core: metrics, the signal sender, the routing table; and the Kubernetes client if needed.
    pub(super) async fn new(config: ActivatorConfig) -> Result<Self, StartError> {
        let mut registry = Registry::default();
        let metrics = Arc::new(Metrics::register(&mut registry));
        let signals = Arc::new(
            SignalSender::new(&config.autoscaler_url, &config.pod_name)?
                .with_token(config.autoscaler_token.as_deref()),
        );
        let wakeups = Arc::new(ActivatorWakeups::new(Arc::clone(&signals), config.probe_interval));
        let budget = BufferBudget::new(config.buffer_memory_limit)
            .with_namespace_limit(config.namespace_buffer_memory_limit);
        let revision_stats = Arc::new(RevisionStats::new(config.pod_name.clone()));
        let client = match wants_client(&config) {
            true => Some(kube::Client::try_default().await?),
            false => None,
        };
        let hooks = hooks(&config, client.as_ref(), &mut registry, &revision_stats);
        let table = Arc::new(
            RoutingTable::new(config.queue_limits, budget, Arc::clone(&metrics), wakeups).with_hooks(hooks),
        );
        Ok(Self {
            config,
            registry,
            metrics,
            table,
            revision_stats,
            signals,
            client,
            readiness: Readiness::default(),
            synced: Vec::new(),
            stop: CancellationToken::new(),
            internal_stop: CancellationToken::new(),
            tasks: Vec::new(),
        })
    }

    /// Runs `task` until the second shutdown stage.
    fn spawn_until_internal_stop(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        let stop = self.internal_stop.clone();
        self.tasks.push(tokio::spawn(async move {
            tokio::select! { () = task => {}, () = stop.cancelled() => {} }
        }));
    }

    /// Fills the table from the function source: a static file at once, or watches on Functions and
    /// their EndpointSlices, which report their first full list through a flag in `synced`.
    pub(super) async fn start_watches(&mut self) -> Result<(), StartError> {
        match &self.config.source {
            FunctionSource::Static(path) => StaticConfig::load(path).await?.apply(&self.table),
            FunctionSource::Manual => {}
            FunctionSource::Kubernetes => {
                // `Wiring::new` already built one whenever the source is Kubernetes.
                let client = match &self.client {
                    Some(client) => client.clone(),
                    None => kube::Client::try_default().await?,
                };
                let synced = Readiness::default();
                self.synced.push(synced.clone());
                let watch = crate::kube_watch::run(client, Arc::clone(&self.table), synced);
                self.spawn_until_internal_stop(watch);
            }
        }
        Ok(())
    }

    /// Joins the other activator replicas when configured: a static peer set, or a watch on the peers
    /// Service whose first full list `/ready` also waits for, so a replica never takes traffic before
    /// it knows who owns what.
    pub(super) fn start_peering(&mut self, internal_addr: SocketAddr) -> Option<Arc<Peering>> {
        let p = self.config.peers.clone()?;
        let self_addr = SocketAddr::new(p.pod_ip, internal_addr.port());
        let initial = match &p.source {
            PeerSource::Static(list) => PeerSet::new(list.iter().copied(), []),
            PeerSource::Kubernetes { .. } => PeerSet::default(),
        };
        let peers = Arc::new(Peering::new(
            self_addr,
            &self.config.pod_name,
            initial,
            self.config.upstream,
            self.config.server_limits.header_read_timeout,
            &mut self.registry,
        ));
        if let (PeerSource::Kubernetes { service }, Some(client)) = (&p.source, &self.client) {
            let synced = Readiness::default();
            self.synced.push(synced.clone());
            let watch = crate::peers::watch::run(
                client.clone(),
                service.clone(),
                internal_addr.port(),
                Arc::clone(&peers),
                synced,
            );
            self.spawn_until_internal_stop(watch);
        }
        Some(peers)
    }

    /// Starts the broker ingress and Trigger routing when configured; deliveries go to Functions
    /// through the in-cluster port.
    pub(super) async fn start_eventing(
        &mut self,
        internal_addr: SocketAddr,
    ) -> Result<Option<Eventing>, StartError> {
        let Some(events) = self.config.events.take() else {
            return Ok(None);
        };
        let eventing = Eventing::start(
            events,
            internal_addr,
            &self.config.domains.cluster,
            self.client.clone(),
            &mut self.registry,
        )
        .await?;
        Ok(Some(eventing))
    }

    /// The request path: routes, queues and forwards to pods, or to the owning peer.
    pub(super) fn proxy(
        &self,
        peers: Option<&Arc<Peering>>,
        invoker: Option<Arc<crate::invoke_async::AsyncInvoker>>,
    ) -> Arc<Proxy> {
        let upstreams = Upstreams::new(self.config.upstream);
        let mut proxy = Proxy::new(
            Arc::clone(&self.table),
            self.config.domains.clone(),
            upstreams,
            Arc::clone(&self.metrics),
        );
        if let Some(peers) = peers {
            proxy = proxy.with_peers(Arc::clone(peers));
        }
        if let Some(invoker) = invoker {
            proxy = proxy.with_async(invoker);
        }
        Arc::new(proxy)
    }

    /// Serves the external port until the first shutdown stage and the in-cluster port until the
    /// second, each draining open requests for up to the drain timeout.
    pub(super) fn serve(&mut self, external: TcpListener, internal: TcpListener, proxy: &Arc<Proxy>) {
        let ports = [
            (external, Port::External, self.stop.clone()),
            (internal, Port::Internal, self.internal_stop.clone()),
        ];
        for (listener, port, stop) in ports {
            let serve = server::serve(
                listener,
                port,
                Arc::clone(proxy),
                self.config.server_limits,
                stop,
                self.config.drain_timeout,
            );
            self.tasks.push(tokio::spawn(serve));
        }
    }

    /// Sends the autoscaler a stats signal per function every stats interval.
    pub(super) fn report_stats(&mut self) {
        let stats = Arc::clone(&self.signals).run_stats(
            Arc::clone(&self.table),
            self.config.stats_interval,
            self.internal_stop.clone(),
        );
        self.tasks.push(tokio::spawn(stats));
    }

    /// Samples instance-seconds until the second shutdown stage and, with a usage sink, starts the
    /// usage reporter, which is stopped (and flushes) only after the data ports drained: the
    /// returned token stops it.
    pub(super) fn report_usage(
        &mut self,
        peers: Option<&Arc<Peering>>,
    ) -> Option<(CancellationToken, JoinHandle<()>)> {
        let sample = usage_report::sample_instances(
            Arc::clone(&self.table),
            peers.cloned(),
            self.internal_stop.clone(),
        );
        self.tasks.push(tokio::spawn(sample));
        let metering = &self.config.metering;
        let uri = metering.usage_sink.clone()?;
        let outbox = Outbox::new(
            metering.buffer_records,
            OutboxMetrics::register(&mut self.registry),
        );
        let sink = HttpSink::new(uri, &self.config.pod_name);
        let reporter = Reporter::new(sink, &self.config.pod_name, outbox);
        let stop = CancellationToken::new();
        // The final flush retries for at most the drain timeout (bounded by the pod's grace period).
        let run = usage_report::run(
            reporter,
            Arc::clone(&self.table),
            metering.flush_interval,
            stop.clone(),
            self.config.drain_timeout.min(Duration::from_secs(10)),
        );
        Some((stop, tokio::spawn(run)))
    }

    /// Turns `/ready` on: at once without watches, else once every watch has synced (signalled by
    /// each watch, not polled), unless shutdown began first.
    pub(super) fn signal_readiness(&mut self) {
        if self.synced.is_empty() {
            self.readiness.set(true);
            return;
        }
        let synced = std::mem::take(&mut self.synced);
        let gate = admin::ready_when_all(synced, self.readiness.clone(), self.internal_stop.clone());
        self.tasks.push(tokio::spawn(gate));
    }
}

/// The record sinks (metering always, the access log when on) and the meters' configuration;
/// registers the metering families in `registry`. Other sinks are added here.
fn hooks(
    config: &ActivatorConfig,
    client: Option<&kube::Client>,
    registry: &mut Registry,
    revision_stats: &Arc<RevisionStats>,
) -> Hooks {
    let families = MeterFamilies::register(registry);
    // The per-revision counts a canary rollout reads (`GET /revisions/stats`).
    let mut sinks: Vec<Arc<dyn RecordSink>> = vec![
        Arc::new(MeterSink),
        Arc::clone(revision_stats) as Arc<dyn RecordSink>,
    ];
    if config.access_log {
        sinks.push(Arc::new(AccessLog::for_process()));
    }
    // The cluster's stamps of a cold start come from the Kubernetes API.
    if let (Some(client), FunctionSource::Kubernetes) = (client, &config.source) {
        sinks.push(Arc::new(AnatomySink::new(
            client.clone(),
            &config.pod_name,
            registry,
        )));
    }
    Hooks {
        recorder: Recorder::new(sinks),
        meter: MeterConfig {
            families,
            defaults: config.metering.defaults,
            keep_usage: config.metering.usage_sink.is_some(),
        },
    }
}

/// Serves `/live`, `/ready` and `/metrics` until `stop`; the admin port outlives the data ports so
/// probes see "not ready" through the drain.
pub(super) async fn serve_admin(
    listener: TcpListener,
    readiness: Readiness,
    registry: Registry,
    stop: CancellationToken,
    metrics: Arc<Metrics>,
    table: Arc<RoutingTable>,
    revision_stats: Arc<RevisionStats>,
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
    let router = admin::router(readiness, Arc::new(registry)).merge(revision_stats::router(revision_stats));
    if let Err(e) = axum::serve(listener, router)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
    {
        tracing::warn!(error = %e, "admin server failed");
    }
    gauge.abort();
}

#[cfg(test)]
#[path = "steps_tests.rs"]
mod tests;
