//! The stats signal: per-period time-weighted concurrency and request counts, and one last report
//! after the function goes quiet.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions; failing loudly is the point

mod support;

use std::time::Duration;

use http::Response;
use support::*;
use zeroscale_activator::settings::{EndpointInfo, FunctionSettings};
use zeroscale_common::signals::STATS_TYPE;

// Paused time: the stats accounting integrates concurrency over tokio's clock, so the 150 ms
// requests take exactly 150 virtual ms and the reported request-seconds are exact.
#[tokio::test(start_paused = true)]
async fn stats_report_concurrency_then_one_final_zero() {
    let recorder = SignalRecorder::default();
    let url = recorder.start().await;
    let activator = activator(|c| {
        c.autoscaler_url = url;
        c.stats_interval = Duration::from_millis(200);
        c.pod_name = "activator-7".into();
    })
    .await;
    let pod = upstream([127, 0, 0, 2], |_req| async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        Response::new(full("ok"))
    })
    .await;
    set(
        &activator,
        FunctionSettings::default(),
        vec![EndpointInfo::ready(pod)],
    );
    let clients: Vec<_> = (0..4)
        .map(|_| tokio::spawn(send(get(activator.internal_addr, "/"))))
        .collect();
    for c in clients {
        assert_eq!(c.await.unwrap().0, 200);
    }
    // Wait for a report with zero concurrency that follows the active ones: the final report.
    until("final zero report", || {
        let stats = recorder.of_type(STATS_TYPE);
        stats.iter().any(|s| s.body["concurrency"].as_f64() > Some(0.0))
            && stats
                .last()
                .is_some_and(|s| s.body["concurrency"] == 0.0 && s.body["requests"] == 0)
    })
    .await;
    let stats = recorder.of_type(STATS_TYPE);
    let requests: u64 = stats.iter().map(|s| s.body["requests"].as_u64().unwrap()).sum();
    assert_eq!(requests, 4);
    let first = &stats[0].body;
    assert_eq!(first["function"]["namespace"], "default");
    assert_eq!(first["activator"], "activator-7");
    assert!(first["period_ms"].as_u64().unwrap() > 0);
    // Four requests of ~150 ms each: about 0.6 request-seconds over all periods.
    let area: f64 = stats
        .iter()
        .map(|s| s.body["concurrency"].as_f64().unwrap() * s.body["period_ms"].as_f64().unwrap() / 1000.0)
        .sum();
    assert!((0.5..2.0).contains(&area), "request-seconds {area}");
    // Quiet afterwards: no more reports.
    let count = stats.len();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(recorder.of_type(STATS_TYPE).len(), count);
}

#[tokio::test(start_paused = true)]
async fn signals_carry_the_autoscaler_token() {
    let recorder = SignalRecorder::default();
    let url = recorder.start().await;
    let activator = activator(|c| {
        c.autoscaler_url = url;
        c.autoscaler_token = Some("s3cret".into());
        c.stats_interval = Duration::from_millis(100);
    })
    .await;
    let pod = upstream([127, 0, 0, 2], |_req| async { Response::new(full("ok")) }).await;
    set(
        &activator,
        FunctionSettings::default(),
        vec![EndpointInfo::ready(pod)],
    );
    assert_eq!(send(get(activator.internal_addr, "/")).await.0, 200);
    until("a stats report", || !recorder.of_type(STATS_TYPE).is_empty()).await;
    for signal in recorder.received.lock().unwrap().iter() {
        assert_eq!(
            signal.authorization.as_deref(),
            Some("Bearer s3cret"),
            "{}",
            signal.ty
        );
    }
}
