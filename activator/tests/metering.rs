//! Metering over loopback on paused time: requests of known duration (`?sleep=<ms>` at the pod)
//! are billed to the millisecond in the `zeroscale_faas_*` metrics and in the usage records the
//! activator flushes to a sink, the last of them on shutdown.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions; failing loudly is the point

mod support;

use std::time::Duration;

use http::Response;
use support::*;
use zeroscale_activator::{
    metering::Declared,
    settings::{EndpointInfo, FunctionSettings},
};

/// A pod that answers after the number of milliseconds in `?sleep=`.
async fn sleepy_pod() -> std::net::SocketAddr {
    upstream([127, 0, 0, 2], |req| async move {
        let ms: u64 = req
            .uri()
            .query()
            .and_then(|q| q.strip_prefix("sleep="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Response::new(full("slept"))
    })
    .await
}

fn sample(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(start_paused = true)]
async fn known_sleeps_are_billed_to_the_millisecond_and_flushed_on_shutdown() {
    let sink = SignalRecorder::default();
    let url = sink.start().await;
    let activator = activator(|c| {
        c.metering.usage_sink = Some(url.parse().unwrap());
        // Only the final flush, at shutdown, sends: nothing may be lost on the way out.
        c.metering.flush_interval = Duration::from_secs(3600);
    })
    .await;
    let pod = sleepy_pod().await;
    let settings = FunctionSettings {
        declared: Declared {
            memory_bytes: Some(128 << 20),
            cpu_millis: Some(500),
        },
        ..FunctionSettings::default()
    };
    set(&activator, settings, vec![EndpointInfo::ready(pod)]);

    let sleeps = [150u64, 20, 333, 1, 75, 150, 999, 42];
    for ms in sleeps {
        let (status, body, _) = send(get(activator.internal_addr, &format!("/?sleep={ms}"))).await;
        assert_eq!((status, body.as_str()), (200, "slept"));
    }
    // An unknown host is answered (404) and metered on no function.
    let mut unknown = get(activator.internal_addr, "/");
    unknown
        .headers_mut()
        .insert("host", "nobody.default.svc.cluster.local".parse().unwrap());
    assert_eq!(send(unknown).await.0, 404);

    let expected_ms: u64 = sleeps.iter().sum();
    let text = metrics(&activator).await;
    let billed = sample(&text, "zeroscale_faas_billed_duration_seconds_total{");
    let memory = sample(&text, "zeroscale_faas_memory_byte_seconds_total{");
    let cpu = sample(&text, "zeroscale_faas_cpu_seconds_total{");
    let ok = sample(
        &text,
        "zeroscale_faas_invocations_total{namespace=\"default\",function=\"hello\",revision=\"\",outcome=\"ok\"}",
    );
    assert_eq!(ok, sleeps.len() as f64, "{text}");
    // The pod's sleep on the virtual clock, plus at most a few ms of rounding per request.
    let slack = sleeps.len() as f64 * 0.002;
    let billed_expected = expected_ms as f64 / 1000.0;
    assert!(
        billed >= billed_expected && billed <= billed_expected + slack,
        "billed {billed} s for {billed_expected} s of sleep"
    );
    assert!(
        (memory - billed * (128u64 << 20) as f64).abs() < 1.0,
        "memory {memory}"
    );
    assert!((cpu - billed * 0.5).abs() < 1e-6, "cpu {cpu}");

    activator.shutdown();
    activator.wait().await;
    let records = sink.of_type("dev.zeroscale.usage");
    assert_eq!(records.len(), 1, "one function, one window: {records:?}");
    let data = &records[0].body;
    assert_eq!(data["function"], "hello");
    assert_eq!(data["invocations"]["ok"], sleeps.len() as u64);
    let record_ms = data["billedMilliseconds"].as_u64().unwrap();
    assert_eq!(
        record_ms as f64 / 1000.0,
        billed,
        "the record and the counter agree"
    );
    assert_eq!(
        data["memoryByteMilliseconds"].as_u64().unwrap(),
        record_ms * (128 << 20)
    );
    assert_eq!(
        data["cpuMillicoreMilliseconds"].as_u64().unwrap(),
        record_ms * 500
    );
}

#[tokio::test(start_paused = true)]
async fn a_request_that_times_out_in_the_queue_is_counted_but_not_billed() {
    let activator = activator(|_| {}).await;
    let settings = FunctionSettings {
        timeout: Duration::from_secs(1),
        response_start_timeout: Duration::from_secs(1),
        ..FunctionSettings::default()
    };
    set(&activator, settings, vec![]);
    assert_eq!(send(get(activator.internal_addr, "/")).await.0, 504);
    let text = metrics(&activator).await;
    let timeouts = sample(
        &text,
        "zeroscale_faas_invocations_total{namespace=\"default\",function=\"hello\",revision=\"\",outcome=\"timeout\"}",
    );
    assert_eq!(timeouts, 1.0, "{text}");
    assert_eq!(
        sample(&text, "zeroscale_faas_billed_duration_seconds_total{"),
        0.0
    );
}
