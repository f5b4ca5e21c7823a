//! The CESQL conformance suite (`tck.yaml`, from the specification's TCK) as one table-driven test.

use std::collections::BTreeMap;

use cloudevents::Event;
use serde::Deserialize;
use serde_json::json;

use super::{ErrorKind, Expression, Value};

#[derive(Deserialize)]
struct Group {
    file: String,
    tests: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Case {
    name: String,
    expression: String,
    result: Option<serde_json::Value>,
    error: Option<String>,
    event: Option<BTreeMap<String, serde_json::Value>>,
    event_overrides: Option<BTreeMap<String, serde_json::Value>>,
    known_difference: Option<String>,
}

fn event(case: &Case) -> Event {
    let mut attributes = case.event.clone().unwrap_or_else(|| {
        BTreeMap::from([
            ("specversion".to_string(), json!("1.0")),
            ("id".to_string(), json!("tck-id")),
            ("source".to_string(), json!("http://tck.example/source")),
            ("type".to_string(), json!("tck.type")),
        ])
    });
    attributes.extend(case.event_overrides.clone().unwrap_or_default());
    serde_json::from_value(serde_json::to_value(attributes).expect("json")).expect("a valid event")
}

fn expected_value(result: &serde_json::Value) -> Value {
    match result {
        serde_json::Value::Bool(b) => Value::Boolean(*b),
        serde_json::Value::Number(n) => {
            Value::Integer(n.as_i64().and_then(|i| i32::try_from(i).ok()).expect("32-bit"))
        }
        serde_json::Value::String(s) => Value::String(s.clone()),
        other => panic!("unexpected result {other}"),
    }
}

fn error_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Parse => "parse",
        ErrorKind::Math => "math",
        ErrorKind::Cast => "cast",
        ErrorKind::MissingAttribute => "missingAttribute",
        ErrorKind::MissingFunction => "missingFunction",
        ErrorKind::FunctionEvaluation => "functionEvaluation",
    }
}

/// What the case gives: `Err` with why it differs from what the TCK expects.
fn run(case: &Case) -> Result<(), String> {
    let evaluation = match Expression::parse(&case.expression) {
        Err(e) => {
            return match case.error.as_deref() {
                Some("parse") => Ok(()),
                other => Err(format!("parse error {e}, expected {other:?}")),
            };
        }
        Ok(expression) => expression.evaluate(&event(case)),
    };
    let first_error = evaluation.errors.first().map(|e| error_name(e.kind));
    if first_error != case.error.as_deref() {
        return Err(format!(
            "errors {:?}, expected {:?}",
            evaluation.errors, case.error
        ));
    }
    if let Some(result) = &case.result {
        let want = expected_value(result);
        if evaluation.value != want {
            return Err(format!("value {:?}, expected {want:?}", evaluation.value));
        }
    }
    Ok(())
}

#[test]
fn the_cesql_conformance_suite_passes() {
    let groups: Vec<Group> = serde_yaml::from_str(include_str!("tck.yaml")).expect("tck.yaml");
    let (mut passed, mut known, mut failures) = (0, 0, Vec::new());
    for group in &groups {
        for case in &group.tests {
            match (run(case), &case.known_difference) {
                (Ok(()), None) => passed += 1,
                (Err(_), Some(_)) => known += 1,
                (Ok(()), Some(_)) => failures.push(format!(
                    "{} / {}: passes, drop its knownDifference",
                    group.file, case.name
                )),
                (Err(why), None) => failures.push(format!(
                    "{} / {} ({}): {why}",
                    group.file, case.name, case.expression
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Guards against a truncated or mis-read table (284 cases, one known difference).
    assert_eq!((passed, known), (283, 1));
}
