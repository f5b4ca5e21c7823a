//! Observe: the reads the status is computed from, besides what apply returned (the pods, and the
//! Deployment when the spec is invalid and nothing is applied).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};
use zeroscale_crds::function::FUNCTION_LABEL;

use crate::error::FunctionError;

/// Lists the pods of the function `name` in `namespace`, by label.
pub async fn list_pods(client: &Client, namespace: &str, name: &str) -> Result<Vec<Pod>, FunctionError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let params = ListParams::default().labels(&format!("{FUNCTION_LABEL}={name}"));
    api.list(&params)
        .await
        .map(|list| list.items)
        .map_err(|source| FunctionError::Read {
            what: format!("pods of function {namespace}/{name}"),
            source,
        })
}

/// Reads the Deployment of the function `name` without applying it (when the spec is invalid).
pub async fn get_deployment(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Option<Deployment>, FunctionError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    api.get_opt(name).await.map_err(|source| FunctionError::Read {
        what: format!("Deployment {namespace}/{name}"),
        source,
    })
}

/// Lists the Deployments labelled with the function `name` (its revisions, and the single Deployment
/// of a Function from before revisions).
pub async fn list_deployments(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Vec<Deployment>, FunctionError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let params = ListParams::default().labels(&format!("{FUNCTION_LABEL}={name}"));
    api.list(&params)
        .await
        .map(|list| list.items)
        .map_err(|source| FunctionError::Read {
            what: format!("Deployments of function {namespace}/{name}"),
            source,
        })
}
