use std::sync::{Arc, Mutex};

use opentelemetry::trace::{SpanId, TraceId, TracerProvider};
use opentelemetry_sdk::{
    error::OTelSdkResult,
    trace::{SdkTracerProvider, SpanData, SpanExporter},
};

use super::*;

/// Keeps every exported span.
#[derive(Clone, Debug, Default)]
struct Collected(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Collected {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().expect("collected").extend(batch);
        Ok(())
    }
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SERVER_SPAN: &str = "00f067aa0ba902b7";

fn exported(traceparent: &str, stamps: &Stamps) -> Vec<SpanData> {
    let collected = Collected::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(collected.clone())
        .build();
    let tracer = provider.tracer("anatomy-test");
    export(&tracer, traceparent, stamps, &stamps.phases());
    collected.0.lock().expect("collected").clone()
}

fn stamps() -> Stamps {
    let arrived = 1_764_000_000_000_000;
    Stamps {
        arrived,
        demand_sent: Some(arrived + 20),
        decided: Some(arrived + 3_500),
        patched: Some(arrived + 9_500),
        scheduled: Some(arrived + 9_000), // second precision: before the patch, clamped
        started: Some(arrived + 400_000),
        ready: Some(arrived + 950_000),
        forwarded: Some(arrived + 1_300_000),
        first_byte: arrived + 1_300_600,
    }
}

#[test]
fn the_phases_are_events_of_a_child_of_the_server_span_summing_to_the_first_byte() {
    let stamps = stamps();
    let spans = exported(&format!("00-{TRACE}-{SERVER_SPAN}-01"), &stamps);
    assert_eq!(spans.len(), 1, "one cold-start span");
    let span = &spans[0];
    assert_eq!(span.name, "cold start");
    assert_eq!(
        span.span_context.trace_id(),
        TraceId::from_hex(TRACE).expect("hex")
    );
    assert_eq!(span.parent_span_id, SpanId::from_hex(SERVER_SPAN).expect("hex"));
    assert_eq!(span.start_time, wall(stamps.arrived));
    assert_eq!(span.end_time, wall(stamps.first_byte));
    let names: Vec<&str> = span.events.iter().map(|e| e.name.as_ref()).collect();
    assert_eq!(names, PHASES);
    let lengths: Vec<i64> = span
        .events
        .iter()
        .map(|e| {
            e.attributes
                .iter()
                .find(|kv| kv.key.as_str() == PHASE_ATTRIBUTE)
                .and_then(|kv| match kv.value {
                    opentelemetry::Value::I64(v) => Some(v),
                    _ => None,
                })
                .expect("each event carries its length")
        })
        .collect();
    assert!(lengths.iter().all(|&l| l >= 0), "no negative phase: {lengths:?}");
    assert_eq!(
        lengths.iter().sum::<i64>(),
        1_300_600,
        "the phases add up to arrival → first byte"
    );
    assert_eq!(
        span.events.iter().last().map(|e| e.timestamp),
        Some(wall(stamps.first_byte))
    );
    assert_eq!(
        lengths[3], 0,
        "a scheduled stamp before the patch is clamped to it"
    );
}

#[test]
fn no_span_without_a_valid_sampled_traceparent() {
    let stamps = stamps();
    assert!(exported("", &stamps).is_empty());
    assert!(exported("00-not-hex-01", &stamps).is_empty());
    assert!(
        exported(&format!("00-{TRACE}-{SERVER_SPAN}-00"), &stamps).is_empty(),
        "not sampled"
    );
}
