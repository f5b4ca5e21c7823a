//! Function manifests and what tests read back from a Function's Deployment.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Api;
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

/// Deployment `name`'s `(spec.replicas, status.readyReplicas)`; `None` when it (or its desired
/// count) does not exist yet.
pub async fn deployment_replicas(api: &Api<Deployment>, name: &str) -> Option<(i32, i32)> {
    let d = api.get_opt(name).await.ok().flatten()?;
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
