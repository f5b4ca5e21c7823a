//! Timeout semantics (SPEC §3, §4) and functions that never become ready.

use std::time::{Duration, Instant};

use serde_json::json;
use zeroscale_e2e::{BUSYBOX_IMAGE, MISSING_IMAGE, record_timing};

use crate::support::{COLD_REQUEST_TIMEOUT, Scenario, echo_spec};

/// Knative `TestRevisionTimeout`, with Zeroscale's semantics: `timeoutSeconds` is the whole deadline
/// of a request, time spent queued included (→ 504); `responseStartTimeoutSeconds` bounds the wait for
/// the response head (→ 504) but not a response that started in time; a request within its deadlines
/// answers 200.
#[tokio::test]
async fn revision_timeout() {
    let s = Scenario::new("timeout").await;
    let total = echo_spec(json!({"timeoutSeconds": 3, "scale": {"initial": 1, "min": 1}}));
    s.apply("total", total).await;
    let slow = echo_spec(json!({
        "timeoutSeconds": 3, "env": [{"name": "ECHO_START_DELAY_MS", "value": "6000"}],
    }));
    s.apply("slow", slow).await;
    let start = echo_spec(json!({
        "timeoutSeconds": 10, "responseStartTimeoutSeconds": 2, "scale": {"initial": 1, "min": 1},
    }));
    s.apply("start", start).await;
    s.wait_ready("total").await;
    s.wait_ready("start").await;
    s.wait_ready("slow").await;
    let (total, start) = (s.host("total").await, s.host("start").await);
    let slow = s.host("slow").await;
    let limit = Duration::from_secs(30);

    let (status, body) = s.get_ok(&total, "/?sleep=1000", limit).await;
    assert_eq!(status, 200, "1 s of work within a 3 s timeout: {body}");
    let (status, body) = s.get_ok(&total, "/?sleep=5000", limit).await;
    assert_eq!(status, 504, "5 s of work past a 3 s timeout: {body}");
    assert!(body.contains("timeout"), "{body}");
    // The pod may still be working off that request; let it finish so it does not skew the next case.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // Queue time counts: at zero, a pod that needs 6 s to listen keeps the request queued past its
    // 3 s deadline, although the function itself would answer at once.
    let begun = Instant::now();
    let (status, body) = s.get_ok(&slow, "/", limit).await;
    let waited = begun.elapsed();
    assert_eq!(status, 504, "queued past timeoutSeconds: {body}");
    assert!(body.contains("timeout"), "{body}");
    assert!(
        waited < Duration::from_secs(6),
        "answered at its deadline, not when the pod came: {waited:?}"
    );
    record_timing(
        "scenarios: request queued at zero past a 3 s timeout → 504",
        waited,
    );

    let (status, body) = s.get_ok(&start, "/?sleep=3000", limit).await;
    assert_eq!(
        status, 504,
        "no response head within responseStartTimeoutSeconds: {body}"
    );
    assert!(body.contains("start its response"), "{body}");
    // 60 chunks 50 ms apart: the head comes at once, the body takes ~3 s, longer than the 2 s start
    // timeout and shorter than the 10 s total.
    let (status, body) = s.get_ok(&start, "/?stream=60", limit).await;
    assert_eq!(status, 200);
    assert_eq!(
        body.matches("data: ").count(),
        60,
        "the whole stream arrives: {body}"
    );
    // The total deadline cuts a stream that outlives it (the connection is aborted mid-body).
    let cut = s.get(&total, "/?stream=100", limit).await;
    assert!(
        cut.is_err()
            || cut
                .as_ref()
                .is_ok_and(|r| r.text().matches("data: ").count() < 100),
        "{cut:?}"
    );
}

/// A function that cannot start answers its requests with 503 naming the reason, long before its
/// `timeoutSeconds` (120 s here): an image that cannot be pulled, and a container that keeps exiting.
#[tokio::test]
async fn never_ready_answers_503_with_reason() {
    let s = Scenario::new("never-ready").await;
    s.apply(
        "nopull",
        json!({"image": MISSING_IMAGE, "timeoutSeconds": 120, "scale": {"initial": 0}}),
    )
    .await;
    s.apply(
        "crash",
        json!({
            "image": BUSYBOX_IMAGE, "command": ["sh", "-c", "echo failing on purpose; exit 3"],
            // The busybox image's user is root; Functions run as non-root.
            "securityContext": {"runAsUser": 65532},
            "timeoutSeconds": 120, "scale": {"initial": 0},
        }),
    )
    .await;
    for (name, reason) in [("nopull", "ImagePull"), ("crash", "CrashLoopBackOff")] {
        let host = s.host(name).await;
        let begun = Instant::now();
        let (status, body) = s.get_ok(&host, "/", Duration::from_secs(150)).await;
        let took = begun.elapsed();
        record_timing(&format!("scenarios: {name} at zero → 503 with the reason"), took);
        assert_eq!(status, 503, "{name}: {body}");
        assert!(
            body.contains("failed to start") && body.contains(reason),
            "{name}: {body}"
        );
        assert!(
            took < Duration::from_secs(110),
            "{name}: answered before its 120 s timeout, took {took:?}"
        );
        let (ready, why, _) = s.condition(name, "Ready").await.unwrap_or_default();
        assert_eq!(ready, "False", "{name}");
        assert!(why.contains(reason), "{name}: Ready reason {why}");
        // Later requests learn it at once.
        let begun = Instant::now();
        let (status, _) = s.get_ok(&host, "/", COLD_REQUEST_TIMEOUT).await;
        assert_eq!(status, 503);
        assert!(
            begun.elapsed() < Duration::from_secs(10),
            "{name}: known failure answered at once"
        );
    }
}
