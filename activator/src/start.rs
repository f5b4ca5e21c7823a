//! Starting and stopping the activator. [`Activator::start`] runs named steps (see `start/steps.rs`):
//! build the core, start the watches, bind the ports, start peering and eventing, serve, report stats,
//! and signal readiness once the watches have synced. Shutdown runs in stages: the external port, then
//! the broker, then the in-cluster port and the watches, then the admin port.

mod config;
mod steps;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use zeroscale_common::{admin::Readiness, shutdown};

pub use config::{ActivatorConfig, FunctionSource, MeteringConfig};

use crate::{
    events::{Eventing, EventsError},
    peers::Peering,
    signal_sender::UrlError,
    static_config::StaticConfigError,
    table::RoutingTable,
};
use steps::{Listeners, Wiring, local, serve_admin};

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
    /// Stops the usage reporter (which then flushes) and its task; stopped after the data ports.
    usage: Option<(CancellationToken, JoinHandle<()>)>,
    drain_timeout: Duration,
}

impl Activator {
    /// Binds every port and starts serving.
    pub async fn start(config: ActivatorConfig) -> Result<Self, StartError> {
        let mut wiring = Wiring::new(config).await?;
        wiring.start_watches().await?;
        let listeners = Listeners::bind(&wiring.config).await?;
        let (external_addr, internal_addr) = (local(&listeners.external), local(&listeners.internal));
        let admin_addr = local(&listeners.admin);
        let peers = wiring.start_peering(internal_addr);
        let eventing = wiring.start_eventing(internal_addr).await?;
        let proxy = wiring.proxy(peers.as_ref(), eventing.as_ref().map(Eventing::invoker));
        wiring.serve(listeners.external, listeners.internal, &proxy);
        wiring.report_stats();
        let usage = wiring.report_usage(peers.as_ref());
        wiring.signal_readiness();
        let Wiring {
            config,
            registry,
            metrics,
            table,
            revision_stats,
            readiness,
            stop,
            internal_stop,
            tasks,
            ..
        } = wiring;
        let admin_stop = CancellationToken::new();
        let admin_task = tokio::spawn(serve_admin(
            listeners.admin,
            readiness.clone(),
            registry,
            admin_stop.clone(),
            metrics,
            Arc::clone(&table),
            revision_stats,
        ));
        tracing::info!(%external_addr, %internal_addr, %admin_addr, "activator serving");
        Ok(Self {
            external_addr,
            internal_addr,
            admin_addr,
            broker_addr: eventing.as_ref().map(|e| e.broker_addr),
            table,
            readiness,
            peers,
            stop,
            internal_stop,
            admin_stop,
            tasks,
            admin_task,
            eventing,
            usage,
            drain_timeout: config.drain_timeout,
        })
    }

    /// Serves until the process's `shutdown` token is cancelled, then drains: not ready but serving
    /// for `drain_delay` (`--drain-delay`), then [`Activator::shutdown`] and [`Activator::wait`].
    pub async fn run_until(self, shutdown: &CancellationToken, drain_delay: Duration) {
        shutdown::drain_delay(shutdown, &self.readiness, drain_delay).await;
        tracing::info!(drain = ?self.drain_timeout, "draining");
        self.shutdown();
        self.wait().await;
    }

    /// The broker's routes, when eventing runs (feed them with [`crate::events::TriggerSource::Manual`]).
    pub fn event_routes(&self) -> Option<&zeroscale_eventing::router::RoutingTable> {
        self.eventing.as_ref().map(|e| &e.routes)
    }

    /// The Functions' async invocation policies, when eventing runs (tests set them directly).
    pub fn async_functions(&self) -> Option<&zeroscale_eventing::async_invocation::AsyncFunctions> {
        self.eventing.as_ref().map(|e| &e.async_functions)
    }

    /// Reports not ready on `/ready` while still serving everything as usual (the drain delay after
    /// SIGTERM, see `--drain-delay`).
    pub fn set_unready(&self) {
        self.readiness.drain();
    }

    /// Starts draining: not ready, no new connections, open requests finish within the drain period.
    /// With eventing, the in-cluster port keeps serving until the broker has drained (see
    /// [`Activator::wait`]).
    pub fn shutdown(&self) {
        self.readiness.drain();
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
        // Every request has ended: the last usage goes out before the process does.
        if let Some((stop, task)) = self.usage {
            stop.cancel();
            let _ = task.await;
        }
        self.admin_stop.cancel();
        let _ = self.admin_task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_shutdown_token_drains_and_stops_the_activator() {
        let activator = Activator::start(ActivatorConfig::default())
            .await
            .expect("starts");
        assert!(activator.readiness.get(), "a manual source has nothing to sync");
        let readiness = activator.readiness.clone();
        let shutdown = CancellationToken::new();
        let run = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { activator.run_until(&shutdown, Duration::ZERO).await }
        });
        tokio::task::yield_now().await;
        assert!(
            readiness.get() && !run.is_finished(),
            "serves until the token is cancelled"
        );
        shutdown.cancel();
        run.await.expect("drains and stops");
        assert!(!readiness.get());
    }
}
