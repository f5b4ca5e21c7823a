//! Smoke test of the simulator on `azure2019-sample10`, with invariants that hold for any trace.
//!
//! The traces live in the `shared/` checkout beside the repository (`<repo>/../shared/traces`), or
//! wherever `ZEROSCALE_TRACES` points.

use std::path::PathBuf;

use zeroscale_autoscaler::sim::{self, POLICIES, Policy, trace};

fn traces() -> PathBuf {
    let dir = std::env::var_os("ZEROSCALE_TRACES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/traces"));
    let sample = dir.join("azure2019-sample10");
    assert!(
        sample.join("invocations.csv").is_file(),
        "traces not found at {}: check out shared/ beside the repository or set ZEROSCALE_TRACES",
        sample.display()
    );
    sample
}

#[test]
fn every_policy_on_sample10_keeps_the_invariants() {
    let dir = traces();
    let functions = trace::load(&dir).expect("trace loads");
    let expected: Vec<u64> = functions.iter().map(trace::TraceFunction::invocations).collect();
    let policies: Vec<Policy> = POLICIES
        .iter()
        .map(|p| Policy::parse(p).expect("known policy"))
        .collect();
    let reports = sim::simulate(&dir, &policies, 1, std::time::Duration::from_secs(1)).expect("simulates");

    for r in &reports {
        // Every invocation is counted exactly once, per function and in total.
        assert_eq!(r.functions, functions.len());
        assert_eq!(r.invocations, expected.iter().sum::<u64>(), "{}", r.policy);
        for (f, want) in r.per_function.iter().zip(&expected) {
            assert_eq!(f.invocations, *want, "{} {}", r.policy, f.hash);
            assert!(
                f.cold_starts >= 1 && f.cold_starts + f.queued <= f.invocations,
                "{} {}",
                r.policy,
                f.hash
            );
            assert!(f.idle_pod_seconds >= 0.0, "{} {}", r.policy, f.hash);
            assert!(
                f.idle_pod_seconds <= f.total_pod_seconds,
                "{} {}",
                r.policy,
                f.hash
            );
        }
        assert!(r.idle_pod_seconds <= r.total_pod_seconds, "{}", r.policy);
        assert!(r.per_function_cold_start_pct_p50 <= r.per_function_cold_start_pct_p75);
    }

    // A longer keep-alive never gives more cold starts, per function and in total.
    let fixed: Vec<_> = reports
        .iter()
        .filter(|r| r.policy.starts_with("fixed_"))
        .collect();
    for pair in fixed.windows(2) {
        let (shorter, longer) = (pair[0], pair[1]);
        assert!(
            longer.cold_starts <= shorter.cold_starts,
            "{} vs {}",
            longer.policy,
            shorter.policy
        );
        assert!(longer.total_pod_seconds >= shorter.total_pod_seconds);
        for (a, b) in shorter.per_function.iter().zip(&longer.per_function) {
            assert!(
                b.cold_starts <= a.cold_starts,
                "{}: {} vs {}",
                a.hash,
                longer.policy,
                shorter.policy
            );
        }
    }
}

#[test]
fn predictive_beats_kpa_on_sample10() {
    let dir = traces();
    let policies = ["kpa", "predictive", "fixed_10m"].map(|p| Policy::parse(p).expect("known policy"));
    let reports = sim::simulate(&dir, &policies, 1, std::time::Duration::from_secs(1)).expect("simulates");
    let [kpa, predictive, fixed_10m] = [&reports[0], &reports[1], &reports[2]];
    // The rule that chose the parameters on this sample (docs/simulator.md): fewer cold starts
    // than the KPA at no more idle time, and far less idle time than the 10-minute keep-alive.
    assert!(predictive.cold_starts < kpa.cold_starts);
    assert!(predictive.idle_pod_seconds <= kpa.idle_pod_seconds);
    assert!(predictive.idle_pod_seconds < fixed_10m.idle_pod_seconds / 2.0);
    // Most of the cold starts avoided are those at zero, the ones a keep-alive policy decides.
    assert!(predictive.at_zero < kpa.at_zero);
    // The idle split covers all idle time of the KPA-driven policies.
    for r in [kpa, predictive] {
        for f in &r.per_function {
            let s = f.idle_split.expect("kpa and predictive split their idle time");
            let sum = s.kpa + s.keep_alive + s.prewarm + s.above_one;
            assert!(
                (sum - f.idle_pod_seconds).abs() < 1e-3,
                "{} {}: {sum}",
                r.policy,
                f.hash
            );
        }
    }
    assert!(fixed_10m.per_function.iter().all(|f| f.idle_split.is_none()));
    // The cold-start split (`--cold-split`) covers every cold start; one that found no pod is
    // one of those at zero.
    for r in [kpa, predictive, fixed_10m] {
        for f in &r.per_function {
            assert_eq!(
                f.cold_from_zero + f.cold_starting + f.cold_scale_up,
                f.cold_starts,
                "{} {}",
                r.policy,
                f.hash
            );
            assert!(f.cold_from_zero >= f.at_zero, "{} {}", r.policy, f.hash);
        }
        assert_eq!(
            r.cold_from_zero + r.cold_starting + r.cold_scale_up,
            r.cold_starts
        );
    }
}

#[test]
fn simulate_command_writes_the_documented_json() {
    let dir = traces();
    let out = std::env::temp_dir().join(format!("zeroscale-sim-{}.json", std::process::id()));
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_zeroscale-simulate"))
        .args(["--policy", "kpa", "--trace"])
        .arg(&dir)
        .arg("--out")
        .arg(&out)
        .status()
        .expect("runs");
    assert!(status.success());
    let text = std::fs::read_to_string(&out).expect("report written");
    std::fs::remove_file(&out).ok();
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    for key in [
        "policy",
        "functions",
        "invocations",
        "cold_starts",
        "cold_start_pct",
        "queued",
        "queued_pct",
        "at_zero",
        "cold_from_zero",
        "cold_starting",
        "cold_scale_up",
        "idle_pod_seconds",
        "total_pod_seconds",
        "per_function_cold_start_pct_p50",
        "per_function_cold_start_pct_p75",
        "per_function",
    ] {
        assert!(json.get(key).is_some(), "missing {key} in {text}");
    }
    assert_eq!(json["policy"], "kpa");
    assert_eq!(json["functions"], 10);
}
