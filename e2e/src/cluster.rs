//! The connection to the local cluster, with a clear failure when it is not up.

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::paths::kubeconfig_path;

/// Errors while connecting to the local cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// `.zeroscale/kubeconfig` does not exist.
    #[error(
        "the local cluster is not up: {0} does not exist; run `make cluster-up` (scripts/e2e.sh does it for you)"
    )]
    NotUp(String),
    /// The kubeconfig could not be read.
    #[error("cannot read kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The kubeconfig path.
        path: String,
        /// What went wrong.
        source: kube::config::KubeconfigError,
    },
    /// The client could not be built.
    #[error("cannot build a kube client: {0}")]
    Client(#[from] kube::Error),
    /// The API server did not answer.
    #[error("the local cluster does not answer (run `make cluster-up`; see .zeroscale/logs/): {0}")]
    Unreachable(kube::Error),
}

/// A client for the local cluster built from `.zeroscale/kubeconfig` (admin credentials).
pub async fn try_client() -> Result<kube::Client, ClusterError> {
    let path = kubeconfig_path();
    if !path.is_file() {
        return Err(ClusterError::NotUp(path.display().to_string()));
    }
    let kubeconfig = Kubeconfig::read_from(&path).map_err(|source| ClusterError::Kubeconfig {
        path: path.display().to_string(),
        source,
    })?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|source| ClusterError::Kubeconfig {
            path: path.display().to_string(),
            source,
        })?;
    let client = kube::Client::try_from(config)?;
    client
        .apiserver_version()
        .await
        .map_err(ClusterError::Unreachable)?;
    Ok(client)
}

/// Like [`try_client`], but panics with a message saying how to bring the cluster up. End-to-end tests
/// call this first, so a missing cluster is a clear failure, never a silent pass.
pub async fn client() -> kube::Client {
    match try_client().await {
        Ok(client) => client,
        Err(e) => panic!("{e}"),
    }
}
