//! End-to-end tests of the operator's Trigger controller and platform events (issue #7) on the local
//! cluster. Each test has its own namespace and its own operator process (`--watch-namespace`, Lease in
//! that namespace).
//!
//! - Trigger status: a Trigger to an existing Function is `Ready` with its `subscriberUri`; to a missing
//!   Function it is `FunctionNotFound` until the Function is created; a cron value that passes admission
//!   but not the parser is `InvalidSchedule`; a `kubernetes` source on Secrets is `SourceNotAllowed`; an
//!   unknown kind is `KindNotFound`.
//! - Platform events: with `--events-sink` pointing at a tiny HTTP server of the test, a Function that
//!   becomes ready produces a `dev.zeroscale.function.ready` CloudEvent POSTed to `/<namespace>`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use zeroscale_crds::Function;
use zeroscale_crds::trigger::Trigger;
use zeroscale_e2e::{
    ProcessGuard, TestNamespace, apply_yaml_cluster, http_get, kubectl_ok, spawn_component, wait_for,
};

const FUNCTION_CRD: &str = include_str!("../../crds/yaml/functions.zeroscale.dev.yaml");
const TRIGGER_CRD: &str = include_str!("../../crds/yaml/triggers.zeroscale.dev.yaml");
const SETTLE: Duration = Duration::from_secs(60);

async fn install_crds() {
    apply_yaml_cluster(FUNCTION_CRD).await;
    apply_yaml_cluster(TRIGGER_CRD).await;
    for crd in ["crd/functions.zeroscale.dev", "crd/triggers.zeroscale.dev"] {
        kubectl_ok(&["wait", "--for=condition=Established", "--timeout=60s", crd]).await;
    }
}

fn free_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    format!("127.0.0.1:{port}")
}

/// An operator reconciling only `namespace`, sending platform events to `events_sink` when given;
/// answers the process and its admin address.
async fn operator(namespace: &str, events_sink: Option<&str>) -> (ProcessGuard, String) {
    let admin = free_addr();
    let mut args = vec![
        "--watch-namespace",
        namespace,
        "--lease-namespace",
        namespace,
        "--admin-addr",
        &admin,
        "--log-format",
        "plain",
    ];
    if let Some(sink) = events_sink {
        args.extend(["--events-sink", sink]);
    }
    let process = spawn_component(
        "zeroscale-operator",
        &args,
        &[("RUST_LOG", "info,zeroscale_operator=debug")],
    );
    let what = format!("operator to lead (log: {})", process.log_path().display());
    wait_for(SETTLE, &what, || async {
        let ready = http_get(&format!("http://{admin}/ready")).await.ok()?.status == 200;
        let metrics = http_get(&format!("http://{admin}/metrics")).await.ok()?.text();
        (ready && metrics.contains("zeroscale_operator_leader 1")).then_some(())
    })
    .await;
    (process, admin)
}

/// A counter of the operator's `/metrics`, 0 when absent.
async fn counter(admin: &str, series: &str) -> u64 {
    let text = http_get(&format!("http://{admin}/metrics"))
        .await
        .map(|r| r.text())
        .unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

async fn create_function(client: &Client, ns: &str, name: &str, spec: Value) {
    let api: Api<Function> = Api::namespaced(client.clone(), ns);
    let function: Function = serde_json::from_value(json!({
        "apiVersion": "zeroscale.dev/v1alpha1", "kind": "Function",
        "metadata": {"name": name}, "spec": spec,
    }))
    .expect("function manifest");
    api.create(&PostParams::default(), &function)
        .await
        .expect("function created");
}

async fn create_trigger(api: &Api<Trigger>, name: &str, spec: Value) {
    let trigger: Trigger = serde_json::from_value(json!({
        "apiVersion": "zeroscale.dev/v1alpha1", "kind": "Trigger",
        "metadata": {"name": name}, "spec": spec,
    }))
    .expect("trigger manifest");
    api.create(&PostParams::default(), &trigger)
        .await
        .unwrap_or_else(|e| panic!("trigger {name} created: {e}"));
}

fn ready(t: &Trigger) -> Option<&Condition> {
    t.status.as_ref()?.condition("Ready")
}

/// Waits until the Trigger's `Ready` condition has `status` and `reason` at the current generation.
async fn wait_trigger(api: &Api<Trigger>, name: &str, status: &str, reason: &str) -> Trigger {
    let what = format!("trigger {name} Ready={status}/{reason}");
    wait_for(SETTLE, &what, || async {
        let t = api.get(name).await.ok()?;
        let current = t.status.as_ref()?.observed_generation == t.metadata.generation;
        let c = ready(&t)?;
        (current && c.status == status && c.reason == reason).then_some(t)
    })
    .await
}

fn cond<'a>(t: &'a Trigger, type_: &str) -> &'a Condition {
    t.status
        .as_ref()
        .and_then(|s| s.condition(type_))
        .unwrap_or_else(|| panic!("condition {type_} on {:?}", t.metadata.name))
}

#[tokio::test]
async fn trigger_status_reports_subscribers_and_sources() {
    let client = zeroscale_e2e::client().await;
    install_crds().await;
    let ns = TestNamespace::new(&client, "trig-status").await;
    let ns = ns.name();
    let (_operator, admin) = operator(ns, None).await;
    // No pods are needed: a Trigger only needs its Function to exist.
    let at_zero = json!({"image": "zeroscale/echo", "scale": {"min": 0, "initial": 0}});
    create_function(&client, ns, "hello", at_zero.clone()).await;
    let api: Api<Trigger> = Api::namespaced(client.clone(), ns);

    create_trigger(
        &api,
        "to-hello",
        json!({"source": {"broker": {}}, "subscriber": {"function": "hello"},
               "delivery": {"deadLetterSink": {"uri": "http://dlq.example.com/in"}}}),
    )
    .await;
    let t = wait_trigger(&api, "to-hello", "True", "Ready").await;
    let status = t.status.as_ref().expect("status");
    assert_eq!(
        status.subscriber_uri.as_deref(),
        Some(format!("http://hello.{ns}.svc.cluster.local").as_str())
    );
    assert_eq!(
        status.dead_letter_sink_uri.as_deref(),
        Some("http://dlq.example.com/in")
    );
    assert_eq!(status.source_kind.as_deref(), Some("broker"));
    assert_eq!(cond(&t, "SubscriberResolved").status, "True");
    assert_eq!(cond(&t, "SourceReady").status, "True");

    // A missing Function, then created: the Function watch turns the Trigger ready.
    create_trigger(
        &api,
        "to-later",
        json!({"source": {"broker": {}}, "subscriber": {"function": "later"}}),
    )
    .await;
    let t = wait_trigger(&api, "to-later", "False", "FunctionNotFound").await;
    assert_eq!(cond(&t, "SubscriberResolved").reason, "FunctionNotFound");
    assert!(t.status.as_ref().is_some_and(|s| s.subscriber_uri.is_none()));
    create_function(&client, ns, "later", at_zero).await;
    let t = wait_trigger(&api, "to-later", "True", "Ready").await;
    assert_eq!(
        t.status.as_ref().and_then(|s| s.subscriber_uri.as_deref()),
        Some(format!("http://later.{ns}.svc.cluster.local").as_str())
    );

    // Passes the CEL shape check, fails the cron parser.
    create_trigger(
        &api,
        "bad-cron",
        json!({"source": {"schedule": {"cron": "61 * * * *"}}, "subscriber": {"function": "hello"}}),
    )
    .await;
    let t = wait_trigger(&api, "bad-cron", "False", "InvalidSchedule").await;
    assert_eq!(cond(&t, "SourceReady").reason, "InvalidSchedule");
    assert_eq!(cond(&t, "SubscriberResolved").status, "True");

    create_trigger(
        &api,
        "secrets",
        json!({"source": {"kubernetes": {"apiVersion": "v1", "kind": "Secret"}},
               "subscriber": {"function": "hello"}}),
    )
    .await;
    let t = wait_trigger(&api, "secrets", "False", "SourceNotAllowed").await;
    assert!(cond(&t, "SourceReady").message.contains("Secret"));

    create_trigger(
        &api,
        "gadgets",
        json!({"source": {"kubernetes": {"apiVersion": "example.com/v1", "kind": "Gadget"}},
               "subscriber": {"function": "hello"}}),
    )
    .await;
    wait_trigger(&api, "gadgets", "False", "KindNotFound").await;
    create_trigger(
        &api,
        "widgets",
        json!({"source": {"kubernetes": {"apiVersion": "v1", "kind": "Widget"}},
               "subscriber": {"function": "hello"}}),
    )
    .await;
    wait_trigger(&api, "widgets", "False", "KindNotFound").await;
    // A kind the API server serves passes discovery.
    create_trigger(
        &api,
        "configmaps",
        json!({"source": {"kubernetes": {"apiVersion": "v1", "kind": "ConfigMap"}},
               "subscriber": {"function": "hello"}}),
    )
    .await;
    let t = wait_trigger(&api, "configmaps", "True", "Ready").await;
    assert_eq!(
        t.status.as_ref().and_then(|s| s.source_kind.as_deref()),
        Some("kubernetes")
    );

    // This test's operator did the work (a cluster-wide installation may reconcile these Triggers too).
    let reconciles = counter(&admin, "zeroscale_operator_reconciles_total{kind=\"Trigger\"} ").await;
    assert!(reconciles >= 7, "{reconciles} Trigger reconciles");

    // Transitions are Kubernetes Events on the Trigger.
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    wait_for(SETTLE, "a FunctionNotFound event on to-later", || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("to-later")
                    && e.reason.as_deref() == Some("FunctionNotFound")
                    && e.type_.as_deref() == Some("Warning")
            })
            .then_some(())
    })
    .await;
}

/// A received HTTP request: path, `ce-*` headers, body.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    ce: Vec<(String, String)>,
    body: Value,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.ce.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// A tiny events sink: answers 202 to every request and keeps it.
async fn sink() -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the sink");
    let addr = listener.local_addr().expect("sink address");
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let store = store.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let store = store.clone();
                    async move {
                        let path = req.uri().path().to_string();
                        let ce = req
                            .headers()
                            .iter()
                            .filter(|(n, _)| n.as_str().starts_with("ce-"))
                            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_string()))
                            .collect();
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        store.lock().await.push(Received { path, ce, body });
                        let response = Response::builder()
                            .status(202)
                            .body(Full::new(Bytes::new()))
                            .unwrap_or_default();
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (format!("http://{addr}"), received)
}

#[tokio::test]
async fn a_function_that_becomes_ready_sends_a_platform_event() {
    let client = zeroscale_e2e::client().await;
    install_crds().await;
    let ns = TestNamespace::new(&client, "trig-platform").await;
    let ns = ns.name();
    let (sink, received) = sink().await;
    let (_operator, admin) = operator(ns, Some(&sink)).await;
    create_function(&client, ns, "hello", json!({"image": "zeroscale/echo"})).await;

    let what = format!("a dev.zeroscale.function.ready event for {ns}/hello at {sink}");
    let event = wait_for(Duration::from_secs(120), &what, || async {
        received
            .lock()
            .await
            .iter()
            .find(|r| r.header("ce-type") == Some("dev.zeroscale.function.ready"))
            .cloned()
    })
    .await;
    assert_eq!(event.path, format!("/{ns}"));
    assert_eq!(event.header("ce-source"), Some("/zeroscale/operator"));
    assert_eq!(event.header("ce-subject"), Some(format!("{ns}/hello").as_str()));
    assert_eq!(event.header("ce-specversion"), Some("1.0"));
    assert_eq!(event.body["function"]["name"], "hello");
    assert_eq!(event.body["reason"], "Ready");
    // One ready transition, one event: later reconciles of a settled Function send nothing.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let ready_events = received
        .lock()
        .await
        .iter()
        .filter(|r| r.header("ce-type") == Some("dev.zeroscale.function.ready"))
        .count();
    assert_eq!(ready_events, 1);
    let sent = counter(
        &admin,
        "zeroscale_operator_platform_events_total{type=\"dev.zeroscale.function.ready\",outcome=\"sent\"} ",
    )
    .await;
    assert_eq!(sent, 1);
}
