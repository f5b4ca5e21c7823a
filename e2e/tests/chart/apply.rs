//! Helpers of `chart.rs` around kubectl: `deploy/` relocated into a test namespace, apply-twice and
//! RBAC checks.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;

use serde::Deserialize;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use zeroscale_e2e::{kubeconfig_path, kubectl_path, repo_root};

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
    // `broker-producer` first: it is cluster-scoped and named after no component.
    for prefix in ["broker-producer", "operator", "activator", "autoscaler"] {
        yaml = yaml.replace(&format!("zeroscale-{prefix}"), &format!("{ns}-{prefix}"));
    }
    let cluster_scoped = cluster_scoped_names(&yaml);
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

/// `clusterrole/<name>` and `clusterrolebinding/<name>` of every ClusterRole(Binding) in `yaml`, so the
/// test removes each one it created, whatever the chart adds.
fn cluster_scoped_names(yaml: &str) -> Vec<String> {
    let mut names = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let Ok(value) = serde_yaml::Value::deserialize(doc) else {
            continue;
        };
        let kind = value.get("kind").and_then(|k| k.as_str()).unwrap_or_default();
        let name = value
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(|n| n.as_str());
        if let (Some(resource), Some(name)) = (
            match kind {
                "ClusterRole" => Some("clusterrole"),
                "ClusterRoleBinding" => Some("clusterrolebinding"),
                _ => None,
            },
            name,
        ) {
            names.push(format!("{resource}/{name}"));
        }
    }
    names
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
    let src_lease = lease("activator-sources");
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
        // Starting pods' IPs before their EndpointSlices have them (docs/activator.md).
        ("activator", vec!["watch", "pods", "-A"]),
        // Eventing: Triggers, the default `kubernetes` source kind, and the sources Lease.
        ("activator", vec!["watch", "triggers.zeroscale.dev", "-A"]),
        (
            "activator",
            vec![
                "patch",
                "triggers.zeroscale.dev",
                "--subresource=status",
                "-n",
                "default",
            ],
        ),
        ("activator", vec!["list", "configmaps", "-n", "default"]),
        (
            "activator",
            vec!["create", "leases.coordination.k8s.io", "-n", ns],
        ),
        ("activator", vec!["patch", &src_lease, "-n", ns]),
        // The cold-start anatomy (docs/metering.md): the autoscaler's stamps on the Deployment, the
        // served pod's status, and a `ColdStart` Event on the Function.
        ("activator", vec!["get", "deployments.apps", "-n", "default"]),
        ("activator", vec!["list", "pods", "-A"]),
        (
            "activator",
            vec!["create", "events.events.k8s.io", "-n", "default"],
        ),
        ("autoscaler", vec!["list", "deployments.apps", "-A"]),
        // Revisions past `revisionHistoryLimit`, and the children of a Function from before
        // revisions (docs/revisions.md).
        ("operator", vec!["delete", "deployments.apps", "-n", "default"]),
        ("operator", vec!["delete", "services", "-n", "default"]),
        // Two annotations after a scale from zero (the decision and patch times).
        ("autoscaler", vec!["patch", "deployments.apps", "-n", "default"]),
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
        // `status.prediction` of `policy: predictive` functions.
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
    ];
    let denied: Vec<(&str, Vec<&str>)> = vec![
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
        ("activator", vec!["patch", "deployments.apps", "-n", "default"]),
        ("activator", vec!["get", "secrets", "-A"]),
        ("activator", vec!["patch", &op_lease, "-n", ns]),
        ("activator", vec!["watch", "secrets", "-A"]),
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
        // Only the status (`status.prediction`), never the Function itself.
        (
            "autoscaler",
            vec!["patch", "functions.zeroscale.dev", "-n", "default"],
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
