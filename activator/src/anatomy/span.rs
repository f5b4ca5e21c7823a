//! The cold start's phases on the request's trace: a `cold start` span, a child of the activator's
//! server span named by the request's `traceparent`, from arrival to first byte, with one event per
//! phase at the moment that phase ended. The cluster's stamps (the autoscaler's, the pod's) are only
//! known after the response, when the server span has already ended, so this span is exported after
//! the fact with explicit timestamps rather than added to the server span.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::{
    Context, KeyValue,
    trace::{Span, SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer},
};

use super::phases::{PHASES, Stamps};
use crate::headers::parse_traceparent;

/// The attribute each phase event carries: the phase's length in microseconds.
pub const PHASE_ATTRIBUTE: &str = "zeroscale.cold_start.phase_us";

/// Microseconds since the Unix epoch as a `SystemTime` (negative stamps clamp to the epoch).
fn wall(micros: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(u64::try_from(micros).unwrap_or(0))
}

/// Whether `flags` (a `traceparent`'s last field) say the trace is sampled (the low bit).
fn sampled(flags: &str) -> bool {
    u8::from_str_radix(flags, 16).is_ok_and(|flags| flags & 1 == 1)
}

/// Exports the `cold start` span of the request whose activator `traceparent` is given, with the
/// phases (as [`super::phases`] telescoped them from `stamps`) as events. Returns whether a span was
/// started: not when the request has no valid, sampled `traceparent`.
pub fn export<T: Tracer>(tracer: &T, traceparent: &str, stamps: &Stamps, phases: &[u64; 8]) -> bool {
    // `version-trace-span-flags`, checked by `parse_traceparent`.
    let Some((trace, flags)) = parse_traceparent(traceparent) else {
        return false;
    };
    let span = traceparent.split('-').nth(2).unwrap_or_default();
    let (Ok(trace_id), Ok(span_id)) = (TraceId::from_hex(trace), SpanId::from_hex(span)) else {
        return false;
    };
    if !sampled(flags) {
        return false;
    }
    let parent = SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let context = Context::new().with_remote_span_context(parent);
    let mut cold = tracer
        .span_builder("cold start")
        .with_start_time(wall(stamps.arrived))
        .start_with_context(tracer, &context);
    let mut ended = stamps.arrived;
    for (phase, micros) in PHASES.iter().zip(phases) {
        let length = i64::try_from(*micros).unwrap_or(i64::MAX);
        ended = ended.saturating_add(length);
        cold.add_event_with_timestamp(*phase, wall(ended), vec![KeyValue::new(PHASE_ATTRIBUTE, length)]);
    }
    cold.end_with_timestamp(wall(stamps.first_byte));
    true
}

#[cfg(test)]
#[path = "span_tests.rs"]
mod tests;
