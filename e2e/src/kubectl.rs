//! Running the pinned kubectl against the local cluster.

use std::process::{Output, Stdio};

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::paths::{kubeconfig_path, kubectl_path};

/// Errors from running kubectl.
#[derive(Debug, thiserror::Error)]
pub enum KubectlError {
    /// kubectl could not be started.
    #[error("cannot run {path} (is the cluster up? `make cluster-up`): {source}")]
    Spawn {
        /// The kubectl path.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// kubectl exited non-zero.
    #[error("`kubectl {args}` failed ({status}): {stderr}")]
    Failed {
        /// The arguments, space-separated.
        args: String,
        /// The exit status.
        status: std::process::ExitStatus,
        /// kubectl's standard error.
        stderr: String,
    },
}

fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(kubectl_path());
    cmd.arg("--kubeconfig").arg(kubeconfig_path()).args(args);
    cmd.kill_on_drop(true);
    cmd
}

fn spawn_error(source: std::io::Error) -> KubectlError {
    KubectlError::Spawn {
        path: kubectl_path().display().to_string(),
        source,
    }
}

/// Runs the pinned kubectl with the admin kubeconfig and returns its output, whatever the exit status.
/// Panics only when kubectl cannot be started at all.
pub async fn kubectl(args: &[&str]) -> Output {
    match command(args).output().await {
        Ok(out) => out,
        Err(e) => panic!("{}", spawn_error(e)),
    }
}

/// Runs kubectl, optionally feeding `stdin`, and returns its standard output when it exits 0.
pub async fn try_kubectl(args: &[&str], stdin: Option<&str>) -> Result<String, KubectlError> {
    let mut cmd = command(args);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(spawn_error)?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes()).await.map_err(spawn_error)?;
        drop(pipe);
    }
    let out = child.wait_with_output().await.map_err(spawn_error)?;
    if !out.status.success() {
        return Err(KubectlError::Failed {
            args: args.join(" "),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs kubectl and returns its standard output; panics with kubectl's stderr when it fails.
pub async fn kubectl_ok(args: &[&str]) -> String {
    match try_kubectl(args, None).await {
        Ok(out) => out,
        Err(e) => panic!("{e}"),
    }
}

/// `kubectl apply -n <namespace> -f -` with `yaml` (one or more documents) on standard input; panics on
/// failure. `namespace` is where namespaced objects without `metadata.namespace` go.
pub async fn apply_yaml(namespace: &str, yaml: &str) -> String {
    match try_kubectl(&["apply", "-n", namespace, "-f", "-"], Some(yaml)).await {
        Ok(out) => out,
        Err(e) => panic!("{e}"),
    }
}

/// `kubectl apply --server-side -f -` for cluster-scoped or fully qualified objects (e.g. CRDs).
pub async fn apply_yaml_cluster(yaml: &str) -> String {
    match try_kubectl(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        Some(yaml),
    )
    .await
    {
        Ok(out) => out,
        Err(e) => panic!("{e}"),
    }
}

/// What a namespace's workloads look like now, for a test's failure message: its Deployments,
/// ReplicaSets and pods with their state, and its Events, oldest first. Errors are reported inline,
/// as this only ever explains another failure.
pub async fn namespace_report(namespace: &str) -> String {
    let mut report = String::new();
    let views: [&[&str]; 3] = [
        &["get", "deployments,replicasets,pods", "-o", "wide"],
        &[
            "get",
            "pods",
            "-o",
            "custom-columns=POD:.metadata.name,DELETING:.metadata.deletionTimestamp,\
             CONDITIONS:.status.conditions[*].type,STATUS:.status.conditions[*].status,\
             STATE:.status.containerStatuses[*].state",
        ],
        &["get", "events", "--sort-by=.lastTimestamp"],
    ];
    for view in views {
        let mut args = vec!["-n", namespace];
        args.extend_from_slice(view);
        let out = match try_kubectl(&args, None).await {
            Ok(out) => out,
            Err(e) => e.to_string(),
        };
        report.push_str(&format!("$ kubectl {}\n{out}\n", args.join(" ")));
    }
    report
}
