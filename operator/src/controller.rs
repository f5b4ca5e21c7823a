//! Wires the reconciler into a kube-runtime Controller: Functions, the Deployments and Services they
//! own, and their pods (mapped to their Function by the `zeroscale.dev/function` label).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::runtime::controller::{Config, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;
use zeroscale_common::admin::Readiness;
use zeroscale_crds::Function;
use zeroscale_crds::function::{FUNCTION_LABEL, MANAGED_BY, MANAGED_BY_LABEL};

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

/// Runs the controller until `shutdown` is cancelled and the reconciles in flight have finished (at once
/// when the Function cache never synced, see [`until_stopped`]). `readiness` turns true once the Function
/// cache has synced.
pub async fn run(
    ctx: Arc<Context>,
    watch_namespace: Option<String>,
    readiness: Readiness,
    shutdown: CancellationToken,
) {
    let client = ctx.client.clone();
    let ns = watch_namespace.as_deref();
    let children = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));
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
        .owns(api::<Deployment>(&client, ns), children.clone())
        .owns(api::<Service>(&client, ns), children)
        .watches(
            api::<Pod>(&client, ns),
            watcher::Config::default().labels(FUNCTION_LABEL),
            pod_function,
        )
        .with_config(Config::default().debounce(DEBOUNCE).concurrency(CONCURRENCY))
        .graceful_shutdown_on(shutdown.clone().cancelled_owned());
    let controller = controller
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((function, _)) => tracing::debug!(function = %function, "reconciled"),
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
