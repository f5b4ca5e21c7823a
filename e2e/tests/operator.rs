//! End-to-end tests of the operator (issue #3) on the local cluster.
//!
//! Each test gets its own namespace and its own operator process (`--watch-namespace` and a Lease in
//! that namespace), so the tests run in parallel without seeing each other's Functions.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use zeroscale_crds::Function;
use zeroscale_e2e::{
    ProcessGuard, TestNamespace, apply_yaml_cluster, http_get, kubectl, kubectl_ok, repo_root,
    spawn_component, try_kubectl, wait_for,
};

const FUNCTION_CRD: &str = include_str!("../../crds/yaml/functions.zeroscale.dev.yaml");
const SETTLE: Duration = Duration::from_secs(90);

/// Installs the Function CRD (idempotent) and waits until it is served.
async fn install_crd() {
    apply_yaml_cluster(FUNCTION_CRD).await;
    kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/functions.zeroscale.dev",
    ])
    .await;
}

/// An operator process reconciling only `namespace`.
struct Operator {
    process: ProcessGuard,
    admin: String,
}

impl Operator {
    /// Starts an operator and waits until it leads and its cache has synced.
    async fn start(namespace: &str) -> Self {
        let operator = Self::spawn(namespace);
        operator.wait_leading().await;
        operator
    }

    /// Starts an operator without waiting for it.
    fn spawn(namespace: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let admin = format!("127.0.0.1:{port}");
        let args = [
            "--watch-namespace",
            namespace,
            "--lease-namespace",
            namespace,
            "--admin-addr",
            &admin,
            "--log-format",
            "plain",
        ];
        let process = spawn_component("zeroscale-operator", &args, &[]);
        Self { process, admin }
    }

    async fn ready(&self) -> bool {
        http_get(&format!("http://{}/ready", self.admin))
            .await
            .is_ok_and(|r| r.status == 200)
    }

    async fn leading(&self) -> bool {
        self.metrics()
            .await
            .is_some_and(|m| m.contains("zeroscale_operator_leader 1"))
    }

    async fn wait_leading(&self) {
        let what = format!(
            "operator to lead and sync (log: {})",
            self.process.log_path().display()
        );
        wait_for(Duration::from_secs(60), &what, || async {
            (self.ready().await && self.leading().await).then_some(())
        })
        .await;
    }

    async fn metrics(&self) -> Option<String> {
        Some(
            http_get(&format!("http://{}/metrics", self.admin))
                .await
                .ok()?
                .text(),
        )
    }

    /// `zeroscale_operator_reconciles_total{kind="Function"}`.
    async fn reconciles(&self) -> u64 {
        let text = self.metrics().await.unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix("zeroscale_operator_reconciles_total{kind=\"Function\"} "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

fn function(name: &str, spec: serde_json::Value) -> Function {
    serde_json::from_value(json!({
        "apiVersion": "zeroscale.dev/v1alpha1",
        "kind": "Function",
        "metadata": { "name": name },
        "spec": spec,
    }))
    .expect("function manifest")
}

async fn create(api: &Api<Function>, name: &str, spec: serde_json::Value) -> Function {
    api.create(&PostParams::default(), &function(name, spec))
        .await
        .expect("function created")
}

fn ready_condition(f: &Function) -> Option<Condition> {
    f.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .cloned()
}

/// Waits until the Function's `Ready` condition has `status` and one of `reasons`, at the current generation.
async fn wait_ready(
    api: &Api<Function>,
    name: &str,
    status: &str,
    reasons: &[&str],
    timeout: Duration,
) -> Function {
    let what = format!("function {name} Ready={status} with a reason in {reasons:?}");
    wait_for(timeout, &what, || async {
        let f = api.get(name).await.ok()?;
        let current = f.status.as_ref()?.observed_generation == f.metadata.generation;
        let c = ready_condition(&f)?;
        (current && c.status == status && reasons.contains(&c.reason.as_str())).then_some(f)
    })
    .await
}

async fn children(
    client: &Client,
    ns: &str,
    name: &str,
) -> (Option<Deployment>, Option<Service>, Option<Service>) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    (
        deployments.get_opt(name).await.ok().flatten(),
        services.get_opt(name).await.ok().flatten(),
        services.get_opt(&format!("{name}-private")).await.ok().flatten(),
    )
}

fn assert_child_of(object: &impl ResourceExt, function: &Function) {
    let owner = object.owner_references().first().expect("an owner reference");
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Function", function.name_any().as_str())
    );
    assert_eq!(Some(owner.uid.clone()), function.uid());
    assert_eq!(owner.controller, Some(true));
    let labels = object.labels();
    assert_eq!(labels.get("zeroscale.dev/function"), Some(&function.name_any()));
    assert_eq!(
        labels.get("app.kubernetes.io/managed-by").map(String::as_str),
        Some("zeroscale")
    );
}

fn replicas(d: &Deployment) -> Option<i32> {
    d.spec.as_ref()?.replicas
}

fn image(d: &Deployment) -> Option<String> {
    d.spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .first()?
        .image
        .clone()
}

fn operator_owns_replicas(d: &Deployment) -> bool {
    d.metadata.managed_fields.iter().flatten().any(|m| {
        m.manager.as_deref() == Some("zeroscale-operator")
            && m.fields_v1
                .as_ref()
                .is_some_and(|f| f.0.pointer("/f:spec/f:replicas").is_some())
    })
}

#[tokio::test]
async fn children_follow_the_function_through_create_update_and_delete() {
    let client = zeroscale_e2e::client().await;
    install_crd().await;
    let ns = TestNamespace::new(&client, "op-lifecycle").await;
    let _operator = Operator::start(ns.name()).await;
    let api: Api<Function> = Api::namespaced(client.clone(), ns.name());
    create(
        &api,
        "hello",
        json!({ "image": "zeroscale/echo", "timeoutSeconds": 20 }),
    )
    .await;

    let f = wait_ready(&api, "hello", "True", &["Ready"], SETTLE).await;
    let (deployment, public, private) = children(&client, ns.name(), "hello").await;
    let (deployment, public, private) = (
        deployment.expect("deployment"),
        public.expect("public"),
        private.expect("private"),
    );
    for child in [&public, &private] {
        assert_child_of(child, &f);
    }
    assert_child_of(&deployment, &f);
    let pod = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("pod spec");
    assert_eq!(pod.enable_service_links, Some(false));
    assert_eq!(pod.termination_grace_period_seconds, Some(20));
    let env: Vec<_> = pod.containers[0]
        .env
        .iter()
        .flatten()
        .map(|e| e.name.as_str())
        .collect();
    assert!(
        ["PORT", "ZEROSCALE_FUNCTION", "ZEROSCALE_NAMESPACE"]
            .iter()
            .all(|v| env.contains(v)),
        "{env:?}"
    );
    assert_eq!(
        public.spec.as_ref().and_then(|s| s.type_.as_deref()),
        Some("ExternalName")
    );
    assert_eq!(
        private.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()),
        Some("None")
    );
    let status = f.status.as_ref().expect("status");
    assert_eq!(
        status.url.as_deref(),
        Some(format!("http://hello.{}.example.com", ns.name()).as_str())
    );
    assert_eq!(
        status.address.as_deref(),
        Some(format!("http://hello.{}.svc", ns.name()).as_str())
    );
    assert_eq!(status.replicas_summary.as_deref(), Some("1/1"));

    // A new image rolls out.
    let patch = json!({ "spec": { "image": "zeroscale/echo:v2" } });
    api.patch("hello", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("image changed");
    wait_ready(&api, "hello", "True", &["Ready"], SETTLE).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns.name());
    wait_for(SETTLE, "the new image to roll out", || async {
        let d = deployments.get("hello").await.ok()?;
        let s = d.status.as_ref()?;
        let done = image(&d).as_deref() == Some("zeroscale/echo:v2")
            && s.updated_replicas == Some(1)
            && s.replicas == Some(1)
            && s.ready_replicas == Some(1);
        done.then_some(())
    })
    .await;

    // Deleting the Function garbage-collects the children.
    api.delete("hello", &DeleteParams::background())
        .await
        .expect("function deleted");
    wait_for(SETTLE, "children to be garbage-collected", || async {
        let (d, public, private) = children(&client, ns.name(), "hello").await;
        (d.is_none() && public.is_none() && private.is_none()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn replicas_written_through_scale_survive_reconciles_and_restarts() {
    let client = zeroscale_e2e::client().await;
    install_crd().await;
    let ns = TestNamespace::new(&client, "op-replicas").await;
    let mut operator = Operator::start(ns.name()).await;
    let api: Api<Function> = Api::namespaced(client.clone(), ns.name());
    create(
        &api,
        "scaled",
        json!({ "image": "zeroscale/echo", "scale": { "initial": 1 } }),
    )
    .await;
    wait_ready(&api, "scaled", "True", &["Ready"], SETTLE).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns.name());
    let d = deployments.get("scaled").await.expect("deployment");
    assert_eq!(replicas(&d), Some(1));
    assert!(
        !operator_owns_replicas(&d),
        "the operator must not own spec.replicas"
    );

    // The autoscaler's way: a patch of the /scale subresource.
    let scale = json!({ "spec": { "replicas": 3 } });
    let params = PatchParams {
        field_manager: Some("e2e-autoscaler".into()),
        ..PatchParams::default()
    };
    deployments
        .patch_scale("scaled", &params, &Patch::Merge(&scale))
        .await
        .expect("scaled");

    // A spec change makes the operator apply the Deployment again.
    let patch = json!({ "spec": { "env": [{ "name": "GREETING", "value": "hi" }] } });
    api.patch("scaled", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("env changed");
    let d = wait_for(SETTLE, "the operator to apply the new env", || async {
        let d = deployments.get("scaled").await.ok()?;
        let pod = d.spec.as_ref()?.template.spec.as_ref()?;
        pod.containers[0]
            .env
            .iter()
            .flatten()
            .any(|e| e.name == "GREETING")
            .then_some(d)
    })
    .await;
    assert_eq!(
        replicas(&d),
        Some(3),
        "an apply by the operator reset the autoscaler's replicas"
    );
    wait_ready(&api, "scaled", "True", &["Ready"], SETTLE).await;

    // A restarted operator does not touch replicas either.
    operator.process.terminate(Duration::from_secs(10)).await;
    let operator = Operator::start(ns.name()).await;
    let before = operator.reconciles().await;
    wait_for(SETTLE, "the new operator to reconcile", || async {
        (operator.reconciles().await > before).then_some(())
    })
    .await;
    let d = deployments.get("scaled").await.expect("deployment");
    assert_eq!(replicas(&d), Some(3));
    assert!(!operator_owns_replicas(&d));
}

#[tokio::test]
async fn applying_the_same_manifest_twice_changes_nothing() {
    let client = zeroscale_e2e::client().await;
    install_crd().await;
    let ns = TestNamespace::new(&client, "op-idempotent").await;
    let operator = Operator::start(ns.name()).await;
    let manifest = repo_root().join("examples/functions/hello.yaml");
    let manifest = manifest.to_str().expect("utf-8 path");
    kubectl_ok(&["apply", "-n", ns.name(), "-f", manifest]).await;
    let api: Api<Function> = Api::namespaced(client.clone(), ns.name());
    wait_ready(&api, "hello", "True", &["Ready"], SETTLE).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns.name());
    wait_for(SETTLE, "the Deployment to settle", || async {
        let d = deployments.get("hello").await.ok()?;
        let s = d.status.as_ref()?;
        (s.observed_generation == d.metadata.generation && s.ready_replicas == Some(1)).then_some(())
    })
    .await;
    let settled = api.get("hello").await.expect("function");
    let deployment = deployments.get("hello").await.expect("deployment");

    let out = kubectl_ok(&["apply", "-n", ns.name(), "-f", manifest]).await;
    assert!(out.contains("unchanged"), "second apply: {out}");

    // Make the operator reconcile again (a change to an owned Service triggers it) and wait until it has.
    let before = operator.reconciles().await;
    let services: Api<Service> = Api::namespaced(client.clone(), ns.name());
    let touch = json!({ "metadata": { "annotations": { "e2e/touched": "yes" } } });
    services
        .patch("hello-private", &PatchParams::default(), &Patch::Merge(&touch))
        .await
        .expect("touched");
    wait_for(SETTLE, "a reconcile after the touch", || async {
        (operator.reconciles().await > before).then_some(())
    })
    .await;

    let after = api.get("hello").await.expect("function");
    assert_eq!(
        after.metadata.generation, settled.metadata.generation,
        "the spec changed"
    );
    assert_eq!(
        after.resource_version(),
        settled.resource_version(),
        "the status churned"
    );
    let d = deployments.get("hello").await.expect("deployment");
    assert_eq!(
        d.metadata.generation, deployment.metadata.generation,
        "the Deployment spec changed"
    );

    // `kubectl get fn` shows the printer columns.
    let table = kubectl_ok(&["get", "fn", "-n", ns.name()]).await;
    let header: Vec<_> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "URL", "READY", "REPLICAS", "REASON", "AGE"],
        "{table}"
    );
    let row: Vec<_> = table
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let url = format!("http://hello.{}.example.com", ns.name());
    assert_eq!(
        row[..5],
        ["hello", url.as_str(), "True", "1/1", "Ready"],
        "{table}"
    );
}

#[tokio::test]
async fn invalid_manifests_are_rejected_at_admission_naming_the_field() {
    let client = zeroscale_e2e::client().await;
    install_crd().await;
    let ns = TestNamespace::new(&client, "op-invalid").await;
    let dir = repo_root().join("examples/invalid");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples/invalid")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    assert!(files.len() >= 12, "only {} invalid examples", files.len());
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        let expected: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# error: ")).collect();
        assert!(
            !expected.is_empty(),
            "{} has no `# error:` comment",
            file.display()
        );
        assert!(
            expected
                .iter()
                .any(|l| l.contains("spec.") || l.contains("metadata.name")),
            "{}: the message names no field",
            file.display()
        );
        let path = file.to_str().expect("utf-8 path");
        let out = kubectl(&["apply", "-n", ns.name(), "-f", path]).await;
        assert!(!out.status.success(), "{} was accepted", file.display());
        let stderr = String::from_utf8_lossy(&out.stderr);
        for line in expected {
            assert!(
                stderr.contains(line.trim()),
                "{}: expected {line:?} in {stderr}",
                file.display()
            );
        }
    }
}

#[tokio::test]
async fn an_image_that_cannot_run_reports_the_reason_within_30s() {
    let client = zeroscale_e2e::client().await;
    install_crd().await;
    let ns = TestNamespace::new(&client, "op-pull").await;
    let _operator = Operator::start(ns.name()).await;
    let api: Api<Function> = Api::namespaced(client.clone(), ns.name());
    create(&api, "nope", json!({ "image": "registry.invalid/nope:1" })).await;
    let reasons = ["ErrImagePull", "ImagePullBackOff"];
    let f = wait_ready(&api, "nope", "False", &reasons, Duration::from_secs(30)).await;
    assert!(
        f.startup_failure().is_some(),
        "the activator would not see a startup failure"
    );
    let events = kubectl_ok(&[
        "get",
        "events",
        "-n",
        ns.name(),
        "--field-selector",
        "involvedObject.name=nope",
    ])
    .await;
    assert!(events.contains("Warning"), "no warning event: {events}");
}

#[tokio::test]
async fn a_crashing_container_reports_the_crash() {
    let client = zeroscale_e2e::client().await;
    install_crd().await;
    let ns = TestNamespace::new(&client, "op-crash").await;
    let _operator = Operator::start(ns.name()).await;
    let api: Api<Function> = Api::namespaced(client.clone(), ns.name());
    create(
        &api,
        "crash",
        json!({ "image": "zeroscale/echo", "command": ["sh", "-c", "exit 3"] }),
    )
    .await;
    let f = wait_ready(&api, "crash", "False", &["CrashLoopBackOff"], SETTLE).await;
    let message = ready_condition(&f).map(|c| c.message).unwrap_or_default();
    assert!(message.contains("exit code 3"), "{message}");
}

#[tokio::test]
async fn a_restarted_operator_converges_to_the_same_children_and_status() {
    let client = zeroscale_e2e::client().await;
    install_crd().await;
    let ns = TestNamespace::new(&client, "op-restart").await;
    let operator = Operator::start(ns.name()).await;
    let api: Api<Function> = Api::namespaced(client.clone(), ns.name());
    create(
        &api,
        "phoenix",
        json!({ "image": "zeroscale/echo", "scale": { "initial": 2 } }),
    )
    .await;
    // Kill the operator (no graceful shutdown, no Lease release) as soon as it has started on the children.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns.name());
    wait_for(SETTLE, "the Deployment to appear", || async {
        deployments.get_opt("phoenix").await.ok().flatten()
    })
    .await;
    operator.process.signal("KILL");
    drop(operator);

    let _operator = Operator::start(ns.name()).await;
    let f = wait_ready(&api, "phoenix", "True", &["Ready"], SETTLE).await;
    let (d, public, private) = children(&client, ns.name(), "phoenix").await;
    let d = d.expect("deployment");
    assert_child_of(&d, &f);
    assert_child_of(&public.expect("public service"), &f);
    assert_child_of(&private.expect("private service"), &f);
    assert_eq!(replicas(&d), Some(2));
    assert!(
        !operator_owns_replicas(&d),
        "the operator kept spec.replicas after a restart"
    );
    let list = try_kubectl(&["get", "deploy,svc", "-n", ns.name(), "-o", "name"], None)
        .await
        .expect("listed");
    let mut names: Vec<_> = list.lines().collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "deployment.apps/phoenix",
            "service/phoenix",
            "service/phoenix-private"
        ]
    );
    let status = f.status.expect("status");
    assert_eq!(status.replicas_summary.as_deref(), Some("2/2"));
    assert!(
        status.conditions.iter().all(|c| c.status == "True"),
        "{:?}",
        status.conditions
    );
}

#[tokio::test]
async fn objects_the_function_does_not_control_are_not_taken_over() {
    let client = zeroscale_e2e::client().await;
    install_crd().await;
    let ns = TestNamespace::new(&client, "op-owned").await;
    let _operator = Operator::start(ns.name()).await;
    let services: Api<Service> = Api::namespaced(client.clone(), ns.name());
    let theirs: Service = serde_json::from_value(json!({
        "metadata": { "name": "taken" },
        "spec": { "type": "ExternalName", "externalName": "elsewhere.example.org" }
    }))
    .expect("service");
    services
        .create(&PostParams::default(), &theirs)
        .await
        .expect("their service");
    let api: Api<Function> = Api::namespaced(client.clone(), ns.name());
    create(&api, "taken", json!({ "image": "zeroscale/echo" })).await;
    let f = wait_ready(&api, "taken", "False", &["NotOwned"], SETTLE).await;
    let message = ready_condition(&f).map(|c| c.message).unwrap_or_default();
    assert!(message.contains("Service taken"), "{message}");
    let service = services.get("taken").await.expect("their service");
    assert!(
        service.owner_references().is_empty(),
        "the operator took the Service over"
    );
    let target = service.spec.and_then(|s| s.external_name);
    assert_eq!(target.as_deref(), Some("elsewhere.example.org"));
}

#[tokio::test]
async fn a_standby_takes_over_when_the_leader_shuts_down() {
    let client = zeroscale_e2e::client().await;
    install_crd().await;
    let ns = TestNamespace::new(&client, "op-leader").await;
    let mut leader = Operator::start(ns.name()).await;
    let standby = Operator::spawn(ns.name());
    wait_for(Duration::from_secs(30), "the standby to be ready", || async {
        (standby.ready().await
            && standby
                .metrics()
                .await
                .is_some_and(|m| m.contains("zeroscale_operator_leader 0")))
        .then_some(())
    })
    .await;
    let (a, b) = (
        leader.metrics().await.unwrap_or_default(),
        standby.metrics().await.unwrap_or_default(),
    );
    assert!(
        a.contains("zeroscale_operator_leader 1") && b.contains("zeroscale_operator_leader 0"),
        "exactly one leader expected:\n{a}\n{b}"
    );

    assert!(
        leader.process.terminate(Duration::from_secs(20)).await,
        "the leader did not stop on SIGTERM"
    );
    assert!(
        leader.process.log().contains("released lease"),
        "{}",
        leader.process.log()
    );
    standby.wait_leading().await;
    // The new leader reconciles.
    let api: Api<Function> = Api::namespaced(client.clone(), ns.name());
    create(&api, "next", json!({ "image": "zeroscale/echo" })).await;
    wait_ready(&api, "next", "True", &["Ready"], SETTLE).await;
}
