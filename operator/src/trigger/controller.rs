//! Wires the Trigger reconciler into a kube-runtime Controller: Triggers, and Functions mapped to the
//! Triggers of their namespace that name them (so a Trigger turns ready when its Function is created
//! later, and not ready when it is deleted).

use std::sync::Arc;

use futures::StreamExt;
use kube::runtime::controller::{Config, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use tokio_util::sync::CancellationToken;
use zeroscale_crds::Function;
use zeroscale_crds::trigger::Trigger;

use super::check::references_function;
use super::reconcile::{TriggerContext, error_policy, reconcile};
use crate::drain::{Stopped, until_stopped};
use crate::error::chain;

/// Triggers reconciled in parallel; each reconcile is a few reads and at most one status write.
const CONCURRENCY: u16 = 4;

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The Triggers among `triggers` that name `function` (same namespace) as subscriber or dead-letter sink.
pub fn triggers_of<'a>(
    function: &'a Function,
    triggers: impl IntoIterator<Item = Arc<Trigger>> + 'a,
) -> impl Iterator<Item = ObjectRef<Trigger>> + 'a {
    let namespace = function.namespace();
    let name = function.name_any();
    triggers
        .into_iter()
        .filter(move |t| t.namespace() == namespace && references_function(t, &name))
        .map(|t| ObjectRef::from_obj(t.as_ref()))
}

/// Runs the Trigger controller until `shutdown` is cancelled and the reconciles in flight have finished
/// (at once when the Trigger cache never synced, e.g. without the Trigger CRD; see [`until_stopped`]).
pub async fn run(ctx: Arc<TriggerContext>, watch_namespace: Option<String>, shutdown: CancellationToken) {
    let client = ctx.client.clone();
    let ns = watch_namespace.as_deref();
    let controller = Controller::new(
        api::<Trigger>(&client, ns),
        watcher::Config::default().any_semantic(),
    );
    let store: Store<Trigger> = controller.store();
    let synced = store.clone();
    let controller = controller
        .watches(
            api::<Function>(&client, ns),
            watcher::Config::default().any_semantic(),
            move |function: Function| triggers_of(&function, store.state()).collect::<Vec<_>>(),
        )
        .with_config(Config::default().concurrency(CONCURRENCY))
        .graceful_shutdown_on(shutdown.clone().cancelled_owned())
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((trigger, _)) => tracing::debug!(trigger = %trigger, "reconciled"),
                Err(e) => tracing::debug!(error = %chain(&e), "trigger controller error"),
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
        tracing::warn!("trigger controller stopped before its first sync (is the Trigger CRD installed?)");
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn trigger(ns: &str, name: &str, subscriber: &str, dlq: Option<&str>) -> Arc<Trigger> {
        let mut spec = json!({"source": {"broker": {}}, "subscriber": {"function": subscriber}});
        if let Some(dlq) = dlq {
            spec["delivery"] = json!({"deadLetterSink": {"function": dlq}});
        }
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "zeroscale.dev/v1alpha1", "kind": "Trigger",
                "metadata": {"namespace": ns, "name": name}, "spec": spec,
            }))
            .expect("trigger"),
        )
    }

    #[test]
    fn a_function_maps_to_the_triggers_of_its_namespace_that_name_it() {
        let function: Function = serde_json::from_value(json!({
            "apiVersion": "zeroscale.dev/v1alpha1", "kind": "Function",
            "metadata": {"namespace": "shop", "name": "orders"}, "spec": {"image": "x"},
        }))
        .expect("function");
        let triggers = vec![
            trigger("shop", "direct", "orders", None),
            trigger("shop", "dead-letters", "other", Some("orders")),
            trigger("shop", "unrelated", "other", None),
            trigger("elsewhere", "same-name", "orders", None),
        ];
        let mut names: Vec<String> = triggers_of(&function, triggers).map(|r| r.name).collect();
        names.sort();
        assert_eq!(names, ["dead-letters", "direct"]);
    }
}
