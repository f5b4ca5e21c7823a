//! The thin IO that runs `schedule` and `kubernetes` sources: a timer loop and a watch, each publishing
//! into the broker for its one Trigger. The caller owns the task (spawn it, abort it when the Trigger
//! changes or goes away).

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use jiff::Timestamp;
use kube::{
    Api, Client,
    api::DynamicObject,
    discovery::pinned_kind,
    runtime::{WatchStreamExt, watcher},
};
use zeroscale_crds::trigger::ScheduleSource;

use crate::{
    broker::{Broker, estimated_size},
    delivery::{Clock, EventSender},
    kubernetes::{ChangeTracker, WatchTarget, object_event},
    router::Route,
    schedule::{Schedule, schedule_event},
};

/// Longest single sleep of the schedule loop: it wakes up at least this often and recomputes, so a
/// wall-clock jump (NTP step, suspended VM) delays a fire by at most this much.
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// A source that stopped.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The schedule cannot run.
    #[error(transparent)]
    Schedule(#[from] crate::schedule::ScheduleError),
    /// The kind could not be found on the API server (it is not served, or discovery failed).
    #[error("cannot find {kind} in the api server: {source}")]
    Discovery {
        /// `group/version/kind`.
        kind: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The broker is shutting down.
    #[error("broker is shutting down")]
    ShuttingDown,
}

/// Runs the schedule of `route`'s Trigger until the broker shuts down; calls `fired` with every fire
/// time whose event was accepted (for `status.lastScheduleTime`).
pub async fn run_schedule<S: EventSender, C: Clock>(
    broker: Broker<S, C>,
    route: Arc<Route>,
    source: ScheduleSource,
    fired: impl Fn(Timestamp) + Send,
) -> Result<(), SourceError> {
    let schedule = Schedule::parse(&source)?;
    let (namespace, name) = (route.trigger.namespace.clone(), route.trigger.trigger.clone());
    let mut next = schedule.next_after(Timestamp::now())?;
    loop {
        let now = Timestamp::now();
        if now < next {
            let wait = Duration::try_from(next.duration_since(now)).unwrap_or(Duration::ZERO);
            tokio::time::sleep(wait.min(MAX_SLEEP)).await;
            continue;
        }
        let event = schedule_event(&namespace, &name, &source, next)?;
        let size = estimated_size(&event);
        broker
            .publish_to(route.clone(), event, size)
            .await
            .map_err(|_| SourceError::ShuttingDown)?;
        fired(next);
        next = schedule.next_after(next)?;
    }
}

/// Watches the objects of `target` and publishes their changes for `route`'s Trigger. Watch errors
/// are retried with back-off by the watcher (and logged); a re-list reports what changed meanwhile.
pub async fn run_kubernetes_source<S: EventSender, C: Clock>(
    client: Client,
    broker: Broker<S, C>,
    route: Arc<Route>,
    target: WatchTarget,
) -> Result<(), SourceError> {
    let kind = format!("{}/{}/{}", target.gvk.group, target.gvk.version, target.gvk.kind);
    let (resource, _) = pinned_kind(&client, &target.gvk)
        .await
        .map_err(|source| SourceError::Discovery { kind, source })?;
    let api: Api<DynamicObject> = Api::namespaced_with(client, &target.namespace, &resource);
    let mut config = watcher::Config::default();
    if let Some(selector) = &target.label_selector {
        config = config.labels(selector);
    }
    let mut stream = watcher(api, config).default_backoff().boxed();
    let mut tracker = ChangeTracker::default();
    let (namespace, name) = (route.trigger.namespace.clone(), route.trigger.trigger.clone());
    while let Some(item) = stream.next().await {
        let event = match item {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!(%namespace, trigger = %name, %error, "kubernetes source watch failed; retrying");
                continue;
            }
        };
        for (change, obj) in tracker.observe(event) {
            match object_event(&namespace, &name, change, &obj, Timestamp::now()) {
                Ok(event) => {
                    let size = estimated_size(&event);
                    broker
                        .publish_to(route.clone(), event, size)
                        .await
                        .map_err(|_| SourceError::ShuttingDown)?;
                }
                Err(error) => tracing::warn!(%namespace, trigger = %name, %error, "object event not built"),
            }
        }
    }
    Ok(())
}
