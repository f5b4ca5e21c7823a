//! Helpers of `chart.rs` around helm and the chart's files: the pinned helm, releases, values files,
//! rendered manifests, the chart's `args` keys and the binaries' flags.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Stdio;

use serde_json::Value;
use tokio::process::Command;
use tokio::sync::OnceCell;
use zeroscale_e2e::{bin_path, repo_root, target_dir};
/// Flags the chart sets itself instead of exposing them under `<component>.args`, per component, and
/// why (docs/install.md has the same table).
pub const MANAGED_FLAGS: &[(&str, &str)] = &[
    ("operator", "kubeconfig"),        // in-cluster ServiceAccount credentials
    ("operator", "admin-addr"),        // bindAddress + operator.ports.admin
    ("operator", "domain"),            // domain (shared with the activator)
    ("operator", "lease-namespace"),   // the release namespace (the Role lives there)
    ("operator", "lease-name"),        // <fullname>-operator (the Role names it)
    ("operator", "allowed-hosts"),     // eventing.allowedHosts (shared with the activator)
    ("activator", "external-addr"),    // bindAddress + activator.ports.external
    ("activator", "internal-addr"),    // bindAddress + activator.ports.internal
    ("activator", "admin-addr"),       // bindAddress + activator.ports.admin
    ("activator", "cluster-domain"),   // clusterDomain
    ("activator", "external-domain"),  // domain (shared with the operator)
    ("activator", "pod-name"),         // POD_NAME from the downward API
    ("activator", "pod-ip"),           // POD_IP from the downward API (peering)
    ("activator", "static-config"),    // file mode for tests and benches, not for a cluster
    ("activator", "static-triggers"),  // file mode for tests and benches, not for a cluster
    ("activator", "static-peers"),     // a fixed peer set for benches; the chart peers by Service
    ("activator", "broker-addr"),      // bindAddress + activator.ports.broker
    ("activator", "lease-namespace"),  // the release namespace (the Role lives there)
    ("activator", "lease-name"),       // <fullname>-activator-sources (the Role names it)
    ("activator", "broker-auth"),      // broker.auth.enabled (the chart grants the RBAC it needs)
    ("activator", "allowed-hosts"),    // eventing.allowedHosts (shared with the operator)
    ("activator", "autoscaler-token"), // Secret <fullname>-signals, as an environment variable
    ("activator", "event-store"),      // eventing.store
    ("activator", "nats-url"),         // eventing.nats.url, or the chart's own NATS Service
    ("activator", "nats-replicas"),    // eventing.nats.replicas (also the chart's NATS pods)
    ("activator", "otlp-endpoint"),    // tracing.otlpEndpoint
    // tracing.samplingRatio (passed with an endpoint only)
    ("activator", "trace-sampling-ratio"),
    ("autoscaler", "events-addr"),     // bindAddress + autoscaler.ports.events
    ("autoscaler", "admin-addr"),      // bindAddress + autoscaler.ports.admin
    ("autoscaler", "events-token"),    // Secret <fullname>-signals, as an environment variable
    ("autoscaler", "lease-namespace"), // the release namespace
    ("autoscaler", "lease-name"),      // <fullname>-autoscaler
    ("autoscaler", "identity"),        // POD_NAME is the binary's fallback
    // broker.auth.enabled: the projected `zeroscale-broker` token of the platform events' senders
    ("operator", "events-sink-token-file"),
    ("autoscaler", "events-sink-token-file"),
];

static HELM: OnceCell<PathBuf> = OnceCell::const_new();

/// The pinned helm, built (or found in the cache) by e2e/cluster/helm/build.sh.
async fn helm_path() -> &'static PathBuf {
    HELM.get_or_init(|| async {
        let script = repo_root().join("e2e/cluster/helm/build.sh");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .await
            .expect("run build.sh");
        assert!(
            out.status.success(),
            "building helm failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
    .await
}

/// `HELM_*_HOME` of every helm run: directories of its own under the target directory, never the user's.
fn helm_env() -> [(&'static str, PathBuf); 3] {
    let home = target_dir().join("e2e-helm");
    [
        ("HELM_CACHE_HOME", home.join("cache")),
        ("HELM_CONFIG_HOME", home.join("config")),
        ("HELM_DATA_HOME", home.join("data")),
    ]
}

/// Runs helm with its own config and cache directories; stdout on success, stderr on failure.
pub async fn try_helm(args: &[&str]) -> Result<String, String> {
    let out = Command::new(helm_path().await)
        .args(args)
        .envs(helm_env())
        .output()
        .await
        .expect("run helm");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Runs helm; panics with its stderr when it fails.
pub async fn helm(args: &[&str]) -> String {
    match try_helm(args).await {
        Ok(out) => out,
        Err(e) => panic!("helm {} failed: {e}", args.join(" ")),
    }
}

/// A Helm release installed on the local cluster; uninstalled (cluster-scoped RBAC included) on drop
/// when [`HelmRelease::uninstall`] was not reached.
pub struct HelmRelease {
    name: String,
    kubeconfig: String,
    done: bool,
}

impl HelmRelease {
    /// `helm install <name> <chart> -n <name> --skip-crds --set <set>` (the namespace must exist).
    pub async fn install(name: &str, chart: &str, kubeconfig: &str, set: &str) -> Self {
        helm(&[
            "install",
            name,
            chart,
            "-n",
            name,
            "--skip-crds",
            "--kubeconfig",
            kubeconfig,
            "--set",
            set,
        ])
        .await;
        Self {
            name: name.to_string(),
            kubeconfig: kubeconfig.to_string(),
            done: false,
        }
    }

    /// `helm uninstall` of this release, with `extra` arguments.
    fn uninstall_args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "uninstall",
            &self.name,
            "-n",
            &self.name,
            "--kubeconfig",
            &self.kubeconfig,
        ];
        args.extend_from_slice(extra);
        args
    }

    /// `helm uninstall`, waiting for it.
    pub async fn uninstall(mut self) {
        self.done = true;
        helm(&self.uninstall_args(&[])).await;
    }
}

impl Drop for HelmRelease {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Drop cannot await: a short blocking helm run that does not wait for the deletions.
        let helm = HELM.get().cloned().unwrap_or_default();
        let _ = std::process::Command::new(helm)
            .args(self.uninstall_args(&["--wait=false"]))
            .envs(helm_env())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Writes `content` to a fresh values file under the target directory and returns its path.
pub fn write_values(content: &str) -> String {
    let dir = target_dir().join("e2e-helm");
    std::fs::create_dir_all(&dir).expect("create values dir");
    let path = dir.join(format!("values-{}.yaml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, content).expect("write values");
    path.to_string_lossy().into_owned()
}

/// Every non-empty document of a multi-document YAML stream, as JSON values.
pub fn all_docs(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|doc| <Value as serde::Deserialize>::deserialize(doc).expect("valid YAML"))
        .filter(|doc| !doc.is_null())
        .collect()
}

/// The container args of the Deployment `name`.
pub fn deployment_args(docs: &[Value], name: &str) -> Vec<String> {
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no Deployment {name}"));
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .map(|args| args.iter().filter_map(|a| a.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

/// `queueMaxRequests` -> `queue-max-requests`.
pub fn kebab(key: &str) -> String {
    key.chars()
        .flat_map(|c| {
            if c.is_ascii_uppercase() {
                vec!['-', c.to_ascii_lowercase()]
            } else {
                vec![c]
            }
        })
        .collect()
}

fn chart_file(name: &str) -> String {
    std::fs::read_to_string(repo_root().join("charts/zeroscale").join(name)).expect("read chart file")
}

/// Keys of `properties.<component>.properties.args.properties` in values.schema.json.
pub fn schema_arg_keys(component: &str) -> BTreeSet<String> {
    let schema: Value = serde_json::from_str(&chart_file("values.schema.json")).expect("schema JSON");
    schema["properties"][component]["properties"]["args"]["properties"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// Keys of `<component>.args` in values.yaml.
pub fn values_arg_keys(component: &str) -> BTreeSet<String> {
    let values: Value = serde_yaml::from_str(&chart_file("values.yaml")).expect("values YAML");
    values[component]["args"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// The long flags of a component binary (of `run` for the autoscaler), from its `--help`, without
/// `help` and `version`. Needs `make build`.
pub async fn binary_flags(component: &str) -> BTreeSet<String> {
    let bin = bin_path(&format!("zeroscale-{component}"));
    let mut cmd = Command::new(&bin);
    if component == "autoscaler" {
        cmd.arg("run");
    }
    let out = cmd
        .arg("--help")
        .output()
        .await
        .unwrap_or_else(|e| panic!("{}: {e} (make build)", bin.display()));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let line = line.trim_start();
            let line = line
                .strip_prefix("-h, ")
                .or_else(|| line.strip_prefix("-V, "))
                .unwrap_or(line);
            let flag = line.strip_prefix("--")?;
            let name: String = flag
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            (!name.is_empty() && name != "help" && name != "version").then_some(name)
        })
        .collect()
}
