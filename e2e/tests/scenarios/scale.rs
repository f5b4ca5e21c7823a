//! Scale from zero, scale to zero, and a burst at zero.

use std::time::{Duration, Instant};

use serde_json::json;
use zeroscale_e2e::record_timing;

use crate::load::{burst, first_failures};
use crate::support::{COLD_REQUEST_TIMEOUT, Scenario, echo_spec};

/// Stable window of the functions here (the smallest allowed), as in Knative's `TestFastScaleToZero`.
const WINDOW: Duration = Duration::from_secs(6);
/// The default `scaleToZeroGracePeriod`.
const GRACE: Duration = Duration::from_secs(30);
/// Slack Knative's test allows on top of window + grace.
const SLACK: Duration = Duration::from_secs(15);

/// Knative `TestScaleFromZero`: a Function created at zero (`scale.initial: 0`) is Ready with no pod,
/// and the first request wakes it and answers 200 from one of its pods.
#[tokio::test]
async fn scale_from_zero() {
    let s = Scenario::new("scale-from-zero").await;
    s.apply("hello", echo_spec(json!({}))).await;
    s.wait_ready("hello").await;
    let (_, zero) = s
        .wait_replicas("hello", "created at zero", Duration::from_secs(30), |d, _| d == 0)
        .await;
    assert_eq!(zero, (0, 0), "initial: 0 starts without pods");
    let host = s.host("hello").await;

    let start = Instant::now();
    let (status, body) = s.get_ok(&host, "/from-zero", COLD_REQUEST_TIMEOUT).await;
    record_timing("scenarios: cold start (request at zero → 200)", start.elapsed());
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(doc["function"], "hello", "answered by the function's pod: {body}");
    assert_eq!(doc["path"], "/from-zero");
    assert_eq!(doc["headers"]["host"], host.as_str(), "Host is preserved");
    // The activator forwards as soon as the pod accepts; the Deployment's status catches up after.
    s.wait_replicas(
        "hello",
        "woken to a ready pod",
        Duration::from_secs(30),
        |d, r| d >= 1 && r >= 1,
    )
    .await;
}

/// Knative `TestFastScaleToZero`: with a 6 s stable window, an idle function reaches zero replicas
/// within window + grace period + 15 s of its last request.
#[tokio::test]
async fn fast_scale_to_zero() {
    let s = Scenario::new("fast-to-zero").await;
    s.apply("idle", echo_spec(json!({"scale": {"initial": 1}}))).await;
    s.wait_ready("idle").await;
    let host = s.host("idle").await;
    let (status, body) = s.get_ok(&host, "/", COLD_REQUEST_TIMEOUT).await;
    assert_eq!(status, 200, "{body}");
    let (desired, _) = s.replicas("idle").await.unwrap_or_default();
    assert!(desired >= 1, "a pod serves the request");

    let took = s.wait_zero("idle", WINDOW + GRACE + SLACK).await;
    record_timing(
        "scenarios: last request → zero replicas (window 6s, grace 30s)",
        took,
    );
    let (status, _, _) = s.condition("idle", "Active").await.unwrap_or_default();
    assert_eq!(status, "True", "at zero by choice is still Active");
}

/// 200 concurrent requests to a function at zero all answer 200 (none is lost while it wakes).
#[tokio::test]
async fn burst_at_zero() {
    let s = Scenario::new("burst-at-zero").await;
    s.apply("burst", echo_spec(json!({"scale": {"max": 3}}))).await;
    s.wait_ready("burst").await;
    s.wait_replicas("burst", "created at zero", Duration::from_secs(30), |d, r| {
        d == 0 && r == 0
    })
    .await;
    let host = s.host("burst").await;
    let url = format!("{}/?sleep=10", s.installed.activator_url);

    let start = Instant::now();
    let tally = burst(&url, &host, 200, COLD_REQUEST_TIMEOUT).await;
    record_timing("scenarios: 200 concurrent at zero, all answered", start.elapsed());
    record_timing(
        "scenarios: 200 concurrent at zero, slowest request",
        tally.max_latency,
    );
    assert!(
        tally.failures.is_empty(),
        "{} of 200 failed:\n  {}",
        tally.failures.len(),
        first_failures(&tally)
    );
    assert_eq!(tally.ok, 200);
    assert!(
        !tally.pods.is_empty() && !tally.pods.contains(""),
        "answers name their pods: {:?}",
        tally.pods
    );
}
