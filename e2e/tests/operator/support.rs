//! Helpers shared by the operator tests: Function manifests, conditions and children.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::PostParams;
use kube::{Api, Client, ResourceExt};
use zeroscale_crds::Function;
use zeroscale_e2e::{deployment_image, function_condition, function_manifest, wait_for};

/// How long a reconcile may take to show on a busy 2-core machine.
pub const SETTLE: Duration = Duration::from_secs(90);

/// Creates Function `name` with `spec`.
pub async fn create(api: &Api<Function>, name: &str, spec: serde_json::Value) -> Function {
    api.create(&PostParams::default(), &function_manifest(name, spec))
        .await
        .expect("function created")
}

/// The Function's `Ready` condition, if reported.
pub fn ready_condition(f: &Function) -> Option<Condition> {
    function_condition(f, "Ready")
}

/// Waits until the Function's `Ready` condition has `status` and one of `reasons`, at the current generation.
pub async fn wait_ready(
    api: &Api<Function>,
    name: &str,
    status: &str,
    reasons: &[&str],
    timeout: Duration,
) -> Function {
    let what = format!("function {name} Ready={status} with a reason in {reasons:?}");
    wait_for(timeout, &what, || async {
        let f = api.get(name).await.ok()?;
        let current = f.status.as_ref()?.observed_generation == f.metadata.generation;
        let c = ready_condition(&f)?;
        (current && c.status == status && reasons.contains(&c.reason.as_str())).then_some(f)
    })
    .await
}

/// The Function's (latest revision's) Deployment, public Service and private Service (named like the
/// revision), where they exist.
pub async fn children(
    client: &Client,
    ns: &str,
    name: &str,
) -> (Option<Deployment>, Option<Service>, Option<Service>) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let deployment = zeroscale_e2e::function_deployment(&deployments, name).await;
    let private = match deployment.as_ref().and_then(|d| d.metadata.name.clone()) {
        Some(revision) => services.get_opt(&revision).await.ok().flatten(),
        None => None,
    };
    (deployment, services.get_opt(name).await.ok().flatten(), private)
}

/// Asserts that `object` is owned (as controller) and labelled by `function`.
pub fn assert_child_of(object: &impl ResourceExt, function: &Function) {
    let owner = object.owner_references().first().expect("an owner reference");
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Function", function.name_any().as_str())
    );
    assert_eq!(Some(owner.uid.clone()), function.uid());
    assert_eq!(owner.controller, Some(true));
    let labels = object.labels();
    assert_eq!(labels.get("zeroscale.dev/function"), Some(&function.name_any()));
    assert_eq!(
        labels.get("app.kubernetes.io/managed-by").map(String::as_str),
        Some("zeroscale")
    );
}

/// The Deployment's `spec.replicas`.
pub fn replicas(d: &Deployment) -> Option<i32> {
    d.spec.as_ref()?.replicas
}

/// The image of the Deployment's first container.
pub fn image(d: &Deployment) -> Option<String> {
    deployment_image(d)
}

/// Whether the operator's field manager owns `spec.replicas`.
pub fn operator_owns_replicas(d: &Deployment) -> bool {
    d.metadata.managed_fields.iter().flatten().any(|m| {
        m.manager.as_deref() == Some("zeroscale-operator")
            && m.fields_v1
                .as_ref()
                .is_some_and(|f| f.0.pointer("/f:spec/f:replicas").is_some())
    })
}
