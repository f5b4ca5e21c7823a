use std::time::Duration;

use http::Method;
use tokio::time::Instant;
use zeroscale_common::revision_stats::bucket_of;

use super::*;
use crate::function::FunctionState;

fn function(namespace: &str, name: &str) -> Arc<FunctionState> {
    FunctionState::for_tests(namespace, name)
}

fn record<'a>(
    function: &'a Arc<FunctionState>,
    revision: Option<&'a str>,
    status: u16,
    outcome: RequestOutcome,
    head_after_ms: Option<u64>,
) -> RequestRecord<'a> {
    let arrived = Instant::now();
    RequestRecord {
        function: Some(function),
        revision,
        method: &Method::GET,
        status,
        outcome,
        arrived,
        forwarded: Some(arrived),
        first_byte: head_after_ms.map(|ms| arrived + Duration::from_millis(ms)),
        end: arrived + Duration::from_millis(head_after_ms.unwrap_or(0) + 5),
        cold: false,
        pod: None,
        request_id: "-",
        traceparent: "",
        request_bytes: 0,
        response_bytes: 0,
    }
}

#[tokio::test(start_paused = true)]
async fn counts_requests_failures_and_latency_per_revision() {
    let stats = RevisionStats::new("activator-0");
    let cart = function("shop", "cart");
    let (old, new) = ("cart-aaaaaaaaaa", "cart-bbbbbbbbbb");
    stats.record(&record(&cart, Some(old), 200, RequestOutcome::Ok, Some(3)));
    stats.record(&record(
        &cart,
        Some(new),
        500,
        RequestOutcome::FunctionError,
        Some(40),
    ));
    stats.record(&record(&cart, Some(new), 200, RequestOutcome::Ok, Some(40)));
    // The activator answered 502 for the revision: a failure with no latency.
    stats.record(&record(
        &cart,
        Some(new),
        502,
        RequestOutcome::ActivatorFailure("lost"),
        None,
    ));
    // A deadline passed mid-stream after a 200 head: a failure too.
    stats.record(&record(&cart, Some(new), 200, RequestOutcome::Timeout, Some(40)));
    // The client left: a request, not a failure. A 404 from the function is no failure either.
    stats.record(&record(
        &cart,
        Some(new),
        200,
        RequestOutcome::ClientGone,
        Some(40),
    ));
    stats.record(&record(&cart, Some(new), 404, RequestOutcome::Ok, Some(40)));
    // Without a revision (not routed by revision) nothing is counted.
    stats.record(&record(&cart, None, 500, RequestOutcome::FunctionError, Some(3)));

    let report = stats.report();
    assert_eq!(report.activator, "activator-0");
    assert_eq!(report.latency_bounds_ms, LATENCY_BOUNDS_MS.to_vec());
    let names: Vec<&str> = report.revisions.iter().map(|r| r.revision.as_str()).collect();
    assert_eq!(names, [old, new]);
    let new_counts = &report.revisions[1].counts;
    assert_eq!((new_counts.requests, new_counts.errors), (6, 3));
    assert_eq!(new_counts.latency_ms[bucket_of(40)], 5);
    assert_eq!(new_counts.p99_ms(), Some(50));
    assert_eq!(report.revisions[0].namespace, "shop");
    assert_eq!(report.revisions[0].function, "cart");
    assert_eq!(report.revisions[0].counts.requests, 1);
}

#[tokio::test(start_paused = true)]
async fn a_routing_entry_named_after_a_revision_counts_for_it() {
    // The routing table keeps one entry per revision (`<function>-<hash>`), and records name no
    // revision of their own then.
    let stats = RevisionStats::new("activator-0");
    let entry = function("shop", "cart-0123456789");
    stats.record(&record(&entry, None, 503, RequestOutcome::FunctionError, Some(3)));
    let not_a_revision = function("shop", "cart-v2");
    stats.record(&record(&not_a_revision, None, 200, RequestOutcome::Ok, Some(3)));
    let report = stats.report();
    assert_eq!(report.revisions.len(), 1);
    let counted = &report.revisions[0];
    assert_eq!(
        (counted.function.as_str(), counted.revision.as_str()),
        ("cart", "cart-0123456789")
    );
    assert_eq!((counted.counts.requests, counted.counts.errors), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn the_admin_route_serves_the_report_as_json() {
    use tower::ServiceExt;
    let stats = Arc::new(RevisionStats::new("activator-1"));
    let echo = function("default", "echo");
    stats.record(&record(
        &echo,
        Some("echo-0123456789"),
        200,
        RequestOutcome::Ok,
        Some(1),
    ));
    let response = router(Arc::clone(&stats))
        .oneshot(
            http::Request::get(STATS_PATH)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let report: StatsReport = serde_json::from_slice(&body).unwrap();
    assert_eq!(report, stats.report());
    assert_eq!(report.revisions[0].counts.requests, 1);
    // Another instance after a restart.
    assert_ne!(
        RevisionStats::new("activator-1").report().instance,
        report.instance
    );
}
