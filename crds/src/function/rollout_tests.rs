use super::*;

fn spec(steps: &[i32], interval: &str, rate: &str) -> RolloutSpec {
    RolloutSpec {
        steps: steps.to_vec(),
        interval: interval.into(),
        max_error_rate: rate.into(),
        ..RolloutSpec::default()
    }
}

#[test]
fn defaults_resolve_to_ten_fifty_hundred_each_a_minute() {
    let resolved = RolloutSpec::default().resolve().unwrap();
    assert_eq!(resolved.steps, vec![10, 50, 100]);
    assert_eq!(resolved.interval, Duration::from_secs(60));
    assert!((resolved.max_error_rate - 0.05).abs() < 1e-12);
    assert_eq!(resolved.max_p99_latency, None);
    assert_eq!(resolved.min_requests, 20);
}

#[test]
fn percentages_parse_as_fractions() {
    assert_eq!(parse_percent("5%"), Some(0.05));
    assert_eq!(parse_percent("0.5%"), Some(0.005));
    assert_eq!(parse_percent("100%"), Some(1.0));
    assert_eq!(parse_percent("0%"), Some(0.0));
    for bad in ["5", "101%", "-1%", "%", "five%", "1e2%", ""] {
        assert_eq!(parse_percent(bad), None, "{bad}");
    }
}

#[test]
fn bad_steps_are_named() {
    for steps in [
        &[][..],
        &[10, 50][..],
        &[50, 10, 100][..],
        &[10, 10, 100][..],
        &[0, 100][..],
        &[10, 101][..],
    ] {
        assert_eq!(
            spec(steps, "1m", "5%").resolve(),
            Err(RolloutError::Steps(steps.to_vec())),
            "{steps:?}"
        );
    }
    assert!(spec(&[100], "1m", "5%").resolve().is_ok());
}

#[test]
fn interval_and_rate_are_checked() {
    assert!(matches!(
        spec(&[100], "2s", "5%").resolve(),
        Err(RolloutError::IntervalOutOfRange(_))
    ));
    assert!(matches!(
        spec(&[100], "soon", "5%").resolve(),
        Err(RolloutError::Interval(_))
    ));
    assert_eq!(
        spec(&[100], "10s", "5").resolve(),
        Err(RolloutError::ErrorRate("5".into()))
    );
    let err = spec(&[100], "10s", "5").resolve().unwrap_err().to_string();
    assert!(err.starts_with("spec.rollout.maxErrorRate"), "{err}");
}

#[test]
fn the_error_rate_pattern_agrees_with_the_parser() {
    // The CEL rule uses the same pattern; check it against the parser on the edge cases with a
    // hand-rolled matcher of its two alternatives.
    let cel_accepts = |v: &str| {
        let Some(n) = v.strip_suffix('%') else {
            return false;
        };
        let (int, frac) = n.split_once('.').map_or((n, None), |(i, f)| (i, Some(f)));
        let frac_ok = frac.is_none_or(|f| !f.is_empty() && f.chars().all(|c| c.is_ascii_digit()));
        let hundred = int == "100" && frac.is_none_or(|f| !f.is_empty() && f.chars().all(|c| c == '0'));
        let small = (1..=2).contains(&int.len()) && int.chars().all(|c| c.is_ascii_digit()) && frac_ok;
        hundred || small
    };
    for v in [
        "5%", "0.5%", "100%", "100.0%", "99.99%", "100.5%", "101%", "5", "%", ".5%", "5.%", "007%", " 5%",
    ] {
        assert_eq!(cel_accepts(v), parse_percent(v).is_some(), "{v}");
    }
    assert!(ERROR_RATE_PATTERN.starts_with('^') && ERROR_RATE_PATTERN.ends_with('$'));
}

#[test]
fn admission_rules_are_in_the_schema_and_name_the_field() {
    let schema = serde_json::to_value(schemars::schema_for!(RolloutSpec)).unwrap();
    let messages: Vec<&str> = schema["x-kubernetes-validations"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| r["message"].as_str())
        .collect();
    assert_eq!(messages.len(), 6, "{messages:?}");
    assert!(
        messages.iter().all(|m| m.starts_with("spec.rollout.")),
        "{messages:?}"
    );
    let increasing = schema["x-kubernetes-validations"][1]["rule"].as_str().unwrap();
    assert!(increasing.contains("19].all("), "{increasing}");
    assert_eq!(schema["properties"]["steps"]["maxItems"], MAX_STEPS);
}
