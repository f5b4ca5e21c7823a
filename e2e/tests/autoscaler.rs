//! End-to-end tests of the autoscaler (issue #5) on the local cluster, with the operator, the
//! activator and the autoscaler running as host processes (`spawn_component`), each scoped to the
//! test's namespace where it can be.
//!
//! - An idle function with `window: 6s` reaches zero replicas within window + grace (30 s) + 15 s
//!   (Knative's `TestFastScaleToZero`).
//! - A request to the function at zero wakes it, and the autoscaler's `/scale` patch is sent within
//!   5 ms of the demand event's arrival, as measured by the autoscaler itself (`demand_to_patch_us`
//!   in its `scaled` log line).

use std::time::{Duration, Instant};

use http::Method;
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Event};
use kube::{
    Api,
    api::{ListParams, PostParams},
};
use serde_json::json;
use zeroscale_crds::Function;
use zeroscale_e2e::{
    ProcessGuard, TestNamespace, apply_yaml_cluster, http_get, http_request, kubectl_ok, spawn_component,
    try_wait_for, wait_for,
};

const FUNCTION_CRD: &str = include_str!("../../crds/yaml/functions.zeroscale.dev.yaml");
const WINDOW: Duration = Duration::from_secs(6);
const GRACE: Duration = Duration::from_secs(30);
const SLACK: Duration = Duration::from_secs(15);

fn free_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    format!("127.0.0.1:{port}")
}

/// Waits until `admin/ready` answers 200 and, when given, `/metrics` contains `metric`.
async fn wait_ready(process: &ProcessGuard, admin: &str, metric: Option<&str>) {
    let what = format!("{} ready (log: {})", process.name(), process.log_path().display());
    wait_for(Duration::from_secs(60), &what, || async {
        let ready = http_get(&format!("http://{admin}/ready")).await.ok()?.status == 200;
        let metrics = http_get(&format!("http://{admin}/metrics")).await.ok()?.text();
        (ready && metric.is_none_or(|m| metrics.contains(m))).then_some(())
    })
    .await;
}

/// The operator, the activator and the autoscaler for one namespace.
struct Stack {
    _operator: ProcessGuard,
    activator: ProcessGuard,
    autoscaler: ProcessGuard,
    /// The activator's in-cluster data address.
    internal: String,
}

impl Stack {
    async fn start(namespace: &str) -> Self {
        let operator_admin = free_addr();
        let operator = spawn_component(
            "zeroscale-operator",
            &[
                "--watch-namespace",
                namespace,
                "--lease-namespace",
                namespace,
                "--admin-addr",
                &operator_admin,
                "--log-format",
                "plain",
            ],
            &[],
        );
        wait_ready(&operator, &operator_admin, Some("zeroscale_operator_leader 1")).await;

        let (events, autoscaler_admin) = (free_addr(), free_addr());
        let (internal, external, activator_admin) = (free_addr(), free_addr(), free_addr());
        let ready_url = format!("http://{activator_admin}/ready");
        let autoscaler = spawn_component(
            "zeroscale-autoscaler",
            &[
                "run",
                "--namespace",
                namespace,
                "--lease-namespace",
                namespace,
                "--events-addr",
                &events,
                "--admin-addr",
                &autoscaler_admin,
                "--activator-ready-url",
                &ready_url,
                "--log-format",
                "json",
            ],
            &[],
        );
        wait_ready(
            &autoscaler,
            &autoscaler_admin,
            Some("zeroscale_autoscaler_leader 1"),
        )
        .await;

        let autoscaler_url = format!("http://{events}/");
        let activator = spawn_component(
            "zeroscale-activator",
            &[
                "--internal-addr",
                &internal,
                "--external-addr",
                &external,
                "--admin-addr",
                &activator_admin,
                "--autoscaler-url",
                &autoscaler_url,
                "--pod-name",
                "e2e-activator",
                "--log-format",
                "plain",
            ],
            &[],
        );
        wait_ready(&activator, &activator_admin, None).await;
        Self {
            _operator: operator,
            activator,
            autoscaler,
            internal,
        }
    }

    /// `GET /` for `name.namespace` through the activator.
    async fn request(&self, name: &str, namespace: &str) -> u16 {
        let host = format!("{name}.{namespace}");
        let url = format!("http://{}/", self.internal);
        match http_request(
            Method::GET,
            &url,
            &[("host", host.as_str())],
            "",
            Duration::from_secs(60),
        )
        .await
        {
            Ok(response) => response.status,
            Err(e) => panic!(
                "request through the activator failed: {e} (log: {})",
                self.activator.log_path().display()
            ),
        }
    }

    /// The autoscaler's `scaled` log lines for `function` (`<namespace>/<name>`).
    fn scaled_lines(&self, function: &str) -> Vec<serde_json::Value> {
        self.autoscaler
            .log()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|v| v["message"] == "scaled" && v["function"] == function)
            .collect()
    }
}

async fn replicas(api: &Api<Deployment>, name: &str) -> Option<(i32, i32)> {
    let d = api.get_opt(name).await.ok().flatten()?;
    let desired = d.spec.as_ref()?.replicas?;
    let ready = d.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0);
    Some((desired, ready))
}

#[tokio::test]
async fn idle_function_goes_to_zero_and_demand_wakes_it_at_once() {
    let client = zeroscale_e2e::client().await;
    apply_yaml_cluster(FUNCTION_CRD).await;
    kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/functions.zeroscale.dev",
    ])
    .await;
    let ns = TestNamespace::new(&client, "autoscaler").await;
    let stack = Stack::start(ns.name()).await;
    let functions: Api<Function> = Api::namespaced(client.clone(), ns.name());
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns.name());
    let manifest: Function = serde_json::from_value(json!({
        "apiVersion": "zeroscale.dev/v1alpha1",
        "kind": "Function",
        "metadata": { "name": "hello" },
        "spec": { "image": "zeroscale/echo", "timeoutSeconds": 60, "scale": { "window": "6s" } },
    }))
    .expect("function manifest");
    functions
        .create(&PostParams::default(), &manifest)
        .await
        .expect("function created");
    wait_for(Duration::from_secs(90), "hello to have a ready pod", || async {
        replicas(&deployments, "hello")
            .await
            .filter(|&(_, ready)| ready >= 1)
    })
    .await;

    // One request, then silence: zero replicas within window + grace + 15 s of the last request.
    assert_eq!(stack.request("hello", ns.name()).await, 200);
    let idle_from = Instant::now();
    let limit = WINDOW + GRACE + SLACK;
    let reached = try_wait_for(limit, "hello at zero replicas", || async {
        replicas(&deployments, "hello")
            .await
            .filter(|&(desired, _)| desired == 0)
    })
    .await;
    let idle_for = idle_from.elapsed();
    assert!(
        reached.is_ok(),
        "not at zero {idle_for:?} after the last request (limit {limit:?}); log: {}",
        stack.autoscaler.log_path().display()
    );
    let function = format!("{}/hello", ns.name());
    let to_zero = stack
        .scaled_lines(&function)
        .into_iter()
        .find(|v| v["to"] == 0)
        .expect("a scaled-to-zero log line");
    assert_eq!(to_zero["reason"], "scale-to-zero");
    eprintln!(
        "TIMING idle function with window 6s at zero replicas after {} ms",
        idle_for.as_millis()
    );
    wait_for(Duration::from_secs(60), "hello's pods gone", || async {
        replicas(&deployments, "hello")
            .await
            .filter(|&(_, ready)| ready == 0)
    })
    .await;

    // A request at zero: the activator sends demand, the autoscaler patches /scale at once, the
    // request is answered once the pod is up.
    let started = Instant::now();
    assert_eq!(stack.request("hello", ns.name()).await, 200);
    eprintln!(
        "TIMING cold request through the activator answered after {} ms",
        started.elapsed().as_millis()
    );
    let line = wait_for(
        Duration::from_secs(10),
        "a scaled log line for the demand",
        || async {
            stack
                .scaled_lines(&function)
                .into_iter()
                .find(|v| v["reason"] == "demand")
        },
    )
    .await;
    assert_eq!(
        (line["from"].as_i64(), line["to"].as_i64()),
        (Some(0), Some(1)),
        "{line}"
    );
    let demand_to_patch_us = line["demand_to_patch_us"]
        .as_u64()
        .expect("demand_to_patch_us in the log line");
    eprintln!("TIMING demand event arrival to /scale patch sent: {demand_to_patch_us} µs");
    assert!(
        demand_to_patch_us <= 5_000,
        "demand → patch took {demand_to_patch_us} µs: {line}"
    );

    // Every change is a Kubernetes Event on the Function. (Read through core/v1: the events.k8s.io
    // types cannot decode the legacy events other controllers write, whose eventTime is null.)
    let events: Api<Event> = Api::namespaced(client.clone(), ns.name());
    let on_function = ListParams::default().fields("involvedObject.kind=Function,involvedObject.name=hello");
    let scaled = wait_for(Duration::from_secs(30), "Scaled events on hello", || async {
        let list = events.list(&on_function).await.ok()?;
        let n = list
            .items
            .iter()
            .filter(|e| e.reason.as_deref() == Some("Scaled"))
            .count();
        (n >= 2).then_some(n)
    })
    .await;
    assert!(scaled >= 2);
    ns.delete().await;
}
