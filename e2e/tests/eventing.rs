//! End-to-end tests of eventing (issue #7) on the local cluster, with the components as host processes
//! (`zeroscale_e2e::{Operator, Autoscaler, Activator}`), the activator scoped to the test's namespace for Triggers and its sources Lease.
//!
//! - A broker event routed by a Trigger to a Function at zero wakes it, and the echo function answers
//!   with the event it received (its `ce-id`); a subscriber answering 500 gets the configured retries
//!   and the event then reaches the dead-letter Function with the `zeroscaleerror*` extensions.
//! - With two activators, a `* * * * *` schedule fires within 70 s, once (only the Lease holder runs
//!   sources), and creating a labelled ConfigMap produces one `dev.zeroscale.kubernetes.added` event.
//!
//! The activator logs every answer to a delivery at debug level (`event answered`, with the body);
//! the echo function's body is the request it received, which is how these tests see what arrived.

use std::time::Duration;

use http::Method;
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod};
use kube::{Api, api::ListParams};
use serde_json::Value;
use zeroscale_e2e::{
    Autoscaler, ECHO_IMAGE, EventSink, Operator, TestNamespace, apply_yaml, free_addr, http_request,
    install_eventing_crds, kubectl, metric_value, wait_for,
};

/// An activator watching the Triggers of one namespace, logging delivery answers.
struct Activator {
    inner: zeroscale_e2e::Activator,
}

impl Activator {
    async fn start(namespace: &str, name: &str, autoscaler_url: &str) -> Self {
        let extra = [
            "--trigger-namespace",
            namespace,
            "--lease-namespace",
            namespace,
            "--log-format",
            "json",
            // The Triggers here call pod IPs and the host's event sink directly.
            "--allowed-hosts",
            "*",
        ];
        let env = [("RUST_LOG", "info,zeroscale_activator::events=debug")];
        let inner = zeroscale_e2e::Activator::start(name, autoscaler_url, free_addr(), &extra, &env).await;
        Self { inner }
    }

    /// Posts a binary-mode event to `namespace`'s broker; returns the status.
    async fn post(&self, namespace: &str, id: &str, ty: &str) -> u16 {
        let url = format!("http://{}/{namespace}", self.inner.broker);
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
        self.inner.log_lines(msg)
    }

    /// Waits until the Trigger watch has routed Trigger `name`.
    async fn routed(&self, name: &str) {
        let what = format!(
            "trigger {name} routed (log: {})",
            self.inner.process.log_path().display()
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

    /// The value of the metric `series` (name and labels), if present.
    async fn metric(&self, series: &str) -> Option<f64> {
        metric_value(&self.inner.metrics().await?, series)
    }
}

/// The echo function's answer in an `event answered` line: the request it received.
fn echoed(line: &Value) -> Value {
    serde_json::from_str(line["body"].as_str().unwrap_or_default().trim()).unwrap_or(Value::Null)
}

fn function(name: &str) -> String {
    format!(
        "apiVersion: zeroscale.dev/v1alpha1\nkind: Function\nmetadata: {{name: {name}}}\n\
         spec: {{image: {ECHO_IMAGE}, timeoutSeconds: 120, scale: {{initial: 0}}}}\n"
    )
}

async fn desired_replicas(api: &Api<Deployment>, name: &str) -> Option<i32> {
    zeroscale_e2e::function_deployment(api, name)
        .await?
        .spec?
        .replicas
}

#[tokio::test]
async fn broker_event_wakes_a_function_at_zero_and_failures_end_in_the_dead_letter_function() {
    let client = zeroscale_e2e::client().await;
    install_eventing_crds().await;
    let ns = TestNamespace::new(&client, "eventing").await;
    let namespace = ns.name();

    let operator = Operator::start(namespace).await;
    let autoscaler = Autoscaler::start(namespace, None).await;
    let activator = Activator::start(namespace, "e2e-activator", &autoscaler.events_url()).await;

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
            .is_some_and(|d| d.starts_with('{') && d.contains("\"body\":")),
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
    drop((operator, autoscaler, activator));
    // Deleted in the background (TestNamespace's drop): since the pods' grace period became preStop +
    // timeoutSeconds, one of this test's pods can take longer than `delete`'s 60 s to go (still to be
    // understood; see the closing note of session 3).
    drop(ns);
}

#[tokio::test]
async fn schedule_fires_and_configmap_changes_become_events_on_the_lease_holder_only() {
    let client = zeroscale_e2e::client().await;
    install_eventing_crds().await;
    let ns = TestNamespace::new(&client, "sources").await;
    let namespace = ns.name();
    let recorder = EventSink::start(200).await;
    let sink = recorder.url();
    // Two replicas compete for the sources Lease; signals are off (no functions involved).
    let a = Activator::start(namespace, "e2e-activator-a", "").await;
    let b = Activator::start(namespace, "e2e-activator-b", "").await;

    apply_yaml(
        namespace,
        &format!(
            "apiVersion: zeroscale.dev/v1alpha1\nkind: Trigger\nmetadata: {{name: tick}}\n\
             spec: {{source: {{schedule: {{cron: '* * * * *', data: '{{\"tick\":true}}'}}}}, subscriber: {{uri: '{sink}/tick'}}}}\n\
             ---\n\
             apiVersion: zeroscale.dev/v1alpha1\nkind: Trigger\nmetadata: {{name: watched}}\n\
             spec: {{source: {{kubernetes: {{apiVersion: v1, kind: ConfigMap, labelSelector: e2e=watched}}}},\n\
             subscriber: {{uri: '{sink}/cm'}}}}\n"
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
    assert_eq!(added[0].header("ce-subject"), Some(subject.as_str()), "{added:?}");
    assert!(added[0].text().contains("\"name\":\"seen\""), "{added:?}");

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
    assert_eq!(tick.text(), r#"{"tick":true}"#);
    assert_eq!(
        tick.header("ce-source"),
        Some(format!("/zeroscale/triggers/{namespace}/tick").as_str())
    );

    // The replica that fired records the time on the Trigger (its own field of the status).
    let recorded = wait_for(
        Duration::from_secs(20),
        "status.lastScheduleTime on the Trigger",
        || async {
            let out = kubectl(&[
                "get",
                "triggers.zeroscale.dev",
                "tick",
                "-n",
                namespace,
                "-o",
                "jsonpath={.status.lastScheduleTime}",
            ])
            .await;
            let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
            (out.status.success() && !text.is_empty()).then_some(text)
        },
    )
    .await;
    assert!(
        recorded.ends_with(":00Z"),
        "a whole-minute fire time in RFC 3339, got {recorded}"
    );

    // Settle, then check nothing was produced twice: one leader, one delivery per change and fire.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let added = recorder.of_type("dev.zeroscale.kubernetes.added").await;
    assert_eq!(added.len(), 1, "only the labelled ConfigMap, once: {added:?}");
    let ticks = recorder.of_type("dev.zeroscale.schedule").await;
    let mut ids: Vec<_> = ticks.iter().filter_map(|t| t.header("ce-id")).collect();
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
