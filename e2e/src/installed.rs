//! Zeroscale as users run it: installed on the local cluster by `scripts/install.sh` (the Helm chart in
//! `zeroscale-system`), for the scenario suite (`e2e/tests/scenarios.rs`).
//!
//! [`ensure_installed`] runs the install script once per test binary (it is idempotent) and reads the
//! addresses it writes to `.zeroscale/activator.env`. With `ZEROSCALE_E2E_INSTALLED=1` in the environment
//! the script is not run again (`scripts/e2e.sh` installs before it runs the suite). The helpers for the
//! high-availability scenarios act on the chart's Deployments and only make sense for a chart install;
//! [`Installed::require_chart`] says so loudly when the components run as host processes instead.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::kubectl::{KubectlError, try_kubectl};
use crate::paths::{repo_root, state_dir};

/// The namespace the chart is installed into.
pub const SYSTEM_NAMESPACE: &str = "zeroscale-system";
/// Environment variable that says Zeroscale is already installed (skip the install script).
pub const INSTALLED_ENV: &str = "ZEROSCALE_E2E_INSTALLED";

/// Errors while installing Zeroscale or reading what the install wrote.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The install script could not be started.
    #[error("cannot run scripts/install.sh: {0}")]
    Spawn(#[source] std::io::Error),
    /// The install script failed.
    #[error("scripts/install.sh failed ({status}):\n{output}")]
    Script {
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The tail of its standard output and error.
        output: String,
    },
    /// The environment file is missing or unreadable.
    #[error("cannot read {path} (written by scripts/install.sh): {source}")]
    EnvFile {
        /// Its path.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A required key is missing from the environment file.
    #[error("{path} has no {key}")]
    MissingKey {
        /// The file.
        path: String,
        /// The key.
        key: &'static str,
    },
}

/// The installed Zeroscale, as the scenarios reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The activator's external data port, reachable from the host (`ZEROSCALE_ACTIVATOR`).
    pub activator_url: String,
    /// The broker ingress, when the install exposes one (`ZEROSCALE_BROKER`).
    pub broker_url: Option<String>,
    /// Whether the components run as pods from the chart (rather than as host processes).
    pub chart: bool,
}

/// Parses `KEY=value` lines (blank lines, `#` comments and an `export ` prefix allowed; values may be
/// quoted).
pub fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("export ").unwrap_or(l).split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let unquoted = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            (k.trim().to_string(), unquoted.to_string())
        })
        .collect()
}

/// Runs `bash scripts/install.sh` (output tail kept for the error).
async fn run_install_script() -> Result<(), InstallError> {
    run_install_script_with(&[]).await
}

/// Runs `bash scripts/install.sh` with `env` added to its environment.
async fn run_install_script_with(env: &[(&str, &str)]) -> Result<(), InstallError> {
    let out = tokio::process::Command::new("bash")
        .arg("scripts/install.sh")
        .envs(env.iter().copied())
        .current_dir(repo_root())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(InstallError::Spawn)?;
    if out.status.success() {
        return Ok(());
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let tail: Vec<&str> = text.lines().rev().take(40).collect();
    let output = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
    Err(InstallError::Script {
        status: out.status,
        output,
    })
}

/// Reads `.zeroscale/activator.env` and finds out how the components run.
async fn read_installed() -> Result<Installed, InstallError> {
    let path = state_dir().join("activator.env");
    let shown = path.display().to_string();
    let text = tokio::fs::read_to_string(&path)
        .await
        .map_err(|source| InstallError::EnvFile {
            path: shown.clone(),
            source,
        })?;
    let mut env = parse_env(&text);
    let activator_url = env
        .remove("ZEROSCALE_ACTIVATOR")
        .filter(|v| !v.is_empty())
        .ok_or(InstallError::MissingKey {
            path: shown,
            key: "ZEROSCALE_ACTIVATOR",
        })?;
    let broker_url = env.remove("ZEROSCALE_BROKER").filter(|v| !v.is_empty());
    let chart = try_kubectl(
        &[
            "get",
            "deployment",
            "zeroscale-activator",
            "-n",
            SYSTEM_NAMESPACE,
            "-o",
            "name",
        ],
        None,
    )
    .await
    .is_ok();
    Ok(Installed {
        activator_url: activator_url.trim_end_matches('/').to_string(),
        broker_url,
        chart,
    })
}

/// Installs Zeroscale (once per test binary) and returns where it is reached.
pub async fn try_ensure_installed() -> Result<&'static Installed, InstallError> {
    static INSTALLED: OnceCell<Installed> = OnceCell::const_new();
    INSTALLED
        .get_or_try_init(|| async {
            if std::env::var(INSTALLED_ENV).is_ok_and(|v| v == "1") {
                eprintln!("{INSTALLED_ENV}=1: using the existing install");
            } else {
                run_install_script().await?;
            }
            read_installed().await
        })
        .await
}

/// Installs (or `helm upgrade`s) Zeroscale with event store `store` (`memory` or `jetstream`:
/// `ZEROSCALE_EVENT_STORE` of `scripts/install.sh`), whatever is installed now, and returns where it is
/// reached. Not cached: each call runs the (idempotent) script, so a test binary may switch stores.
pub async fn install_with_event_store(store: &str) -> Result<Installed, InstallError> {
    run_install_script_with(&[("ZEROSCALE_EVENT_STORE", store)]).await?;
    read_installed().await
}

/// Like [`try_ensure_installed`] but panics with the reason.
pub async fn ensure_installed() -> &'static Installed {
    match try_ensure_installed().await {
        Ok(installed) => installed,
        Err(e) => panic!("{e}"),
    }
}

impl Installed {
    /// Panics unless the components run as pods from the chart: `what` needs their Deployments.
    pub fn require_chart(&self, what: &str) {
        assert!(
            self.chart,
            "{what} needs Zeroscale installed from the chart (deployment/zeroscale-activator in \
             {SYSTEM_NAMESPACE}); scripts/install.sh runs the components as host processes"
        );
    }
}

/// `kubectl` in [`SYSTEM_NAMESPACE`]; panics with kubectl's error when it fails.
async fn system_kubectl(args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.extend(["-n", SYSTEM_NAMESPACE]);
    match try_kubectl(&all, None).await {
        Ok(out) => out,
        Err(e) => panic!("{e}"),
    }
}

/// The label selector of a component's pods.
fn selector(component: &str) -> String {
    format!("app.kubernetes.io/component={component},app.kubernetes.io/part-of=zeroscale")
}

/// A component's pods (`activator`, `autoscaler`, `operator`) that are not being deleted, as JSON.
async fn live_pods(component: &str) -> Vec<serde_json::Value> {
    let out = system_kubectl(&["get", "pods", "-l", &selector(component), "-o", "json"]).await;
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    let items = doc["items"].as_array().cloned().unwrap_or_default();
    items
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect()
}

fn pod_name(pod: &serde_json::Value) -> Option<String> {
    pod["metadata"]["name"].as_str().map(str::to_string)
}

/// The names of a component's pods (`activator`, `autoscaler`, `operator`) that are not being deleted.
pub async fn component_pods(component: &str) -> Vec<String> {
    live_pods(component).await.iter().filter_map(pod_name).collect()
}

/// The names of a component's pods whose `Ready` condition is `True` (and not being deleted).
pub async fn ready_component_pods(component: &str) -> Vec<String> {
    let ready = |p: &&serde_json::Value| {
        p["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
    };
    live_pods(component)
        .await
        .iter()
        .filter(ready)
        .filter_map(pod_name)
        .collect()
}

/// The last `tail` log lines of each of a component's pods, each line prefixed with its pod (or
/// kubectl's error), for a failure's report: what the activators saw of a request that failed.
pub async fn component_logs(component: &str, tail: usize) -> String {
    try_component_logs(component, Some(tail))
        .await
        .unwrap_or_else(|e| e.to_string())
}

/// The last `tail` log lines (all of them with `None`) of each of a component's pods, each line
/// prefixed with its pod; an error when kubectl could not read them, e.g. because a rollout deleted
/// a pod between listing the pods and reading its log.
///
/// A pod whose container restarted (a crash, or a test's `chaos` kill) also gives the last `tail`
/// lines of its previous container, after the current ones: the replica that took a failed request
/// may be the one that was killed, and its lines are only there.
pub async fn try_component_logs(component: &str, tail: Option<usize>) -> Result<String, KubectlError> {
    let tail = tail.map_or_else(|| "--tail=-1".to_string(), |n| format!("--tail={n}"));
    let selector = selector(component);
    let args = ["logs", "-n", SYSTEM_NAMESPACE, "-l", &selector, &tail, "--prefix"];
    let mut logs = try_kubectl(&args, None).await?;
    for pod in live_pods(component).await.iter().filter(restarted) {
        let Some(name) = pod_name(pod) else { continue };
        let args = ["logs", "-n", SYSTEM_NAMESPACE, &name, "--previous", &tail];
        let previous = try_kubectl(&args, None).await.unwrap_or_else(|e| e.to_string());
        logs += &format!("\n[pod/{name}, the previous container]\n{previous}");
    }
    Ok(logs)
}

/// Whether any container of `pod` has restarted.
fn restarted(pod: &&serde_json::Value) -> bool {
    pod["status"]["containerStatuses"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["restartCount"].as_u64().unwrap_or(0) > 0))
}

/// A component pod's `/metrics` (admin port 9090), read through the API server's pod proxy.
pub async fn pod_metrics(pod: &str) -> Result<String, KubectlError> {
    let path = format!("/api/v1/namespaces/{SYSTEM_NAMESPACE}/pods/{pod}:9090/proxy/metrics");
    try_kubectl(&["get", "--raw", &path], None).await
}

/// `kubectl rollout restart deployment/zeroscale-<component>`, then waits (up to `timeout`) until the
/// rollout has finished.
pub async fn rollout_restart(component: &str, timeout: Duration) {
    system_kubectl(&["rollout", "restart", &format!("deployment/zeroscale-{component}")]).await;
    wait_rollout(component, timeout).await;
}

/// Waits (up to `timeout`, then panics) until the rollout of `deployment/zeroscale-<component>` has
/// finished: every replica updated and available. Returns at once when none is in progress.
pub async fn wait_rollout(component: &str, timeout: Duration) {
    let deployment = format!("deployment/zeroscale-{component}");
    let limit = format!("--timeout={}s", timeout.as_secs());
    system_kubectl(&["rollout", "status", &deployment, &limit]).await;
}

/// Deletes a pod of the installed system at once (`--grace-period=0 --force`: a crash, not a drain) and
/// returns without waiting for its replacement.
pub async fn kill_pod(pod: &str) {
    system_kubectl(&[
        "delete",
        "pod",
        pod,
        "--grace-period=0",
        "--force",
        "--wait=false",
    ])
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_activator_env_file() {
        let env = parse_env(
            "# written by install.sh\nZEROSCALE_ACTIVATOR=http://10.96.0.10:80\n\nexport ZEROSCALE_BROKER=\"http://10.96.0.11:80\"\nJUNK\n",
        );
        assert_eq!(
            env.get("ZEROSCALE_ACTIVATOR").map(String::as_str),
            Some("http://10.96.0.10:80")
        );
        assert_eq!(
            env.get("ZEROSCALE_BROKER").map(String::as_str),
            Some("http://10.96.0.11:80")
        );
        assert_eq!(env.len(), 2);
    }
}
