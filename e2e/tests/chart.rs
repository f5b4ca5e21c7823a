//! The installable product (issue #6, points 1–3): the Helm chart `charts/zeroscale` and the plain
//! manifests `deploy/` generated from it.
//!
//! - Without a cluster: `helm lint`, the values schema, the one-to-one mapping of `<component>.args`
//!   to the binaries' flags (read from their `--help`), the rendering of those flags.
//! - On the local cluster: `helm template` accepted by a server-side dry run in a namespace that warns
//!   about the `restricted` Pod Security Standard (no warning allowed); `deploy/` applied twice,
//!   client-side and server-side, changes nothing the second time; the ServiceAccounts may do what
//!   docs/rbac.md lists and not more; the chart installed as pods (scoped to a test namespace) does its
//!   API work under those ServiceAccounts.
//!
//! The cluster is shared with other tests and with `make up`'s installation in `zeroscale-system`, so
//! the apply tests relocate `deploy/` into their own namespace (see `relocate`) and remove the
//! cluster-scoped objects they create. The CRDs cannot be relocated: one test applies them as they
//! are (the same content every other test installs) and leaves them in place.

#[path = "chart/apply.rs"]
mod chart_apply;
#[path = "chart/helm.rs"]
mod chart_helm;

use std::collections::BTreeSet;
use std::time::Duration;

use chart_apply::{Relocated, apply_twice, check_rbac, kubectl_full, relocate};
use chart_helm::{
    HelmRelease, MANAGED_FLAGS, all_docs, binary_flags, deployment_args, helm, kebab, schema_arg_keys,
    try_helm, values_arg_keys, write_values,
};
use zeroscale_e2e::{
    TestNamespace, apply_yaml, apply_yaml_cluster, client, kubeconfig_path, kubectl_ok, pod_logs, repo_root,
    try_kubectl, wait_for,
};

const COMPONENTS: [&str; 3] = ["operator", "activator", "autoscaler"];

#[tokio::test]
async fn chart_passes_helm_lint_with_every_option() {
    let chart = repo_root().join("charts/zeroscale");
    let chart = chart.to_string_lossy();
    helm(&["lint", "--strict", &chart]).await;
    helm(&[
        "lint",
        "--strict",
        &chart,
        "--set",
        "networkPolicy.enabled=true,metrics.serviceMonitor.enabled=true,operator.replicas=2,autoscaler.replicas=2,\
         dashboards.enabled=true,alerts.enabled=true,tracing.otlpEndpoint=http://otel.observability:4318",
        "--set",
        "networkPolicy.adminFrom[0].namespaceSelector.matchLabels.name=monitoring",
    ])
    .await;
}

#[tokio::test]
async fn schema_rejects_unknown_and_malformed_values() {
    let chart = repo_root().join("charts/zeroscale");
    let chart = chart.to_string_lossy();
    for bad in [
        "activator.args.queueMaxRequest=5",   // a typo of a flag
        "activator.args.drainTimeout=thirty", // not a duration
        "autoscaler.args.logFormat=xml",      // not an enum member
        "operator.ports.admin=70000",         // not a port
        "activator.externalService.type=Ingress",
        "unknownTopLevel=1",
    ] {
        let result = try_helm(&["template", "zeroscale", &chart, "--set", bad]).await;
        assert!(result.is_err(), "helm accepted {bad}");
    }
}

#[tokio::test]
async fn chart_args_map_one_to_one_to_the_binaries_flags() {
    for component in COMPONENTS {
        let flags = binary_flags(component).await;
        let schema = schema_arg_keys(component);
        let values = values_arg_keys(component);
        assert_eq!(
            schema, values,
            "{component}: values.yaml and values.schema.json list different args"
        );
        let managed: BTreeSet<String> = MANAGED_FLAGS
            .iter()
            .filter(|(c, _)| *c == component)
            .map(|(_, f)| f.to_string())
            .collect();
        let mapped: BTreeSet<String> = schema.iter().map(|k| kebab(k)).collect();
        assert!(
            mapped.is_disjoint(&managed),
            "{component}: a flag is both a value and set by the chart"
        );
        let covered: BTreeSet<String> = mapped.union(&managed).cloned().collect();
        assert_eq!(
            covered, flags,
            "{component}: chart args + chart-managed flags differ from the binary's flags \
             (map new flags in values.yaml, values.schema.json and docs/install.md)"
        );
    }
}

#[tokio::test]
async fn chart_renders_every_arg_as_its_flag() {
    let values = write_values(
        "operator: {args: {watchNamespace: team, progressDeadlineSeconds: 120, logFormat: plain, activatorService: act.example,\n\
           workerThreads: 2}}\n\
         activator: {args: {autoscalerUrl: '', queueMaxRequests: 5, queueMaxBytes: 33554432, bufferMemoryLimit: 134217728,\n\
           drainTimeout: 20s, headerReadTimeout: 5s, maxHeaderBytes: 8192, probeInterval: 50ms, statsInterval: 2s,\n\
           workerThreads: 0, logFormat: plain}}\n\
         autoscaler: {args: {activatorReadyUrl: 'http://a/ready', eventsSink: 'http://sink/', tickInterval: 1s,\n\
           staleReplicaTimeout: 4s, namespace: team, leaderElect: false, logFormat: plain}}\n",
    );
    let chart = repo_root().join("charts/zeroscale");
    let rendered = helm(&[
        "template",
        "zeroscale",
        &chart.to_string_lossy(),
        "-n",
        "zeroscale-system",
        "-f",
        &values,
    ])
    .await;
    let docs = all_docs(&rendered);
    let expect = [
        ("operator", "--watch-namespace=team"),
        ("operator", "--progress-deadline-seconds=120"),
        ("operator", "--activator-service=act.example"),
        ("operator", "--worker-threads=2"),
        ("activator", "--autoscaler-url="),
        ("activator", "--queue-max-bytes=33554432"),
        ("activator", "--buffer-memory-limit=134217728"),
        ("activator", "--probe-interval=50ms"),
        ("activator", "--worker-threads=0"),
        ("autoscaler", "--leader-elect=false"),
        ("autoscaler", "--events-sink=http://sink/"),
        ("autoscaler", "--activator-ready-url=http://a/ready"),
    ];
    for (component, flag) in expect {
        let args = deployment_args(&docs, &format!("zeroscale-{component}"));
        assert!(
            args.iter().any(|a| a == flag),
            "{component}: {flag} missing from {args:?}"
        );
    }
    // A value set by the user replaces the derived default instead of adding a second flag.
    let operator = deployment_args(&docs, "zeroscale-operator");
    assert_eq!(
        operator
            .iter()
            .filter(|a| a.starts_with("--activator-service="))
            .count(),
        1
    );
    // A watched namespace binds the ClusterRole there only.
    assert!(docs.iter().any(|d| d["kind"] == "RoleBinding"
        && d["metadata"]["name"] == "zeroscale-operator"
        && d["metadata"]["namespace"] == "team"));
    assert!(
        !docs
            .iter()
            .any(|d| d["kind"] == "ClusterRoleBinding" && d["metadata"]["name"] == "zeroscale-operator")
    );

    // Defaults: the derived in-cluster names match the binaries' own defaults for this release.
    let defaults = helm(&[
        "template",
        "zeroscale",
        &chart.to_string_lossy(),
        "-n",
        "zeroscale-system",
    ])
    .await;
    let docs = all_docs(&defaults);
    let operator = deployment_args(&docs, "zeroscale-operator");
    assert!(
        operator
            .contains(&"--activator-service=zeroscale-activator.zeroscale-system.svc.cluster.local".into())
    );
    let activator = deployment_args(&docs, "zeroscale-activator");
    assert!(activator.contains(
        &"--autoscaler-url=http://zeroscale-autoscaler.zeroscale-system.svc.cluster.local:8080/".into()
    ));
}

/// The pod spec of the Deployment `name`.
fn pod_spec<'a>(docs: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    &docs
        .iter()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no Deployment {name}"))["spec"]["template"]["spec"]
}

#[tokio::test]
async fn platform_event_senders_get_a_rotating_broker_token_and_the_grant() {
    const FLAG: &str = "--events-sink-token-file=/var/run/secrets/zeroscale.dev/broker/token";
    let chart = repo_root().join("charts/zeroscale");
    let chart = chart.to_string_lossy();
    let render = |set: &'static str| {
        let chart = chart.clone();
        async move {
            let mut args = vec!["template", "zeroscale", &*chart, "-n", "zeroscale-system"];
            if !set.is_empty() {
                args.extend(["--set", set]);
            }
            all_docs(&helm(&args).await)
        }
    };
    let producer_subjects = |docs: &[serde_json::Value]| -> Option<Vec<String>> {
        let binding = docs.iter().find(|d| {
            d["kind"] == "ClusterRoleBinding" && d["metadata"]["name"] == "zeroscale-broker-producer"
        })?;
        Some(
            binding["subjects"]
                .as_array()
                .expect("subjects")
                .iter()
                .map(|s| {
                    format!(
                        "{}/{}",
                        s["namespace"].as_str().unwrap_or(""),
                        s["name"].as_str().unwrap_or("")
                    )
                })
                .collect(),
        )
    };

    // Defaults (broker.auth.enabled): both senders mount a projected token for the broker's audience
    // where their flag points, and may create brokers.zeroscale.dev everywhere.
    let docs = render("").await;
    for component in ["operator", "autoscaler"] {
        let name = format!("zeroscale-{component}");
        let args = deployment_args(&docs, &name);
        assert!(args.iter().any(|a| a == FLAG), "{component}: {args:?}");
        let spec = pod_spec(&docs, &name);
        let volume = spec["volumes"]
            .as_array()
            .and_then(|v| v.iter().find(|v| v["name"] == "broker-token"))
            .unwrap_or_else(|| panic!("{component}: no broker-token volume"));
        let token = &volume["projected"]["sources"][0]["serviceAccountToken"];
        assert_eq!(token["audience"], "zeroscale-broker", "{component}");
        assert_eq!(token["expirationSeconds"], 3600, "{component}");
        assert_eq!(token["path"], "token", "{component}");
        let mount = spec["containers"][0]["volumeMounts"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["name"] == "broker-token"))
            .unwrap_or_else(|| panic!("{component}: broker-token not mounted"));
        assert_eq!(mount["mountPath"], "/var/run/secrets/zeroscale.dev/broker");
        assert_eq!(mount["readOnly"], true);
    }
    let activator = deployment_args(&docs, "zeroscale-activator");
    assert!(
        !activator
            .iter()
            .any(|a| a.starts_with("--events-sink-token-file"))
    );
    let role = docs
        .iter()
        .find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == "zeroscale-broker-producer")
        .expect("ClusterRole zeroscale-broker-producer");
    assert_eq!(
        role["rules"],
        serde_json::json!([{"apiGroups": ["zeroscale.dev"], "resources": ["brokers"], "verbs": ["create"]}])
    );
    assert_eq!(
        producer_subjects(&docs).expect("binding"),
        [
            "zeroscale-system/zeroscale-operator",
            "zeroscale-system/zeroscale-autoscaler"
        ]
    );

    // A sender whose sink is off gets neither the token nor the grant.
    let docs = render("operator.args.eventsSink=").await;
    assert!(
        !deployment_args(&docs, "zeroscale-operator")
            .iter()
            .any(|a| a == FLAG)
    );
    assert!(pod_spec(&docs, "zeroscale-operator")["volumes"].is_null());
    assert!(
        deployment_args(&docs, "zeroscale-autoscaler")
            .iter()
            .any(|a| a == FLAG)
    );
    assert_eq!(
        producer_subjects(&docs).expect("binding"),
        ["zeroscale-system/zeroscale-autoscaler"]
    );

    // Without broker authentication: no token, no volume, no grant.
    let docs = render("broker.auth.enabled=false").await;
    for component in ["operator", "autoscaler"] {
        let name = format!("zeroscale-{component}");
        assert!(
            !deployment_args(&docs, &name)
                .iter()
                .any(|a| a.starts_with("--events-sink-token-file"))
        );
        assert!(pod_spec(&docs, &name)["volumes"].is_null(), "{component}");
    }
    assert!(producer_subjects(&docs).is_none());
    assert!(
        !docs
            .iter()
            .any(|d| d["metadata"]["name"] == "zeroscale-broker-producer")
    );
}

#[tokio::test]
async fn chart_passes_a_server_side_dry_run_under_restricted_pod_security() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "chart-dry").await;
    let labels =
        ["enforce", "warn", "audit"].map(|mode| format!("pod-security.kubernetes.io/{mode}=restricted"));
    let mut label_args = vec!["label", "namespace", ns.name()];
    label_args.extend(labels.iter().map(String::as_str));
    kubectl_ok(&label_args).await;
    let chart = repo_root().join("charts/zeroscale");
    let chart = chart.to_string_lossy();
    let release = ns.name().to_string();
    for extra in [
        "networkPolicy.enabled=false",
        "networkPolicy.enabled=true,operator.replicas=2,autoscaler.replicas=2",
        &format!("operator.args.watchNamespace={release},autoscaler.args.namespace={release}"),
    ] {
        // Without the CRDs: they are cluster-wide and shared, `crds_are_accepted_and_apply_twice_without_change`
        // covers them.
        let rendered = helm(&["template", &release, &chart, "-n", &release, "--set", extra]).await;
        let out = kubectl_full(
            &[
                "apply",
                "--server-side",
                "--force-conflicts",
                "--dry-run=server",
                "-f",
                "-",
            ],
            &rendered,
        )
        .await;
        assert!(
            out.success,
            "server-side dry run failed with {extra}:\n{}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("Warning"),
            "warnings with {extra}:\n{}",
            out.stderr
        );
        let kinds = [
            "Deployment",
            "Service",
            "ServiceAccount",
            "ClusterRole",
            "Role",
            "PodDisruptionBudget",
        ];
        for kind in kinds {
            // kubectl prints `<kind>/<name>` for the core group and `<kind>.<group>/<name>` for others.
            let kind = kind.to_lowercase();
            let found = out
                .stdout
                .lines()
                .any(|l| l.starts_with(&format!("{kind}/")) || l.starts_with(&format!("{kind}.")));
            assert!(found, "no {kind} in the dry run:\n{}", out.stdout);
        }
    }
    // NOTES.txt renders and tells how to reach the first function (`helm install --dry-run=client`
    // still checks that the cluster answers, hence the kubeconfig).
    let kubeconfig = kubeconfig_path();
    let notes = helm(&[
        "install",
        &release,
        &chart,
        "--dry-run=client",
        "-n",
        &release,
        "--kubeconfig",
        &kubeconfig.to_string_lossy(),
    ])
    .await;
    assert!(
        notes.contains("examples/functions/hello.yaml") && notes.contains("Host: hello.default.example.com"),
        "NOTES do not explain the first function:\n{notes}"
    );
}

#[tokio::test]
async fn crds_are_accepted_and_apply_twice_without_change() {
    // The CRDs are shared by every test on the cluster: apply exactly deploy/01-crds.yaml (the chart's
    // crds/, generated from the Rust types), server-side as docs/install.md says for upgrades.
    let _ = client().await;
    let crds = std::fs::read_to_string(repo_root().join("deploy/01-crds.yaml")).expect("read CRDs");
    let dry = kubectl_full(&["apply", "--server-side", "--dry-run=server", "-f", "-"], &crds).await;
    assert!(
        dry.success,
        "the API server rejects the generated CRDs:\n{}",
        dry.stderr
    );
    apply_twice(&Relocated::shared(crds), true).await;
}

#[tokio::test]
async fn deploy_applies_twice_without_change_client_side() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "deploy-csa").await;
    let manifests = relocate(ns.name());
    apply_twice(&manifests, false).await;
    check_rbac(ns.name()).await;
}

#[tokio::test]
async fn deploy_applies_twice_without_change_server_side() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "deploy-ssa").await;
    let manifests = relocate(ns.name());
    apply_twice(&manifests, true).await;
}

#[tokio::test]
async fn deploy_is_what_the_chart_renders() {
    let script = repo_root().join("scripts/gen-deploy.sh");
    let out = tokio::process::Command::new("bash")
        .arg(&script)
        .arg("--check")
        .output()
        .await
        .expect("run gen-deploy.sh");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // And deploy/ carries the Namespace with the restricted Pod Security labels.
    let namespace = std::fs::read_to_string(repo_root().join("deploy/00-namespace.yaml")).expect("read");
    assert!(namespace.contains("pod-security.kubernetes.io/enforce: restricted"));
}

#[tokio::test]
async fn chart_components_run_as_pods_under_their_service_accounts() {
    // A full install as pods from the chart's default images (`localhost:5000/zeroscale/<component>`,
    // pushed by `make images`), scoped to the test namespace (operator and autoscaler watch only it and
    // hold their Leases there; the activator only reads), so it cannot disturb other tests. What it
    // proves: each binary starts from the chart's pod spec and does its API work with nothing but its
    // own ServiceAccount's RBAC. Serving traffic is the scenario suite's part (tests/scenarios.rs).
    let client = client().await;
    let ns = TestNamespace::new(&client, "chart-pods").await;
    apply_yaml_cluster(
        &std::fs::read_to_string(repo_root().join("crds/yaml/functions.zeroscale.dev.yaml")).expect("CRD"),
    )
    .await;
    let release = ns.name().to_string();
    let chart = repo_root().join("charts/zeroscale");
    let kubeconfig = kubeconfig_path();
    let scope = format!("operator.args.watchNamespace={release},autoscaler.args.namespace={release}");
    let install = HelmRelease::install(
        &release,
        &chart.to_string_lossy(),
        &kubeconfig.to_string_lossy(),
        &scope,
    )
    .await;

    let fullname = format!("{release}-zeroscale");
    for component in ["operator", "autoscaler"] {
        let lease = format!("lease/{fullname}-{component}");
        let what = format!("{lease} held by a {component} pod");
        wait_for(Duration::from_secs(120), &what, || async {
            let holder = try_kubectl(
                &[
                    "get",
                    &lease,
                    "-n",
                    &release,
                    "-o",
                    "jsonpath={.spec.holderIdentity}",
                ],
                None,
            )
            .await
            .ok()?;
            holder
                .starts_with(&format!("{fullname}-{component}-"))
                .then_some(())
        })
        .await;
    }
    // The operator in its pod reconciles a Function: children applied, status written.
    apply_yaml(
        &release,
        &std::fs::read_to_string(repo_root().join("examples/functions/hello.yaml")).expect("hello"),
    )
    .await;
    wait_for(
        Duration::from_secs(120),
        "hello reconciled by the operator pod",
        || async {
            let generation = try_kubectl(
                &[
                    "get",
                    "fn",
                    "hello",
                    "-n",
                    &release,
                    "-o",
                    "jsonpath={.status.observedGeneration}",
                ],
                None,
            )
            .await
            .ok()?;
            // The revision the operator made: a Deployment and a private Service named like it.
            let revision = try_kubectl(
                &[
                    "get",
                    "fn",
                    "hello",
                    "-n",
                    &release,
                    "-o",
                    "jsonpath={.status.latestCreatedRevisionName}",
                ],
                None,
            )
            .await
            .ok()
            .filter(|r| !r.is_empty())?;
            let deployment = format!("deployment/{revision}");
            let private = format!("service/{revision}");
            let children = try_kubectl(
                &["get", &deployment, "service/hello", &private, "-n", &release],
                None,
            )
            .await;
            (generation == "1" && children.is_ok()).then_some(())
        },
    )
    .await;
    // Both activators listed Functions and EndpointSlices cluster-wide.
    let pods = kubectl_ok(&[
        "get",
        "pods",
        "-n",
        &release,
        "-l",
        "app.kubernetes.io/component=activator",
        "-o",
        "name",
    ])
    .await;
    let pods: Vec<&str> = pods.lines().filter_map(|p| p.strip_prefix("pod/")).collect();
    assert_eq!(pods.len(), 2, "activator pods: {pods:?}");
    for pod in pods {
        wait_for(
            Duration::from_secs(60),
            &format!("{pod} synced its watches"),
            || async {
                pod_logs(&release, pod, "activator", false)
                    .await
                    .contains("watches synced")
                    .then_some(())
            },
        )
        .await;
    }
    install.uninstall().await;
}
