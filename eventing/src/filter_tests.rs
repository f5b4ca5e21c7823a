use cloudevents::{EventBuilder, EventBuilderV03, EventBuilderV10};
use serde_json::{Value, json};
use zeroscale_crds::trigger::TriggerFilter;

use super::*;

fn event() -> Event {
    EventBuilderV10::new()
        .id("order-1")
        .ty("com.example.order.created")
        .source("/shop/eu/orders")
        .subject("images/cat.png")
        .time("2025-03-01T10:00:00Z")
        .extension("region", "eu-west")
        .extension("priority", 7_i64)
        .extension("urgent", true)
        .build()
        .unwrap()
}

fn filter(value: Value) -> Filter {
    let node: TriggerFilter = serde_json::from_value(value).unwrap();
    Filter::compile(&node).unwrap()
}

fn matches(value: Value) -> bool {
    filter(value).matches(&event())
}

#[test]
fn exact_matches_attributes_and_extensions_case_sensitively() {
    assert!(matches(json!({"exact": {"type": "com.example.order.created"}})));
    assert!(matches(
        json!({"exact": {"source": "/shop/eu/orders", "id": "order-1"}})
    ));
    assert!(matches(json!({"exact": {"region": "eu-west"}})));
    assert!(matches(json!({"exact": {"specversion": "1.0"}})));
    assert!(
        !matches(json!({"exact": {"type": "com.example.order.Created"}})),
        "case-sensitive"
    );
    assert!(
        !matches(json!({"exact": {"type": "com.example.order"}})),
        "whole value"
    );
    assert!(
        !matches(json!({"exact": {"type": "com.example.order.created", "region": "us"}})),
        "every entry must hold"
    );
}

#[test]
fn exact_compares_canonical_string_forms_of_typed_values() {
    assert!(matches(json!({"exact": {"priority": "7"}})));
    assert!(matches(json!({"exact": {"urgent": "true"}})));
    assert!(matches(json!({"exact": {"time": "2025-03-01T10:00:00+00:00"}})));
}

#[test]
fn missing_attribute_never_matches_exact_prefix_or_suffix() {
    assert!(!matches(json!({"exact": {"tenant": ""}})));
    assert!(!matches(json!({"prefix": {"tenant": ""}})));
    assert!(!matches(json!({"suffix": {"dataschema": ""}})));
    // ... so `not` of such a filter matches events without the attribute.
    assert!(matches(json!({"not": {"exact": {"tenant": "acme"}}})));
}

#[test]
fn prefix_and_suffix() {
    assert!(matches(json!({"prefix": {"type": "com.example."}})));
    assert!(matches(json!({"prefix": {"source": "/shop", "region": "eu"}})));
    assert!(!matches(json!({"prefix": {"type": "example"}})));
    assert!(
        matches(json!({"prefix": {"type": ""}})),
        "empty prefix means the attribute exists"
    );
    assert!(matches(json!({"suffix": {"subject": ".png"}})));
    assert!(matches(
        json!({"suffix": {"type": ".created", "region": "-west"}})
    ));
    assert!(!matches(json!({"suffix": {"subject": ".jpg"}})));
}

#[test]
fn all_any_not() {
    assert!(matches(
        json!({"all": [{"exact": {"region": "eu-west"}}, {"prefix": {"type": "com."}}]})
    ));
    assert!(!matches(
        json!({"all": [{"exact": {"region": "eu-west"}}, {"prefix": {"type": "org."}}]})
    ));
    assert!(matches(
        json!({"any": [{"exact": {"region": "us"}}, {"suffix": {"type": "created"}}]})
    ));
    assert!(!matches(
        json!({"any": [{"exact": {"region": "us"}}, {"suffix": {"type": "deleted"}}]})
    ));
    assert!(matches(json!({"not": {"exact": {"region": "us"}}})));
    assert!(!matches(json!({"not": {"exact": {"region": "eu-west"}}})));
}

#[test]
fn nested_four_levels() {
    // any → all → not → exact: (region starts with eu AND NOT subject ends with .gif) OR type is x.
    let nested = json!({"any": [
        {"all": [{"prefix": {"region": "eu"}}, {"not": {"suffix": {"subject": ".gif"}}}]},
        {"exact": {"type": "x"}},
    ]});
    assert!(matches(nested));
    let nested = json!({"any": [
        {"all": [{"prefix": {"region": "eu"}}, {"not": {"suffix": {"subject": ".png"}}}]},
        {"exact": {"type": "x"}},
    ]});
    assert!(!matches(nested));
    assert!(matches(
        json!({"not": {"not": {"not": {"exact": {"region": "us"}}}}})
    ));
}

#[test]
fn a_triggers_filter_list_is_and_and_empty_matches_everything() {
    let list: Vec<TriggerFilter> = serde_json::from_value(json!([
        {"exact": {"region": "eu-west"}}, {"suffix": {"subject": ".png"}},
    ]))
    .unwrap();
    assert!(Filters::compile(&list).unwrap().matches(&event()));
    let list: Vec<TriggerFilter> =
        serde_json::from_value(json!([{"exact": {"region": "eu-west"}}, {"exact": {"subject": "x"}}]))
            .unwrap();
    assert!(!Filters::compile(&list).unwrap().matches(&event()));
    assert!(Filters::compile::<TriggerFilter>(&[]).unwrap().matches(&event()));
}

#[test]
fn filters_work_on_cloudevents_0_3() {
    let old = EventBuilderV03::new()
        .id("1")
        .ty("t.v03")
        .source("/s")
        .build()
        .unwrap();
    assert!(filter(json!({"exact": {"specversion": "0.3", "type": "t.v03"}})).matches(&old));
}

#[test]
fn invalid_filters_are_rejected_with_a_reason() {
    let compile = |value: Value| {
        let node: TriggerFilter = serde_json::from_value(value).unwrap();
        Filter::compile(&node)
    };
    assert_eq!(compile(json!({})), Err(FilterError::NoDialect));
    assert_eq!(
        compile(json!({"exact": {"a": "b"}, "prefix": {"a": "b"}})),
        Err(FilterError::SeveralDialects("exact, prefix".into()))
    );
    assert_eq!(compile(json!({"exact": {}})), Err(FilterError::Empty("exact")));
    assert_eq!(compile(json!({"any": []})), Err(FilterError::Empty("any")));
    assert_eq!(
        compile(json!({"exact": {"Type": "x"}})),
        Err(FilterError::AttributeName("Type".into()))
    );
    assert_eq!(
        compile(json!({"not": {"all": [{}]}})),
        Err(FilterError::NoDialect),
        "checked when nested"
    );
}

#[test]
fn cesql_filters_evaluate_attributes_and_typed_extensions() {
    assert!(matches(
        json!({"cesql": "type LIKE 'com.example.order.%' AND priority > 5"})
    ));
    assert!(matches(
        json!({"cesql": "urgent AND region IN ('eu-west', 'eu-north')"})
    ));
    assert!(matches(
        json!({"cesql": "subject LIKE 'images/%.png' AND EXISTS time"})
    ));
    assert!(!matches(json!({"cesql": "priority > 7"})));
    assert!(
        !matches(json!({"cesql": "missing = 'x' OR true"})),
        "an error never matches"
    );
    assert!(matches(
        json!({"any": [{"cesql": "false"}, {"not": {"cesql": "region = 'us'"}}]})
    ));
    // Like `not: {exact: {missing: ...}}`, `not` around a failing expression matches.
    assert!(!matches(json!({"cesql": "missing = 'x'"})));
    assert!(matches(json!({"not": {"cesql": "missing = 'x'"}})));
}

#[test]
fn invalid_cesql_is_rejected_with_its_position() {
    let compile = |value: Value| {
        let node: TriggerFilter = serde_json::from_value(value).unwrap();
        Filter::compile(&node).map_err(|e| e.to_string())
    };
    assert_eq!(
        compile(json!({"cesql": "type LIKE"})),
        Err("cesql: syntax error: unexpected end of expression: expected a string literal (the pattern of LIKE) at 1:10".into())
    );
    assert_eq!(
        compile(json!({"all": [{"cesql": "UPPERCASE(type) = 'X'"}]})),
        Err("cesql: type error: unknown function UPPERCASE with 1 argument at 1:1".into())
    );
    assert_eq!(
        compile(json!({"cesql": "true", "exact": {"a": "b"}})),
        Err("a filter must set exactly one dialect, found exact, cesql".into())
    );
}
