//! The operator's caches of what it watches anyway: the Functions' pods, Deployments and Services.
//!
//! The controller is woken by these watches; a reconcile then reads the same objects from the caches
//! instead of asking the API server again. Before the caches, every reconcile listed the Function's
//! pods and Deployments and read its three children (five requests), several times a second while
//! pods start.
//!
//! A cache may lag the API server by an event. Where that matters, the caller reads the API server:
//! [`crate::apply`] reads a Deployment the cache does not have, or one whose `spec.replicas` the
//! operator still owns, because creating with `replicas` over an existing Deployment, or handing over
//! a stale count, would undo the autoscaler.

use std::sync::Arc;

use futures::FutureExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, Service};
use kube::Resource;
use kube::runtime::reflector::{self, ObjectRef, Store};
use zeroscale_crds::function::FUNCTION_LABEL;

/// Read handles of the caches. Cloning is cheap.
#[derive(Clone)]
pub struct Caches {
    /// Pods with the `zeroscale.dev/function` label, as [`trim_pod`] leaves them.
    pub pods: Store<Pod>,
    /// Deployments the operator manages (by label), as [`crate::apply::trim_deployment`] leaves them.
    pub deployments: Store<Deployment>,
    /// Services the operator manages (by label), without their managed fields.
    pub services: Store<Service>,
}

/// The write handles [`crate::controller::run`] feeds from its watches.
pub struct CacheWriters {
    /// Fed by the pod watch.
    pub pods: reflector::store::Writer<Pod>,
    /// Fed by the Deployment watch.
    pub deployments: reflector::store::Writer<Deployment>,
    /// Fed by the Service watch.
    pub services: reflector::store::Writer<Service>,
}

/// Keeps of a pod what the status reads: its metadata (without managed fields and annotations), its
/// status, and each container's name and resources (the memory limit an `OOMKilled` message names).
/// A pod spec is most of a pod's size, and the operator caches every function pod.
pub fn trim_pod(pod: &mut Pod) {
    pod.metadata.managed_fields = None;
    pod.metadata.annotations = None;
    if let Some(spec) = pod.spec.take() {
        let containers = spec
            .containers
            .into_iter()
            .map(|c| Container {
                name: c.name,
                resources: c.resources,
                ..Container::default()
            })
            .collect();
        pod.spec = Some(PodSpec {
            containers,
            ..PodSpec::default()
        });
    }
}

/// Whether `store` has had its first complete listing.
fn ready<K>(store: &Store<K>) -> bool
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    // Ready once, ready for good: the future completes on its first poll after the first listing.
    matches!(store.wait_until_ready().now_or_never(), Some(Ok(())))
}

/// Whether `object` carries the label `zeroscale.dev/function=<function>`.
fn of_function<K: Resource>(object: &K, function: &str) -> bool {
    object
        .meta()
        .labels
        .as_ref()
        .and_then(|l| l.get(FUNCTION_LABEL))
        .is_some_and(|f| f == function)
}

/// The objects of `store` in `namespace` labelled with Function `function`, sorted by name: the
/// cache's own order is its hash map's, and a reconcile should not depend on it.
fn of_function_by_name<K>(store: &Store<K>, namespace: &str, function: &str) -> Vec<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    let mut objects: Vec<K> = store
        .state_filter(|o| o.meta().namespace.as_deref() == Some(namespace) && of_function(o, function))
        .into_iter()
        .map(Arc::unwrap_or_clone)
        .collect();
    objects.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
    objects
}

impl Caches {
    /// Empty caches and the writers that fill them.
    pub fn new() -> (Self, CacheWriters) {
        let (pods, pods_writer) = reflector::store();
        let (deployments, deployments_writer) = reflector::store();
        let (services, services_writer) = reflector::store();
        let caches = Self {
            pods,
            deployments,
            services,
        };
        let writers = CacheWriters {
            pods: pods_writer,
            deployments: deployments_writer,
            services: services_writer,
        };
        (caches, writers)
    }

    /// Whether every cache has had its first complete listing. Until then a reconcile would see
    /// children missing that exist.
    pub fn synced(&self) -> bool {
        ready(&self.pods) && ready(&self.deployments) && ready(&self.services)
    }

    /// The pods of Function `function` in `namespace`, from the cache, by name (as a listing
    /// returns them).
    pub fn pods_of(&self, namespace: &str, function: &str) -> Vec<Pod> {
        of_function_by_name(&self.pods, namespace, function)
    }

    /// The Deployments labelled with Function `function` in `namespace` (its revisions, and the single
    /// Deployment of a Function from before revisions), from the cache, by name.
    pub fn deployments_of(&self, namespace: &str, function: &str) -> Vec<Deployment> {
        of_function_by_name(&self.deployments, namespace, function)
    }

    /// The Deployment `namespace/name`, if the cache has it.
    pub fn deployment(&self, namespace: &str, name: &str) -> Option<Arc<Deployment>> {
        self.deployments.get(&ObjectRef::new(name).within(namespace))
    }

    /// The Service `namespace/name`, if the cache has it.
    pub fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>> {
        self.services.get(&ObjectRef::new(name).within(namespace))
    }

    /// Caches that have synced and hold `pods`, `deployments` and `services`, and their writers (for
    /// tests).
    #[cfg(test)]
    pub fn holding(
        pods: Vec<Pod>,
        deployments: Vec<Deployment>,
        services: Vec<Service>,
    ) -> (Self, CacheWriters) {
        use kube::runtime::watcher::Event;

        fn fill<K>(writer: &mut reflector::store::Writer<K>, objects: Vec<K>)
        where
            K: Resource + Clone + 'static,
            K::DynamicType: Eq + std::hash::Hash + Clone,
        {
            writer.apply_watcher_event(&Event::Init);
            for object in objects {
                writer.apply_watcher_event(&Event::InitApply(object));
            }
            writer.apply_watcher_event(&Event::InitDone);
        }
        let (caches, mut writers) = Self::new();
        fill(&mut writers.pods, pods);
        fill(&mut writers.deployments, deployments);
        fill(&mut writers.services, services);
        (caches, writers)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn labelled<K: serde::de::DeserializeOwned>(ns: &str, name: &str, function: &str) -> K {
        serde_json::from_value(json!({
            "metadata": { "name": name, "namespace": ns, "labels": { FUNCTION_LABEL: function } }
        }))
        .expect("object")
    }

    #[test]
    fn reads_a_functions_objects_by_label_and_namespace_in_name_order() {
        // The stores stay readable after their writers are gone.
        let (caches, _) = Caches::holding(
            vec![
                labelled("ns", "hello-2", "hello"),
                labelled("ns", "hello-1", "hello"),
                labelled("ns", "other-1", "other"),
                labelled("ns2", "hello-1", "hello"),
            ],
            vec![labelled("ns", "hello-00001", "hello")],
            vec![labelled("ns", "hello", "hello")],
        );
        assert!(caches.synced());
        let pods: Vec<_> = caches
            .pods_of("ns", "hello")
            .into_iter()
            .map(|p| p.metadata.name)
            .collect();
        assert_eq!(pods, [Some("hello-1".to_string()), Some("hello-2".to_string())]);
        assert_eq!(caches.deployments_of("ns", "hello").len(), 1);
        assert!(caches.deployments_of("ns", "other").is_empty());
        assert!(caches.deployment("ns", "hello-00001").is_some());
        assert!(caches.service("ns", "hello").is_some());
        assert!(caches.service("ns2", "hello").is_none());
    }

    #[test]
    fn a_trimmed_pod_keeps_what_the_status_reads() {
        let mut pod: Pod = serde_json::from_value(json!({
            "metadata": { "name": "p", "labels": { FUNCTION_LABEL: "hello" }, "annotations": { "a": "b" },
                          "managedFields": [{ "manager": "kubelet" }] },
            "spec": { "volumes": [{ "name": "token" }], "containers": [{
                "name": "function", "image": "echo", "env": [{ "name": "PORT", "value": "8080" }],
                "resources": { "limits": { "memory": "64Mi" } } }] },
            "status": { "phase": "Running", "podIP": "10.0.0.1" }
        }))
        .expect("pod");
        let status = pod.status.clone();
        trim_pod(&mut pod);
        assert_eq!(pod.status, status);
        assert_eq!(pod.metadata.labels.as_ref().map(|l| l.len()), Some(1));
        assert!(pod.metadata.annotations.is_none() && pod.metadata.managed_fields.is_none());
        let spec = pod.spec.expect("spec");
        assert!(spec.volumes.is_none());
        let container = &spec.containers[0];
        assert_eq!(container.name, "function");
        assert!(container.image.is_none() && container.env.is_none());
        assert_eq!(
            container
                .resources
                .as_ref()
                .and_then(|r| r.limits.as_ref())
                .and_then(|l| l.get("memory"))
                .map(|q| q.0.as_str()),
            Some("64Mi")
        );
    }

    #[test]
    fn caches_are_not_synced_before_their_first_listing() {
        let (caches, _writers) = Caches::new();
        assert!(!caches.synced());
    }
}
