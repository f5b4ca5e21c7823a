//! The eventing data plane inside the activator (`docs/eventing.md`): the broker ingress on the
//! broker port, the in-memory broker delivering through this activator's own request path, the
//! Trigger watch that keeps the routes current, and the `schedule`/`kubernetes` sources, which run
//! on the one replica holding the sources Lease.

pub mod schedule_status;
pub mod sender;
pub mod sources;
pub mod static_triggers;
pub mod store_args;
pub mod supervisor;
pub mod triggers;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use prometheus_client::registry::Registry;
use tokio::{sync::watch, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use zeroscale_common::lease::LeaseConfig;
use zeroscale_eventing::{
    async_invocation::{
        AsyncFunctions, InvocationStore,
        jetstream::JetStreamInvocations,
        jetstream_worker::AsyncWorkers,
        memory::{self as async_memory, MemoryInvocations},
    },
    auth::{BrokerAuth, CacheConfig},
    auth_kube::KubeVerifier,
    backlog::sampler::{SAMPLE_INTERVAL, Sampler, StoreBacklog},
    broker::{Broker, BrokerConfig},
    delivery::{Deliverer, DeliveryDefaults, SendError, TokioClock},
    ingress::{self, IngressConfig},
    metrics::EventMetrics,
    router::RoutingTable,
    store::{
        Backend, EventStore, StoreConfig,
        consumer::Consumers,
        jetstream::{JetStreamError, JetStreamStore},
        memory::MemoryStore,
    },
};

use crate::invoke_async::AsyncInvoker;

use self::{
    sender::ActivatorSender, static_triggers::StaticTriggersError, supervisor::Supervisor, triggers::Triggers,
};

/// Where Triggers come from.
#[derive(Clone, Debug)]
pub enum TriggerSource {
    /// A watch on the API server (`None`: every namespace), with sources run by the holder of the
    /// Lease `lease_namespace/lease_name`.
    Kubernetes {
        /// Namespace to watch, or all.
        namespace: Option<String>,
        /// Namespace of the sources Lease.
        lease_namespace: String,
        /// Name of the sources Lease.
        lease_name: String,
    },
    /// A YAML file of Trigger manifests read once; this process runs their schedules.
    Static(PathBuf),
    /// None: the caller fills [`Eventing::routes`] (tests).
    Manual,
}

/// Settings of the eventing data plane.
#[derive(Clone, Debug)]
pub struct EventsConfig {
    /// Broker ingress address.
    pub broker_addr: SocketAddr,
    /// Trigger source.
    pub triggers: TriggerSource,
    /// Ingress limits.
    pub ingress: IngressConfig,
    /// Broker limits.
    pub broker: BrokerConfig,
    /// Where accepted broker events are kept (`--event-store`).
    pub store: StoreConfig,
    /// Delivery defaults for Triggers that leave them out, and the outbound allow-list.
    pub defaults: DeliveryDefaults,
    /// Who may post to the broker ingress.
    pub auth: IngressAuth,
}

/// Who may post to the broker ingress (`docs/eventing.md`, "Authentication").
#[derive(Clone, Debug, Default)]
pub enum IngressAuth {
    /// Anyone who can reach the port.
    #[default]
    Off,
    /// A ServiceAccount token for the audience `zeroscale-broker` whose owner may `create`
    /// `brokers.zeroscale.dev` in the event's namespace, checked with the API server.
    Kubernetes,
    /// The given gate (tests use a fake verifier).
    Custom(Arc<BrokerAuth>),
}

/// Why eventing could not start.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// The broker port could not be bound.
    #[error("cannot bind the broker port {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The data port address cannot be used for deliveries.
    #[error("cannot deliver through the data port: {0}")]
    Sender(#[from] SendError),
    /// The static Trigger file is unusable.
    #[error(transparent)]
    StaticTriggers(#[from] StaticTriggersError),
    /// Broker authentication needs the Kubernetes API, and there is no client.
    #[error("--broker-auth needs the Kubernetes API to review tokens; it cannot run with static files alone")]
    AuthWithoutCluster,
    /// The JetStream store cannot be used.
    #[error(transparent)]
    JetStream(#[from] JetStreamError),
}

/// The running eventing data plane.
pub struct Eventing {
    /// Bound broker ingress address.
    pub broker_addr: SocketAddr,
    /// The broker's routes (feed them directly with [`TriggerSource::Manual`]).
    pub routes: RoutingTable,
    /// The Functions' async invocation policies (kept from the Function watch, or fed directly).
    pub async_functions: AsyncFunctions,
    broker: Broker<ActivatorSender>,
    consumers: Option<Consumers>,
    backlog_task: JoinHandle<()>,
    invoker: Arc<AsyncInvoker>,
    async_workers: Option<AsyncWorkers>,
    async_watch: Option<JoinHandle<()>>,
    ingress_stop: CancellationToken,
    ingress_task: JoinHandle<()>,
    triggers_task: Option<JoinHandle<()>>,
    election_stop: CancellationToken,
    election_task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Eventing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Eventing")
            .field("broker_addr", &self.broker_addr)
            .finish_non_exhaustive()
    }
}

/// What the configured event store backend provides: the Triggers' store (and its consumers and
/// backlog records when durable) and the asynchronous invocations' store (and its workers).
struct Backends {
    store: Arc<dyn EventStore>,
    consumers: Option<Consumers>,
    durable: Option<Arc<dyn StoreBacklog>>,
    invocations: Arc<dyn InvocationStore>,
    async_workers: Option<AsyncWorkers>,
}

impl Eventing {
    /// Binds the broker port and starts the broker, the ingress and the Trigger source. Deliveries
    /// to Functions go to the data port bound at `internal` with hosts in `cluster_domain`.
    pub async fn start(
        config: EventsConfig,
        internal: SocketAddr,
        cluster_domain: &str,
        client: Option<kube::Client>,
        registry: &mut Registry,
    ) -> Result<Self, EventsError> {
        let metrics = EventMetrics::register(registry);
        let routes = RoutingTable::default();
        let sender = Arc::new(ActivatorSender::new(internal, cluster_domain)?);
        let deliverer = Deliverer::new(sender.clone(), metrics.clone());
        // Sources and, with the memory store, the broker ingress deliver through this broker.
        let broker = Broker::start(routes.clone(), deliverer, config.broker.clone(), metrics.clone());
        let functions = AsyncFunctions::default();
        let Backends {
            store,
            consumers,
            durable,
            invocations,
            async_workers,
        } = match config.store.backend {
            Backend::Memory => {
                let store = MemoryStore::new(
                    broker.clone(),
                    config.store.duplicate_window,
                    zeroscale_eventing::store::dedup::DEFAULT_DEDUP_CAPACITY,
                    metrics.clone(),
                );
                let invocations = MemoryInvocations::new(
                    sender.clone(),
                    Arc::new(TokioClock),
                    functions.clone(),
                    config.store.duplicate_window,
                    async_memory::DEFAULT_CAPACITY,
                );
                Backends {
                    store: Arc::new(store),
                    consumers: None,
                    durable: None,
                    invocations: Arc::new(invocations),
                    async_workers: None,
                }
            }
            Backend::JetStream => {
                let store = Arc::new(
                    JetStreamStore::connect(config.store.jetstream.clone(), routes.clone(), metrics.clone())
                        .await?,
                );
                let consumers = Consumers::start(store.clone(), sender.clone(), metrics.clone());
                let invocations = Arc::new(JetStreamInvocations::new(store.clone()));
                let workers = AsyncWorkers::start(invocations.clone(), sender.clone(), functions.clone());
                let durable: Arc<dyn StoreBacklog> = store.clone();
                Backends {
                    store,
                    consumers: Some(consumers),
                    durable: Some(durable),
                    invocations,
                    async_workers: Some(workers),
                }
            }
        };
        // Queue depth and oldest age per Trigger: the memory broker's, plus the store's own records.
        let backlog_task = Sampler::new(
            routes.clone(),
            broker.pending(),
            durable,
            metrics.triggers().clone(),
        )
        .spawn(SAMPLE_INTERVAL);
        let invoker = Arc::new(AsyncInvoker::new(
            invocations,
            functions.clone(),
            config.store.async_max_body,
        ));
        let async_watch = match (&config.triggers, &client) {
            (TriggerSource::Kubernetes { .. }, Some(client)) => {
                Some(tokio::spawn(crate::invoke_async::functions::watch(
                    client.clone(),
                    functions.clone(),
                    config.defaults.clone(),
                )))
            }
            _ => None,
        };
        tracing::info!(store = %config.store.backend, "event store");
        let listener = crate::server::bind(config.broker_addr)
            .await
            .map_err(|source| EventsError::Bind {
                addr: config.broker_addr,
                source,
            })?;
        let broker_addr = listener.local_addr().unwrap_or(config.broker_addr);
        let auth = match (&config.auth, &client) {
            (IngressAuth::Off, _) => None,
            (IngressAuth::Custom(auth), _) => Some(Arc::clone(auth)),
            (IngressAuth::Kubernetes, Some(client)) => Some(Arc::new(BrokerAuth::new(
                KubeVerifier::new(client.clone()),
                CacheConfig::default(),
            ))),
            (IngressAuth::Kubernetes, None) => return Err(EventsError::AuthWithoutCluster),
        };
        tracing::info!(auth = auth.is_some(), allowed_hosts = %config.defaults.allowed_hosts.list(), "broker ingress settings");
        let router = ingress::router(store, config.ingress.clone(), metrics, auth);
        let ingress_stop = CancellationToken::new();
        let stop = ingress_stop.clone();
        let ingress_task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
            {
                tracing::warn!(%error, "broker ingress failed");
            }
        });

        let spawn = sources::spawner(broker.clone(), client.clone());
        let mut triggers = Triggers::new(routes.clone(), config.defaults, Supervisor::new(spawn));
        let election_stop = CancellationToken::new();
        let (mut triggers_task, mut election_task) = (None, None);
        match (&config.triggers, client) {
            (
                TriggerSource::Kubernetes {
                    namespace,
                    lease_namespace,
                    lease_name,
                },
                Some(client),
            ) => {
                let (leader_tx, leader_rx) = watch::channel(false);
                let lease = LeaseConfig::new(lease_namespace.clone(), lease_name.clone());
                election_task = Some(tokio::spawn(sources::elect(
                    client.clone(),
                    lease,
                    leader_tx,
                    election_stop.clone(),
                )));
                triggers_task = Some(tokio::spawn(triggers::watch(
                    client,
                    namespace.clone(),
                    triggers,
                    leader_rx,
                )));
            }
            (TriggerSource::Static(path), _) => {
                for trigger in static_triggers::load(path).await? {
                    triggers.apply(&trigger);
                }
                // No cluster, so no election: this process is the only one running these sources.
                triggers.set_leader(true);
                triggers_task = Some(tokio::spawn(async move {
                    let _triggers = triggers;
                    std::future::pending::<()>().await;
                }));
            }
            (TriggerSource::Kubernetes { .. }, None) => {
                // Only tests build the activator this way; say it, since no Trigger will route.
                tracing::warn!("no kubernetes client: Triggers are not watched and the broker has no routes");
            }
            (TriggerSource::Manual, _) => {}
        }
        tracing::info!(%broker_addr, "broker ingress serving");
        Ok(Self {
            broker_addr,
            routes,
            async_functions: functions,
            broker,
            consumers,
            backlog_task,
            invoker,
            async_workers,
            async_watch,
            ingress_stop,
            ingress_task,
            triggers_task,
            election_stop,
            election_task,
        })
    }

    /// Accepts async invocations (`Prefer: respond-async`) into this data plane's event store.
    pub fn invoker(&self) -> Arc<AsyncInvoker> {
        Arc::clone(&self.invoker)
    }

    /// Stops the sources and releases their Lease, refuses new events (503) and waits up to `drain`
    /// for accepted events to finish delivery; returns how many did not (they are lost).
    pub async fn shutdown(self, drain: Duration) -> usize {
        self.backlog_task.abort();
        if let Some(task) = self.triggers_task {
            task.abort();
            let _ = task.await;
        }
        self.election_stop.cancel();
        if let Some(task) = self.election_task {
            let _ = task.await;
        }
        if let Some(task) = self.async_watch {
            task.abort();
        }
        if let Some(workers) = self.async_workers {
            // Unfinished invocations are redelivered by JetStream.
            workers.shutdown(drain).await;
        }
        if let Some(consumers) = self.consumers {
            // Unfinished JetStream messages are not lost: JetStream redelivers them.
            consumers.shutdown(drain).await;
        }
        let lost = self.broker.shutdown(drain).await;
        if lost > 0 {
            tracing::error!(lost, "accepted events not delivered before the drain ended");
        }
        self.ingress_stop.cancel();
        let _ = self.ingress_task.await;
        lost
    }
}
