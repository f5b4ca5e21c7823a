//! Where things are: the repository root, the cluster state directory, our binaries, the pinned kubectl.

use std::path::{Path, PathBuf};

/// The repository root, found from this crate's `CARGO_MANIFEST_DIR` (`<root>/e2e`).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.to_path_buf())
}

/// The local cluster's state directory, `<root>/.zeroscale` (gitignored).
pub fn state_dir() -> PathBuf {
    repo_root().join(".zeroscale")
}

/// The admin kubeconfig written by `make cluster-up`.
pub fn kubeconfig_path() -> PathBuf {
    state_dir().join("kubeconfig")
}

/// Directory of log files: the cluster's daemons and components spawned by [`crate::spawn_component`].
/// Containers' output is read with `kubectl logs` ([`crate::pod_logs`]).
pub fn logs_dir() -> PathBuf {
    state_dir().join("logs")
}

/// The Cargo target directory: `$CARGO_TARGET_DIR` if set (relative paths are taken from the repository
/// root, as Cargo does for the workspace), else `<root>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                repo_root().join(dir)
            }
        }
        None => repo_root().join("target"),
    }
}

/// Path of one of the workspace's binaries in the debug profile, e.g. `bin_path("zeroscale-operator")`.
/// Build it first (`make build`, which `make e2e` runs).
pub fn bin_path(name: &str) -> PathBuf {
    target_dir().join("debug").join(name)
}

/// Directory of the pinned control-plane binaries and kubectl (`.zeroscale/bin`, a link into
/// `$ZEROSCALE_CACHE/k8s-<version>/bin` made by `make cluster-up`).
pub fn kube_bin_dir() -> PathBuf {
    state_dir().join("bin")
}

/// The pinned kubectl (same release as the API server). The machine's own `kubectl` is not used.
pub fn kubectl_path() -> PathBuf {
    kube_bin_dir().join("kubectl")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_holds_the_workspace_manifest() {
        assert!(repo_root().join("Cargo.toml").is_file());
        assert!(repo_root().join("e2e").is_dir());
    }
}
