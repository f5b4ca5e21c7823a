//! Each branch of the Function reconciler against a scripted API server ([`crate::fixtures`]): the
//! requests it makes, in order, and what it writes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::events::Reporter;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};

use super::*;
use crate::build::Children;
use crate::build::tests::{function, validated};
use crate::caches::CacheWriters;
use crate::fixtures::{ApiServer, Step, condition, events, pair, requests_to};

const PUBLIC: &str = "/api/v1/namespaces/ns/services/hello";
/// The Deployment of a Function from before revisions (what an invalid spec's status reads).
const LEGACY_DEPLOYMENT: &str = "/apis/apps/v1/namespaces/ns/deployments/hello";
const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/ns/deployments";
const STATUS: &str = "/apis/zeroscale.dev/v1alpha1/namespaces/ns/functions/hello/status";
const INITIAL_SCALE: &str = "zeroscale-operator-initial-scale";

/// The revision `function("hello")` makes.
fn revision() -> String {
    validated(&function("hello")).revision
}

/// The current revision's private Service.
fn private_path() -> String {
    format!("/api/v1/namespaces/ns/services/{}", revision())
}

/// The current revision's Deployment.
fn deployment_path() -> String {
    format!("{DEPLOYMENTS}/{}", revision())
}

/// A context whose caches hold nothing.
fn context(client: Client) -> Arc<Context> {
    context_with(client, Caches::holding(vec![], vec![], vec![]).0)
}

/// A context reading `caches`.
fn context_with(client: Client, caches: Caches) -> Arc<Context> {
    let metrics = Metrics::register(&mut Registry::default());
    let reporter = Reporter {
        controller: "zeroscale-operator".into(),
        instance: None,
    };
    let recorder = Recorder::new(client.clone(), reporter);
    Arc::new(Context::new(
        client,
        BuildSettings::default(),
        "example.com".into(),
        recorder,
        metrics,
        caches,
    ))
}

fn errors(ctx: &Context, reason: &'static str) -> u64 {
    ctx.metrics
        .errors
        .get_or_create(&ErrorLabels { kind: KIND, reason })
        .get()
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("serializable")
}

/// The children of `function("hello")` as the API server would store them.
fn children(f: &Function) -> Children {
    build(&validated(f), &BuildSettings::default())
}

/// The Deployment as stored after the operator handed `spec.replicas` over: one replica, ready.
fn live_deployment(f: &Function) -> Value {
    let mut d = to_json(&children(f).new_deployment);
    d["metadata"]["generation"] = json!(1);
    d["status"] = json!({
        "observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
        "readyReplicas": 1, "availableReplicas": 1,
    });
    d
}

fn from_json<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("a Kubernetes object")
}

/// Caches holding `f`'s two Services, `deployments` and `pods`, as stored.
fn existing(f: &Function, deployments: Vec<Value>, pods: Vec<Value>) -> (Caches, CacheWriters) {
    let children = children(f);
    Caches::holding(
        pods.into_iter().map(from_json).collect(),
        deployments.into_iter().map(from_json).collect(),
        vec![children.private_service, children.public_service],
    )
}

/// The status apply, answered with `f` carrying the applied status.
fn apply_status(f: &Function) -> Step {
    let stored = to_json(f);
    Step::apply(STATUS, FIELD_MANAGER).answer_with(move |body| {
        let mut stored = stored;
        stored["status"] = body["status"].clone();
        (http::StatusCode::OK, stored)
    })
}

/// Applying the Services and the Deployment that already exist (and are cached): the Deployment is
/// stored as `deployment`.
fn apply_existing(f: &Function, deployment: Value) -> Vec<Step> {
    let revision = validated(f).revision;
    let private = format!("/api/v1/namespaces/ns/services/{revision}");
    let deployment_path = format!("{DEPLOYMENTS}/{revision}");
    vec![
        Step::apply(private, FIELD_MANAGER).echo(),
        Step::apply(PUBLIC, FIELD_MANAGER).echo(),
        Step::apply(deployment_path, FIELD_MANAGER).answer(deployment),
    ]
}

/// Creating the Deployment: apply with replicas, hand `spec.replicas` over, apply without.
fn create_deployment(f: &Function) -> Vec<Step> {
    let created = to_json(&children(f).new_deployment);
    vec![
        Step::get(deployment_path()).not_found(),
        Step::apply(deployment_path(), FIELD_MANAGER).echo(),
        Step::apply(deployment_path(), INITIAL_SCALE).answer(created),
        Step::apply(deployment_path(), FIELD_MANAGER).echo(),
    ]
}

#[tokio::test]
async fn a_new_function_gets_its_services_and_deployment_then_a_status() {
    let f = function("hello");
    let mut script = vec![
        Step::get(private_path()).not_found(),
        Step::apply(private_path(), FIELD_MANAGER).echo(),
        Step::get(PUBLIC).not_found(),
        Step::apply(PUBLIC, FIELD_MANAGER).echo(),
    ];
    script.extend(create_deployment(&f));
    script.extend([Step::event("ns"), apply_status(&f), Step::event("ns")]);
    let (client, server) = ApiServer::new(script);
    let ctx = context(client);
    let action = reconcile(Arc::new(f), ctx.clone()).await;
    let seen = server.finish();

    assert_eq!(action.expect("reconciled"), Action::requeue(RESYNC));
    let services = &seen[1].body;
    assert_eq!(services["spec"]["clusterIP"], "None");
    assert_eq!(seen[3].body["spec"]["type"], "ExternalName");
    let deployment = requests_to(&seen, &deployment_path());
    assert_eq!(
        deployment[1].body["spec"]["replicas"], 1,
        "created with the initial scale"
    );
    assert!(deployment[2].query.contains(INITIAL_SCALE));
    assert_eq!(deployment[2].body["spec"]["replicas"], 1);
    assert!(
        deployment[3].body["spec"].get("replicas").is_none(),
        "the last apply leaves spec.replicas to the autoscaler"
    );
    let created = seen
        .iter()
        .find(|s| s.body["reason"] == "Created")
        .expect("event");
    assert_eq!(
        created.body["note"],
        format!("created Deployment {} with 1 replicas", revision())
    );
    let status = requests_to(&seen, STATUS)[0];
    assert_eq!(status.body["status"]["url"], "http://hello.ns.example.com");
    assert_eq!(condition(status, "RoutesReady"), pair("True", "RoutesCreated"));
    assert_eq!(condition(status, "Ready"), pair("False", "Progressing"));
    assert_eq!(
        events(&seen),
        [pair("Normal", "Created"), pair("Normal", "Progressing")]
    );
    assert_eq!(errors(&ctx, "apply"), 0);
}

#[tokio::test]
async fn a_settled_function_costs_no_request_until_a_child_changes() {
    let f = function("hello");
    let mut script = apply_existing(&f, live_deployment(&f));
    script.extend([apply_status(&f), Step::event("ns")]);
    let (client, server) = ApiServer::new(script);
    let (caches, mut writers) = existing(&f, vec![live_deployment(&f)], vec![]);
    let ctx = context_with(client, caches);
    let first = reconcile(Arc::new(f.clone()), ctx.clone()).await;
    let seen = server.finish();
    assert_eq!(first.expect("reconciled"), Action::requeue(RESYNC));
    let status_apply = requests_to(&seen, STATUS)[0];
    assert_eq!(condition(status_apply, "Ready"), pair("True", "Ready"));
    assert_eq!(events(&seen), [pair("Normal", "Ready")]);

    // The same Function with the status it was given, over the same children: no request at all.
    let mut again = f.clone();
    again.status = Some(from_json(status_apply.body["status"].clone()));
    let (client, server) = ApiServer::new(vec![]);
    let ctx = Arc::new(Context {
        client,
        ..Arc::into_inner(ctx).expect("the only reference")
    });
    let second = reconcile(Arc::new(again.clone()), ctx.clone()).await;
    assert_eq!(second.expect("reconciled"), Action::requeue(RESYNC));
    let seen = server.finish();
    assert!(seen.is_empty(), "{seen:#?}");

    // Someone labels the private Service: only that Service is applied again (its label stays; the
    // apply puts back what the operator owns).
    let mut private = to_json(&children(&f).private_service);
    private["metadata"]["labels"]["team"] = json!("a");
    writers
        .services
        .apply_watcher_event(&kube::runtime::watcher::Event::Apply(from_json(private)));
    let (client, server) = ApiServer::new(vec![Step::apply(private_path(), FIELD_MANAGER).echo()]);
    let ctx = Arc::new(Context {
        client,
        ..Arc::into_inner(ctx).expect("the only reference")
    });
    let third = reconcile(Arc::new(again), ctx).await;
    assert_eq!(third.expect("reconciled"), Action::requeue(RESYNC));
    let seen = server.finish();
    assert_eq!(seen.len(), 1, "{seen:#?}");
}

#[tokio::test]
async fn an_invalid_spec_applies_nothing_and_reports_why() {
    let mut f = function("hello");
    f.spec.image = " ".into();
    let script = vec![apply_status(&f), Step::event("ns")];
    let (client, server) = ApiServer::new(script);
    let ctx = context(client);
    let action = reconcile(Arc::new(f), ctx.clone()).await;
    let seen = server.finish();

    assert_eq!(action.expect("reported"), Action::await_change());
    assert!(
        seen.iter()
            .all(|s| s.method != http::Method::PATCH || s.path == STATUS)
    );
    let status = requests_to(&seen, STATUS)[0];
    assert_eq!(condition(status, "Ready"), pair("False", "InvalidSpec"));
    let ready = status.body["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .expect("ready");
    assert_eq!(ready["message"], "spec.image must not be empty");
    assert_eq!(events(&seen), [pair("Warning", "InvalidSpec")]);
    assert_eq!(errors(&ctx, "invalid_spec"), 1);
}

#[tokio::test]
async fn pods_killed_for_memory_make_the_function_fail_with_oom_killed() {
    let f = function("hello");
    let mut deployment = live_deployment(&f);
    deployment["status"]["readyReplicas"] = json!(0);
    deployment["status"]["availableReplicas"] = json!(0);
    let pod = json!({
        "metadata": { "name": "hello-1", "namespace": "ns",
                      "labels": { "zeroscale.dev/function": "hello", "zeroscale.dev/revision": revision() } },
        "spec": { "containers": [{ "name": "function", "resources": { "limits": { "memory": "64Mi" } } }] },
        "status": { "containerStatuses": [{
            "name": "function", "image": "echo", "imageID": "", "ready": false, "restartCount": 3,
            "state": { "waiting": { "reason": "CrashLoopBackOff" } },
            "lastState": { "terminated": { "exitCode": 137, "reason": "OOMKilled", "finishedAt": "2026-01-01T00:00:00Z" } }
        }]}
    });
    let mut script = apply_existing(&f, deployment.clone());
    script.extend([apply_status(&f), Step::event("ns"), Step::event("ns")]);
    let (client, server) = ApiServer::new(script);
    let (caches, _) = existing(&f, vec![deployment], vec![pod]);
    let action = reconcile(Arc::new(f), context_with(client, caches)).await;
    let seen = server.finish();

    assert_eq!(action.expect("reconciled"), Action::requeue(RESYNC));
    let status = requests_to(&seen, STATUS)[0];
    assert_eq!(condition(status, "Ready"), pair("False", "OOMKilled"));
    assert_eq!(condition(status, "ContainerHealthy"), pair("False", "OOMKilled"));
    assert_eq!(
        events(&seen),
        [pair("Warning", "OOMKilled"), pair("Warning", "OOMKilled")],
        "one for Ready, one for ContainerHealthy"
    );
}

#[tokio::test]
async fn a_function_being_deleted_is_left_to_the_garbage_collector() {
    let mut f = function("hello");
    f.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
    let (client, server) = ApiServer::new(vec![]);
    let action = reconcile(Arc::new(f), context(client)).await;
    assert!(server.finish().is_empty(), "no request");
    assert_eq!(action.expect("reconciled"), Action::await_change());
}

#[tokio::test]
async fn a_service_the_function_does_not_control_is_not_taken_over() {
    let f = function("hello");
    let mut foreign = to_json(&children(&f).private_service);
    foreign["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("ownerReferences");
    let mut script = vec![Step::get(private_path()).answer(foreign)];
    script.extend(create_deployment(&f));
    script.extend([Step::event("ns"), apply_status(&f), Step::event("ns")]);
    let (client, server) = ApiServer::new(script);
    let ctx = context(client);
    let result = reconcile(Arc::new(f), ctx.clone()).await;
    let seen = server.finish();

    assert!(
        matches!(
            result,
            Err(FunctionError::NotOwned {
                kind: crate::error::Child::Service,
                ..
            })
        ),
        "{result:?}"
    );
    assert!(
        requests_to(&seen, PUBLIC).is_empty(),
        "stops at the first Service"
    );
    let status = requests_to(&seen, STATUS)[0];
    assert_eq!(condition(status, "RoutesReady"), pair("False", "NotOwned"));
    assert_eq!(condition(status, "Ready"), pair("False", "NotOwned"));
    assert_eq!(
        events(&seen),
        [pair("Normal", "Created"), pair("Warning", "NotOwned")]
    );
    assert_eq!(errors(&ctx, "not_owned"), 1);
}

#[tokio::test]
async fn a_deployment_the_api_server_refuses_is_reported_as_apply_failed() {
    let f = function("hello");
    let script = vec![
        Step::apply(private_path(), FIELD_MANAGER).echo(),
        Step::apply(PUBLIC, FIELD_MANAGER).echo(),
        Step::get(deployment_path()).not_found(),
        Step::apply(deployment_path(), FIELD_MANAGER).answer_with(|_| {
            (
                http::StatusCode::UNPROCESSABLE_ENTITY,
                crate::fixtures::status(422, "Invalid", "spec.template: invalid"),
            )
        }),
        apply_status(&f),
        Step::event("ns"),
    ];
    let (client, server) = ApiServer::new(script);
    let ctx = context_with(client, existing(&f, vec![], vec![]).0);
    let result = reconcile(Arc::new(f), ctx.clone()).await;
    let seen = server.finish();

    assert!(matches!(result, Err(FunctionError::Apply { .. })), "{result:?}");
    let status = requests_to(&seen, STATUS)[0];
    assert_eq!(condition(status, "DeploymentReady"), pair("False", "ApplyFailed"));
    assert_eq!(condition(status, "RoutesReady"), pair("True", "RoutesCreated"));
    assert_eq!(condition(status, "Ready"), pair("False", "ApplyFailed"));
    assert_eq!(events(&seen), [pair("Warning", "ApplyFailed")]);
    assert_eq!(errors(&ctx, "apply"), 1);
}

#[path = "reconcile_revision_tests.rs"]
mod revisions;
