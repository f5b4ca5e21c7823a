use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde_json::json;

use super::*;
use crate::test_objects::function;

fn time(second: i64) -> Time {
    Time(jiff::Timestamp::from_second(second).expect("valid time"))
}

/// A Deployment at `generation` whose controller saw `observed`, with `replicas` wanted.
fn deployment(replicas: i32, ready: i32, updated: i32, generation: i64, observed: i64) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            generation: Some(generation),
            ..ObjectMeta::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            ..DeploymentSpec::default()
        }),
        status: Some(DeploymentStatus {
            observed_generation: Some(observed),
            replicas: Some(updated.max(ready)),
            updated_replicas: Some(updated),
            ready_replicas: Some(ready),
            available_replicas: Some(ready),
            ..DeploymentStatus::default()
        }),
    }
}

/// The status computed from a Deployment alone (no pods, routes applied).
fn observe(f: &Function, d: &Deployment, second: i64) -> FunctionStatus {
    compute(
        f,
        "ns",
        &Observed {
            deployment: Some(d),
            ..Observed::default()
        },
        "e",
        &time(second),
    )
}

fn condition<'a>(status: &'a FunctionStatus, type_: &str) -> (&'a str, &'a str) {
    let c = status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .expect("condition present");
    (c.status.as_str(), c.reason.as_str())
}

fn crash_pod() -> Pod {
    serde_json::from_value(json!({
        "metadata": { "name": "hello-1" },
        "status": { "containerStatuses": [{
            "name": "function", "image": "x", "imageID": "", "ready": false, "restartCount": 4,
            "state": { "waiting": { "reason": "CrashLoopBackOff" } },
            "lastState": { "terminated": { "exitCode": 1 } }
        }]}
    }))
    .expect("pod")
}

#[test]
fn urls_counts_and_summary() {
    let f = function("hello");
    let d = deployment(2, 1, 2, 3, 3);
    let s = compute(
        &f,
        "ns",
        &Observed {
            deployment: Some(&d),
            ..Observed::default()
        },
        "example.com",
        &time(1),
    );
    assert_eq!(s.url.as_deref(), Some("http://hello.ns.example.com"));
    assert_eq!(s.address.as_deref(), Some("http://hello.ns.svc"));
    assert_eq!((s.replicas, s.ready_replicas, s.desired_replicas), (2, 1, 2));
    assert_eq!(s.replicas_summary.as_deref(), Some("1/2"));
    assert_eq!(s.observed_generation, Some(1));
    let types: Vec<_> = s.conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(
        types,
        [
            "Ready",
            "DeploymentReady",
            "RoutesReady",
            "Active",
            "ContainerHealthy"
        ]
    );
}

#[test]
fn ready_when_a_pod_is_ready_and_routes_exist() {
    let f = function("hello");
    let d = deployment(1, 1, 1, 1, 1);
    let s = compute(
        &f,
        "ns",
        &Observed {
            deployment: Some(&d),
            ..Observed::default()
        },
        "example.com",
        &time(1),
    );
    assert_eq!(condition(&s, "Ready"), ("True", "Ready"));
    assert_eq!(condition(&s, "Active"), ("True", "HasReadyPods"));
}

#[test]
fn first_start_is_progressing_and_a_crash_is_reported() {
    let f = function("hello");
    let d = deployment(1, 0, 1, 1, 1);
    let s = compute(
        &f,
        "ns",
        &Observed {
            deployment: Some(&d),
            ..Observed::default()
        },
        "example.com",
        &time(1),
    );
    assert_eq!(condition(&s, "Ready"), ("False", "Progressing"));
    assert_eq!(condition(&s, "Active"), ("Unknown", "Activating"));
    let pods = [crash_pod()];
    let observed = Observed {
        deployment: Some(&d),
        pods: &pods,
        ..Observed::default()
    };
    let s = compute(&f, "ns", &observed, "example.com", &time(1));
    assert_eq!(condition(&s, "Ready"), ("False", "CrashLoopBackOff"));
    assert_eq!(condition(&s, "Active"), ("False", "CrashLoopBackOff"));
}

#[test]
fn scale_from_zero_keeps_ready_true_and_scale_writes_do_not_flap() {
    let mut f = function("hello");
    let d = deployment(1, 1, 1, 1, 1);
    f.status = Some(observe(&f, &d, 1));
    // The autoscaler scaled to zero, then back to one; the pod is not ready yet.
    let zero = deployment(0, 0, 0, 2, 2);
    f.status = Some(observe(&f, &zero, 2));
    assert_eq!(
        condition(f.status.as_ref().expect("status"), "Ready"),
        ("True", "Ready")
    );
    assert_eq!(
        condition(f.status.as_ref().expect("status"), "Active"),
        ("True", "ScaledToZero")
    );
    let stale = deployment(1, 0, 0, 3, 2);
    let s = observe(&f, &stale, 3);
    assert_eq!(condition(&s, "Ready"), ("True", "Ready"));
    f.status = Some(s);
    let starting = deployment(1, 0, 1, 3, 3);
    let s = observe(&f, &starting, 4);
    assert_eq!(condition(&s, "Ready"), ("True", "Ready"));
    assert_eq!(condition(&s, "Active"), ("Unknown", "Activating"));
    let ready = s.conditions.iter().find(|c| c.type_ == "Ready").expect("ready");
    assert_eq!(ready.last_transition_time, time(1));
}

#[test]
fn a_new_template_rolls_out() {
    let f = function("hello");
    let mut d = deployment(2, 2, 1, 4, 4);
    if let Some(s) = d.status.as_mut() {
        s.replicas = Some(3);
    }
    let s = observe(&f, &d, 1);
    assert_eq!(condition(&s, "Ready"), ("False", "Progressing"));
}

#[test]
fn missing_deployment_routes_failure_and_invalid_spec() {
    let f = function("hello");
    let s = compute(&f, "ns", &Observed::default(), "e", &time(1));
    assert_eq!(condition(&s, "Ready"), ("False", "DeploymentMissing"));
    let d = deployment(1, 1, 1, 1, 1);
    let observed = Observed {
        deployment: Some(&d),
        routes_error: Some(Failure {
            reason: "RoutesFailed".into(),
            message: "forbidden".into(),
        }),
        ..Observed::default()
    };
    assert_eq!(
        condition(&compute(&f, "ns", &observed, "e", &time(1)), "Ready"),
        ("False", "RoutesFailed")
    );
    let observed = Observed {
        deployment: Some(&d),
        spec_error: Some("bad".into()),
        ..Observed::default()
    };
    assert_eq!(
        condition(&compute(&f, "ns", &observed, "e", &time(1)), "Ready"),
        ("False", "InvalidSpec")
    );
}

#[test]
fn same_inputs_give_the_same_status() {
    let mut f = function("hello");
    let d = deployment(1, 1, 1, 1, 1);
    let first = observe(&f, &d, 1);
    f.status = Some(first.clone());
    let second = observe(&f, &d, 99);
    assert_eq!(first, second);
}

#[test]
fn a_scale_up_is_not_a_rollout() {
    let mut f = function("hello");
    let d = deployment(1, 1, 1, 1, 1);
    f.status = Some(observe(&f, &d, 1));
    // /scale to 3: the ReplicaSet has not created the new pods yet.
    let scaling = deployment(3, 1, 1, 2, 2);
    let s = observe(&f, &scaling, 2);
    assert_eq!(condition(&s, "Ready"), ("True", "Ready"));
    assert_eq!(s.replicas_summary.as_deref(), Some("1/3"));
}

#[test]
fn a_child_the_function_does_not_control_is_reported() {
    let f = function("hello");
    let not_owned = Failure {
        reason: "NotOwned".into(),
        message: "Deployment hello exists".into(),
    };
    let observed = Observed {
        deployment_error: Some(not_owned),
        ..Observed::default()
    };
    let s = compute(&f, "ns", &observed, "e", &time(1));
    assert_eq!(condition(&s, "Ready"), ("False", "NotOwned"));
    assert_eq!(condition(&s, "DeploymentReady"), ("False", "NotOwned"));
}

#[test]
fn a_routes_failure_outranks_a_start_under_way() {
    let f = function("hello");
    let d = deployment(1, 0, 1, 1, 1);
    let not_owned = Failure {
        reason: "NotOwned".into(),
        message: "Service hello exists".into(),
    };
    let observed = Observed {
        deployment: Some(&d),
        routes_error: Some(not_owned),
        ..Observed::default()
    };
    let s = compute(&f, "ns", &observed, "e", &time(1));
    assert_eq!(condition(&s, "DeploymentReady"), ("False", "Progressing"));
    assert_eq!(condition(&s, "Ready"), ("False", "NotOwned"));
}

fn oom_pod(state: serde_json::Value, last: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": { "name": "hello-1" },
        "spec": { "containers": [{ "name": "function", "resources": { "limits": { "memory": "64Mi" } } }] },
        "status": { "containerStatuses": [{
            "name": "function", "image": "echo", "imageID": "", "ready": false, "restartCount": 3,
            "state": state, "lastState": last
        }]}
    }))
    .expect("pod")
}

#[test]
fn a_pod_that_keeps_being_oom_killed_makes_the_function_fail_with_oom_killed() {
    let f = function("hello");
    let d = deployment(1, 0, 1, 1, 1);
    let pods = [oom_pod(
        json!({ "waiting": { "reason": "CrashLoopBackOff", "message": "back-off 20s restarting failed container" } }),
        json!({ "terminated": { "exitCode": 137, "reason": "OOMKilled", "finishedAt": "2026-01-01T00:00:00Z" } }),
    )];
    let s = compute(
        &f,
        "ns",
        &Observed {
            deployment: Some(&d),
            pods: &pods,
            ..Observed::default()
        },
        "e",
        &time(1),
    );
    assert_eq!(condition(&s, "Ready"), ("False", "OOMKilled"));
    assert_eq!(condition(&s, "DeploymentReady"), ("False", "OOMKilled"));
    assert_eq!(condition(&s, "Active"), ("False", "OOMKilled"));
    assert_eq!(condition(&s, "ContainerHealthy"), ("False", "OOMKilled"));
    let mut with_status = f.clone();
    with_status.status = Some(s);
    assert_eq!(
        with_status.startup_failure().map(|(reason, _)| reason),
        Some("OOMKilled"),
        "the activator fails waiting requests with it"
    );
}

#[test]
fn a_container_restarted_after_an_oom_kill_serves_but_is_not_healthy() {
    let f = function("hello");
    let d = deployment(1, 1, 1, 1, 1);
    let pods = [oom_pod(
        json!({ "running": { "startedAt": "2026-01-01T00:00:01Z" } }),
        json!({ "terminated": { "exitCode": 137, "reason": "OOMKilled", "finishedAt": "2026-01-01T00:00:00Z" } }),
    )];
    let s = compute(
        &f,
        "ns",
        &Observed {
            deployment: Some(&d),
            pods: &pods,
            ..Observed::default()
        },
        "e",
        &time(1),
    );
    assert_eq!(condition(&s, "Ready"), ("True", "Ready"));
    assert_eq!(condition(&s, "ContainerHealthy"), ("False", "OOMKilled"));
    let healthy = s
        .conditions
        .iter()
        .find(|c| c.type_ == "ContainerHealthy")
        .expect("condition");
    assert!(healthy.message.contains("64Mi"), "{}", healthy.message);
    let s = observe(&f, &d, 2);
    assert_eq!(condition(&s, "ContainerHealthy"), ("True", "Healthy"));
}
