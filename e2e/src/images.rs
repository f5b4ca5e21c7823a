//! The images tests run: real references into the local registry that `make images` fills
//! (`scripts/images.sh`; the registry listens on `localhost:5000`, see docs/local-cluster.md).
//!
//! Every reference carries the workspace version as its tag, as `make images` pushes it. A test that
//! needs a second tag of the same image (an image update under traffic) makes one with
//! [`ensure_tag`], which asks the registry to tag the existing manifest (`crane tag`): nothing is built.

use tokio::process::Command;

use crate::paths::kube_bin_dir;

/// The local registry every image is pushed to and pulled from.
pub const REGISTRY: &str = "localhost:5000";
/// The Rust echo function (`examples/functions/echo`).
pub const ECHO_IMAGE: &str = "localhost:5000/zeroscale/echo:0.1.0";
/// The Python echo function (`examples/functions/python`).
pub const ECHO_PYTHON_IMAGE: &str = "localhost:5000/zeroscale/echo-python:0.1.0";
/// The Node.js echo function (`examples/functions/node`).
pub const ECHO_NODE_IMAGE: &str = "localhost:5000/zeroscale/echo-node:0.1.0";
/// A shell for throw-away test pods (`command: [sh, -c, ...]`): Debian's busybox-static.
pub const BUSYBOX_IMAGE: &str = "localhost:5000/zeroscale/busybox:0.1.0";
/// The pinned kubectl as an image (entrypoint `kubectl`), to act as a pod's ServiceAccount.
pub const KUBECTL_IMAGE: &str = "localhost:5000/zeroscale/kubectl:0.1.0";
/// A reference the registry does not hold: pulling it fails (`ErrImagePull`, `ImagePullBackOff`).
pub const MISSING_IMAGE: &str = "localhost:5000/zeroscale/no-such-image:0.1.0";

/// The image of one of the three components as the chart installs it by default.
pub fn component_image(component: &str) -> String {
    format!("{REGISTRY}/zeroscale/{component}:0.1.0")
}

/// The repository part of a reference (`localhost:5000/zeroscale/echo` of `...:0.1.0`).
pub fn repository(image: &str) -> &str {
    match image.rsplit_once(':') {
        // A colon after the last slash separates the tag; one before it belongs to host:port.
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => image,
    }
}

/// Errors while tagging an image in the registry.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// crane could not be started.
    #[error("cannot run {path} (built by e2e/cluster/build.sh into .zeroscale/bin): {source}")]
    Spawn {
        /// The crane path.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// crane failed, e.g. the source image is not in the registry (run `make images`).
    #[error("`crane {args}` failed ({status}): {stderr}; has `make images` pushed {REGISTRY}/zeroscale/*?")]
    Failed {
        /// The arguments.
        args: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Its standard error.
        stderr: String,
    },
}

/// Runs the pinned `crane` (go-containerregistry) against the local registry (plain HTTP).
async fn crane(args: &[&str]) -> Result<String, ImageError> {
    let path = kube_bin_dir().join("crane");
    let out = Command::new(&path)
        .args(args)
        .arg("--insecure")
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| ImageError::Spawn {
            path: path.display().to_string(),
            source,
        })?;
    if !out.status.success() {
        return Err(ImageError::Failed {
            args: args.join(" "),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Makes `image` (a `repo:tag` reference in the local registry) also available as `repo:<tag>` and
/// returns that reference; idempotent. Panics with crane's error when the image is not there.
pub async fn ensure_tag(image: &str, tag: &str) -> String {
    if let Err(e) = crane(&["tag", image, tag]).await {
        panic!("{e}");
    }
    format!("{}:{tag}", repository(image))
}

/// The digest (`sha256:...`) of `image` in the local registry. Panics with crane's error.
pub async fn image_digest(image: &str) -> String {
    match crane(&["digest", image]).await {
        Ok(digest) => digest,
        Err(e) => panic!("{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_strips_the_tag_but_not_the_registry_port() {
        assert_eq!(repository(ECHO_IMAGE), "localhost:5000/zeroscale/echo");
        assert_eq!(
            repository("localhost:5000/zeroscale/echo"),
            "localhost:5000/zeroscale/echo"
        );
        assert_eq!(repository("busybox"), "busybox");
    }

    #[test]
    fn every_reference_is_in_the_local_registry_with_the_workspace_version() {
        for image in [
            ECHO_IMAGE,
            ECHO_PYTHON_IMAGE,
            ECHO_NODE_IMAGE,
            BUSYBOX_IMAGE,
            KUBECTL_IMAGE,
            MISSING_IMAGE,
        ] {
            assert!(image.starts_with("localhost:5000/zeroscale/"), "{image}");
            assert!(
                image.ends_with(concat!(":", env!("CARGO_PKG_VERSION"))),
                "{image}"
            );
        }
        assert_eq!(
            component_image("operator"),
            "localhost:5000/zeroscale/operator:0.1.0"
        );
    }
}
