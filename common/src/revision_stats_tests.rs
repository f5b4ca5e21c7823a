use super::*;

fn counts(requests: u64, errors: u64, latencies: &[u64]) -> Counts {
    let mut c = Counts::default();
    for (i, ms) in latencies.iter().enumerate() {
        c.record(if (i as u64) < errors { 503 } else { 200 }, Some(*ms));
    }
    for _ in latencies.len() as u64..requests {
        c.record(200, None);
    }
    c
}

#[test]
fn buckets_are_inclusive_upper_bounds() {
    assert_eq!(bucket_of(0), 0);
    assert_eq!(bucket_of(1), 0);
    assert_eq!(bucket_of(2), 1);
    assert_eq!(bucket_of(101), 7);
    assert_eq!(bucket_of(u64::MAX), LATENCY_BOUNDS_MS.len());
}

#[test]
fn five_hundreds_are_errors_and_four_hundreds_are_not() {
    let mut c = Counts::default();
    c.record(500, Some(3));
    c.record(404, Some(3));
    c.record(502, None);
    assert_eq!((c.requests, c.errors), (3, 2));
    assert_eq!(c.latency_ms.iter().sum::<u64>(), 2);
    assert_eq!(c.error_rate(), Some(2.0 / 3.0));
    assert_eq!(Counts::default().error_rate(), None);
}

#[test]
fn p99_is_the_bound_of_the_bucket_holding_the_99th_percentile() {
    // 99 fast requests and one slow: the 99th percentile is still fast.
    let mut latencies = vec![4; 99];
    latencies.push(900);
    assert_eq!(counts(100, 0, &latencies).p99_ms(), Some(5));
    // Two slow of 100: the 99th is slow.
    latencies[0] = 900;
    assert_eq!(counts(100, 0, &latencies).p99_ms(), Some(1000));
    assert_eq!(counts(3, 0, &[]).p99_ms(), None);
    assert_eq!(counts(1, 0, &[u64::MAX]).p99_ms(), Some(u64::MAX));
}

#[test]
fn deltas_subtract_and_a_reset_counts_whole() {
    let before = counts(10, 1, &[3; 10]);
    let mut after = before.clone();
    after.add(&counts(5, 5, &[700; 5]));
    let delta = after.since(&before);
    assert_eq!((delta.requests, delta.errors), (5, 5));
    assert_eq!(delta.p99_ms(), Some(750));
    // The activator restarted: its counters went down, so all it has now is new.
    let restarted = counts(4, 0, &[3; 4]);
    assert_eq!(restarted.since(&before), restarted);
    // Nothing new.
    assert_eq!(before.since(&before).requests, 0);
}

#[test]
fn reports_round_trip_as_camel_case_json() {
    let report = StatsReport {
        activator: "zeroscale-activator-0".into(),
        instance: "1".into(),
        latency_bounds_ms: LATENCY_BOUNDS_MS.to_vec(),
        revisions: vec![RevisionCounts {
            namespace: "shop".into(),
            function: "cart".into(),
            revision: "cart-0123456789".into(),
            counts: counts(2, 1, &[3, 4]),
        }],
    };
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["revisions"][0]["requests"], 2);
    assert_eq!(json["revisions"][0]["latencyMs"][2], 2);
    assert_eq!(json["latencyBoundsMs"][0], 1);
    let back: StatsReport = serde_json::from_value(json).unwrap();
    assert_eq!(back, report);
}
