//! The IO around source tasks: spawning a Trigger's `schedule` or `kubernetes` source, and the
//! leader election that decides which replica runs them.

use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use zeroscale_common::lease::{Leadership, LeaseConfig};
use zeroscale_eventing::{
    broker::Broker,
    sources::{SourceError, run_kubernetes_source, run_schedule},
};

use super::{
    schedule_status,
    sender::ActivatorSender,
    supervisor::{SourceJob, SourceSpec, Spawn},
};

/// Pause before a source or the election is tried again after an error.
const RETRY_PAUSE: Duration = Duration::from_secs(5);
/// Longest wait for the Lease to be released at shutdown.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`Spawn`] that runs jobs against `broker`; `kubernetes` sources need `client`.
pub fn spawner(broker: Broker<ActivatorSender>, client: Option<kube::Client>) -> Spawn {
    Box::new(move |job: &SourceJob| {
        let (broker, route) = (broker.clone(), job.route.clone());
        let (namespace, trigger) = (route.trigger.namespace.clone(), route.trigger.trigger.clone());
        match job.spec.clone() {
            SourceSpec::Schedule(schedule) => {
                let client = client.clone();
                tokio::spawn(async move {
                    let fired = {
                        let (namespace, trigger) = (namespace.clone(), trigger.clone());
                        move |time| {
                            tracing::info!(%namespace, %trigger, %time, "schedule fired");
                            if let Some(client) = &client {
                                schedule_status::record(
                                    client.clone(),
                                    namespace.clone(),
                                    trigger.clone(),
                                    time,
                                );
                            }
                        }
                    };
                    // Unlike a watch, a schedule cannot fail transiently: its errors are an invalid
                    // schedule (which the operator reports on the Trigger), no next fire time, or
                    // shutdown, so it is not retried.
                    if let Err(error) = run_schedule(broker, route, schedule, fired).await {
                        tracing::warn!(%namespace, %trigger, %error, "schedule stopped");
                    }
                })
            }
            SourceSpec::Kubernetes(target) => {
                let client = client.clone();
                tokio::spawn(async move {
                    let Some(client) = client else {
                        tracing::warn!(%namespace, %trigger, "kubernetes source needs the kubernetes api; not started");
                        return;
                    };
                    loop {
                        let run = run_kubernetes_source(
                            client.clone(),
                            broker.clone(),
                            route.clone(),
                            target.clone(),
                        );
                        match run.await {
                            Ok(()) | Err(SourceError::ShuttingDown) => return,
                            Err(error) => {
                                tracing::warn!(%namespace, %trigger, %error, "kubernetes source failed; retrying")
                            }
                        }
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                })
            }
        }
    })
}

/// Competes for the sources Lease and mirrors whether this process holds it into `leader`, until
/// `stop`, when it releases the Lease (so another replica takes the sources over at once).
pub async fn elect(
    client: kube::Client,
    config: LeaseConfig,
    leader: watch::Sender<bool>,
    stop: CancellationToken,
) {
    let leadership = loop {
        tokio::select! {
            started = Leadership::start(client.clone(), config.clone()) => match started {
                Ok(leadership) => break leadership,
                Err(error) => tracing::warn!(lease = %config.name, error = %error, "cannot start the sources election; retrying"),
            },
            () = stop.cancelled() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(RETRY_PAUSE) => {}
            () = stop.cancelled() => return,
        }
    };
    let mut state = leadership.subscribe();
    loop {
        leader.send_replace(*state.borrow_and_update());
        tokio::select! {
            changed = state.changed() => if changed.is_err() { break },
            () = stop.cancelled() => break,
        }
    }
    leader.send_replace(false);
    if tokio::time::timeout(RELEASE_TIMEOUT, leadership.release())
        .await
        .is_err()
    {
        tracing::warn!(lease = %config.name, "sources lease not released in time; it expires instead");
    }
}
