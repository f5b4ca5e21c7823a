//! Build: the child objects of a validated Function, as pure functions of it and the operator's
//! settings ([`build`] returns them all as [`Children`]).
//!
//! Names, labels and owner references follow `docs/architecture.md`. Nothing here talks to the API
//! server, so every object is unit-tested.

mod deployment;
mod resources;
mod security;
mod services;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use zeroscale_crds::Function;
use zeroscale_crds::function::{FUNCTION_LABEL, MANAGED_BY, MANAGED_BY_LABEL};
use zeroscale_crds::revision::REVISION_LABEL;
use zeroscale_crds::revision_runtime::RevisionRuntime;

use crate::validate::ValidatedFunction;

pub use deployment::{CONTAINER_NAME, build_deployment, default_readiness_probe, port_name};
pub use resources::{container_resources, is_cpu_quantity};
pub use security::{container_security_context, pod_security_context};

/// Default `preStop` sleep of function pods, in seconds: long enough for the EndpointSlice update that
/// marks a pod terminating to reach the activator, short enough not to hold up scale-downs.
pub const DEFAULT_PRE_STOP_SLEEP_SECONDS: i64 = 5;
/// Default CPU request of a function container whose Function asks for no CPU
/// ([`container_resources`]): enough to make its pods `Burstable`, as Knative's queue-proxy does.
pub const DEFAULT_CPU_REQUEST: &str = "25m";
pub use services::{build_private_service, build_public_service};

/// Settings of the operator that shape the children.
#[derive(Clone, Debug, PartialEq)]
pub struct BuildSettings {
    /// DNS name of the activator's Service, the target of every public `ExternalName` Service.
    pub activator_service: String,
    /// `spec.progressDeadlineSeconds` of every Deployment.
    pub progress_deadline_seconds: i32,
    /// Seconds of the function pods' `preStop` sleep (0: no hook); added to their grace period.
    pub pre_stop_sleep_seconds: i64,
    /// CPU request of a function container whose Function asks for no CPU (`None`: none).
    pub default_cpu_request: Option<Quantity>,
}

impl Default for BuildSettings {
    fn default() -> Self {
        Self {
            activator_service: "zeroscale-activator.zeroscale-system.svc.cluster.local".into(),
            progress_deadline_seconds: 600,
            pre_stop_sleep_seconds: DEFAULT_PRE_STOP_SLEEP_SECONDS,
            default_cpu_request: Some(Quantity(DEFAULT_CPU_REQUEST.into())),
        }
    }
}

/// Labels on every child object and on the pods: managed-by and the function's name.
pub fn labels(function: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
        (FUNCTION_LABEL.to_string(), function.to_string()),
    ])
}

/// Labels that select a function's pods.
pub fn selector_labels(function: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(FUNCTION_LABEL.to_string(), function.to_string())])
}

/// Labels on a revision's Deployment, pods and private Service: [`labels`] plus the revision's name.
pub fn revision_labels(function: &str, revision: &str) -> BTreeMap<String, String> {
    let mut labels = labels(function);
    labels.insert(REVISION_LABEL.to_string(), revision.to_string());
    labels
}

/// Labels that select one revision's pods (distinct per revision: Deployment selectors must not overlap).
pub fn revision_selector(function: &str, revision: &str) -> BTreeMap<String, String> {
    let mut labels = selector_labels(function);
    labels.insert(REVISION_LABEL.to_string(), revision.to_string());
    labels
}

/// The owner reference (controller=true) that makes a child garbage-collected with its Function.
pub fn owner_reference(function: &Function) -> Option<OwnerReference> {
    function.controller_owner_ref(&())
}

/// Metadata of a child: name, namespace, labels and the owner reference.
fn child_meta(function: &ValidatedFunction<'_>, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(function.namespace.to_string()),
        labels: Some(labels(function.name)),
        owner_references: function.owner.clone().map(|o| vec![o]),
        ..ObjectMeta::default()
    }
}

/// Metadata of a child of the current revision: [`child_meta`] with the revision label.
fn revision_meta(function: &ValidatedFunction<'_>) -> ObjectMeta {
    let mut labels = revision_labels(function.name, &function.revision);
    // The revision's own runtime settings stay with its objects when the spec moves on: the activator
    // reads them from the private Service's EndpointSlices, the autoscaler from the Deployment.
    labels.extend(RevisionRuntime::of(function.spec).labels());
    ObjectMeta {
        labels: Some(labels),
        ..child_meta(function, &function.revision)
    }
}

/// Every child of a Function, as the operator applies them.
#[derive(Clone, Debug, PartialEq)]
pub struct Children {
    /// The current revision's Deployment `<name>-<hash>` without `spec.replicas`, which the autoscaler owns once it exists.
    pub deployment: Deployment,
    /// The Deployment to create when none exists: with `spec.replicas` at the initial scale.
    pub new_deployment: Deployment,
    /// The current revision's headless Service `<name>-<hash>` that lists its pods.
    pub private_service: Service,
    /// The `ExternalName` Service `<name>` that leads to the activator.
    pub public_service: Service,
}

impl Children {
    /// The Services, in the order they are applied (private first).
    pub fn services(&self) -> [&Service; 2] {
        [&self.private_service, &self.public_service]
    }
}

/// Builds every child of `function` (pure).
pub fn build(function: &ValidatedFunction<'_>, settings: &BuildSettings) -> Children {
    Children {
        deployment: build_deployment(function, settings, None),
        new_deployment: build_deployment(function, settings, Some(function.initial_replicas())),
        private_service: build_private_service(function),
        public_service: build_public_service(function, settings),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use zeroscale_crds::Function;

    pub(crate) use crate::test_objects::function;
    use crate::validate::{ValidatedFunction, validate};

    /// `function` through [`validate`], which it must pass.
    pub(crate) fn validated(function: &Function) -> ValidatedFunction<'_> {
        validate(function).expect("a valid function")
    }

    #[test]
    fn build_returns_every_child_and_only_a_new_deployment_sets_replicas() {
        let mut f = function("hello");
        f.spec.scale.initial = 3;
        let children = super::build(&validated(&f), &super::BuildSettings::default());
        let replicas = |d: &k8s_openapi::api::apps::v1::Deployment| d.spec.as_ref().and_then(|s| s.replicas);
        assert_eq!(replicas(&children.deployment), None);
        assert_eq!(replicas(&children.new_deployment), Some(3));
        let names = children
            .services()
            .map(|s| s.metadata.name.clone().unwrap_or_default());
        let revision = validated(&f).revision;
        assert_eq!(names, [revision.as_str(), "hello"]);
        for meta in [&children.deployment.metadata, &children.private_service.metadata] {
            assert_eq!(meta.namespace.as_deref(), Some("ns"));
            assert_eq!(meta.owner_references.as_ref().map(Vec::len), Some(1));
        }
    }

    #[test]
    fn owner_reference_is_the_controller() {
        let owner = super::owner_reference(&function("hello")).expect("has uid");
        assert_eq!(owner.kind, "Function");
        assert_eq!(owner.api_version, "zeroscale.dev/v1alpha1");
        assert_eq!(owner.name, "hello");
        assert_eq!(owner.controller, Some(true));
    }
}
