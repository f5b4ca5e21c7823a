//! Per-pod concurrency limits under load.

use std::time::{Duration, Instant};

use serde_json::json;
use zeroscale_e2e::record_timing;

use crate::load::{Traffic, burst, first_failures};
use crate::support::{Scenario, echo_spec};

/// Knative `TestSingleConcurrency`: with `concurrency: 1`, 5 clients for 20 s never make two requests
/// overlap in one pod. The echo pods run with `ECHO_SINGLE=1`, so an overlapping request answers
/// `500 overlap detected` and counts as a failure here.
#[tokio::test]
async fn single_concurrency() {
    let s = Scenario::new("single-cc").await;
    let spec = echo_spec(json!({
        "concurrency": 1,
        "env": [{"name": "ECHO_SINGLE", "value": "1"}],
        "scale": {"initial": 1, "max": 3},
    }));
    s.apply("single", spec).await;
    s.wait_ready("single").await;
    let host = s.host("single").await;

    // 50 ms of work per request: long enough that any two requests sent to one pod at once overlap.
    let url = format!("{}/?sleep=50", s.installed.activator_url);
    let traffic = Traffic::start(&url, &host, 5, Duration::ZERO);
    tokio::time::sleep(Duration::from_secs(20)).await;
    let tally = traffic.stop().await;
    eprintln!(
        "single concurrency: {} ok over {} pod(s)",
        tally.ok,
        tally.pods.len()
    );
    assert!(
        tally.failures.is_empty(),
        "{} request(s) failed (500 overlap detected = two requests in one pod):\n  {}",
        tally.failures.len(),
        first_failures(&tally)
    );
    // 5 clients × 20 s at ≥ 50 ms each could do at most 2,000; a working path does hundreds.
    assert!(tally.ok >= 100, "only {} requests answered in 20 s", tally.ok);
}

/// Knative `TestActivatorOverload`: `concurrency: 1`, `max: 10`; 100 concurrent requests of 300 ms
/// each all answer 200 (the activator queues what the pods cannot take yet).
#[tokio::test]
async fn activator_overload() {
    let s = Scenario::new("overload").await;
    // No overlap detection here (Knative's test does not have it either): this is about the queue
    // holding every request until a pod has room; `single_concurrency` checks the per-pod limit.
    let spec = echo_spec(json!({"concurrency": 1, "scale": {"initial": 1, "max": 10}}));
    s.apply("overload", spec).await;
    s.wait_ready("overload").await;
    let host = s.host("overload").await;
    let url = format!("{}/?sleep=300", s.installed.activator_url);

    let start = Instant::now();
    let tally = burst(&url, &host, 100, Duration::from_secs(120)).await;
    record_timing(
        "scenarios: 100 concurrent 300 ms requests, cc 1, max 10",
        start.elapsed(),
    );
    assert!(
        tally.failures.is_empty(),
        "{} of 100 failed:\n  {}",
        tally.failures.len(),
        first_failures(&tally)
    );
    assert_eq!(tally.ok, 100);
    let (desired, _) = s.replicas("overload").await.unwrap_or_default();
    assert!(desired <= 10, "max: 10 holds, got {desired}");
    assert!(
        tally.pods.len() <= 10,
        "answered by at most 10 pods: {:?}",
        tally.pods
    );
}
