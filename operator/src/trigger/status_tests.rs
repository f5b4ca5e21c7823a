use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde_json::{Value, json};
use zeroscale_crds::trigger::{Trigger, TriggerStatus};

use super::*;

fn trigger(spec: Value, status: Option<Value>) -> Trigger {
    let mut t = json!({
        "apiVersion": "zeroscale.dev/v1alpha1", "kind": "Trigger",
        "metadata": {"namespace": "shop", "name": "t", "generation": 3},
        "spec": spec,
    });
    if let Some(status) = status {
        t["status"] = status;
    }
    serde_json::from_value(t).expect("trigger")
}

fn time(second: i64) -> Time {
    Time(jiff::Timestamp::from_second(second).expect("time"))
}

fn cond<'a>(s: &'a TriggerStatus, type_: &str) -> &'a Condition {
    s.condition(type_).expect("condition")
}

fn status_of(t: &Trigger, lookups: &Lookups) -> TriggerStatus {
    compute(t, &SpecCheck::of(t), lookups, &time(100))
}

fn broker_to(function: &str) -> Value {
    json!({"source": {"broker": {}}, "subscriber": {"function": function}})
}

#[test]
fn an_existing_function_makes_the_trigger_ready() {
    let t = trigger(broker_to("orders"), None);
    let s = status_of(&t, &Lookups::default());
    assert_eq!(s.observed_generation, Some(3));
    assert_eq!(s.source_kind.as_deref(), Some("broker"));
    assert_eq!(
        s.subscriber_uri.as_deref(),
        Some("http://orders.shop.svc.cluster.local")
    );
    for type_ in ["Ready", "SubscriberResolved", "SourceReady"] {
        assert_eq!(cond(&s, type_).status, "True", "{type_}");
        assert_eq!(cond(&s, type_).observed_generation, Some(3));
    }
    assert_eq!(cond(&s, "Ready").reason, "Ready");
    assert_eq!(cond(&s, "SubscriberResolved").reason, "Resolved");
    assert_eq!(cond(&s, "SourceReady").reason, "SourceRunning");
}

#[test]
fn a_missing_function_is_function_not_found_until_it_exists() {
    let t = trigger(broker_to("orders"), None);
    let missing = Lookups {
        missing_functions: ["orders".to_string()].into(),
        kind: None,
    };
    let s = status_of(&t, &missing);
    assert_eq!(cond(&s, "Ready").status, "False");
    assert_eq!(cond(&s, "Ready").reason, "FunctionNotFound");
    assert!(cond(&s, "Ready").message.contains("function orders not found"));
    assert_eq!(cond(&s, "SubscriberResolved").reason, "FunctionNotFound");
    assert_eq!(cond(&s, "SourceReady").status, "True");
    assert_eq!(s.subscriber_uri, None);

    // The Function appears: Ready flips, with a new transition time.
    let stored = serde_json::to_value(&s).expect("status");
    let t = trigger(broker_to("orders"), Some(stored));
    let s2 = compute(&t, &SpecCheck::of(&t), &Lookups::default(), &time(200));
    assert_eq!(cond(&s2, "Ready").status, "True");
    assert_eq!(cond(&s2, "Ready").last_transition_time, time(200));
    // SourceReady did not change: its transition time stays.
    assert_eq!(cond(&s2, "SourceReady").last_transition_time, time(100));
}

#[test]
fn a_missing_dead_letter_function_blocks_the_subscriber() {
    let spec = json!({"source": {"broker": {}}, "subscriber": {"uri": "http://sink.shop.svc/"},
                      "delivery": {"deadLetterSink": {"function": "dlq"}}});
    let t = trigger(spec, None);
    let s = status_of(
        &t,
        &Lookups {
            missing_functions: ["dlq".to_string()].into(),
            kind: None,
        },
    );
    assert_eq!(cond(&s, "SubscriberResolved").reason, "FunctionNotFound");
    assert!(cond(&s, "SubscriberResolved").message.contains("deadLetterSink"));
    assert_eq!(s.subscriber_uri.as_deref(), Some("http://sink.shop.svc/"));
    assert_eq!(s.dead_letter_sink_uri, None);
    let s = status_of(&t, &Lookups::default());
    assert_eq!(
        s.dead_letter_sink_uri.as_deref(),
        Some("http://dlq.shop.svc.cluster.local")
    );
    assert_eq!(cond(&s, "Ready").status, "True");
}

#[test]
fn source_problems_come_before_subscriber_problems() {
    let spec = json!({"source": {"schedule": {"cron": "61 * * * *"}}, "subscriber": {"function": "f"}});
    let t = trigger(spec, None);
    let s = status_of(
        &t,
        &Lookups {
            missing_functions: ["f".to_string()].into(),
            kind: None,
        },
    );
    assert_eq!(cond(&s, "Ready").reason, "InvalidSchedule");
    assert_eq!(cond(&s, "SourceReady").reason, "InvalidSchedule");
    assert_eq!(cond(&s, "SubscriberResolved").reason, "FunctionNotFound");
    assert_eq!(s.source_kind.as_deref(), Some("schedule"));
}

#[test]
fn a_kind_the_api_server_does_not_serve_is_kind_not_found() {
    let spec = json!({"source": {"kubernetes": {"apiVersion": "example.com/v1", "kind": "Gadget"}},
                      "subscriber": {"function": "f"}});
    let t = trigger(spec, None);
    let s = status_of(
        &t,
        &Lookups {
            missing_functions: Default::default(),
            kind: Some(Err("no such kind".into())),
        },
    );
    assert_eq!(cond(&s, "Ready").reason, "KindNotFound");
    assert!(
        cond(&s, "SourceReady")
            .message
            .contains("Gadget (example.com/v1)")
    );
    let s = status_of(
        &t,
        &Lookups {
            missing_functions: Default::default(),
            kind: Some(Ok(())),
        },
    );
    assert_eq!(cond(&s, "Ready").status, "True");
    assert!(cond(&s, "SourceReady").message.contains("watches Gadget"));
}

#[test]
fn invalid_filters_are_reported_on_ready_only() {
    let spec = json!({"source": {"broker": {}}, "subscriber": {"function": "f"},
                      "filters": [{"prefix": {"Bad-Name": "x"}}]});
    let s = status_of(&trigger(spec, None), &Lookups::default());
    assert_eq!(cond(&s, "Ready").reason, "InvalidFilter");
    assert_eq!(cond(&s, "SourceReady").status, "True");
    assert_eq!(cond(&s, "SubscriberResolved").status, "True");
}

#[test]
fn the_last_schedule_time_of_the_source_runner_is_kept() {
    let previous = json!({"lastScheduleTime": "2026-01-01T00:00:00Z", "conditions": []});
    let spec = json!({"source": {"schedule": {"cron": "* * * * *"}}, "subscriber": {"function": "f"}});
    let s = status_of(&trigger(spec, Some(previous)), &Lookups::default());
    assert_eq!(s.last_schedule_time.map(|t| t.0.as_second()), Some(1_767_225_600));
}

#[test]
fn a_host_outside_the_allow_list_makes_the_trigger_not_ready_naming_it() {
    let t = trigger(
        json!({"source": {"broker": {}}, "subscriber": {"uri": "http://attacker.example.net/collect"}}),
        None,
    );
    let s = status_of(&t, &Lookups::default());
    let ready = cond(&s, "Ready");
    assert_eq!(ready.status, "False");
    assert_eq!(ready.reason, "HostNotAllowed");
    assert!(
        ready.message.contains("\"attacker.example.net\""),
        "{}",
        ready.message
    );
    assert_eq!(cond(&s, "SubscriberResolved").reason, "HostNotAllowed");
    assert_eq!(
        s.subscriber_uri, None,
        "a refused URI is not published as resolved"
    );
}
