//! The direct JSON line against the `tracing` event it replaces, rendered by the JSON format
//! `telemetry::init` installs: the same text but the time, for records of every shape.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use http::Method;
use tokio::time::Instant;

use super::*;
use crate::function::{FunctionState, record::RequestOutcome};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// `line` without its timestamp's value.
fn untimed(line: &str) -> String {
    let start = "{\"timestamp\":\"".len();
    let end = line[start..].find('"').map_or(line.len(), |at| start + at);
    format!("{}{}", &line[..start], &line[end..])
}

/// The line the `tracing` event makes of `r` through the JSON format.
fn formatted(r: &RequestRecord<'_>) -> String {
    let log = AccessLog::to(None);
    zeroscale_common::testing::json_logged(|| log.record(r))
}

/// Records as the request path makes them: served warm; served cold by a revision from an IPv6 pod;
/// refused before a pod, with no function and an id that needs escaping.
fn records(
    function: &Arc<FunctionState>,
    revision: &Arc<FunctionState>,
    mut each: impl FnMut(&RequestRecord<'_>),
) {
    let arrived = Instant::now();
    let served = RequestRecord {
        function: Some(function),
        revision: None,
        method: &Method::GET,
        status: 200,
        outcome: RequestOutcome::Ok,
        arrived,
        forwarded: Some(arrived + Duration::from_micros(62)),
        first_byte: Some(arrived + Duration::from_micros(200)),
        end: arrived + Duration::from_micros(308),
        cold: false,
        pod: Some(SocketAddr::from(([127, 0, 0, 1], 18080))),
        request_id: "6286700a9d8bd52574edc5dc6207c9c7",
        traceparent: TRACEPARENT,
        request_bytes: 0,
        response_bytes: 437,
    };
    each(&served);
    each(&RequestRecord {
        function: Some(revision),
        method: &Method::POST,
        status: 503,
        outcome: RequestOutcome::FunctionError,
        forwarded: Some(arrived + Duration::from_millis(1_250)),
        end: arrived + Duration::from_secs(2),
        cold: true,
        pod: Some(SocketAddr::from(([0xfd00, 0, 0, 0, 0, 0, 1, 2], 8080))),
        request_bytes: 12,
        ..served
    });
    each(&RequestRecord {
        function: None,
        status: 404,
        outcome: RequestOutcome::ActivatorFailure("unknown-function"),
        forwarded: None,
        first_byte: None,
        end: arrived + Duration::from_micros(16),
        pod: None,
        request_id: "a\"b\\c",
        traceparent: "",
        response_bytes: 0,
        ..served
    });
}

#[test]
fn a_direct_line_is_the_json_formats_line_for_the_same_record() {
    let function = FunctionState::for_tests("shop", "cart");
    let revision = FunctionState::for_tests("shop", "cart-7f9c2ab4d1");
    let mut compared = 0;
    records(&function, &revision, |r| {
        let direct = String::from_utf8(json_line(r).into_line()).unwrap_or_default();
        let formatted = formatted(r);
        assert_eq!(untimed(&direct), untimed(&formatted), "record {r:?}");
        compared += 1;
    });
    assert_eq!(compared, 3);
}

#[test]
fn a_direct_line_names_the_request() {
    let function = FunctionState::for_tests("shop", "cart");
    let revision = FunctionState::for_tests("shop", "cart-7f9c2ab4d1");
    let mut lines = Vec::new();
    records(&function, &revision, |r| {
        let text = String::from_utf8(json_line(r).into_line()).unwrap_or_default();
        lines.push(serde_json::from_str::<serde_json::Value>(&text).unwrap_or_default());
    });
    let [served, cold, refused] = &lines[..] else {
        panic!("three lines, got {lines:?}");
    };
    assert_eq!(served["target"], "access");
    assert_eq!(served["function"], "cart");
    assert_eq!(served["duration_ms"], 0.308);
    assert_eq!(served["queued_ms"], 0.062);
    assert_eq!(served["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(served["span_id"], "00f067aa0ba902b7");
    assert!(served.get("span").is_none() && served.get("reason").is_none());
    assert_eq!(cold["revision"], "cart-7f9c2ab4d1");
    assert_eq!(cold["pod"], "[fd00::1:2]:8080");
    assert_eq!(cold["cold"], true);
    assert_eq!(cold["duration_ms"], 2000.0);
    assert_eq!(refused["reason"], "unknown-function");
    assert_eq!(refused["request_id"], "a\"b\\c");
    assert!(refused.get("pod").is_none());
}
