//! Apply: server-side apply of the children [`crate::build`] made, and nothing else, with `spec.replicas`
//! set only when the Deployment is created. A child already as applied, which nobody has changed
//! since, is not applied again ([`crate::last_applied`]); its existence and owner are read from the
//! watches' caches ([`crate::caches`]).
//!
//! Why `replicas` needs care: a field the applying manager owned and later omits is removed (so the
//! API server resets `replicas` to 1). So when the Deployment is created with `replicas`, a second
//! manager ([`INITIAL_SCALE_MANAGER`]) applies the same value, becoming co-owner; the operator's next
//! apply then omits `replicas`, releasing its ownership without changing the value. From then on the
//! operator never owns `spec.replicas` and the autoscaler's `/scale` writes are never undone. If the
//! operator dies between the two steps, the next reconcile sees that it still owns `replicas` (in
//! `managedFields`) and hands it over again with the live value.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry, ObjectMeta};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;
use zeroscale_crds::Function;

use crate::build::Children;
use crate::caches::Caches;
use crate::error::{Child, FunctionError};
use crate::last_applied::{LastApplied, child_key, fingerprint, stored_deployment, stored_service};
use crate::validate::ValidatedFunction;

/// Field manager of every server-side apply by the operator.
pub const FIELD_MANAGER: &str = "zeroscale-operator";
/// Field manager that holds `spec.replicas` from creation until the autoscaler first writes it.
pub const INITIAL_SCALE_MANAGER: &str = "zeroscale-operator-initial-scale";

fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

/// Whether [`FIELD_MANAGER`]'s apply entry in `managedFields` owns `spec.replicas`.
pub fn operator_owns_replicas(deployment: &Deployment) -> bool {
    deployment.metadata.managed_fields.iter().flatten().any(|entry| {
        entry.manager.as_deref() == Some(FIELD_MANAGER)
            && entry.operation.as_deref() == Some("Apply")
            && entry
                .fields_v1
                .as_ref()
                .is_some_and(|f| f.0.pointer("/f:spec/f:replicas").is_some())
    })
}

/// Keeps of a Deployment's managed fields only whether the operator's apply owns `spec.replicas`
/// ([`operator_owns_replicas`]), as one entry with that one field: the entries of every manager
/// (the controller's status, the autoscaler's scale) are most of a cached Deployment.
pub fn trim_deployment(deployment: &mut Deployment) {
    let owns = operator_owns_replicas(deployment);
    deployment.metadata.managed_fields = owns.then(|| {
        vec![ManagedFieldsEntry {
            manager: Some(FIELD_MANAGER.into()),
            operation: Some("Apply".into()),
            fields_type: Some("FieldsV1".into()),
            fields_v1: Some(FieldsV1(json!({ "f:spec": { "f:replicas": {} } }))),
            ..ManagedFieldsEntry::default()
        }]
    });
}

/// Whether `meta` has a controller owner reference to `function` (by uid).
pub fn controlled_by(meta: &ObjectMeta, function: &Function) -> bool {
    let uid = function.metadata.uid.as_deref();
    meta.owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && Some(o.uid.as_str()) == uid)
}

/// What [`apply`] did, child by child: one failing does not stop the other, and the status reports each.
#[derive(Debug)]
pub struct Applied {
    /// Whether both Services were applied.
    pub routes: Result<(), FunctionError>,
    /// The Deployment as applied, or why it was not.
    pub deployment: Result<AppliedDeployment, FunctionError>,
}

/// What an apply reads and records besides the API server.
#[derive(Clone, Copy)]
pub struct Applier<'a> {
    /// API client.
    pub client: &'a Client,
    /// The children as last seen by the watches.
    pub caches: &'a Caches,
    /// What was applied to each child last time, to skip an apply that would change nothing.
    pub last_applied: &'a LastApplied,
}

/// Reads the child `kind` `namespace/name` from the API server, uncached.
async fn read<K>(
    api: &Api<K>,
    kind: Child,
    namespace: &str,
    name: &str,
) -> Result<Option<Arc<K>>, FunctionError>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let live = api
        .get_opt(name)
        .await
        .map_err(|source| FunctionError::ReadChild {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
            source,
        })?;
    Ok(live.map(Arc::new))
}

/// Refuses a child that exists without the Function's controller owner reference: it is someone
/// else's, and is never taken over.
fn ensure_controlled<K: kube::Resource>(
    live: Option<&K>,
    function: &ValidatedFunction<'_>,
    kind: Child,
    name: &str,
) -> Result<(), FunctionError> {
    match live {
        Some(live) if !controlled_by(live.meta(), function.function) => Err(FunctionError::NotOwned {
            kind,
            name: name.to_string(),
        }),
        _ => Ok(()),
    }
}

/// Applies every child: the Services, then the Deployment (even when the Services failed).
pub async fn apply(applier: Applier<'_>, function: &ValidatedFunction<'_>, children: &Children) -> Applied {
    let routes = apply_services(applier, function, children).await;
    let deployment = apply_deployment(applier, function, children).await;
    Applied { routes, deployment }
}

/// Applies the private and the public Service, refusing to take over Services the Function does not
/// control. A Service the cache does not have is read from the API server: the cache holds only the
/// Services the operator manages, and one of the same name may exist without being ours.
pub async fn apply_services(
    applier: Applier<'_>,
    function: &ValidatedFunction<'_>,
    children: &Children,
) -> Result<(), FunctionError> {
    let namespace = function.namespace;
    let api: Api<Service> = Api::namespaced(applier.client.clone(), namespace);
    for service in children.services() {
        let name = service.metadata.name.clone().unwrap_or_default();
        let live = match applier.caches.service(namespace, &name) {
            Some(cached) => Some(cached),
            None => read(&api, Child::Service, namespace, &name).await?,
        };
        ensure_controlled(live.as_deref(), function, Child::Service, &name)?;
        let key = child_key("Service", namespace, &name);
        let desired = fingerprint(service);
        if live.as_ref().is_some_and(|live| {
            applier
                .last_applied
                .unchanged(&key, desired, stored_service(live))
        }) {
            continue;
        }
        match api.patch(&name, &apply_params(), &Patch::Apply(service)).await {
            Ok(stored) => applier.last_applied.record(key, desired, stored_service(&stored)),
            Err(source) => {
                applier.last_applied.forget(&key);
                return Err(FunctionError::Apply {
                    kind: Child::Service,
                    name,
                    source,
                });
            }
        }
    }
    Ok(())
}

async fn hand_over_replicas(
    api: &Api<Deployment>,
    name: &str,
    namespace: &str,
    replicas: i32,
) -> Result<(), FunctionError> {
    let body = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name, "namespace": namespace },
        "spec": { "replicas": replicas },
    });
    api.patch(
        name,
        &PatchParams::apply(INITIAL_SCALE_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|source| FunctionError::Apply {
        kind: Child::Deployment,
        name: name.to_string(),
        source,
    })?;
    Ok(())
}

/// What [`apply_deployment`] did.
#[derive(Debug)]
pub struct AppliedDeployment {
    /// The Deployment as the API server returned it after the apply, or as cached when there was
    /// nothing to apply.
    pub deployment: Deployment,
    /// `Some(replicas)` when this call created the Deployment.
    pub created_with: Option<i32>,
}

/// Applies the current revision's Deployment, creating it with the initial replicas if it does not
/// exist (a revision that exists, such as one a revert brings back, keeps its replicas and pods).
pub async fn apply_deployment(
    applier: Applier<'_>,
    function: &ValidatedFunction<'_>,
    children: &Children,
) -> Result<AppliedDeployment, FunctionError> {
    let (name, namespace) = (function.revision.as_str(), function.namespace);
    let initial_replicas = function.initial_replicas();
    let api: Api<Deployment> = Api::namespaced(applier.client.clone(), namespace);
    let apply_error = |source| FunctionError::Apply {
        kind: Child::Deployment,
        name: name.to_string(),
        source,
    };
    // From the API server, not the cache, when the cache lacks it or says the operator still owns
    // `spec.replicas`: creating with `replicas` over an existing Deployment, or handing over a stale
    // count, would undo the autoscaler.
    let live = match applier.caches.deployment(namespace, name) {
        Some(cached) if !operator_owns_replicas(&cached) => Some(cached),
        _ => read(&api, Child::Deployment, namespace, name).await?,
    };
    ensure_controlled(live.as_deref(), function, Child::Deployment, name)?;
    let key = child_key("Deployment", namespace, name);
    let desired = fingerprint(&children.deployment);
    let mut created_with = None;
    match &live {
        None => {
            api.patch(name, &apply_params(), &Patch::Apply(&children.new_deployment))
                .await
                .map_err(apply_error)?;
            hand_over_replicas(&api, name, namespace, initial_replicas).await?;
            created_with = Some(initial_replicas);
        }
        Some(live) if operator_owns_replicas(live) => {
            let current = live
                .spec
                .as_ref()
                .and_then(|s| s.replicas)
                .unwrap_or(initial_replicas);
            hand_over_replicas(&api, name, namespace, current).await?;
        }
        Some(live) => {
            if applier
                .last_applied
                .unchanged(&key, desired, stored_deployment(live))
            {
                return Ok(AppliedDeployment {
                    deployment: Deployment::clone(live),
                    created_with: None,
                });
            }
        }
    }
    match api
        .patch(name, &apply_params(), &Patch::Apply(&children.deployment))
        .await
    {
        Ok(deployment) => {
            applier
                .last_applied
                .record(key, desired, stored_deployment(&deployment));
            Ok(AppliedDeployment {
                deployment,
                created_with,
            })
        }
        Err(source) => {
            applier.last_applied.forget(&key);
            Err(apply_error(source))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_managed_fields(entries: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({ "metadata": { "name": "f", "managedFields": entries } }))
            .expect("deployment")
    }

    #[test]
    fn only_children_with_the_functions_uid_are_controlled() {
        let f = crate::test_objects::function("f");
        let ours = crate::build::build_private_service(&crate::build::tests::validated(&f));
        assert!(controlled_by(&ours.metadata, &f));
        assert!(!controlled_by(&ObjectMeta::default(), &f));
        let mut other = f.clone();
        other.metadata.uid = Some("uid-2".into());
        assert!(!controlled_by(
            &crate::build::build_private_service(&crate::build::tests::validated(&other)).metadata,
            &f
        ));
    }

    #[test]
    fn a_trimmed_deployment_still_says_who_owns_replicas() {
        let entry = |manager: &str, fields: serde_json::Value| json!({ "manager": manager, "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": fields });
        let deployment = |entries: Vec<serde_json::Value>| -> Deployment {
            serde_json::from_value(json!({ "metadata": { "name": "d", "managedFields": entries } }))
                .expect("deployment")
        };
        let template = json!({ "f:spec": { "f:template": {} } });
        let replicas = json!({ "f:spec": { "f:replicas": {}, "f:template": {} } });
        let mut owning = deployment(vec![
            entry(FIELD_MANAGER, replicas),
            entry("kube-controller-manager", json!({ "f:status": {} })),
        ]);
        trim_deployment(&mut owning);
        assert!(operator_owns_replicas(&owning));
        assert_eq!(owning.metadata.managed_fields.as_ref().map(Vec::len), Some(1));
        let mut handed_over = deployment(vec![
            entry(FIELD_MANAGER, template),
            entry(
                "zeroscale-operator-initial-scale",
                json!({ "f:spec": { "f:replicas": {} } }),
            ),
        ]);
        trim_deployment(&mut handed_over);
        assert!(!operator_owns_replicas(&handed_over));
        assert!(handed_over.metadata.managed_fields.is_none());
    }

    #[test]
    fn detects_the_operator_owning_replicas() {
        let owned = with_managed_fields(json!([{
            "manager": FIELD_MANAGER, "operation": "Apply", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
            "fieldsV1": { "f:spec": { "f:replicas": {}, "f:template": {} } }
        }]));
        assert!(operator_owns_replicas(&owned));
        let handed_over = with_managed_fields(json!([
            { "manager": FIELD_MANAGER, "operation": "Apply", "fieldsV1": { "f:spec": { "f:template": {} } } },
            { "manager": INITIAL_SCALE_MANAGER, "operation": "Apply", "fieldsV1": { "f:spec": { "f:replicas": {} } } },
            { "manager": "zeroscale-autoscaler", "operation": "Update", "subresource": "scale",
              "fieldsV1": { "f:spec": { "f:replicas": {} } } }
        ]));
        assert!(!operator_owns_replicas(&handed_over));
        assert!(!operator_owns_replicas(&Deployment::default()));
    }
}
