//! Function pods on the real node (issue #11 point 4): restricted pod security and memory limits.
//!
//! Every test runs in a namespace that enforces the `restricted` Pod Security Standard, with the
//! operator, the autoscaler and the activator as host processes scoped to it:
//! - a Function over its memory limit is OOMKilled: a request that allocates past the limit kills the
//!   container, the Function reports `OOMKilled` (condition `ContainerHealthy`, a Warning Event), and a
//!   Function that cannot start within its limit answers a request waiting at zero with 503 naming
//!   `OOMKilled`, long before the request's timeout;
//! - a Function with `readOnlyRootFilesystem: true` cannot write to `/`;
//! - an image whose user is root, in a Function that keeps `runAsNonRoot`, fails with the kubelet's own
//!   reason and message in the Function's status.

use std::time::{Duration, Instant};

use http::Method;
use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::json;
use zeroscale_crds::Function;
use zeroscale_e2e::{
    Activator, Autoscaler, HttpResponse, Operator, TestNamespace, free_addr, function_condition,
    function_manifest, http_request, install_function_crd, kubectl_ok, wait_for,
};

/// The echo function's image in the node's registry (`make images`).
const ECHO: &str = "localhost:5000/zeroscale/echo:0.1.0";
/// A busybox image whose user is root.
const BUSYBOX: &str = "localhost:5000/zeroscale/busybox:0.1.0";
/// How long a status may take to show on a busy 2-core machine.
const SETTLE: Duration = Duration::from_secs(120);

/// The operator, the autoscaler and the activator for one namespace that enforces `restricted`.
struct Stack {
    ns: TestNamespace,
    _operator: Operator,
    _autoscaler: Autoscaler,
    activator: Activator,
    api: Api<Function>,
}

impl Stack {
    async fn start(prefix: &str) -> Self {
        let client = zeroscale_e2e::client().await;
        install_function_crd().await;
        let ns = TestNamespace::new(&client, prefix).await;
        // Pods that break the restricted standard are refused by the API server, so every pod that
        // runs below proves the operator's defaults comply.
        kubectl_ok(&[
            "label",
            "namespace",
            ns.name(),
            "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/enforce-version=latest",
        ])
        .await;
        let operator = Operator::start(ns.name()).await;
        let activator_admin = free_addr();
        let autoscaler = Autoscaler::start(ns.name(), Some(&Activator::ready_url(&activator_admin))).await;
        let activator = Activator::start(
            "e2e-activator",
            &autoscaler.events_url(),
            activator_admin,
            &["--log-format", "plain"],
            &[],
        )
        .await;
        let api = Api::namespaced(client, ns.name());
        Self {
            ns,
            _operator: operator,
            _autoscaler: autoscaler,
            activator,
            api,
        }
    }

    async fn create(&self, name: &str, spec: serde_json::Value) {
        self.api
            .create(&PostParams::default(), &function_manifest(name, spec))
            .await
            .expect("function created");
    }

    /// `GET path` for Function `name` through the activator's in-cluster address.
    async fn get(&self, name: &str, path: &str, timeout: Duration) -> HttpResponse {
        let host = format!("{name}.{}", self.ns.name());
        let url = format!("http://{}{path}", self.activator.internal);
        match http_request(Method::GET, &url, &[("host", host.as_str())], "", timeout).await {
            Ok(response) => response,
            Err(e) => panic!(
                "GET {path} for {name} through the activator failed: {e} (log: {})",
                self.activator.process.log_path().display()
            ),
        }
    }

    /// Waits until condition `type_` of Function `name` has `status` and `reason`; returns its message.
    async fn wait_condition(&self, name: &str, type_: &str, status: &str, reason: &str) -> String {
        let what = format!("function {name} {type_}={status} with reason {reason}");
        wait_for(SETTLE, &what, || async {
            let f = self.api.get(name).await.ok()?;
            let c = function_condition(&f, type_)?;
            (c.status == status && c.reason == reason).then_some(c.message)
        })
        .await
    }

    /// Event reasons recorded on Function `name`.
    async fn event_reasons(&self, name: &str) -> Vec<String> {
        let events: Api<Event> = Api::namespaced(self.api.clone().into_client(), self.ns.name());
        let selector = format!("involvedObject.name={name},involvedObject.kind=Function");
        events
            .list(&ListParams::default().fields(&selector))
            .await
            .map(|l| l.items.into_iter().filter_map(|e| e.reason).collect())
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn a_request_over_the_memory_limit_is_oom_killed_and_reported() {
    let stack = Stack::start("pod-oom").await;
    stack
        .create(
            "hungry",
            json!({
                "image": ECHO,
                "resources": { "limits": { "memory": "64Mi" }, "requests": { "memory": "32Mi" } },
                "scale": { "min": 1 }
            }),
        )
        .await;
    stack.wait_condition("hungry", "Ready", "True", "Ready").await;
    let small = stack.get("hungry", "/?alloc=8Mi", Duration::from_secs(60)).await;
    assert_eq!(small.status, 200, "{}", small.text());
    assert_eq!(small.json()["allocated"], 8 << 20);

    let killed = stack
        .get("hungry", "/?alloc=200Mi", Duration::from_secs(60))
        .await;
    assert!(
        killed.status >= 500,
        "a request whose pod is OOMKilled cannot succeed: {} {}",
        killed.status,
        killed.text()
    );
    let message = stack
        .wait_condition("hungry", "ContainerHealthy", "False", "OOMKilled")
        .await;
    assert!(message.contains("64Mi"), "{message}");
    let what = "a Warning Event OOMKilled on the Function";
    wait_for(SETTLE, what, || async {
        stack
            .event_reasons("hungry")
            .await
            .iter()
            .any(|r| r == "OOMKilled")
            .then_some(())
    })
    .await;
    // The restarted container serves again.
    stack.wait_condition("hungry", "Ready", "True", "Ready").await;
    assert_eq!(
        stack.get("hungry", "/", Duration::from_secs(60)).await.status,
        200
    );
}

#[tokio::test]
async fn a_request_waiting_at_zero_gets_503_naming_oom_killed() {
    let stack = Stack::start("pod-oom-start").await;
    stack
        .create(
            "toobig",
            json!({
                "image": ECHO,
                "env": [{ "name": "ECHO_ALLOC_AT_START", "value": "200Mi" }],
                "resources": { "limits": { "memory": "64Mi" } },
                "timeoutSeconds": 300,
                "scale": { "min": 0, "initial": 0 }
            }),
        )
        .await;
    stack
        .wait_condition("toobig", "Active", "True", "ScaledToZero")
        .await;
    let started = Instant::now();
    let answer = stack.get("toobig", "/", Duration::from_secs(300)).await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert!(answer.text().contains("OOMKilled"), "{}", answer.text());
    assert!(
        started.elapsed() < Duration::from_secs(150),
        "answered after {:?}, not when the 300 s timeout ran out",
        started.elapsed()
    );
    let message = stack
        .wait_condition("toobig", "Ready", "False", "OOMKilled")
        .await;
    assert!(message.contains("OOMKilled"), "{message}");
    let answer = stack.get("toobig", "/", Duration::from_secs(60)).await;
    assert_eq!(answer.status, 503, "new requests are answered at once too");
}

#[tokio::test]
async fn a_read_only_root_filesystem_refuses_writes_to_root() {
    let stack = Stack::start("pod-ro").await;
    stack
        .create(
            "readonly",
            json!({
                "image": ECHO,
                "securityContext": { "readOnlyRootFilesystem": true },
                "scale": { "min": 1 }
            }),
        )
        .await;
    stack.wait_condition("readonly", "Ready", "True", "Ready").await;
    let answer = stack
        .get("readonly", "/?write=/probe", Duration::from_secs(60))
        .await;
    assert_eq!(answer.status, 500, "{}", answer.text());
    assert!(
        answer.text().contains("Read-only file system"),
        "{}",
        answer.text()
    );
    // Served by the pod, so everything else still works.
    assert_eq!(
        stack.get("readonly", "/", Duration::from_secs(60)).await.status,
        200
    );
}

#[tokio::test]
async fn an_image_whose_user_is_root_fails_with_the_kubelets_reason() {
    let stack = Stack::start("pod-root").await;
    stack
        .create(
            "rooted",
            json!({
                "image": BUSYBOX,
                "command": ["sleep", "3600"],
                "scale": { "min": 1 }
            }),
        )
        .await;
    let message = stack
        .wait_condition("rooted", "Ready", "False", "CreateContainerConfigError")
        .await;
    assert!(
        message.contains("container has runAsNonRoot and image will run as root"),
        "{message}"
    );
    let f = stack.api.get("rooted").await.expect("function");
    assert_eq!(
        f.startup_failure().map(|(reason, _)| reason),
        Some("CreateContainerConfigError"),
        "the activator answers waiting requests with it"
    );
}
