//! End-to-end tests of the operator's Trigger controller and platform events (issue #7) on the local
//! cluster. Each test has its own namespace and its own operator process (`--watch-namespace`, Lease in
//! that namespace).
//!
//! - Trigger status: a Trigger to an existing Function is `Ready` with its `subscriberUri`; to a missing
//!   Function it is `FunctionNotFound` until the Function is created; a cron value that passes admission
//!   but not the parser is `InvalidSchedule`; a `kubernetes` source on Secrets is `SourceNotAllowed`; an
//!   unknown kind is `KindNotFound`; a `cesql` filter is admitted, and one with a syntax error is
//!   `InvalidFilter` with the position.
//! - Platform events: with `--events-sink` pointing at a tiny HTTP server of the test, a Function that
//!   becomes ready produces a `dev.zeroscale.function.ready` CloudEvent POSTed to `/<namespace>`.

use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use zeroscale_crds::Function;
use zeroscale_crds::trigger::Trigger;
use zeroscale_e2e::{
    ECHO_IMAGE, EventSink, Operator, TestNamespace, function_manifest, install_eventing_crds, wait_for,
};

const SETTLE: Duration = Duration::from_secs(60);

/// An operator reconciling only `namespace`, sending platform events to `events_sink` when given.
async fn operator(namespace: &str, events_sink: Option<&str>) -> Operator {
    operator_with(namespace, events_sink, &[]).await
}

async fn operator_with(namespace: &str, events_sink: Option<&str>, more: &[&str]) -> Operator {
    let mut extra = match events_sink {
        Some(sink) => vec!["--events-sink", sink],
        None => Vec::new(),
    };
    extra.extend_from_slice(more);
    Operator::start_with(
        namespace,
        &extra,
        &[("RUST_LOG", "info,zeroscale_operator=debug")],
    )
    .await
}

async fn create_function(client: &Client, ns: &str, name: &str, spec: Value) {
    let api: Api<Function> = Api::namespaced(client.clone(), ns);
    api.create(&PostParams::default(), &function_manifest(name, spec))
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
    install_eventing_crds().await;
    let ns = TestNamespace::new(&client, "trig-status").await;
    let ns = ns.name();
    let operator = operator(ns, None).await;
    // No pods are needed: a Trigger only needs its Function to exist.
    let at_zero = json!({"image": ECHO_IMAGE, "scale": {"min": 0, "initial": 0}});
    create_function(&client, ns, "hello", at_zero.clone()).await;
    let api: Api<Trigger> = Api::namespaced(client.clone(), ns);

    create_trigger(
        &api,
        "to-hello",
        json!({"source": {"broker": {}}, "subscriber": {"function": "hello"},
               "delivery": {"deadLetterSink": {"uri": "http://dlq.sinks.svc/in"}}}),
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
        Some("http://dlq.sinks.svc/in")
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
    let reconciles = operator
        .counter("zeroscale_operator_reconciles_total{kind=\"Trigger\"}")
        .await;
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

#[tokio::test]
async fn a_function_that_becomes_ready_sends_a_platform_event() {
    let client = zeroscale_e2e::client().await;
    install_eventing_crds().await;
    let ns = TestNamespace::new(&client, "trig-platform").await;
    let ns = ns.name();
    // A tiny events sink: answers 202 to every request and keeps it.
    let received = EventSink::start(202).await;
    let sink = received.url();
    let operator = operator(ns, Some(&sink)).await;
    create_function(&client, ns, "hello", json!({"image": ECHO_IMAGE})).await;

    let what = format!("a dev.zeroscale.function.ready event for {ns}/hello at {sink}");
    let event = wait_for(Duration::from_secs(120), &what, || async {
        received
            .of_type("dev.zeroscale.function.ready")
            .await
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(event.path, format!("/{ns}"));
    assert_eq!(event.header("ce-source"), Some("/zeroscale/operator"));
    assert_eq!(event.header("ce-subject"), Some(format!("{ns}/hello").as_str()));
    assert_eq!(event.header("ce-specversion"), Some("1.0"));
    assert_eq!(event.json()["function"]["name"], "hello");
    assert_eq!(event.json()["reason"], "Ready");
    // One ready transition, one event: later reconciles of a settled Function send nothing.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let ready_events = received.of_type("dev.zeroscale.function.ready").await.len();
    assert_eq!(ready_events, 1);
    let sent = operator
        .counter("zeroscale_operator_platform_events_total{type=\"dev.zeroscale.function.ready\",outcome=\"sent\"}")
        .await;
    assert_eq!(sent, 1);
}

/// The outbound guard: a Trigger whose `uri` names a host outside the allow-list (in-cluster Services
/// plus `--allowed-hosts`) is `Ready=False` with reason `HostNotAllowed` naming the host, and the
/// change is an Event on the Trigger; a listed host is fine.
#[tokio::test]
async fn a_uri_outside_the_allow_list_is_not_ready_and_names_the_host() {
    let client = zeroscale_e2e::client().await;
    install_eventing_crds().await;
    let ns = TestNamespace::new(&client, "trig-guard").await;
    let ns = ns.name();
    let _operator = operator_with(ns, None, &["--allowed-hosts", "hooks.example.com,*.example.org"]).await;
    let api: Api<Trigger> = Api::namespaced(client.clone(), ns);

    create_trigger(
        &api,
        "metadata",
        json!({"source": {"broker": {}}, "subscriber": {"uri": "http://169.254.169.254/latest/meta-data"}}),
    )
    .await;
    let t = wait_trigger(&api, "metadata", "False", "HostNotAllowed").await;
    let message = &ready(&t).expect("ready").message;
    assert!(message.contains("\"169.254.169.254\""), "{message}");
    assert_eq!(cond(&t, "SubscriberResolved").reason, "HostNotAllowed");

    create_trigger(
        &api,
        "sink",
        json!({"source": {"broker": {}}, "subscriber": {"uri": "https://hooks.example.com/in"},
               "delivery": {"deadLetterSink": {"uri": "http://dlq.attacker.net/"}}}),
    )
    .await;
    let t = wait_trigger(&api, "sink", "False", "HostNotAllowed").await;
    assert!(ready(&t).expect("ready").message.contains("dlq.attacker.net"));

    create_trigger(
        &api,
        "allowed",
        json!({"source": {"broker": {}}, "subscriber": {"uri": "https://a.b.example.org/in"},
               "delivery": {"deadLetterSink": {"uri": "http://dlq.sinks.svc.cluster.local/"}}}),
    )
    .await;
    wait_trigger(&api, "allowed", "True", "Ready").await;

    let events = wait_for(SETTLE, "an Event on the refused Trigger", || async {
        let out = zeroscale_e2e::kubectl_ok(&[
            "-n",
            ns,
            "get",
            "events",
            "--field-selector",
            "involvedObject.kind=Trigger,involvedObject.name=metadata",
            "-o",
            "jsonpath={.items[*].message}",
        ])
        .await;
        (!out.trim().is_empty()).then_some(out)
    })
    .await;
    assert!(events.contains("169.254.169.254"), "{events}");
}

#[tokio::test]
async fn a_cesql_filter_is_admitted_and_checked_when_reconciled() {
    let client = zeroscale_e2e::client().await;
    install_eventing_crds().await;
    let ns = TestNamespace::new(&client, "trig-cesql").await;
    let ns = ns.name();
    let _operator = operator(ns, None).await;
    let at_zero = json!({"image": ECHO_IMAGE, "scale": {"min": 0, "initial": 0}});
    create_function(&client, ns, "hello", at_zero).await;
    let api: Api<Trigger> = Api::namespaced(client.clone(), ns);

    // Admission accepts `cesql` at the top level and nested; the operator parses it.
    create_trigger(
        &api,
        "valid",
        json!({"source": {"broker": {}}, "subscriber": {"function": "hello"},
               "filters": [{"cesql": "type LIKE 'e2e.%' AND INT(amount) > 10"},
                           {"not": {"cesql": "EXISTS environment AND environment = 'test'"}}]}),
    )
    .await;
    wait_trigger(&api, "valid", "True", "Ready").await;

    create_trigger(
        &api,
        "broken",
        json!({"source": {"broker": {}}, "subscriber": {"function": "hello"},
               "filters": [{"cesql": "type LIKE"}]}),
    )
    .await;
    let t = wait_trigger(&api, "broken", "False", "InvalidFilter").await;
    assert_eq!(
        ready(&t).expect("ready").message,
        "spec.filters[0]: cesql: syntax error: unexpected end of expression: expected a string literal (the pattern of LIKE) at 1:10"
    );
}
