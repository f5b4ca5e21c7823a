//! Zeroscale operator: reconciles Functions into a Deployment and two Services each, and reports their
//! state in the Function's status; reports whether each Trigger can route events in its status (see
//! `docs/operator.md`).
//!
//! Reconcile ([`reconcile`]) is validate ([`validate`], pure, returns a
//! [`validate::ValidatedFunction`]) → build ([`build`], pure, returns the children) → apply ([`apply`],
//! server-side apply only, and only of what changed) → status ([`status`], pure, computed from what
//! was applied and the pods in the watches' caches ([`caches`]), written only when it changed).
//! Errors: [`error::FunctionError`]. Triggers: see [`trigger`]. A Function's `Ready` transitions go
//! out as platform CloudEvents ([`platform`]).

pub mod api_requests;
pub mod apply;
pub mod args;
pub mod build;
pub mod caches;
pub mod controller;
pub mod drain;
pub mod error;
pub mod events;
pub mod failures;
#[cfg(test)]
mod fixtures;
pub mod last_applied;
pub mod metrics;
pub mod platform;
pub mod reconcile;
pub mod revision_sync;
pub mod revisions;
pub mod rollout;
pub mod status;
#[cfg(test)]
mod test_objects;
pub mod trigger;
pub mod validate;

use std::sync::Arc;

use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::events::{Recorder, Reporter};
use kube::{Client, Config};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use zeroscale_common::admin::{self, Readiness};
use zeroscale_common::lease::{Leadership, LeaseError};

pub use args::Args;

use crate::build::BuildSettings;
use crate::caches::Caches;
use crate::metrics::Metrics;
use crate::platform::{PlatformEvents, SinkConfig};
use crate::reconcile::Context;
use crate::trigger::TriggerContext;
use zeroscale_eventing::delivery::HttpSender;

/// Name of the controller in Events and logs.
pub const CONTROLLER_NAME: &str = "zeroscale-operator";

/// Why the operator stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The kubeconfig could not be read.
    #[error("cannot read kubeconfig")]
    Kubeconfig(#[source] kube::config::KubeconfigError),
    /// No API client could be built.
    #[error("cannot create a Kubernetes client")]
    Client(#[source] kube::Error),
    /// Leader election could not start.
    #[error("cannot start leader election")]
    Lease(#[source] LeaseError),
    /// Another replica took the Lease; exiting lets this one restart as a standby.
    #[error("lost leadership")]
    LostLeadership,
}

/// The API client, counting its requests in `metrics`.
async fn client(args: &Args, metrics: &Metrics) -> Result<Client, RunError> {
    let config = match &args.kubeconfig {
        None => Config::infer()
            .await
            .map_err(|e| RunError::Client(kube::Error::InferConfig(e)))?,
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path).map_err(RunError::Kubeconfig)?;
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(RunError::Kubeconfig)?
        }
    };
    let builder = ClientBuilder::try_from(config).map_err(RunError::Client)?;
    Ok(builder
        .with_layer(&api_requests::layer(metrics.api_requests.clone()))
        .build())
}

/// Runs the operator until `shutdown` is cancelled (SIGTERM/Ctrl-C, see
/// [`zeroscale_common::shutdown::on_signal`]; then it shuts down gracefully) or until leadership is lost.
pub async fn run(args: Args, shutdown: CancellationToken) -> Result<(), RunError> {
    let mut registry = Registry::with_prefix("zeroscale");
    let metrics = Metrics::register(&mut registry);
    let client = client(&args, &metrics).await?;
    let readiness = Readiness::default();
    let admin = tokio::spawn(admin::serve(
        args.admin.admin_addr,
        readiness.clone(),
        Arc::new(registry),
        shutdown.clone().cancelled_owned(),
    ));

    let lease = args.lease.config();
    let identity = lease.identity.clone();
    let mut leadership = Leadership::start(client.clone(), lease)
        .await
        .map_err(RunError::Lease)?;
    // A standby is ready: it is healthy and waits to take over.
    readiness.set(true);
    tracing::info!(%identity, lease = %args.lease.lease_name, "waiting for leadership");
    let leading = tokio::select! {
        () = leadership.acquired() => true,
        () = shutdown.cancelled() => false,
    };
    let mut result = Ok(());
    if leading {
        metrics.leader.set(1);
        readiness.set(false);
        let reporter = Reporter {
            controller: CONTROLLER_NAME.into(),
            instance: Some(identity),
        };
        let build = BuildSettings {
            activator_service: args.activator_service.clone(),
            progress_deadline_seconds: args.progress_deadline_seconds,
            pre_stop_sleep_seconds: args.pre_stop_sleep_seconds,
            default_cpu_request: args.default_cpu_request(),
        };
        let recorder = Recorder::new(client.clone(), reporter);
        let (caches, cache_writers) = Caches::new();
        let platform = (!args.events_sink.is_empty()).then(|| {
            PlatformEvents::start(
                args.platform_sink(),
                HttpSender::default(),
                SinkConfig::default(),
                metrics.platform_events.clone(),
            )
        });
        let ctx = Arc::new(
            Context::new(
                client.clone(),
                build,
                args.domain.clone(),
                recorder.clone(),
                metrics.clone(),
                caches,
            )
            .with_platform(platform),
        );
        let triggers = Arc::new(
            TriggerContext::new(client, recorder, metrics.clone()).with_allowed_hosts(args.allowed_hosts()),
        );
        let ns = args.watch_namespace.clone();
        let controllers = async {
            tokio::join!(
                controller::run(
                    ctx,
                    ns.clone(),
                    readiness.clone(),
                    cache_writers,
                    shutdown.clone()
                ),
                trigger::controller::run(triggers, ns.clone(), shutdown.clone()),
            );
        };
        // The Lease is renewed until the controllers end, so they get a bounded time to drain.
        let drained = async {
            if !drain::within_grace(controllers, &shutdown, drain::SHUTDOWN_GRACE).await {
                tracing::warn!(grace = ?drain::SHUTDOWN_GRACE, "reconciles still running at the end of the shutdown grace period; stopping anyway");
            }
        };
        result = tokio::select! {
            () = drained => Ok(()),
            () = leadership.lost() => Err(RunError::LostLeadership),
        };
        metrics.leader.set(0);
    }
    readiness.drain();
    leadership.release().await;
    if result.is_ok() {
        // The admin server stops with the same shutdown token.
        match admin.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "admin server failed"),
            Err(e) => tracing::warn!(error = %e, "admin server task failed"),
            Ok(Ok(())) => {}
        }
    }
    tracing::info!("operator stopped");
    result
}
