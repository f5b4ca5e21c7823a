//! Service-account credentials for pods, the way the kubelet provides them: a bound token from the
//! TokenRequest API, the cluster CA and the namespace, in a per-pod directory that is mounted at the
//! standard path inside the pod, refreshed before the token expires.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::Api;
use kube::api::PostParams;

use crate::process::SA_MOUNT;

/// Errors while providing service-account credentials.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The TokenRequest failed.
    #[error("token request for service account {sa} failed: {source}")]
    Request {
        /// The ServiceAccount.
        sa: String,
        /// What went wrong.
        #[source]
        source: kube::Error,
    },
    /// The answer had no token.
    #[error("token request answer has no token")]
    Empty,
    /// Writing the files failed.
    #[error("cannot write service-account files in {path}: {source}")]
    Write {
        /// The directory.
        path: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
}

/// What the pod's projected service-account volume asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenVolume {
    /// Token lifetime requested.
    pub expiration_seconds: i64,
    /// Audience (`None`: the API server's).
    pub audience: Option<String>,
}

/// The projected service-account token volume mounted at the standard path by some container (added
/// by the ServiceAccount admission plugin unless automounting is off).
pub fn token_volume(pod: &Pod) -> Option<TokenVolume> {
    let spec = pod.spec.as_ref()?;
    let mounted: Vec<&str> = spec
        .containers
        .iter()
        .flat_map(|c| c.volume_mounts.iter().flatten())
        .filter(|m| m.mount_path.trim_end_matches('/') == SA_MOUNT)
        .map(|m| m.name.as_str())
        .collect();
    spec.volumes
        .iter()
        .flatten()
        .filter(|v| mounted.contains(&v.name.as_str()))
        .find_map(|v| {
            let sources = v.projected.as_ref()?.sources.as_ref()?;
            let token = sources.iter().find_map(|s| s.service_account_token.as_ref())?;
            Some(TokenVolume {
                expiration_seconds: token.expiration_seconds.unwrap_or(3607),
                audience: token.audience.clone().filter(|a| !a.is_empty()),
            })
        })
}

fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, data)?;
    std::fs::rename(tmp, dir.join(name))
}

/// Requests a token bound to the pod and writes `token`, `ca.crt` and `namespace` into `dir`; returns
/// when to refresh (at 80 % of the lifetime, as the kubelet does).
pub async fn write_credentials(
    client: &kube::Client,
    pod: &Pod,
    volume: &TokenVolume,
    ca_pem: &[u8],
    dir: &Path,
) -> Result<Duration, TokenError> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let sa = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .unwrap_or_else(|| "default".into());
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: volume.audience.clone().into_iter().collect(),
            expiration_seconds: Some(volume.expiration_seconds),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
            }),
        },
        ..Default::default()
    };
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
    let answer: TokenRequest = api
        .create_subresource("token", &sa, &PostParams::default(), &request)
        .await
        .map_err(|source| TokenError::Request {
            sa: sa.clone(),
            source,
        })?;
    let status = answer.status.ok_or(TokenError::Empty)?;
    let werr = |source| TokenError::Write {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(werr)?;
    write_atomic(dir, "token", status.token.as_bytes()).map_err(werr)?;
    write_atomic(dir, "ca.crt", ca_pem).map_err(werr)?;
    write_atomic(dir, "namespace", ns.as_bytes()).map_err(werr)?;
    let lifetime = u64::try_from(volume.expiration_seconds.max(600)).unwrap_or(3600);
    Ok(Duration::from_secs(lifetime * 8 / 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_admission_plugins_projected_volume() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "spec": {
                "containers": [{"name": "c", "volumeMounts": [
                    {"name": "kube-api-access-x", "mountPath": SA_MOUNT, "readOnly": true}]}],
                "volumes": [{"name": "kube-api-access-x", "projected": {"sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}
                ]}}]
            }
        }))
        .unwrap();
        assert_eq!(
            token_volume(&pod),
            Some(TokenVolume {
                expiration_seconds: 3607,
                audience: None
            })
        );
        let mut no_mount = pod.clone();
        if let Some(spec) = no_mount.spec.as_mut() {
            spec.containers[0].volume_mounts = None;
        }
        assert_eq!(token_volume(&no_mount), None);
    }
}
