//! Helpers shared by the operator tests: Function manifests, conditions and children.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::PostParams;
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use zeroscale_crds::Function;
use zeroscale_e2e::wait_for;

/// How long a reconcile may take to show on a busy 2-core machine.
pub const SETTLE: Duration = Duration::from_secs(90);

pub fn function(name: &str, spec: serde_json::Value) -> Function {
    serde_json::from_value(json!({
        "apiVersion": "zeroscale.dev/v1alpha1",
        "kind": "Function",
        "metadata": { "name": name },
        "spec": spec,
    }))
    .expect("function manifest")
}

pub async fn create(api: &Api<Function>, name: &str, spec: serde_json::Value) -> Function {
    api.create(&PostParams::default(), &function(name, spec))
        .await
        .expect("function created")
}

pub fn ready_condition(f: &Function) -> Option<Condition> {
    f.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .cloned()
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

pub async fn children(
    client: &Client,
    ns: &str,
    name: &str,
) -> (Option<Deployment>, Option<Service>, Option<Service>) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    (
        deployments.get_opt(name).await.ok().flatten(),
        services.get_opt(name).await.ok().flatten(),
        services.get_opt(&format!("{name}-private")).await.ok().flatten(),
    )
}

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

pub fn replicas(d: &Deployment) -> Option<i32> {
    d.spec.as_ref()?.replicas
}

pub fn image(d: &Deployment) -> Option<String> {
    d.spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .first()?
        .image
        .clone()
}

pub fn operator_owns_replicas(d: &Deployment) -> bool {
    d.metadata.managed_fields.iter().flatten().any(|m| {
        m.manager.as_deref() == Some("zeroscale-operator")
            && m.fields_v1
                .as_ref()
                .is_some_and(|f| f.0.pointer("/f:spec/f:replicas").is_some())
    })
}
