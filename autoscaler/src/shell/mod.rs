//! The IO shell around the pure core: the CloudEvents endpoint, the Kubernetes watches, the decision
//! loop, `/scale` writes, leader election, and the admin server.

pub mod activator;
pub mod cluster;
pub mod engine;
pub mod events;
pub mod http;
pub mod metrics;
pub mod prediction;
pub mod writer;

use std::{collections::HashMap, sync::Arc, time::Instant};

use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use zeroscale_common::{
    admin::{self, Readiness},
    lease::Leadership,
    shutdown,
};

use crate::{args::RunArgs, kpa::MultiScaler};
use activator::ActivatorReadiness;
use cluster::ClusterView;
use engine::Engine;
use metrics::Metrics;
use writer::Writer;

/// Signals waiting for the decision loop before the endpoint answers 503.
const SIGNAL_QUEUE: usize = 65_536;

/// Why the autoscaler stopped.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// No Kubernetes client could be built.
    #[error("cannot build a kubernetes client: {0}")]
    Kube(#[from] kube::Error),
    /// The events endpoint could not listen.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// Leader election could not start.
    #[error(transparent)]
    Lease(#[from] zeroscale_common::lease::LeaseError),
    /// The runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// `zeroscale-autoscaler run`: logging, the runtime, and the autoscaler until SIGTERM or Ctrl-C.
pub fn run_blocking(args: RunArgs) -> Result<(), Box<dyn std::error::Error>> {
    let _log = args.log.init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ShellError::Runtime)?;
    runtime.block_on(async { run(args, shutdown::on_signal()).await })?;
    Ok(())
}

fn identity(args: &RunArgs) -> String {
    args.identity
        .clone()
        .or_else(|| std::env::var("POD_NAME").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "zeroscale-autoscaler".to_string())
}

/// Runs the autoscaler until `shutdown` is cancelled (see [`shutdown::on_signal`]).
pub async fn run(args: RunArgs, shutdown: CancellationToken) -> Result<(), ShellError> {
    let client = kube::Client::try_default().await?;
    let identity = identity(&args);
    let mut registry = Registry::with_prefix("zeroscale");
    let metrics = Metrics::register(&mut registry);
    let readiness = Readiness::default();
    tokio::spawn(admin::serve(
        args.admin.admin_addr,
        readiness.clone(),
        Arc::new(registry),
        shutdown.clone().cancelled_owned(),
    ));

    // Listen at once: demand that arrives while the watches sync is recorded, not refused.
    let (tx, rx) = mpsc::channel(SIGNAL_QUEUE);
    let listener = tokio::net::TcpListener::bind(args.events_addr)
        .await
        .map_err(|source| ShellError::Listen {
            addr: args.events_addr,
            source,
        })?;
    tracing::info!(addr = %args.events_addr, "events endpoint listening");
    let router = events::router(tx, args.events_token.clone(), metrics.clone());
    let events_stop = shutdown.clone().cancelled_owned();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(events_stop)
            .await
        {
            tracing::error!(error = %e, "events endpoint failed");
        }
    });

    let cluster = ClusterView::start(&client, args.namespace.as_deref());
    let http = http::HttpClient::default();
    let activator = match &args.activator_ready_url {
        Some(url) => ActivatorReadiness::probe(url.clone(), http::HttpClient::unpooled(), metrics.clone()),
        None => ActivatorReadiness::assumed(),
    };
    // Without leader election this replica always leads; the sender must outlive the receivers.
    let (_always_leader, always) = watch::channel(true);
    let (leadership, leader) = if args.leader_elect {
        let mut config = args.lease.config();
        if let Some(id) = &args.identity {
            config.identity = id.clone();
        }
        let leadership = Leadership::start(client.clone(), config).await?;
        let leader = leadership.subscribe();
        (Some(leadership), leader)
    } else {
        (None, always)
    };
    spawn_leader_metric(leader.clone(), metrics.clone());

    // `/ready` turns on when both watches report their first full list.
    tokio::select! {
        synced = cluster.ready() => if synced {
            readiness.set(true);
            tracing::info!("watches synced; deciding");
        },
        () = shutdown.cancelled() => {}
    }
    let (failed_tx, failed_rx) = mpsc::unbounded_channel();
    let engine = Engine {
        scalers: MultiScaler::new(args.stale_replica_timeout),
        epoch: Instant::now(),
        cluster,
        writer: Writer::new(
            client,
            &identity,
            args.events_sink.clone(),
            http,
            metrics.clone(),
            failed_tx,
        )
        .with_sink_token(args.events_sink_token_file.clone()),
        metrics,
        activator,
        leader,
        pending: HashMap::new(),
        bad_specs: HashMap::new(),
        predictions: prediction::Predictions::default(),
    };
    engine
        .run(rx, failed_rx, args.tick_interval, shutdown.cancelled())
        .await;
    readiness.drain();
    if let Some(leadership) = leadership {
        leadership.release().await;
    }
    Ok(())
}

fn spawn_leader_metric(mut leader: watch::Receiver<bool>, metrics: Metrics) {
    tokio::spawn(async move {
        loop {
            let is_leader = *leader.borrow_and_update();
            metrics.leader.set(i64::from(is_leader));
            tracing::info!(leader = is_leader, "leadership");
            if leader.changed().await.is_err() {
                break;
            }
        }
    });
}
