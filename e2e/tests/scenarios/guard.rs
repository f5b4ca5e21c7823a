//! The guard of the installed system (issue #12, points 3–5): the broker ingress wants a
//! ServiceAccount token for the audience `zeroscale-broker` whose owner may `create`
//! `brokers.zeroscale.dev` in the namespace (chart default `broker.auth.enabled: true`), answers 404
//! for a namespace without broker Triggers, and the autoscaler refuses signals without the token the
//! chart provisions.

use std::time::Duration;

use http::Method;
use zeroscale_e2e::{
    TestNamespace, apply_yaml, client, http_request, installed::SYSTEM_NAMESPACE, kubectl_ok, wait_for,
};

use crate::support::Scenario;

/// A producer ServiceAccount in `namespace` and a stranger without any grant.
fn accounts(namespace: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: producer, namespace: {namespace}}}\n---\n\
         apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: stranger, namespace: {namespace}}}\n"
    )
}

/// The Role and RoleBinding in `grant_in` that let `namespace`'s producer post to that namespace's
/// broker.
fn grant(namespace: &str, grant_in: &str) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n\
         metadata: {{name: broker-producer, namespace: {grant_in}}}\n\
         rules: [{{apiGroups: [zeroscale.dev], resources: [brokers], verbs: [create]}}]\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n\
         metadata: {{name: producer-broker, namespace: {grant_in}}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: broker-producer}}\n\
         subjects: [{{kind: ServiceAccount, name: producer, namespace: {namespace}}}]\n"
    )
}

async fn token(namespace: &str, account: &str, audience: &str) -> String {
    kubectl_ok(&[
        "-n",
        namespace,
        "create",
        "token",
        account,
        "--audience",
        audience,
        "--duration",
        "10m",
    ])
    .await
    .trim()
    .to_string()
}

/// POSTs one binary-mode event to `namespace`'s broker; the status and body.
async fn post(broker: &str, namespace: &str, token: Option<&str>) -> (u16, String) {
    let authorization = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![
        ("ce-specversion", "1.0"),
        ("ce-id", "guard-1"),
        ("ce-source", "/e2e/guard"),
        ("ce-type", "e2e.guard"),
        ("content-type", "application/json"),
    ];
    if let Some(value) = &authorization {
        headers.push(("authorization", value.as_str()));
    }
    let url = format!("{}/{namespace}", broker.trim_end_matches('/'));
    let response = http_request(Method::POST, &url, &headers, "{}", Duration::from_secs(10))
        .await
        .expect("the broker answers");
    (response.status, response.text())
}

/// Knative's `TestBrokerIngressAuthorization`-style check against the installed chart: 401 for a
/// token of another audience or none, 403 for a ServiceAccount without the RBAC verb, 202 for one
/// with it, and 404 for a namespace without broker Triggers (to a caller allowed there).
#[tokio::test]
async fn broker_ingress_authenticates_authorizes_and_hides_empty_namespaces() {
    let s = Scenario::new("guard-broker").await;
    let ns = s.namespace();
    let broker = s
        .installed
        .broker_url
        .clone()
        .expect("the install exposes the broker (ZEROSCALE_BROKER)");
    let empty = TestNamespace::new(&client().await, "guard-empty").await;
    apply_yaml(ns, &accounts(ns)).await;
    for grant_in in [ns, empty.name()] {
        apply_yaml(grant_in, &grant(ns, grant_in)).await;
    }
    apply_yaml(
        ns,
        "apiVersion: zeroscale.dev/v1alpha1\nkind: Trigger\nmetadata: {name: sink}\n\
         spec: {source: {broker: {}}, filters: [{exact: {type: e2e.none}}], subscriber: {function: sink}}\n",
    )
    .await;

    let good = token(ns, "producer", "zeroscale-broker").await;
    // Every replica learns the Trigger from its own watch: wait until the answer is 202.
    wait_for(
        Duration::from_secs(60),
        "the broker accepts the producer",
        || async { (post(&broker, ns, Some(&good)).await.0 == 202).then_some(()) },
    )
    .await;

    let wrong_audience = token(ns, "producer", "https://kubernetes.default.svc").await;
    let (status, body) = post(&broker, ns, Some(&wrong_audience)).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("request id: "), "{body}");
    assert_eq!(post(&broker, ns, None).await.0, 401);

    let stranger = token(ns, "stranger", "zeroscale-broker").await;
    let (status, body) = post(&broker, ns, Some(&stranger)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("stranger"), "{body}");

    let (status, body) = post(&broker, empty.name(), Some(&good)).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("has no broker"), "{body}");
    // Without a token the empty namespace is not revealed.
    assert_eq!(post(&broker, empty.name(), None).await.0, 401);
}

/// The autoscaler refuses a signal without the chart's token (the activators send it: functions
/// still scale from zero in the other scenarios).
#[tokio::test]
async fn the_autoscaler_refuses_unsigned_signals() {
    let _s = Scenario::new("guard-signals").await;
    let ip = kubectl_ok(&[
        "-n",
        SYSTEM_NAMESPACE,
        "get",
        "service",
        "zeroscale-autoscaler",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ])
    .await;
    let port = kubectl_ok(&[
        "-n",
        SYSTEM_NAMESPACE,
        "get",
        "service",
        "zeroscale-autoscaler",
        "-o",
        "jsonpath={.spec.ports[?(@.name==\"events\")].port}",
    ])
    .await;
    let url = format!("http://{}:{}/", ip.trim(), port.trim());
    let body = r#"{"function":{"namespace":"default","name":"nobody"},"activator":"e2e","queued":1}"#;
    let headers = [
        ("ce-specversion", "1.0"),
        ("ce-id", "e2e-unsigned"),
        ("ce-source", "/zeroscale/activator/e2e"),
        ("ce-type", "dev.zeroscale.demand"),
        ("ce-subject", "default/nobody"),
        ("ce-dataschema", "https://zeroscale.dev/schemas/signals/v1"),
        ("content-type", "application/json"),
    ];
    let unsigned = http_request(Method::POST, &url, &headers, body, Duration::from_secs(10))
        .await
        .expect("the autoscaler answers");
    assert_eq!(unsigned.status, 401, "{}", unsigned.text());
    let mut forged = headers.to_vec();
    forged.push(("authorization", "Bearer not-the-token"));
    let forged = http_request(Method::POST, &url, &forged, body, Duration::from_secs(10))
        .await
        .expect("the autoscaler answers");
    assert_eq!(forged.status, 401, "{}", forged.text());
}
