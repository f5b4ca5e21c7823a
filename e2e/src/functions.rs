//! Function manifests and what tests read back from a Function's Deployment.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Api;
use kube::api::ListParams;
use serde_json::{Value, json};
use zeroscale_crds::Function;

/// A Function named `name` with `spec` (JSON as a user writes it). Panics when `spec` does not match
/// the CRD's types, which is a mistake in the test.
pub fn function_manifest(name: &str, spec: Value) -> Function {
    serde_json::from_value(json!({
        "apiVersion": "zeroscale.dev/v1alpha1",
        "kind": "Function",
        "metadata": { "name": name },
        "spec": spec,
    }))
    .unwrap_or_else(|e| panic!("function manifest {name}: {e}"))
}

/// The Function's condition `type_` (e.g. `Ready`), if reported.
pub fn function_condition(f: &Function, type_: &str) -> Option<Condition> {
    f.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .cloned()
}

/// The Deployment that runs Function `name`'s current pods: its newest revision's (`<name>-<hash>`,
/// labelled `zeroscale.dev/function=<name>`), or a Deployment named `name` (from before revisions, or
/// a revision named directly).
pub async fn function_deployment(api: &Api<Deployment>, name: &str) -> Option<Deployment> {
    if let Some(d) = api.get_opt(name).await.ok().flatten() {
        return Some(d);
    }
    let params = ListParams::default().labels(&format!("zeroscale.dev/function={name}"));
    let mut revisions: Vec<Deployment> = api
        .list(&params)
        .await
        .ok()?
        .items
        .into_iter()
        .filter(|d| {
            d.metadata
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key("zeroscale.dev/revision"))
        })
        .collect();
    if revisions.len() < 2 {
        // No choice to make: the Function need not be read.
        return revisions.pop();
    }
    let latest = latest_created_revision(api, name).await;
    revisions.into_iter().max_by(|a, b| {
        // Creation times have a one-second grain, and revision names are hashes: two revisions
        // made within a second tie on both, so the one the Function names as its latest wins.
        let is_latest = |d: &Deployment| latest.is_some() && d.metadata.name == latest;
        let created = |d: &Deployment| d.metadata.creation_timestamp.as_ref().map(|t| t.0);
        is_latest(a)
            .cmp(&is_latest(b))
            .then_with(|| created(a).cmp(&created(b)))
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    })
}

/// Function `name`'s `status.latestCreatedRevisionName`, read in `api`'s namespace; `None` when
/// the Function or the field does not exist (yet).
async fn latest_created_revision(api: &Api<Deployment>, name: &str) -> Option<String> {
    let namespace = api.namespace()?.to_string();
    let functions: Api<Function> = Api::namespaced(api.clone().into_client(), &namespace);
    let function = functions.get_opt(name).await.ok().flatten()?;
    function.status?.latest_created_revision_name
}

/// The `(spec.replicas, status.readyReplicas)` of Function (or revision) `name`'s Deployment (see
/// [`function_deployment`]); `None` when it (or its desired count) does not exist yet.
pub async fn deployment_replicas(api: &Api<Deployment>, name: &str) -> Option<(i32, i32)> {
    let d = function_deployment(api, name).await?;
    let desired = d.spec.as_ref()?.replicas?;
    let ready = d.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0);
    Some((desired, ready))
}

/// The image of the Deployment's first container.
pub fn deployment_image(d: &Deployment) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_carries_name_and_spec() {
        let f = function_manifest("hello", json!({"image": crate::ECHO_IMAGE, "timeoutSeconds": 60}));
        assert_eq!(f.metadata.name.as_deref(), Some("hello"));
        assert_eq!(f.spec.image, crate::ECHO_IMAGE);
        assert!(f.status.is_none());
    }

    #[test]
    #[should_panic(expected = "function manifest bad")]
    fn a_spec_of_the_wrong_shape_panics() {
        function_manifest("bad", json!({"image": 7}));
    }
}
