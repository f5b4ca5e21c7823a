//! Each branch of the Trigger reconciler against a scripted API server ([`crate::fixtures`]): the
//! look-ups it makes, the status it applies and the Events it publishes.

use kube::runtime::events::Reporter;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};

use super::*;
use crate::fixtures::{ApiServer, Step, condition, events, pair, requests_to};

const STATUS: &str = "/apis/zeroscale.dev/v1alpha1/namespaces/shop/triggers/t/status";
const ORDERS: &str = "/apis/zeroscale.dev/v1alpha1/namespaces/shop/functions/orders";

fn context(client: Client) -> Arc<TriggerContext> {
    let metrics = Metrics::register(&mut Registry::default());
    let reporter = Reporter {
        controller: "zeroscale-operator".into(),
        instance: None,
    };
    let recorder = Recorder::new(client.clone(), reporter);
    Arc::new(TriggerContext::new(client, recorder, metrics))
}

fn trigger(spec: Value) -> Trigger {
    serde_json::from_value(json!({
        "apiVersion": "zeroscale.dev/v1alpha1", "kind": "Trigger",
        "metadata": {"namespace": "shop", "name": "t", "uid": "uid-t", "generation": 1},
        "spec": spec,
    }))
    .expect("trigger")
}

fn to_orders() -> Trigger {
    trigger(json!({"source": {"broker": {}}, "subscriber": {"function": "orders"}}))
}

/// The status apply, answered with `t` carrying the applied status.
fn apply_status(t: &Trigger) -> Step {
    let stored = serde_json::to_value(t).expect("json");
    Step::apply(STATUS, FIELD_MANAGER).answer_with(move |body| {
        let mut stored = stored;
        stored["status"] = body["status"].clone();
        (http::StatusCode::OK, stored)
    })
}

fn orders() -> Value {
    json!({
        "apiVersion": "zeroscale.dev/v1alpha1", "kind": "Function",
        "metadata": {"namespace": "shop", "name": "orders"}, "spec": {"image": "x"},
    })
}

#[tokio::test]
async fn a_missing_subscriber_makes_the_trigger_not_ready_until_it_exists() {
    let t = to_orders();
    let script = vec![
        Step::get(ORDERS).not_found(),
        apply_status(&t),
        Step::event("shop"),
    ];
    let (client, server) = ApiServer::new(script);
    let ctx = context(client);
    let action = reconcile(Arc::new(t.clone()), ctx.clone()).await;
    let seen = server.finish();

    assert_eq!(action.expect("reconciled"), Action::requeue(RESYNC));
    let status = requests_to(&seen, STATUS)[0];
    assert_eq!(condition(status, "Ready"), pair("False", "FunctionNotFound"));
    assert_eq!(
        condition(status, "SubscriberResolved"),
        pair("False", "FunctionNotFound")
    );
    assert_eq!(events(&seen), [pair("Warning", "FunctionNotFound")]);

    // The Function is created: the watch reconciles the Trigger again, which turns ready.
    let mut waiting = t.clone();
    waiting.status = Some(serde_json::from_value(status.body["status"].clone()).expect("status"));
    let script = vec![
        Step::get(ORDERS).answer(orders()),
        apply_status(&t),
        Step::event("shop"),
    ];
    let (client, server) = ApiServer::new(script);
    let action = reconcile(Arc::new(waiting), context(client)).await;
    let seen = server.finish();
    assert_eq!(action.expect("reconciled"), Action::requeue(RESYNC));
    let status = requests_to(&seen, STATUS)[0];
    assert_eq!(condition(status, "Ready"), pair("True", "Ready"));
    assert_eq!(
        status.body["status"]["subscriberUri"],
        "http://orders.shop.svc.cluster.local"
    );
    assert_eq!(events(&seen), [pair("Normal", "Ready")]);
}

#[tokio::test]
async fn a_ready_trigger_that_did_not_change_writes_nothing() {
    let t = to_orders();
    let (client, server) = ApiServer::new(vec![
        Step::get(ORDERS).answer(orders()),
        apply_status(&t),
        Step::event("shop"),
    ]);
    let ctx = context(client);
    reconcile(Arc::new(t.clone()), ctx.clone()).await.expect("first");
    let seen = server.finish();
    let mut ready = t.clone();
    ready.status =
        Some(serde_json::from_value(requests_to(&seen, STATUS)[0].body["status"].clone()).expect("status"));

    let (client, server) = ApiServer::new(vec![Step::get(ORDERS).answer(orders())]);
    let action = reconcile(Arc::new(ready), context(client)).await;
    let seen = server.finish();
    assert_eq!(action.expect("reconciled"), Action::requeue(RESYNC));
    assert_eq!(seen.len(), 1, "the look-up only: {seen:#?}");
}

#[tokio::test]
async fn a_subscriber_uri_outside_the_allow_list_is_refused_without_a_look_up() {
    let t = trigger(json!({"source": {"broker": {}}, "subscriber": {"uri": "https://example.com/hook"}}));
    let (client, server) = ApiServer::new(vec![apply_status(&t), Step::event("shop")]);
    let ctx = context(client);
    let action = reconcile(Arc::new(t), ctx).await;
    let seen = server.finish();

    assert_eq!(action.expect("reconciled"), Action::requeue(RESYNC));
    let status = requests_to(&seen, STATUS)[0];
    assert_eq!(condition(status, "Ready"), pair("False", "HostNotAllowed"));
    assert_eq!(
        condition(status, "SubscriberResolved"),
        pair("False", "HostNotAllowed")
    );
    assert_eq!(events(&seen), [pair("Warning", "HostNotAllowed")]);
}

#[tokio::test]
async fn a_kind_the_api_server_does_not_serve_is_looked_up_again_soon() {
    let t = trigger(json!({
        "source": {"kubernetes": {"apiVersion": "example.com/v1", "kind": "Widget"}},
        "subscriber": {"uri": "http://sink.shop.svc.cluster.local"},
    }));
    let script = vec![
        Step::get("/apis/example.com/v1").not_found(),
        apply_status(&t),
        Step::event("shop"),
    ];
    let (client, server) = ApiServer::new(script);
    let action = reconcile(Arc::new(t), context(client)).await;
    let seen = server.finish();

    assert_eq!(action.expect("reconciled"), Action::requeue(KIND_RECHECK));
    let status = requests_to(&seen, STATUS)[0];
    assert_eq!(condition(status, "SourceReady"), pair("False", "KindNotFound"));
    assert_eq!(condition(status, "Ready"), pair("False", "KindNotFound"));
    assert_eq!(events(&seen), [pair("Warning", "KindNotFound")]);
}

#[tokio::test]
async fn a_failed_look_up_is_an_error_that_writes_nothing() {
    let t = to_orders();
    let (client, server) = ApiServer::new(vec![Step::get(ORDERS).answer_with(|_| {
        (
            http::StatusCode::SERVICE_UNAVAILABLE,
            crate::fixtures::status(503, "ServiceUnavailable", "etcd is down"),
        )
    })]);
    let ctx = context(client);
    let result = reconcile(Arc::new(t), ctx.clone()).await;
    assert_eq!(server.finish().len(), 1);
    let error = result.expect_err("retried");
    assert!(matches!(error, TriggerError::Read { .. }), "{error:?}");
    assert_eq!(error.condition_reason(), None);
    let labels = ErrorLabels {
        kind: KIND,
        reason: "read",
    };
    assert_eq!(ctx.metrics.errors.get_or_create(&labels).get(), 1);
}

#[tokio::test]
async fn a_trigger_being_deleted_is_left_alone() {
    let mut t = to_orders();
    t.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        jiff::Timestamp::UNIX_EPOCH,
    ));
    let (client, server) = ApiServer::new(vec![]);
    let action = reconcile(Arc::new(t), context(client)).await;
    assert!(server.finish().is_empty());
    assert_eq!(action.expect("reconciled"), Action::await_change());
}

#[tokio::test]
async fn a_cesql_filter_that_does_not_parse_makes_the_trigger_not_ready_with_its_position() {
    let spec = |cesql: &str| {
        json!({
            "source": {"broker": {}}, "subscriber": {"function": "orders"},
            "filters": [{"exact": {"type": "order.created"}}, {"any": [{"cesql": cesql}]}],
        })
    };
    let t = trigger(spec("region = 'eu' AND\n  amount >"));
    let script = vec![
        Step::get(ORDERS).answer(orders()),
        apply_status(&t),
        Step::event("shop"),
    ];
    let (client, server) = ApiServer::new(script);
    let action = reconcile(Arc::new(t), context(client)).await;
    let seen = server.finish();

    assert_eq!(action.expect("reconciled"), Action::requeue(RESYNC));
    let status = requests_to(&seen, STATUS)[0];
    assert_eq!(condition(status, "Ready"), pair("False", "InvalidFilter"));
    let ready = status.body["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .find(|c| c["type"] == "Ready")
        .expect("Ready");
    assert_eq!(
        ready["message"],
        "spec.filters[1]: cesql: syntax error: unexpected end of expression: expected a literal, an attribute name, a function call or '(' at 2:11"
    );
    assert_eq!(events(&seen), [pair("Warning", "InvalidFilter")]);

    // A type error is refused the same way; a valid expression makes the Trigger ready.
    let t = trigger(spec("LENGTH(type) + 1"));
    let (client, server) = ApiServer::new(vec![
        Step::get(ORDERS).answer(orders()),
        apply_status(&t),
        Step::event("shop"),
    ]);
    reconcile(Arc::new(t), context(client)).await.expect("reconciled");
    let seen = server.finish();
    let status = requests_to(&seen, STATUS)[0];
    assert_eq!(condition(status, "Ready"), pair("False", "InvalidFilter"));
    let t = trigger(spec("region = 'eu' AND amount > 100"));
    let (client, server) = ApiServer::new(vec![
        Step::get(ORDERS).answer(orders()),
        apply_status(&t),
        Step::event("shop"),
    ]);
    reconcile(Arc::new(t), context(client)).await.expect("reconciled");
    let seen = server.finish();
    assert_eq!(
        condition(requests_to(&seen, STATUS)[0], "Ready"),
        pair("True", "Ready")
    );
}
