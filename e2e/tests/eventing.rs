//! End-to-end tests of eventing (issue #7) on the local cluster, with the components as host processes
//! (`spawn_component`), the activator scoped to the test's namespace for Triggers and its sources Lease.
//!
//! - A broker event routed by a Trigger to a Function at zero wakes it, and the echo function answers
//!   with the event it received (its `ce-id`); a subscriber answering 500 gets the configured retries
//!   and the event then reaches the dead-letter Function with the `zeroscaleerror*` extensions.
//! - With two activators, a `* * * * *` schedule fires within 70 s, once (only the Lease holder runs
//!   sources), and creating a labelled ConfigMap produces one `dev.zeroscale.kubernetes.added` event.
//!
//! The activator logs every answer to a delivery at debug level (`event answered`, with the body);
//! the echo function's body is the request it received, which is how these tests see what arrived.

use std::{collections::HashMap, convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use http::Method;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod};
use kube::{Api, api::ListParams};
use serde_json::Value;
use tokio::sync::Mutex;
use zeroscale_e2e::{
    ProcessGuard, TestNamespace, apply_yaml, apply_yaml_cluster, http_get, http_request, kubectl_ok,
    spawn_component, wait_for,
};

const FUNCTION_CRD: &str = include_str!("../../crds/yaml/functions.zeroscale.dev.yaml");
const TRIGGER_CRD: &str = include_str!("../../crds/yaml/triggers.zeroscale.dev.yaml");

fn free_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    format!("127.0.0.1:{port}")
}

async fn install_crds() {
    apply_yaml_cluster(FUNCTION_CRD).await;
    apply_yaml_cluster(TRIGGER_CRD).await;
    for crd in ["crd/functions.zeroscale.dev", "crd/triggers.zeroscale.dev"] {
        kubectl_ok(&["wait", "--for=condition=Established", "--timeout=60s", crd]).await;
    }
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

/// An activator watching the Triggers of one namespace, logging delivery answers.
struct Activator {
    process: ProcessGuard,
    admin: String,
    broker: String,
}

impl Activator {
    async fn start(namespace: &str, name: &str, autoscaler_url: &str) -> Self {
        let (internal, external, admin, broker) = (free_addr(), free_addr(), free_addr(), free_addr());
        let process = spawn_component(
            "zeroscale-activator",
            &[
                "--internal-addr",
                &internal,
                "--external-addr",
                &external,
                "--admin-addr",
                &admin,
                "--broker-addr",
                &broker,
                "--autoscaler-url",
                autoscaler_url,
                "--pod-name",
                name,
                "--trigger-namespace",
                namespace,
                "--lease-namespace",
                namespace,
                "--log-format",
                "json",
            ],
            &[("RUST_LOG", "info,zeroscale_activator::events=debug")],
        );
        wait_ready(&process, &admin, None).await;
        Self {
            process,
            admin,
            broker,
        }
    }

    /// Posts a binary-mode event to `namespace`'s broker; returns the status.
    async fn post(&self, namespace: &str, id: &str, ty: &str) -> u16 {
        let url = format!("http://{}/{namespace}", self.broker);
        let headers = [
            ("ce-specversion", "1.0"),
            ("ce-id", id),
            ("ce-source", "/e2e"),
            ("ce-type", ty),
            ("content-type", "application/json"),
        ];
        let response = http_request(
            Method::POST,
            &url,
            &headers,
            r#"{"hello":"events"}"#,
            Duration::from_secs(10),
        )
        .await
        .expect("broker ingress answers");
        response.status
    }

    /// JSON log lines with `message == msg`.
    fn lines(&self, msg: &str) -> Vec<Value> {
        self.process
            .log()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["message"] == msg)
            .collect()
    }

    /// Waits until the Trigger watch has routed Trigger `name`.
    async fn routed(&self, name: &str) {
        let what = format!(
            "trigger {name} routed (log: {})",
            self.process.log_path().display()
        );
        wait_for(Duration::from_secs(30), &what, || async {
            self.lines("trigger routed")
                .into_iter()
                .find(|v| v["trigger"] == name)
        })
        .await;
    }

    /// `event answered` lines for event `id` sent to `destination`.
    fn answers(&self, destination: &str, id: &str) -> Vec<Value> {
        self.lines("event answered")
            .into_iter()
            .filter(|v| v["destination"] == destination && v["id"] == id)
            .collect()
    }

    /// The value of the metric line starting with `prefix` (name and labels), if present.
    async fn metric(&self, prefix: &str) -> Option<f64> {
        let text = http_get(&format!("http://{}/metrics", self.admin))
            .await
            .ok()?
            .text();
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }
}

/// The echo function's answer in an `event answered` line: the request it received.
fn echoed(line: &Value) -> Value {
    serde_json::from_str(line["body"].as_str().unwrap_or_default().trim()).unwrap_or(Value::Null)
}

fn function(name: &str) -> String {
    format!(
        "apiVersion: zeroscale.dev/v1alpha1\nkind: Function\nmetadata: {{name: {name}}}\n\
         spec: {{image: zeroscale/echo, timeoutSeconds: 120, scale: {{initial: 0}}}}\n"
    )
}

async fn desired_replicas(api: &Api<Deployment>, name: &str) -> Option<i32> {
    api.get_opt(name).await.ok().flatten()?.spec?.replicas
}

#[tokio::test]
async fn broker_event_wakes_a_function_at_zero_and_failures_end_in_the_dead_letter_function() {
    let client = zeroscale_e2e::client().await;
    install_crds().await;
    let ns = TestNamespace::new(&client, "eventing").await;
    let namespace = ns.name();

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
    let activator = Activator::start(namespace, "e2e-activator", &format!("http://{events}/")).await;

    apply_yaml(namespace, &function("hello")).await;
    apply_yaml(namespace, &function("dlq")).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    for name in ["hello", "dlq"] {
        let what = format!("Deployment {name} created at zero replicas");
        wait_for(Duration::from_secs(60), &what, || async {
            (desired_replicas(&deployments, name).await == Some(0)).then_some(())
        })
        .await;
    }
    apply_yaml(
        namespace,
        "apiVersion: zeroscale.dev/v1alpha1\nkind: Trigger\nmetadata: {name: to-hello}\n\
         spec: {source: {broker: {}}, filters: [{exact: {type: e2e.hello}}], subscriber: {function: hello}}\n",
    )
    .await;
    activator.routed("to-hello").await;

    // 1. An event for hello, at zero: it wakes and its answer echoes the event.
    assert_eq!(desired_replicas(&deployments, "hello").await, Some(0));
    assert_eq!(activator.post(namespace, "wake-1", "e2e.hello").await, 202);
    let hello = format!("http://hello.{namespace}.svc");
    let answer = wait_for(Duration::from_secs(120), "hello to answer the event", || async {
        activator.answers(&hello, "wake-1").into_iter().next()
    })
    .await;
    assert_eq!(answer["status"], 200, "{answer}");
    let received = echoed(&answer);
    assert_eq!(received["headers"]["ce-id"], "wake-1", "{answer}");
    assert_eq!(received["headers"]["ce-type"], "e2e.hello", "{answer}");
    assert_eq!(received["body"], r#"{"hello":"events"}"#, "{answer}");
    assert!(
        desired_replicas(&deployments, "hello")
            .await
            .is_some_and(|r| r >= 1)
    );
    let delivered = format!(
        "zeroscale_event_deliveries_total{{namespace=\"{namespace}\",trigger=\"to-hello\",outcome=\"delivered\"}}"
    );
    wait_for(Duration::from_secs(10), "the delivery counted", || async {
        activator.metric(&delivered).await.filter(|n| *n >= 1.0)
    })
    .await;

    // 2. A subscriber that answers 500 (hello's pod, asked for it): 1 + 2 attempts, then the dead-letter
    // Function (at zero, so it wakes too) receives the event with the error extensions.
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pod_ip = wait_for(Duration::from_secs(60), "a ready hello pod", || async {
        let list = pods.list(&ListParams::default()).await.ok()?;
        list.items.iter().find_map(|p| {
            let ready = zeroscale_e2e::pod_is_ready(p);
            let is_hello = p
                .metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("hello-"));
            (ready && is_hello).then(|| zeroscale_e2e::pod_ip(p)).flatten()
        })
    })
    .await;
    let failing_uri = format!("http://{pod_ip}:8080/fail?status=500");
    apply_yaml(
        namespace,
        &format!(
            "apiVersion: zeroscale.dev/v1alpha1\nkind: Trigger\nmetadata: {{name: failing}}\n\
             spec: {{source: {{broker: {{}}}}, filters: [{{exact: {{type: e2e.fail}}}}],\n\
             subscriber: {{uri: '{failing_uri}'}},\n\
             delivery: {{retries: 2, backoffDelay: 100ms, deadLetterSink: {{function: dlq}}}}}}\n"
        ),
    )
    .await;
    activator.routed("failing").await;
    assert_eq!(activator.post(namespace, "fail-1", "e2e.fail").await, 202);
    let dlq = format!("http://dlq.{namespace}.svc");
    let dead = wait_for(
        Duration::from_secs(120),
        "the dead-letter function to answer",
        || async { activator.answers(&dlq, "fail-1").into_iter().next() },
    )
    .await;
    assert_eq!(dead["status"], 200, "{dead}");
    let attempts = activator.answers(&failing_uri, "fail-1");
    assert_eq!(attempts.len(), 3, "1 attempt + 2 retries: {attempts:?}");
    assert!(attempts.iter().all(|a| a["status"] == 500), "{attempts:?}");
    let received = echoed(&dead);
    let headers = &received["headers"];
    assert_eq!(headers["ce-id"], "fail-1", "{dead}");
    assert_eq!(headers["ce-zeroscaleerrordest"], failing_uri.as_str(), "{dead}");
    assert_eq!(headers["ce-zeroscaleerrorcode"], "500", "{dead}");
    assert!(
        headers["ce-zeroscaleerrordata"]
            .as_str()
            .is_some_and(|d| d.starts_with("{\"body\":")),
        "the failing answer's body: {dead}"
    );
    let retries = format!("zeroscale_event_retries_total{{namespace=\"{namespace}\",trigger=\"failing\"}}");
    assert_eq!(activator.metric(&retries).await, Some(2.0));
    let dead_lettered = format!(
        "zeroscale_event_deliveries_total{{namespace=\"{namespace}\",trigger=\"failing\",outcome=\"dead_lettered\"}}"
    );
    wait_for(Duration::from_secs(10), "the dead letter counted", || async {
        activator.metric(&dead_lettered).await.filter(|n| *n == 1.0)
    })
    .await;
    drop((operator, autoscaler));
    ns.delete().await;
}

/// A host HTTP server recording the CloudEvents it receives (binary mode), answering 200.
#[derive(Clone, Default)]
struct Recorder {
    events: Arc<Mutex<Vec<HashMap<String, String>>>>,
}

impl Recorder {
    async fn start(&self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("recorder binds");
        let addr = listener.local_addr().expect("recorder address");
        let events = self.events.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let events = events.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let events = events.clone();
                        async move {
                            let mut event: HashMap<String, String> = req
                                .headers()
                                .iter()
                                .filter(|(k, _)| k.as_str().starts_with("ce-"))
                                .map(|(k, v)| {
                                    (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned())
                                })
                                .collect();
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            event.insert("data".into(), String::from_utf8_lossy(&body).into_owned());
                            events.lock().await.push(event);
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        addr
    }

    async fn of_type(&self, ty: &str) -> Vec<HashMap<String, String>> {
        let events = self.events.lock().await;
        events
            .iter()
            .filter(|e| e.get("ce-type").map(String::as_str) == Some(ty))
            .cloned()
            .collect()
    }
}

#[tokio::test]
async fn schedule_fires_and_configmap_changes_become_events_on_the_lease_holder_only() {
    let client = zeroscale_e2e::client().await;
    install_crds().await;
    let ns = TestNamespace::new(&client, "sources").await;
    let namespace = ns.name();
    let recorder = Recorder::default();
    let sink = recorder.start().await;
    // Two replicas compete for the sources Lease; signals are off (no functions involved).
    let a = Activator::start(namespace, "e2e-activator-a", "").await;
    let b = Activator::start(namespace, "e2e-activator-b", "").await;

    apply_yaml(
        namespace,
        &format!(
            "apiVersion: zeroscale.dev/v1alpha1\nkind: Trigger\nmetadata: {{name: tick}}\n\
             spec: {{source: {{schedule: {{cron: '* * * * *', data: '{{\"tick\":true}}'}}}}, subscriber: {{uri: 'http://{sink}/tick'}}}}\n\
             ---\n\
             apiVersion: zeroscale.dev/v1alpha1\nkind: Trigger\nmetadata: {{name: watched}}\n\
             spec: {{source: {{kubernetes: {{apiVersion: v1, kind: ConfigMap, labelSelector: e2e=watched}}}},\n\
             subscriber: {{uri: 'http://{sink}/cm'}}}}\n"
        ),
    )
    .await;
    let started = std::time::Instant::now();
    // The watch starts with the objects that exist as its baseline; give it a moment to be running.
    let leader_what = "one activator to start the event sources";
    let leaders = wait_for(Duration::from_secs(60), leader_what, || async {
        let n = [&a, &b]
            .iter()
            .filter(|x| x.lines("event sources started").len() == 1)
            .count();
        (n >= 1).then_some(n)
    })
    .await;
    assert_eq!(leaders, 1, "only the Lease holder runs sources");
    tokio::time::sleep(Duration::from_secs(3)).await;
    apply_yaml(
        namespace,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ignored}\ndata: {a: b}\n",
    )
    .await;
    apply_yaml(
        namespace,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: seen, labels: {e2e: watched}}\ndata: {a: b}\n",
    )
    .await;

    let added = wait_for(
        Duration::from_secs(30),
        "a kubernetes event for the ConfigMap",
        || async {
            let events = recorder.of_type("dev.zeroscale.kubernetes.added").await;
            (!events.is_empty()).then_some(events)
        },
    )
    .await;
    let subject = format!("{namespace}/seen");
    assert_eq!(added[0].get("ce-subject"), Some(&subject), "{added:?}");
    assert!(added[0]["data"].contains("\"name\":\"seen\""), "{added:?}");

    let tick = wait_for(Duration::from_secs(70), "the schedule to fire", || async {
        recorder
            .of_type("dev.zeroscale.schedule")
            .await
            .into_iter()
            .next()
    })
    .await;
    eprintln!(
        "TIMING schedule fired {} ms after the Trigger was applied",
        started.elapsed().as_millis()
    );
    assert_eq!(tick["data"], r#"{"tick":true}"#);
    assert_eq!(
        tick.get("ce-source"),
        Some(&format!("/zeroscale/triggers/{namespace}/tick"))
    );

    // Settle, then check nothing was produced twice: one leader, one delivery per change and fire.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let added = recorder.of_type("dev.zeroscale.kubernetes.added").await;
    assert_eq!(added.len(), 1, "only the labelled ConfigMap, once: {added:?}");
    let ticks = recorder.of_type("dev.zeroscale.schedule").await;
    let mut ids: Vec<_> = ticks.iter().filter_map(|t| t.get("ce-id")).collect();
    let all = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), all, "each fire delivered once: {ticks:?}");
    let fired = a.lines("schedule fired").len() + b.lines("schedule fired").len();
    assert_eq!(
        fired,
        ticks.len(),
        "fires logged by either replica = fires delivered"
    );
    ns.delete().await;
}
