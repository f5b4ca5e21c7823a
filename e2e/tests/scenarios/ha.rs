//! High availability of the installed components (Knative's `test/ha/`): the chart's activator
//! Deployment rolled under traffic, and the autoscaler pod killed.

use std::time::{Duration, Instant};

use serde_json::json;
use zeroscale_e2e::installed::{
    SYSTEM_NAMESPACE, component_pods, kill_pod, pod_metrics, ready_component_pods, rollout_restart,
};
use zeroscale_e2e::{counter_value, record_timing, try_kubectl, wait_for};

use crate::load::{Traffic, first_failures};
use crate::support::{Scenario, echo_spec};

/// Knative `TestActivatorHAGraceful`: `kubectl rollout restart deployment/zeroscale-activator` under
/// steady traffic loses no request; every activator pod is replaced.
#[tokio::test]
async fn activator_ha_graceful() {
    let s = Scenario::new("activator-ha").await;
    s.installed.require_chart("a rolling restart of the activator");
    s.apply("steady", echo_spec(json!({"scale": {"initial": 1, "min": 1}})))
        .await;
    s.wait_ready("steady").await;
    let host = s.host("steady").await;
    let before = component_pods("activator").await;
    assert!(before.len() >= 2, "the chart runs 2+ activators: {before:?}");

    // 200 ms of work per request, so requests are in flight on the activators as they stop.
    let url = format!("{}/?sleep=200", s.installed.activator_url);
    let traffic = Traffic::start(&url, &host, 4, Duration::from_millis(20));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, unable_before) = probe_counts().await;
    let begun = Instant::now();
    rollout_restart("activator", Duration::from_secs(180)).await;
    record_timing(
        "scenarios: activator rolling restart under traffic",
        begun.elapsed(),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let tally = traffic.stop().await;

    let after = component_pods("activator").await;
    assert!(
        after.iter().all(|p| !before.contains(p)),
        "every activator replaced: {before:?} → {after:?}"
    );
    assert!(
        tally.failures.is_empty(),
        "{} of {} requests lost during the rollout:\n  {}",
        tally.failures.len(),
        tally.ok + tally.failures.len() as u64,
        first_failures(&tally)
    );
    assert!(tally.ok >= 20, "traffic flowed throughout: {} ok", tally.ok);
    // The autoscaler found the activator able to take traffic throughout, so no function's scale
    // to zero was held back by the roll: a readiness probe that kept its connection stayed with a
    // draining replica (503 for its drain delay) and counted about 5 s of "unable" per roll. The
    // rollout is complete before its last old replica has drained, so the count is read once every
    // old replica has exited and four more probes (past the verdict's 3 s) have been counted.
    wait_for(
        Duration::from_secs(90),
        "the old activator pods to exit",
        || async { (!any_left(&before).await).then_some(()) },
    )
    .await;
    let (probes, _) = probe_counts().await;
    let unable_after = wait_for(
        Duration::from_secs(30),
        "four more readiness probes of the activator",
        || async {
            let (now, unable) = probe_counts().await;
            (now >= probes + 4).then_some(unable)
        },
    )
    .await;
    assert_eq!(
        unable_after, unable_before,
        "probes after which the autoscaler counted the activator unable during the roll"
    );
}

/// Whether any of `pods` still exists in the system namespace, terminating or not (an error reading
/// them counts as yes).
async fn any_left(pods: &[String]) -> bool {
    match try_kubectl(&["get", "pods", "-n", SYSTEM_NAMESPACE, "-o", "name"], None).await {
        Ok(out) => out
            .lines()
            .filter_map(|l| l.trim().strip_prefix("pod/"))
            .any(|name| pods.iter().any(|p| p == name)),
        Err(_) => true,
    }
}

/// The autoscaler's readiness probes of the activator and those after which it counted the
/// activator unable (`zeroscale_autoscaler_activator_{probes,unable_probes}_total`), summed over
/// the ready autoscaler pods.
async fn probe_counts() -> (u64, u64) {
    let (mut probes, mut unable) = (0, 0);
    for pod in ready_component_pods("autoscaler").await {
        let text = pod_metrics(&pod)
            .await
            .unwrap_or_else(|e| panic!("the autoscaler's metrics ({pod}): {e}"));
        probes += counter_value(&text, "zeroscale_autoscaler_activator_probes_total");
        unable += counter_value(&text, "zeroscale_autoscaler_activator_unable_probes_total");
    }
    (probes, unable)
}

/// Knative `TestAutoscalerHA`: killing the autoscaler pod does not stop traffic to a function, and
/// once the replacement is up, scale decisions resume: the function scales up under load and back
/// to zero when idle.
#[tokio::test]
async fn autoscaler_ha() {
    let s = Scenario::new("autoscaler-ha").await;
    s.installed.require_chart("killing the autoscaler pod");
    let spec = echo_spec(json!({"concurrency": 1, "scale": {"initial": 1, "max": 5}}));
    s.apply("scaled", spec).await;
    s.wait_ready("scaled").await;
    let host = s.host("scaled").await;
    let url = format!("{}/?sleep=100", s.installed.activator_url);

    let before = ready_component_pods("autoscaler").await;
    assert!(!before.is_empty(), "an autoscaler pod is ready");
    let traffic = Traffic::start(&url, &host, 1, Duration::from_millis(20));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let begun = Instant::now();
    for pod in &before {
        kill_pod(pod).await;
    }
    let replacement = wait_for(
        Duration::from_secs(120),
        "a new autoscaler pod to be ready",
        || async {
            let ready = ready_component_pods("autoscaler").await;
            let new: Vec<String> = ready.into_iter().filter(|p| !before.contains(p)).collect();
            (!new.is_empty()).then_some(new)
        },
    )
    .await;
    record_timing(
        "scenarios: autoscaler killed → replacement ready",
        begun.elapsed(),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let tally = traffic.stop().await;
    assert!(
        tally.failures.is_empty(),
        "{} requests failed while the autoscaler was down:\n  {}",
        tally.failures.len(),
        first_failures(&tally)
    );
    assert!(
        tally.ok >= 10,
        "traffic flowed while the autoscaler was replaced: {} ok",
        tally.ok
    );

    // Decisions resume: 6 clients need more pods than 1 client did (concurrency 1, target 0.7 each).
    let (start_desired, _) = s.replicas("scaled").await.unwrap_or_default();
    let load = Traffic::start(&url, &host, 6, Duration::ZERO);
    let what = format!("scale-up past {start_desired} by the new autoscaler {replacement:?}");
    let (took, (up, _)) = s
        .wait_replicas("scaled", &what, Duration::from_secs(60), |d, _| {
            d > start_desired.max(1)
        })
        .await;
    record_timing("scenarios: new autoscaler scales up under load", took);
    let tally = load.stop().await;
    assert!(
        tally.failures.is_empty(),
        "load failures:\n  {}",
        first_failures(&tally)
    );
    assert!(up <= 5, "max: 5 holds, got {up}");
    // A restarted autoscaler starts cautious, so allow a stable window more than the usual deadline.
    let took = s.wait_zero("scaled", Duration::from_secs(120)).await;
    record_timing("scenarios: new autoscaler scales the idle function to zero", took);
}
