//! Hostile input, by machine: arbitrary requests to the broker ingress and arbitrary Trigger filters.
//! Nothing panics; a malformed event is a 4xx, never a 5xx; a filter either compiles or is refused
//! with an error, and a compiled filter answers for any event.

use std::sync::Arc;

use axum::{
    body::{Body, to_bytes},
    http::{Request, StatusCode},
};
use cloudevents::{EventBuilder, EventBuilderV10};
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt;
use zeroscale_crds::trigger::TriggerFilter;

use crate::{
    broker::{Publish, PublishError},
    filter::{Filter, Filters},
    ingress::{IngressConfig, router},
    metrics::EventMetrics,
};

/// Accepts everything, so any non-2xx answer is the ingress's own verdict on the input.
struct Sink;

impl Publish for Sink {
    fn publish(
        &self,
        _namespace: &str,
        _event: cloudevents::Event,
        _size: usize,
    ) -> Result<(), PublishError> {
        Ok(())
    }

    fn has_broker(&self, _namespace: &str) -> bool {
        true
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Header names a CloudEvent uses, plus noise.
fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("ce-specversion".to_string()),
        Just("ce-id".to_string()),
        Just("ce-source".to_string()),
        Just("ce-type".to_string()),
        Just("ce-time".to_string()),
        Just("ce-subject".to_string()),
        Just("ce-dataschema".to_string()),
        Just("content-type".to_string()),
        "ce-[a-z0-9]{1,12}",
        "x-[a-z]{1,8}",
    ]
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1.0".to_string()),
        Just("0.3".to_string()),
        Just("application/cloudevents+json".to_string()),
        Just("application/json".to_string()),
        Just("2025-13-45T99:99:99Z".to_string()),
        "[ -~]{0,40}",
    ]
}

fn status_of(request: Request<Body>) -> (StatusCode, String) {
    runtime().block_on(async {
        let app = router(
            Arc::new(Sink),
            IngressConfig::default(),
            EventMetrics::default(),
            None,
        );
        let response = app.oneshot(request).await.expect("infallible");
        let status = response.status();
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap_or_default();
        (status, String::from_utf8_lossy(&body).into_owned())
    })
}

fn check_verdict(status: StatusCode, body: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        status == StatusCode::ACCEPTED || status.is_client_error(),
        "{status}: {body}"
    );
    if status != StatusCode::ACCEPTED {
        prop_assert!(body.contains("request id: "), "{body}");
    }
    Ok(())
}

/// A JSON value of bounded depth, for structured-mode bodies and filter specs.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[ -~]{0,16}".prop_map(Value::String),
        prop_oneof![
            Just("1.0"),
            Just("0.3"),
            Just("type"),
            Just("exact"),
            Just("prefix")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("specversion".to_string()),
                    Just("id".to_string()),
                    Just("source".to_string()),
                    Just("type".to_string()),
                    Just("data".to_string()),
                    Just("datacontenttype".to_string()),
                    Just("exact".to_string()),
                    Just("prefix".to_string()),
                    Just("suffix".to_string()),
                    Just("all".to_string()),
                    Just("any".to_string()),
                    Just("not".to_string()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn some_event() -> cloudevents::Event {
    EventBuilderV10::new()
        .id("1")
        .ty("com.example.created")
        .source("/s")
        .subject("a/b")
        .extension("region", "eu")
        .build()
        .expect("event")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn binary_mode_requests_never_get_a_5xx(
        headers in prop::collection::vec((header_name(), header_value()), 0..8),
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut request = Request::post("/shop");
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let (status, text) = status_of(request.body(Body::from(body)).expect("request"));
        check_verdict(status, &text)?;
    }

    #[test]
    fn structured_mode_requests_never_get_a_5xx(value in json_value(), raw in any::<bool>(), bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let body = if raw { bytes } else { value.to_string().into_bytes() };
        let request = Request::post("/shop")
            .header("content-type", "application/cloudevents+json")
            .body(Body::from(body))
            .expect("request");
        let (status, text) = status_of(request);
        check_verdict(status, &text)?;
    }

    #[test]
    fn any_path_and_method_is_answered_without_a_5xx(path in "/[ -~&&[^ #?%]]{0,40}", post in any::<bool>()) {
        let method = if post { "POST" } else { "PUT" };
        let Ok(request) = Request::builder().method(method).uri(path.as_str()).body(Body::empty()) else {
            return Ok(());
        };
        let (status, text) = status_of(request);
        check_verdict(status, &text)?;
    }

    #[test]
    fn filters_compile_or_are_refused_and_never_panic(spec in json_value()) {
        let Ok(node) = serde_json::from_value::<TriggerFilter>(spec) else {
            return Ok(());
        };
        if let Ok(filter) = Filter::compile(&node) {
            let event = some_event();
            let matched = filter.matches(&event);
            // A single filter and a list of one agree.
            let list = Filters::compile(std::slice::from_ref(&node)).expect("compiled once already");
            prop_assert_eq!(list.matches(&event), matched);
        }
    }

    #[test]
    fn exact_filters_on_arbitrary_attributes_match_only_equal_values(name in "[a-z][a-z0-9]{0,10}", value in "[ -~]{0,20}") {
        let node: TriggerFilter = serde_json::from_value(json!({"exact": {name.clone(): value.clone()}})).expect("filter");
        let Ok(filter) = Filter::compile(&node) else { return Ok(()) };
        let event = some_event();
        let actual = crate::filter::attribute(&event, &name);
        prop_assert_eq!(filter.matches(&event), actual.as_deref() == Some(value.as_str()));
    }
}
