use zeroscale_common::revision_stats::RevisionCounts;

use super::*;

fn counts(requests: u64, errors: u64) -> Counts {
    Counts {
        requests,
        errors,
        latency_ms: Vec::new(),
    }
}

fn reading(instance: &str, requests: u64, errors: u64) -> Reading {
    Reading {
        instance: instance.into(),
        counts: counts(requests, errors),
    }
}

fn step(started: &str) -> StepKey {
    StepKey {
        function: "default/echo".into(),
        revision: "echo-bbbbbbbbbb".into(),
        step_started_at: started.into(),
    }
}

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + second).unwrap()
}

#[test]
fn the_first_reading_is_the_baseline_and_later_ones_subtract_it() {
    let baselines = Baselines::default();
    let first = HashMap::from([
        ("a0".to_string(), reading("i0", 100, 5)),
        ("a1".to_string(), reading("i1", 50, 0)),
    ]);
    let w = baselines.window(&step("t0"), first, at(0));
    assert_eq!((w.since, w.counts.requests), (Some(at(0)), 0));
    let later = HashMap::from([
        ("a0".to_string(), reading("i0", 130, 9)),
        ("a1".to_string(), reading("i1", 60, 1)),
    ]);
    let w = baselines.window(&step("t0"), later, at(4));
    assert_eq!(w.since, Some(at(0)));
    assert_eq!((w.counts.requests, w.counts.errors), (40, 5));
}

#[test]
fn restarted_and_new_activators_count_whole() {
    let baselines = Baselines::default();
    let first = HashMap::from([("a0".to_string(), reading("i0", 100, 5))]);
    baselines.window(&step("t0"), first, at(0));
    // a0 restarted (new instance, counters from zero, already above the old baseline's errors); a1 is new.
    let later = HashMap::from([
        ("a0".to_string(), reading("i9", 7, 6)),
        ("a1".to_string(), reading("i1", 3, 0)),
    ]);
    let w = baselines.window(&step("t0"), later, at(4));
    assert_eq!((w.counts.requests, w.counts.errors), (10, 6));
}

#[test]
fn a_new_step_starts_a_new_window() {
    let baselines = Baselines::default();
    baselines.window(
        &step("t0"),
        HashMap::from([("a0".to_string(), reading("i0", 10, 0))]),
        at(0),
    );
    let w = baselines.window(
        &step("t10"),
        HashMap::from([("a0".to_string(), reading("i0", 50, 0))]),
        at(10),
    );
    assert_eq!((w.since, w.counts.requests), (Some(at(10)), 0));
    let w = baselines.window(
        &step("t10"),
        HashMap::from([("a0".to_string(), reading("i0", 55, 1))]),
        at(12),
    );
    assert_eq!((w.counts.requests, w.counts.errors), (5, 1));
    baselines.forget("default/echo");
    let w = baselines.window(
        &step("t10"),
        HashMap::from([("a0".to_string(), reading("i0", 60, 1))]),
        at(14),
    );
    assert_eq!((w.since, w.counts.requests), (Some(at(14)), 0));
}

#[test]
fn readings_pick_the_canary_of_the_function_from_each_report() {
    let report = |activator: &str, revision: &str, requests: u64| StatsReport {
        activator: activator.into(),
        instance: format!("{activator}-i"),
        latency_bounds_ms: Vec::new(),
        revisions: vec![RevisionCounts {
            namespace: "default".into(),
            function: "echo".into(),
            revision: revision.into(),
            counts: counts(requests, 0),
        }],
    };
    let reports = [
        report("a0", "echo-bbbbbbbbbb", 7),
        report("a1", "echo-aaaaaaaaaa", 9),
    ];
    let r = readings(&reports, "default", "echo", "echo-bbbbbbbbbb");
    assert_eq!(r["a0"], reading("a0-i", 7, 0));
    // An activator that has not served the canary yet reads zero.
    assert_eq!(r["a1"], reading("a1-i", 0, 0));
}
