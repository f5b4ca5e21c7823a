use kube::{CustomResourceExt, Resource};
use serde_json::{Value, json};

use super::*;

fn spec(value: Value) -> TriggerSpec {
    serde_json::from_value(value).expect("spec decodes")
}

fn schema() -> Value {
    let crd = Trigger::crd();
    let version = &crd.spec.versions[0];
    serde_json::to_value(
        version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref()),
    )
    .unwrap()
}

fn rules(node: &Value) -> Vec<String> {
    node["x-kubernetes-validations"]
        .as_array()
        .map(|rules| {
            rules
                .iter()
                .map(|r| r["message"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn broker_trigger_takes_knative_delivery_defaults() {
    let spec = spec(json!({"source": {"broker": {}}, "subscriber": {"function": "hello"}}));
    assert_eq!(spec.source.kind(), Some("broker"));
    assert!(spec.filters.is_empty());
    assert_eq!(spec.delivery.retries, 3);
    assert_eq!(spec.delivery.backoff_policy, BackoffPolicy::Exponential);
    assert_eq!(spec.delivery.backoff_delay, "200ms");
    assert_eq!(spec.delivery.timeout, None);
    // `broker: {}` survives a round trip, so `has(self.broker)` still holds after the API server stores it.
    let back = serde_json::to_value(&spec).unwrap();
    assert_eq!(back["source"], json!({"broker": {}}));
}

#[test]
fn schedule_and_kubernetes_sources_decode() {
    let schedule = spec(json!({
        "source": {"schedule": {"cron": "* * * * *", "timeZone": "Europe/Paris", "data": "{\"a\":1}",
                                "contentType": "application/json"}},
        "subscriber": {"uri": "http://sink.default.svc/events"},
        "delivery": {"retries": 5, "backoffPolicy": "linear", "backoffDelay": "1s", "timeout": "10s",
                     "deadLetterSink": {"function": "dlq"}},
    }));
    let s = schedule.source.schedule.as_ref().unwrap();
    assert_eq!(s.time_zone.as_deref(), Some("Europe/Paris"));
    assert_eq!(schedule.delivery.backoff_policy, BackoffPolicy::Linear);
    assert_eq!(
        schedule.delivery.dead_letter_sink.unwrap().function.as_deref(),
        Some("dlq")
    );

    let kube = spec(json!({
        "source": {"kubernetes": {"apiVersion": "v1", "kind": "ConfigMap", "labelSelector": "app=web"}},
        "subscriber": {"function": "hello"},
    }));
    assert_eq!(kube.source.kind(), Some("kubernetes"));
    assert_eq!(
        kube.source.kubernetes.unwrap().label_selector.as_deref(),
        Some("app=web")
    );
}

#[test]
fn two_sources_have_no_kind() {
    let spec = spec(json!({
        "source": {"broker": {}, "schedule": {"cron": "* * * * *"}},
        "subscriber": {"function": "hello"},
    }));
    assert_eq!(spec.source.kind(), None);
}

#[test]
fn nested_filters_decode_to_four_levels_and_read_through_filter_node() {
    let spec = spec(json!({
        "source": {"broker": {}},
        "subscriber": {"function": "hello"},
        "filters": [
            {"exact": {"type": "com.example.order"}},
            {"any": [
                {"prefix": {"source": "/shop"}},
                {"all": [{"suffix": {"subject": ".png"}}, {"not": {"exact": {"region": "eu"}}}]},
            ]},
        ],
    }));
    assert_eq!(spec.filters.len(), 2);
    let any = spec.filters[1].any().unwrap();
    assert_eq!(any.len(), 2);
    let all = any[1].all().unwrap();
    let not = all[1].not().unwrap();
    assert_eq!(not.exact().unwrap()["region"], "eu");
    assert!(not.all().is_none() && not.any().is_none() && not.not().is_none());
}

#[test]
fn a_fifth_level_is_not_part_of_the_type() {
    // The leaf has no `all`/`any`/`not`: serde ignores the field (the API server prunes it), and the
    // leaf's "exactly one of exact, prefix, suffix or cesql" rule then rejects the empty filter.
    let leaf: LeafFilter = serde_json::from_value(json!({"not": {"exact": {"a": "b"}}})).unwrap();
    assert_eq!(leaf, LeafFilter::default());
}

#[test]
fn crd_has_category_status_and_printer_columns() {
    let crd = Trigger::crd();
    assert_eq!(crd.spec.group, "zeroscale.dev");
    assert_eq!(crd.spec.names.kind, "Trigger");
    assert_eq!(crd.spec.names.categories, Some(vec!["zeroscale".to_string()]));
    assert_eq!(crd.spec.scope, "Namespaced");
    let version = &crd.spec.versions[0];
    assert_eq!(version.name, "v1alpha1");
    assert!(
        version
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some()
    );
    let columns: Vec<&str> = version
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(columns, ["SOURCE", "SUBSCRIBER", "READY", "REASON", "AGE"]);
    assert_eq!(Trigger::api_version(&()), "zeroscale.dev/v1alpha1");
}

#[test]
fn schema_is_structural_and_carries_the_cel_rules() {
    let schema = schema();
    let text = schema.to_string();
    assert!(!text.contains("$ref"), "structural schemas cannot use $ref");
    assert!(
        !text.contains("anyOf") && !text.contains("oneOf"),
        "no unions in a structural schema"
    );

    let spec = &schema["properties"]["spec"]["properties"];
    assert!(
        rules(&spec["source"])
            .iter()
            .any(|m| m.contains("spec.source must set exactly one"))
    );
    assert!(
        rules(&spec["subscriber"])
            .iter()
            .any(|m| m.contains("exactly one of function or uri"))
    );
    let delivery = rules(&spec["delivery"]);
    assert!(
        delivery
            .iter()
            .any(|m| m.starts_with("spec.delivery.backoffDelay must be a duration"))
    );
    assert!(
        delivery
            .iter()
            .any(|m| m.starts_with("spec.delivery.timeout must be a duration"))
    );
    let dls = &spec["delivery"]["properties"]["deadLetterSink"];
    assert!(
        rules(dls)
            .iter()
            .any(|m| m.contains("exactly one of function or uri"))
    );
    let cron = &spec["source"]["properties"]["schedule"];
    assert!(
        rules(cron)
            .iter()
            .any(|m| m.starts_with("spec.source.schedule.cron must be"))
    );
    assert_eq!(spec["delivery"]["properties"]["retries"]["maximum"], json!(100.0));
    assert_eq!(spec["delivery"]["properties"]["retries"]["minimum"], json!(0.0));
}

#[test]
fn schema_unrolls_filters_to_four_levels() {
    let schema = schema();
    let level1 = &schema["properties"]["spec"]["properties"]["filters"]["items"];
    let level2 = &level1["properties"]["all"]["items"];
    let level3 = &level2["properties"]["any"]["items"];
    let level4 = &level3["properties"]["not"];
    for level in [level1, level2, level3] {
        assert!(level["properties"]["not"].is_object());
        assert!(
            rules(level)
                .iter()
                .any(|m| m.contains("exactly one of exact, prefix, suffix, all, any, not or cesql"))
        );
    }
    assert!(level4["properties"]["exact"].is_object());
    assert!(
        level4["properties"]["all"].is_null(),
        "the fourth level does not nest further"
    );
    assert!(
        rules(level4)
            .iter()
            .any(|m| m.contains("nested four levels deep"))
    );
    for level in [level1, level2, level3, level4] {
        let cesql = &level["properties"]["cesql"];
        assert_eq!(cesql["type"], "string");
        assert_eq!(cesql["maxLength"], MAX_CESQL_LENGTH);
        assert_eq!(cesql["minLength"], 1);
    }
}

#[test]
fn a_cesql_filter_reads_at_every_level() {
    let spec = spec(json!({
        "source": {"broker": {}},
        "subscriber": {"function": "f"},
        "filters": [
            {"cesql": "type LIKE 'order.%'"},
            {"all": [{"any": [{"not": {"cesql": "EXISTS region"}}]}]},
        ],
    }));
    assert_eq!(spec.filters[0].cesql(), Some("type LIKE 'order.%'"));
    assert!(spec.filters[0].exact().is_none());
    let all = spec.filters[1].all().unwrap();
    let any = all[0].any().unwrap();
    assert_eq!(any[0].not().unwrap().cesql(), Some("EXISTS region"));
}

#[test]
fn status_reads_conditions() {
    let status: TriggerStatus = serde_json::from_value(json!({
        "observedGeneration": 2,
        "sourceKind": "broker",
        "subscriberUri": "http://hello.default.svc",
        "lastScheduleTime": "2025-01-01T00:00:00Z",
        "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "",
                        "lastTransitionTime": "2025-01-01T00:00:00Z"}],
    }))
    .unwrap();
    assert_eq!(
        status
            .condition(TRIGGER_CONDITION_READY)
            .map(|c| c.status.as_str()),
        Some("True")
    );
    assert!(status.condition(TRIGGER_CONDITION_SOURCE_READY).is_none());
    assert!(status.last_schedule_time.is_some());
}

/// Paths of strings without `maxLength`, arrays without `maxItems` and maps without `maxProperties`.
/// Strings with an `enum` or a `date-time` format are bounded by it.
fn unbounded(node: &Value, path: &str, found: &mut Vec<String>) {
    let bounded_string =
        node.get("maxLength").is_some() || node.get("enum").is_some() || node["format"] == "date-time";
    match node["type"].as_str() {
        Some("string") if !bounded_string => found.push(format!("{path} (maxLength)")),
        Some("array") if node.get("maxItems").is_none() => found.push(format!("{path} (maxItems)")),
        Some("object")
            if node.get("additionalProperties").is_some() && node.get("maxProperties").is_none() =>
        {
            found.push(format!("{path} (maxProperties)"))
        }
        _ => {}
    }
    if let Some(properties) = node["properties"].as_object() {
        for (name, child) in properties {
            unbounded(child, &format!("{path}.{name}"), found);
        }
    }
    if node["items"].is_object() {
        unbounded(&node["items"], &format!("{path}[]"), found);
    }
    if node["additionalProperties"].is_object() {
        unbounded(&node["additionalProperties"], &format!("{path}{{}}"), found);
    }
}

#[test]
fn every_string_list_and_map_is_bounded() {
    // The API server estimates a CEL rule's cost from the largest value each field may hold; one
    // unbounded string under a rule made the whole CRD inadmissible.
    let schema = schema();
    let mut found = Vec::new();
    for part in ["spec", "status"] {
        unbounded(&schema["properties"][part], part, &mut found);
    }
    assert!(found.is_empty(), "unbounded: {found:#?}");
    let spec = &schema["properties"]["spec"]["properties"];
    assert_eq!(
        spec["subscriber"]["properties"]["uri"]["maxLength"],
        json!(MAX_URI_LENGTH)
    );
    assert_eq!(
        spec["source"]["properties"]["schedule"]["properties"]["cron"]["maxLength"],
        json!(MAX_CRON_LENGTH)
    );
    assert_eq!(spec["filters"]["maxItems"], json!(MAX_FILTERS));
    // The name regex reads the bounded string itself, not `self.function` of the destination.
    for destination in [
        &spec["subscriber"],
        &spec["delivery"]["properties"]["deadLetterSink"],
    ] {
        assert!(
            rules(&destination["properties"]["function"])
                .iter()
                .any(|m| m.contains("DNS-1035"))
        );
        assert!(!rules(destination).iter().any(|m| m.contains("DNS-1035")));
    }
}

#[test]
fn the_bound_check_finds_an_unbounded_field() {
    let mut found = Vec::new();
    let node = json!({"type": "object", "properties": {
        "name": {"type": "string"},
        "list": {"type": "array", "maxItems": 2, "items": {"type": "string", "maxLength": 3}},
        "map": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 3}},
    }});
    unbounded(&node, "x", &mut found);
    assert_eq!(found, ["x.map (maxProperties)", "x.name (maxLength)"]);
}
