//! Helpers of `chart.rs`: the pinned helm, chart files, rendered manifests, relocation of `deploy/`
//! into a test namespace, apply-twice and RBAC checks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Stdio;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::sync::OnceCell;
use zeroscale_e2e::{bin_path, kubeconfig_path, kubectl_path, repo_root, target_dir};

/// Flags the chart sets itself instead of exposing them under `<component>.args`, per component, and
/// why (docs/install.md has the same table).
pub const MANAGED_FLAGS: &[(&str, &str)] = &[
    ("operator", "kubeconfig"),        // in-cluster ServiceAccount credentials
    ("operator", "admin-addr"),        // bindAddress + operator.ports.admin
    ("operator", "domain"),            // domain (shared with the activator)
    ("operator", "lease-namespace"),   // the release namespace (the Role lives there)
    ("operator", "lease-name"),        // <fullname>-operator (the Role names it)
    ("activator", "external-addr"),    // bindAddress + activator.ports.external
    ("activator", "internal-addr"),    // bindAddress + activator.ports.internal
    ("activator", "admin-addr"),       // bindAddress + activator.ports.admin
    ("activator", "cluster-domain"),   // clusterDomain
    ("activator", "external-domain"),  // domain (shared with the operator)
    ("activator", "pod-name"),         // POD_NAME from the downward API
    ("activator", "static-config"),    // file mode for tests and benches, not for a cluster
    ("autoscaler", "events-addr"),     // bindAddress + autoscaler.ports.events
    ("autoscaler", "admin-addr"),      // bindAddress + autoscaler.ports.admin
    ("autoscaler", "events-token"),    // the activator sends no token yet
    ("autoscaler", "lease-namespace"), // the release namespace
    ("autoscaler", "lease-name"),      // <fullname>-autoscaler
    ("autoscaler", "identity"),        // POD_NAME is the binary's fallback
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

/// kubectl's exit status and both outputs.
pub struct KubectlOutput {
    /// Exit code (None when killed by a signal).
    pub code: Option<i32>,
    /// Whether it exited 0.
    pub success: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs the pinned kubectl with `stdin`, whatever the exit status.
pub async fn kubectl_full(args: &[&str], stdin: &str) -> KubectlOutput {
    let mut child = Command::new(kubectl_path())
        .arg("--kubeconfig")
        .arg(kubeconfig_path())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run kubectl (make cluster-up)");
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(stdin.as_bytes())
            .await
            .expect("write kubectl stdin");
    }
    let out = child.wait_with_output().await.expect("kubectl output");
    KubectlOutput {
        code: out.status.code(),
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `deploy/` moved into the test namespace `ns`, plus the cluster-scoped objects to remove on drop.
pub struct Relocated {
    /// The manifests.
    pub yaml: String,
    cluster_scoped: Vec<String>,
}

impl Drop for Relocated {
    fn drop(&mut self) {
        if self.cluster_scoped.is_empty() {
            return;
        }
        // The ClusterRoles and ClusterRoleBindings named after the test namespace; the CRDs are shared
        // with every other test and stay. Blocking and short, like TestNamespace's drop.
        let _ = std::process::Command::new(kubectl_path())
            .arg("--kubeconfig")
            .arg(kubeconfig_path())
            .args(["delete", "--ignore-not-found", "--wait=false"])
            .args(&self.cluster_scoped)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Relocated {
    /// Manifests applied as they are, removing nothing afterwards (the shared CRDs).
    pub fn shared(yaml: String) -> Self {
        Self {
            yaml,
            cluster_scoped: Vec::new(),
        }
    }
}

/// `deploy/` without its CRDs (`01-crds.yaml`), rewritten so it cannot touch the cluster's real
/// installation: namespace
/// `zeroscale-system` becomes `ns`, the component names `zeroscale-<c>` become `<ns>-<c>` (so
/// ClusterRoles and Leases are the test's own), and every Deployment gets `replicas: 0` (a second
/// operator or autoscaler would fight the installed one over every Function). Nothing else changes.
pub fn relocate(ns: &str) -> Relocated {
    let dir = repo_root().join("deploy");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read deploy/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .filter(|p| !p.ends_with("01-crds.yaml"))
        .collect();
    files.sort();
    let mut yaml = String::new();
    for file in files {
        yaml.push_str(&std::fs::read_to_string(&file).expect("read manifest"));
        yaml.push_str("\n---\n");
    }
    let mut yaml = yaml.replace("zeroscale-system", ns);
    let mut cluster_scoped = Vec::new();
    for component in ["operator", "activator", "autoscaler"] {
        yaml = yaml.replace(&format!("zeroscale-{component}"), &format!("{ns}-{component}"));
        cluster_scoped.push(format!("clusterrole/{ns}-{component}"));
        cluster_scoped.push(format!("clusterrolebinding/{ns}-{component}"));
    }
    let yaml = yaml
        .lines()
        .map(|line| {
            if line.starts_with("  replicas: ") {
                "  replicas: 0"
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    Relocated { yaml, cluster_scoped }
}

/// `kind/name` -> (resourceVersion, generation) of every object of `yaml` on the cluster.
async fn versions(yaml: &str) -> BTreeMap<String, (String, i64)> {
    let out = kubectl_full(&["get", "-f", "-", "-o", "json"], yaml).await;
    assert!(out.success, "kubectl get failed: {}", out.stderr);
    let list: Value = serde_json::from_str(&out.stdout).expect("kubectl JSON");
    list["items"]
        .as_array()
        .expect("a List")
        .iter()
        .map(|o| {
            let key = format!(
                "{}/{}",
                o["kind"].as_str().unwrap_or(""),
                o["metadata"]["name"].as_str().unwrap_or("")
            );
            let rv = o["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or("")
                .to_string();
            (key, (rv, o["metadata"]["generation"].as_i64().unwrap_or(0)))
        })
        .collect()
}

/// Kinds whose status a controller writes on its own; for these only the generation (bumped by spec
/// changes, i.e. by what an apply writes) must stay, for the others the whole resourceVersion.
const STATUS_WRITTEN_BY_CONTROLLERS: [&str; 3] =
    ["Deployment", "PodDisruptionBudget", "CustomResourceDefinition"];

/// Applies the manifests, checks no Pod Security warning, `kubectl diff` exit 0, then a second apply
/// that reports no change and writes nothing.
pub async fn apply_twice(manifests: &Relocated, server_side: bool) {
    let mode: &[&str] = if server_side { &["--server-side"] } else { &[] };
    let apply: Vec<&str> = ["apply", "-f", "-"].iter().chain(mode).copied().collect();
    let first = kubectl_full(&apply, &manifests.yaml).await;
    assert!(first.success, "first apply failed:\n{}", first.stderr);
    assert!(
        !first.stderr.contains("PodSecurity"),
        "Pod Security warnings:\n{}",
        first.stderr
    );

    let diff: Vec<&str> = ["diff", "-f", "-"].iter().chain(mode).copied().collect();
    let diffed = kubectl_full(&diff, &manifests.yaml).await;
    assert_eq!(
        diffed.code,
        Some(0),
        "kubectl diff after the first apply:\n{}{}",
        diffed.stdout,
        diffed.stderr
    );

    let before = versions(&manifests.yaml).await;
    let second = kubectl_full(&apply, &manifests.yaml).await;
    assert!(second.success, "second apply failed:\n{}", second.stderr);
    let word = if server_side {
        "serverside-applied"
    } else {
        "unchanged"
    };
    for line in second.stdout.lines() {
        // Client-side apply always re-sends a PodDisruptionBudget's `spec.selector` (its patch strategy
        // is `replace`), so kubectl says "configured" although the server writes nothing; the
        // generation check below proves that.
        let pdb_quirk =
            !server_side && line.starts_with("poddisruptionbudget.") && line.ends_with(" configured");
        assert!(
            line.ends_with(word) || pdb_quirk,
            "second apply changed something: {line}"
        );
    }
    let after = versions(&manifests.yaml).await;
    assert_eq!(before.len(), after.len());
    for (key, (rv, generation)) in &before {
        let (rv_after, generation_after) = &after[key];
        let kind = key.split('/').next().unwrap_or("");
        if STATUS_WRITTEN_BY_CONTROLLERS.contains(&kind) {
            assert_eq!(
                generation, generation_after,
                "{key}: the second apply changed its spec"
            );
        } else {
            assert_eq!(rv, rv_after, "{key}: the second apply wrote it");
        }
    }
}

/// `kubectl auth can-i` as a component's ServiceAccount of the relocated install in `ns`.
async fn can_i(ns: &str, component: &str, args: &[&str]) -> bool {
    let user = format!("--as=system:serviceaccount:{ns}:{ns}-{component}");
    let mut all = vec!["auth", "can-i"];
    all.extend_from_slice(args);
    all.push(&user);
    let out = kubectl_full(&all, "").await;
    match out.stdout.trim() {
        "yes" => true,
        "no" => false,
        _ => panic!(
            "kubectl auth can-i {args:?} as {component}: {}{}",
            out.stdout, out.stderr
        ),
    }
}

/// The ServiceAccounts may do what docs/rbac.md lists, and not the nearby things they do not need.
pub async fn check_rbac(ns: &str) {
    let lease = |c: &str| format!("leases.coordination.k8s.io/{ns}-{c}");
    let (op_lease, as_lease) = (lease("operator"), lease("autoscaler"));
    let allowed: Vec<(&str, Vec<&str>)> = vec![
        ("operator", vec!["watch", "functions.zeroscale.dev", "-A"]),
        (
            "operator",
            vec![
                "patch",
                "functions.zeroscale.dev",
                "--subresource=status",
                "-n",
                "default",
            ],
        ),
        ("operator", vec!["create", "deployments.apps", "-n", "default"]),
        ("operator", vec!["patch", "deployments.apps", "-n", "default"]),
        ("operator", vec!["get", "deployments.apps", "-n", "default"]),
        ("operator", vec!["patch", "services", "-n", "default"]),
        ("operator", vec!["get", "services", "-n", "default"]),
        ("operator", vec!["list", "pods", "-A"]),
        (
            "operator",
            vec!["create", "events.events.k8s.io", "-n", "default"],
        ),
        ("operator", vec!["create", "leases.coordination.k8s.io", "-n", ns]),
        ("operator", vec!["patch", &op_lease, "-n", ns]),
        ("activator", vec!["watch", "functions.zeroscale.dev", "-A"]),
        ("activator", vec!["list", "endpointslices.discovery.k8s.io", "-A"]),
        ("autoscaler", vec!["list", "deployments.apps", "-A"]),
        (
            "autoscaler",
            vec![
                "patch",
                "deployments.apps",
                "--subresource=scale",
                "-n",
                "default",
            ],
        ),
        (
            "autoscaler",
            vec!["create", "events.events.k8s.io", "-n", "default"],
        ),
        ("autoscaler", vec!["get", &as_lease, "-n", ns]),
    ];
    let denied: Vec<(&str, Vec<&str>)> = vec![
        ("operator", vec!["delete", "deployments.apps", "-n", "default"]),
        (
            "operator",
            vec![
                "patch",
                "deployments.apps",
                "--subresource=scale",
                "-n",
                "default",
            ],
        ),
        (
            "operator",
            vec!["update", "functions.zeroscale.dev", "-n", "default"],
        ),
        ("operator", vec!["get", "secrets", "-n", "default"]),
        ("operator", vec!["patch", &as_lease, "-n", ns]),
        (
            "operator",
            vec!["create", "leases.coordination.k8s.io", "-n", "default"],
        ),
        ("activator", vec!["list", "pods", "-A"]),
        ("activator", vec!["get", "secrets", "-A"]),
        (
            "activator",
            vec!["create", "leases.coordination.k8s.io", "-n", ns],
        ),
        ("autoscaler", vec!["patch", "deployments.apps", "-n", "default"]),
        (
            "autoscaler",
            vec![
                "update",
                "deployments.apps",
                "--subresource=scale",
                "-n",
                "default",
            ],
        ),
        (
            "autoscaler",
            vec![
                "patch",
                "functions.zeroscale.dev",
                "--subresource=status",
                "-n",
                "default",
            ],
        ),
        ("autoscaler", vec!["patch", &op_lease, "-n", ns]),
    ];
    for (component, args) in &allowed {
        assert!(can_i(ns, component, args).await, "{component} may not {args:?}");
    }
    for (component, args) in &denied {
        assert!(!can_i(ns, component, args).await, "{component} may {args:?}");
    }
}
