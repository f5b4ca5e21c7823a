//! Where things are: the repository root, the cluster state directory, our binaries, the pinned kubectl.

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

/// The repository root: the nearest directory at or above the working directory that holds this
/// workspace (`Cargo.toml` and `e2e/Cargo.toml`), else the one this crate was compiled in
/// (`CARGO_MANIFEST_DIR`'s parent). The working directory comes first because one Cargo target
/// directory may be shared by several clones: a binary another clone built must still find this
/// clone's cluster (`cargo test` runs in `<root>/e2e`, the scripts in `<root>`).
/// Found once per process: every path below derives from it, and kubectl's is asked per call.
pub fn repo_root() -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        std::env::current_dir()
            .ok()
            .and_then(|dir| workspace_at_or_above(&dir))
            .unwrap_or_else(compiled_root)
    })
    .clone()
}

/// The nearest directory at or above `dir` that holds this workspace.
fn workspace_at_or_above(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| d.join("Cargo.toml").is_file() && d.join("e2e/Cargo.toml").is_file())
        .map(Path::to_path_buf)
}

/// The repository this crate was compiled in.
fn compiled_root() -> PathBuf {
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

    #[test]
    fn another_clone_is_found_from_its_working_directory() {
        let clone = std::env::temp_dir().join(format!("zeroscale-paths-{}", std::process::id()));
        let inner = clone.join("e2e/src");
        std::fs::create_dir_all(&inner).expect("create the fake clone");
        std::fs::write(clone.join("Cargo.toml"), "").expect("write");
        std::fs::write(clone.join("e2e/Cargo.toml"), "").expect("write");
        assert_eq!(workspace_at_or_above(&inner), Some(clone.clone()));
        assert_eq!(workspace_at_or_above(&clone), Some(clone.clone()));
        // Outside any clone: nothing, and `repo_root` falls back to where this crate was built.
        assert_eq!(workspace_at_or_above(Path::new("/")), None);
        assert!(compiled_root().join("e2e/Cargo.toml").is_file());
        std::fs::remove_dir_all(&clone).expect("remove the fake clone");
    }
}
