//! Scheduled warm capacity and reserved concurrency on the installed Zeroscale (issue #17, items 3
//! and 4): a `spec.scale.schedules` window raises the pod count at its start and lowers it at its
//! end; `maxConcurrency: 10` holds under 50 concurrent clients across pods and both activators, the
//! overflow gets 429 with a `Retry-After` that follows the drain rate; another namespace's requests
//! are unaffected by the flood.
//!
//! The window and the flood run at the same time so the suite stays within three minutes: the
//! window's start is the next whole minute at least 45 s away, and it lasts one minute.

#[allow(dead_code)] // shared with the scenarios suite, which uses more of it
#[path = "scenarios/support.rs"]
mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use support::{Scenario, echo_spec};
use zeroscale_e2e::{ECHO_IMAGE, HttpResponse, http_request, image_digest, record_timing};

/// The most intervals that contain one instant: how many requests were in flight at once.
fn max_overlap(intervals: &[(u64, u64)]) -> usize {
    // Ends sort before starts at the same instant: a request that ended as another began did not
    // overlap it.
    let mut edges: Vec<(u64, i32)> = intervals
        .iter()
        .flat_map(|&(start, end)| [(start, 1), (end, -1)])
        .collect();
    edges.sort_unstable();
    let (mut now, mut peak) = (0i32, 0i32);
    for (_, delta) in edges {
        now += delta;
        peak = peak.max(now);
    }
    usize::try_from(peak).unwrap_or(0)
}

#[test]
fn max_overlap_counts_concurrent_intervals() {
    assert_eq!(max_overlap(&[]), 0);
    assert_eq!(
        max_overlap(&[(0, 10), (10, 20)]),
        1,
        "touching is not overlapping"
    );
    assert_eq!(max_overlap(&[(0, 10), (5, 15), (6, 7), (14, 30)]), 3);
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A daily cron (`M H * * *`, UTC) firing at `at` (Unix seconds, a whole minute).
fn daily_cron(at: u64) -> String {
    let minute_of_day = (at % 86_400) / 60;
    format!("{} {} * * *", minute_of_day % 60, minute_of_day / 60)
}

async fn sleep_until(unix: u64) {
    let now = unix_secs();
    if unix > now {
        tokio::time::sleep(Duration::from_secs(unix - now)).await;
    }
}

/// A schedule window opening at the next whole minute at least 45 s away and closing one minute
/// later raises the Deployment to the window's `min` at its start and lowers it at its end.
async fn schedule_window(s: &Scenario) -> String {
    let start = (unix_secs() + 45).div_ceil(60) * 60;
    let end = start + 60;
    let spec = echo_spec(json!({
        "scale": {
            "initial": 0,
            "scaleToZeroGracePeriod": "0s",
            "schedules": [{
                "start": daily_cron(start),
                "end": daily_cron(end),
                "timeZone": "UTC",
                "min": 2,
            }],
        },
    }));
    s.apply("warm", spec).await;
    s.wait_ready("warm").await;
    sleep_until(start - 5).await;
    let before = s.replicas("warm").await.unwrap_or_default();
    assert_eq!(
        before.0, 0,
        "no pods asked for before the window opens, got {before:?}"
    );
    sleep_until(start).await;
    let (took, seen) = s
        .wait_replicas(
            "warm",
            "2 ready in the window",
            Duration::from_secs(40),
            |d, r| d == 2 && r == 2,
        )
        .await;
    record_timing("throttle: schedule window start to 2 ready pods", took);
    sleep_until(end).await;
    let (lowered, after) = s
        .wait_replicas(
            "warm",
            "fewer than 2 after the window",
            Duration::from_secs(30),
            |d, _| d < 2,
        )
        .await;
    record_timing("throttle: schedule window end to scale-down", lowered);
    format!(
        "window {}..{} (UTC {} / {}): 0 before, {seen:?} {:.1}s after the start, {after:?} {:.1}s after the end",
        start,
        end,
        daily_cron(start),
        daily_cron(end),
        took.as_secs_f64(),
        lowered.as_secs_f64()
    )
}

/// What 50 clients saw while flooding a function capped at 10.
#[derive(Default)]
struct Flood {
    /// `(started_us, answered_us, pod)` of every 200, as the pods reported them.
    served: Vec<(u64, u64, String)>,
    /// `(seconds since the flood began, Retry-After)` of every 429.
    throttled: Vec<(f64, u64)>,
    /// Anything else, for the failure message.
    other: Vec<String>,
}

async fn client_loop(url: String, host: String, began: Instant, until: Instant) -> Flood {
    let mut flood = Flood::default();
    while Instant::now() < until {
        let r: Result<HttpResponse, _> = http_request(
            http::Method::GET,
            &url,
            &[("host", &host)],
            "",
            Duration::from_secs(60),
        )
        .await;
        match r {
            Ok(r) if r.status == 200 => {
                let doc: Value = r.json();
                let (Some(start), Some(end)) = (doc["started_us"].as_u64(), doc["answered_us"].as_u64())
                else {
                    flood.other.push(format!("200 without times: {}", r.text()));
                    continue;
                };
                flood
                    .served
                    .push((start, end, doc["pod"].as_str().unwrap_or_default().to_string()));
            }
            Ok(r) if r.status == 429 => {
                let retry = r
                    .headers
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok());
                match retry {
                    Some(secs) => flood.throttled.push((began.elapsed().as_secs_f64(), secs)),
                    None => flood.other.push("429 without a Retry-After".into()),
                }
                // Retry sooner than told, to keep the queue full.
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Ok(r) => flood.other.push(format!("{}: {}", r.status, r.text().trim())),
            Err(e) => flood.other.push(e.to_string()),
        }
    }
    flood
}

/// The echo image by digest: the node may hold an older image under the same tag, and this test
/// needs the pushed one (its answers carry `started_us` and `answered_us`).
async fn pinned_echo() -> String {
    let digest = image_digest(ECHO_IMAGE).await;
    let repository = ECHO_IMAGE.rsplit_once(':').map_or(ECHO_IMAGE, |(r, _)| r);
    format!("{repository}@{}", digest.trim())
}

/// Reserved concurrency and namespace isolation, returning the figures for the report.
async fn throttling(flooded: &Scenario, neighbour: &Scenario) -> String {
    // Three pods with no per-pod limit: only maxConcurrency can hold requests back.
    let spec = echo_spec(json!({
        "image": pinned_echo().await,
        "scale": {"initial": 3, "min": 3, "maxConcurrency": 10, "maxQueued": 10},
    }));
    flooded.apply("capped", spec).await;
    neighbour
        .apply("calm", echo_spec(json!({"scale": {"initial": 1, "min": 1}})))
        .await;
    flooded.wait_ready("capped").await;
    neighbour.wait_ready("calm").await;
    flooded
        .wait_replicas("capped", "3 ready pods", Duration::from_secs(60), |_, r| r == 3)
        .await;
    let host = flooded.host("capped").await;
    let calm_host = neighbour.host("calm").await;
    // 2 s per request, 10 at a time: the function drains 5 requests a second.
    let url = format!("{}/?sleep=2000", flooded.installed.activator_url);
    let began = Instant::now();
    let until = began + Duration::from_secs(16);
    let clients: Vec<_> = (0..50)
        .map(|_| tokio::spawn(client_loop(url.clone(), host.clone(), began, until)))
        .collect();

    // Meanwhile the other namespace's function answers every request at once.
    let mut calm_latencies = Vec::new();
    tokio::time::sleep(Duration::from_secs(3)).await;
    for _ in 0..20 {
        let t = Instant::now();
        let (status, body) = neighbour.get_ok(&calm_host, "/", Duration::from_secs(10)).await;
        assert_eq!(
            status, 200,
            "the other namespace's request failed during the flood: {body}"
        );
        calm_latencies.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let mut flood = Flood::default();
    for c in clients {
        let part = c.await.expect("client task");
        flood.served.extend(part.served);
        flood.throttled.extend(part.throttled);
        flood.other.extend(part.other);
    }
    assert!(
        flood.other.is_empty(),
        "unexpected answers: {:?}",
        &flood.other[..flood.other.len().min(5)]
    );
    let intervals: Vec<(u64, u64)> = flood.served.iter().map(|&(s, e, _)| (s, e)).collect();
    let peak = max_overlap(&intervals);
    let mut pods: Vec<&str> = flood.served.iter().map(|(_, _, p)| p.as_str()).collect();
    pods.sort_unstable();
    pods.dedup();
    assert!(
        peak <= 10,
        "{peak} requests in flight at once across pods {pods:?}"
    );
    assert!(peak >= 8, "the cap was not used: at most {peak} in flight");
    assert!(pods.len() >= 2, "served by one pod only: {pods:?}");
    assert!(
        !flood.throttled.is_empty(),
        "50 clients against 10 + 10 queued were never throttled"
    );
    // Once the function has drained for a few seconds, Retry-After is the time 10 queued requests
    // (plus the refused one) take at 5 a second: ceil(11 / 5) = 3, give or take the scheduling of
    // a busy two-core machine; never the 30 s of "no drain observed".
    let settled: Vec<u64> = flood
        .throttled
        .iter()
        .filter(|(at, _)| *at >= 8.0)
        .map(|&(_, secs)| secs)
        .collect();
    assert!(!settled.is_empty(), "no 429 after the drain rate settled");
    assert!(
        settled.iter().all(|&s| (2..=5).contains(&s)),
        "Retry-After after 8 s: {settled:?}"
    );
    let calm_max = calm_latencies.iter().max().copied().unwrap_or_default();
    assert!(
        calm_max < Duration::from_secs(2),
        "the other namespace waited {calm_max:?}"
    );
    let mut histogram = std::collections::BTreeMap::new();
    for s in &settled {
        *histogram.entry(*s).or_insert(0) += 1;
    }
    format!(
        "{} served by {} pods, peak {peak} in flight; {} answered 429, Retry-After after 8 s {histogram:?} \
         (expected ceil(11/5) = 3); other namespace: 20/20 ok, slowest {:.0} ms",
        flood.served.len(),
        pods.len(),
        flood.throttled.len(),
        calm_max.as_secs_f64() * 1000.0
    )
}

#[tokio::test]
async fn schedules_and_reserved_concurrency() {
    let warm = Scenario::new("throttle-warm").await;
    let flooded = Scenario::new("throttle-flood").await;
    let neighbour = Scenario::new("throttle-calm").await;
    let (window, throttle) = tokio::join!(schedule_window(&warm), throttling(&flooded, &neighbour));
    eprintln!("throttle: {window}");
    eprintln!("throttle: {throttle}");
}
