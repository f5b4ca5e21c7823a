//! Read-only views of the cluster: Functions (for their scale spec) and the Deployments they own
//! (for the current scale and the ready pods), kept by kube-runtime reflectors.
//!
//! Every revision of a Function (`status.revisions`, one Deployment `<function>-<hash>` each) is
//! scaled on its own, with the Function's scale settings: the scaler key is the revision's name, as
//! the activator reports it.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::{
    Api, Client,
    runtime::{
        WatchStreamExt,
        reflector::{self, ObjectRef, Store},
        watcher,
    },
};
use zeroscale_common::signals::FunctionKey;
use zeroscale_crds::Function;
use zeroscale_crds::revision_runtime::RevisionRuntime;

/// Label on every Deployment the operator creates: the Function's name.
const FUNCTION_LABEL: &str = "zeroscale.dev/function";
/// Label every object the operator creates carries, with the value `zeroscale`.
const MANAGED_BY: &str = "app.kubernetes.io/managed-by=zeroscale";

/// The stores the autoscaler decides from.
#[derive(Clone)]
pub struct ClusterView {
    functions: Store<Function>,
    deployments: Store<Deployment>,
}

/// What a Deployment says about a function's scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeploymentScale {
    /// `spec.replicas`.
    pub replicas: i32,
    /// `status.readyReplicas`.
    pub ready: i32,
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
    <K as kube::Resource>::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

impl ClusterView {
    /// Starts the watches (in `namespace`, or everywhere) on the current runtime.
    pub fn start(client: &Client, namespace: Option<&str>) -> Self {
        let (functions, writer) = reflector::store();
        let stream = reflector::reflector(
            writer,
            watcher(api::<Function>(client, namespace), watcher::Config::default()).default_backoff(),
        );
        tokio::spawn(stream.for_each(|event| async move {
            if let Err(e) = event {
                tracing::warn!(error = %e, "function watch error");
            }
        }));
        let (deployments, writer) = reflector::store();
        let config = watcher::Config::default().labels(MANAGED_BY);
        let stream = reflector::reflector(
            writer,
            watcher(api::<Deployment>(client, namespace), config)
                .default_backoff()
                .modify(strip_deployment),
        );
        tokio::spawn(stream.for_each(|event| async move {
            if let Err(e) = event {
                tracing::warn!(error = %e, "deployment watch error");
            }
        }));
        Self {
            functions,
            deployments,
        }
    }

    /// Resolves once both stores have their initial lists.
    pub async fn ready(&self) -> bool {
        self.functions.wait_until_ready().await.is_ok() && self.deployments.wait_until_ready().await.is_ok()
    }

    /// Every Function.
    pub fn functions(&self) -> Vec<Arc<Function>> {
        self.functions.state()
    }

    /// The scaler keys of `function`, each with whether it is reachable: one per revision in its
    /// status (reachable when it has a share of the traffic or a tag), or its own name while its status
    /// lists none (a Function from before revisions). An unreachable revision ignores `scale.min`, as
    /// in Knative: nothing can call it, so it goes to zero.
    pub fn scaled_keys(function: &Function) -> Vec<(FunctionKey, bool)> {
        let (Some(ns), Some(name)) = (
            function.metadata.namespace.as_deref(),
            function.metadata.name.as_deref(),
        ) else {
            return Vec::new();
        };
        let revisions: Vec<(FunctionKey, bool)> = function
            .status
            .iter()
            .flat_map(|s| s.revisions.iter())
            .map(|r| (FunctionKey::new(ns, &r.name), r.percent > 0 || r.tag.is_some()))
            .collect();
        if revisions.is_empty() {
            vec![(FunctionKey::new(ns, name), true)]
        } else {
            revisions
        }
    }

    /// The Function `key`.
    pub fn function(&self, key: &FunctionKey) -> Option<Arc<Function>> {
        self.functions
            .get(&ObjectRef::new(&key.name).within(&key.namespace))
    }

    /// The Function a scaler key belongs to: the Function of that name, or (for a revision
    /// `<function>-<hash>`) the Function its Deployment's `zeroscale.dev/function` label names.
    pub fn function_of(&self, key: &FunctionKey) -> Option<Arc<Function>> {
        self.function(key).or_else(|| {
            let d = self
                .deployments
                .get(&ObjectRef::new(&key.name).within(&key.namespace))?;
            let owner = d.metadata.labels.as_ref()?.get(FUNCTION_LABEL)?;
            self.function(&FunctionKey::new(&key.namespace, owner))
        })
    }

    /// The runtime settings a revision was made with (the operator's `runtime.zeroscale.dev/*` labels
    /// on its Deployment); `None` for a Deployment without them (an older operator's) or with labels
    /// that do not parse, when the Function's current spec applies.
    pub fn revision_runtime(&self, key: &FunctionKey) -> Option<RevisionRuntime> {
        let d = self
            .deployments
            .get(&ObjectRef::new(&key.name).within(&key.namespace))?;
        match RevisionRuntime::from_labels(d.metadata.labels.as_ref()?) {
            Ok(runtime) => runtime,
            Err(e) => {
                tracing::debug!(function = %key, error = %e, "runtime labels ignored");
                None
            }
        }
    }

    /// The scale of the Deployment of `key`: a revision's Deployment `<function>-<hash>` (or, for a
    /// Function from before revisions, the Deployment named like it).
    pub fn deployment(&self, key: &FunctionKey) -> Option<DeploymentScale> {
        let d = self
            .deployments
            .get(&ObjectRef::new(&key.name).within(&key.namespace))?;
        let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let ready = d.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0);
        Some(DeploymentScale { replicas, ready })
    }
}

/// The autoscaler needs only replicas and readiness; dropping the pod template keeps the cache small.
fn strip_deployment(d: &mut Deployment) {
    d.metadata.managed_fields = None;
    d.metadata.annotations = None;
    if let Some(spec) = d.spec.as_mut() {
        spec.template = Default::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A view over exactly these Deployments (no Functions).
    fn view_of(deployments: Vec<Deployment>) -> ClusterView {
        let (functions, _) = reflector::store();
        let (store, mut writer) = reflector::store();
        for d in deployments {
            writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(d));
        }
        ClusterView {
            functions,
            deployments: store,
        }
    }

    fn deployment(name: &str, labels: serde_json::Value) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": { "name": name, "namespace": "ns", "labels": labels }
        }))
        .expect("deployment")
    }

    #[test]
    fn a_revision_is_scaled_on_the_concurrency_its_deployment_was_made_with() {
        let mut spec: zeroscale_crds::FunctionSpec =
            serde_json::from_value(serde_json::json!({ "image": "echo", "concurrency": 7 })).expect("spec");
        spec.port = 8080;
        let labels = serde_json::to_value(RevisionRuntime::of(&spec).labels()).expect("labels");
        let view = view_of(vec![
            deployment("made", labels),
            deployment("older", serde_json::json!({ "zeroscale.dev/function": "f" })),
            deployment(
                "broken",
                serde_json::json!({ zeroscale_crds::revision_runtime::CONCURRENCY_LABEL: "many" }),
            ),
        ]);
        let at = |name: &str| view.revision_runtime(&FunctionKey::new("ns", name));
        assert_eq!(at("made").map(|r| r.concurrency), Some(7));
        assert_eq!(
            at("older"),
            None,
            "an older operator's Deployment: the current spec applies"
        );
        assert_eq!(at("broken"), None, "labels that do not parse are ignored");
        assert_eq!(at("missing"), None);
    }

    #[test]
    fn every_revision_is_scaled_on_its_own_and_a_function_without_revisions_by_name() {
        let mut f: Function = serde_json::from_value(serde_json::json!({
            "apiVersion": "zeroscale.dev/v1alpha1", "kind": "Function",
            "metadata": { "name": "hello", "namespace": "ns" },
            "spec": { "image": "echo" }
        }))
        .expect("function");
        assert_eq!(
            ClusterView::scaled_keys(&f),
            [(FunctionKey::new("ns", "hello"), true)]
        );
        f.status = Some(
            serde_json::from_value(serde_json::json!({
                "revisions": [{ "name": "hello-bbbbbbbbbb", "percent": 100 }, { "name": "hello-aaaaaaaaaa" },
                              { "name": "hello-cccccccccc", "tag": "old" }]
            }))
            .expect("status"),
        );
        assert_eq!(
            ClusterView::scaled_keys(&f),
            [
                (FunctionKey::new("ns", "hello-bbbbbbbbbb"), true),
                (FunctionKey::new("ns", "hello-aaaaaaaaaa"), false),
                (FunctionKey::new("ns", "hello-cccccccccc"), true)
            ]
        );
    }
}
