//! Look-ups: what the cluster says about the names a Trigger's spec refers to (the Functions it names,
//! the kind its `kubernetes` source watches), read from the API server.

use std::collections::BTreeSet;

use kube::api::GroupVersionKind;
use kube::error::DiscoveryError;
use kube::{Api, Client};
use zeroscale_crds::Function;

use super::check::SpecCheck;
use super::error::TriggerError;
use super::status::Lookups;

/// Looks up everything `check` leaves open.
pub async fn lookup(client: &Client, check: &SpecCheck) -> Result<Lookups, TriggerError> {
    Ok(Lookups {
        missing_functions: missing_functions(client, check).await?,
        kind: match check.kind() {
            Some(gvk) => Some(served(client, gvk).await?),
            None => None,
        },
    })
}

/// The Functions the Trigger names that do not exist. Read uncached: the Function watch that
/// re-triggers this reconcile may be ahead of any cache.
async fn missing_functions(client: &Client, check: &SpecCheck) -> Result<BTreeSet<String>, TriggerError> {
    let api: Api<Function> = Api::namespaced(client.clone(), &check.namespace);
    let mut missing = BTreeSet::new();
    for name in check.functions() {
        let found = api.get_opt(&name).await.map_err(|source| TriggerError::Read {
            what: format!("function {}/{name}", check.namespace),
            source,
        })?;
        if found.is_none() {
            missing.insert(name);
        }
    }
    Ok(missing)
}

/// Whether the API server serves `gvk`, by API discovery: `Err` with the reason when it does not; an
/// error when discovery itself fails (retried).
async fn served(client: &Client, gvk: &GroupVersionKind) -> Result<Result<(), String>, TriggerError> {
    match kube::discovery::pinned_kind(client, gvk).await {
        Ok(_) => Ok(Ok(())),
        Err(kube::Error::Discovery(DiscoveryError::MissingKind(_))) => {
            Ok(Err(format!("its API version serves no kind {}", gvk.kind)))
        }
        Err(kube::Error::Api(status)) if status.code == 404 => {
            Ok(Err(format!("API version {} is not served", gvk.api_version())))
        }
        Err(source) => Err(TriggerError::Read {
            what: format!("API discovery of {}", gvk.api_version()),
            source,
        }),
    }
}
