//! Wires the reconciler into a kube-runtime Controller: Functions, the Deployments and Services they
//! own, and their pods (mapped to their Function by the `zeroscale.dev/function` label). The watches
//! of the last three also fill the caches the reconciler reads ([`crate::caches`]).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::runtime::controller::{self, Config, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;
use zeroscale_common::admin::Readiness;
use zeroscale_crds::Function;
use zeroscale_crds::function::{FUNCTION_LABEL, MANAGED_BY, MANAGED_BY_LABEL};

use crate::apply::trim_deployment;
use crate::caches::{CacheWriters, trim_pod};
use crate::drain::{Stopped, until_stopped};
use crate::error::chain;
use crate::reconcile::{Context, error_policy, reconcile};

/// Pod and Deployment status changes come in bursts; reconcile once per burst.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// Functions reconciled in parallel.
const CONCURRENCY: u16 = 8;

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The Function a pod belongs to, by its label.
pub fn pod_function(pod: Pod) -> Option<ObjectRef<Function>> {
    let name = pod.labels().get(FUNCTION_LABEL)?;
    Some(ObjectRef::new(name).within(&pod.namespace()?))
}

/// The objects of `api` matching `config`, kept in `writer`'s cache as they arrive (after `modify`).
fn cached<K>(
    api: Api<K>,
    config: watcher::Config,
    writer: reflector::store::Writer<K>,
    modify: impl FnMut(&mut K) + Send + 'static,
) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    watcher(api, config)
        .default_backoff()
        .modify(modify)
        .reflect(writer)
        .applied_objects()
}

/// Drops a Service's managed fields, which the operator does not read: they are a good part of each
/// cached object.
fn without_managed_fields(service: &mut Service) {
    service.metadata.managed_fields = None;
}

/// Runs the controller until `shutdown` is cancelled and the reconciles in flight have finished (at once
/// when the Function cache never synced, see [`until_stopped`]). `readiness` turns true once the Function
/// cache has synced. The watches of pods, Deployments and Services fill `writers`, whose caches the
/// reconciler reads ([`crate::caches`]).
pub async fn run(
    ctx: Arc<Context>,
    watch_namespace: Option<String>,
    readiness: Readiness,
    writers: CacheWriters,
    shutdown: CancellationToken,
) {
    let client = ctx.client.clone();
    let ns = watch_namespace.as_deref();
    let children = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));
    let deployments = cached(
        api::<Deployment>(&client, ns),
        children.clone(),
        writers.deployments,
        trim_deployment,
    );
    let services = cached(
        api::<Service>(&client, ns),
        children,
        writers.services,
        without_managed_fields,
    );
    let pods = cached(
        api::<Pod>(&client, ns),
        watcher::Config::default().labels(FUNCTION_LABEL),
        writers.pods,
        trim_pod,
    );
    // Our own reflector rather than `Controller::new`'s: its stream says when the first list is in
    // the cache (`InitDone`), which is when the operator is ready. (The store's own ready signal
    // wakes only its latest waiter, the controller's, so it cannot be awaited beside it.)
    let (reader, writer) = reflector::store();
    let synced = reader.clone();
    let functions = watcher(
        api::<Function>(&client, ns),
        watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    .reflect(writer)
    .inspect(move |event| {
        if matches!(event, Ok(watcher::Event::InitDone)) && !readiness.get() {
            tracing::info!("function cache synced");
            readiness.set(true);
        }
    })
    .applied_objects();
    let controller = Controller::for_stream(functions, reader)
        .owns_stream(deployments)
        .owns_stream(services)
        .watches_stream(pods, pod_function)
        .with_config(Config::default().debounce(DEBOUNCE).concurrency(CONCURRENCY))
        .graceful_shutdown_on(shutdown.clone().cancelled_owned());
    let controller = controller
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((function, _)) => tracing::debug!(function = %function, "reconciled"),
                // A watch that fails (say, RBAC forbids it) keeps its cache from syncing, and a
                // reconcile waits for the caches: say so at the level operators read. The watch
                // retries with back-off, which paces these lines.
                Err(e @ controller::Error::QueueError(_)) => {
                    tracing::warn!(error = %chain(&e), "watch failed")
                }
                // Failed reconciles are logged by the error policy.
                Err(e) => tracing::debug!(error = %chain(&e), "controller error"),
            }
        });
    // The store's ready signal wakes only its latest waiter; this one and the runner's are polled by
    // the same task (both inside `until_stopped`), so the wake-up reaches both.
    let synced = async {
        // An error means the writer is gone, and with it the watch: it will never sync.
        if synced.wait_until_ready().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    if until_stopped(controller, synced, &shutdown).await == Stopped::BeforeSync {
        tracing::warn!("function controller stopped before its first sync");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_map_to_their_function() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": { "name": "hello-abc", "namespace": "ns", "labels": { "zeroscale.dev/function": "hello" } }
        }))
        .expect("pod");
        let target = pod_function(pod).expect("mapped");
        assert_eq!(
            (target.name.as_str(), target.namespace.as_deref()),
            ("hello", Some("ns"))
        );
        assert!(pod_function(Pod::default()).is_none());
    }
}
