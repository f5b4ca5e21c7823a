//! The access log: one line per request (`--access-log`), written from its record ([`crate::function::record`])
//! at level `info` with target `access`, so `RUST_LOG` filters it as any other line. It names the
//! request's id, trace id and the activator's span id (`crate::trace`), the same ids the exported
//! spans and the request's other log lines carry.
//!
//! With the JSON log format (the chart's default) the line is written directly
//! ([`zeroscale_common::telemetry::JsonLine`]): the object `tracing`'s JSON formatter writes for the
//! same event outside a span, without its `span` and `spans`, which only repeated the ids the line
//! has as fields. Through the formatter the line cost about 4 µs of the event loop per request, more
//! than the proxied hop's own code. With the plain format it is a `tracing` event as before.

use std::time::Duration;

use zeroscale_common::telemetry::{JsonLine, JsonLines};

use crate::function::record::{RecordSink, RequestRecord};

/// The line's target, as `RUST_LOG` names it (`access=off` turns the log off).
const TARGET: &str = "access";

/// Bytes a line takes with its longest usual values (a revision, an IPv6 pod, ids of every kind).
const LINE_CAPACITY: usize = 640;

/// The record sink writing the access log.
#[derive(Clone, Debug, Default)]
pub struct AccessLog {
    /// Where lines are written directly; `None` logs them through `tracing`.
    json: Option<JsonLines>,
}

impl AccessLog {
    /// The access log for this process's log format: direct JSON lines when `telemetry::init`
    /// installed the JSON format, `tracing` events otherwise.
    pub fn for_process() -> Self {
        Self::to(JsonLines::installed())
    }

    /// The access log writing JSON lines to `json`, or through `tracing` when `None`.
    pub fn to(json: Option<JsonLines>) -> Self {
        Self { json }
    }
}

impl RecordSink for AccessLog {
    fn record(&self, r: &RequestRecord<'_>) {
        if !tracing::enabled!(target: TARGET, tracing::Level::INFO) {
            return;
        }
        match &self.json {
            Some(lines) => lines.write(json_line(r)),
            None => event(r),
        }
    }
}

/// Milliseconds with microsecond precision, as the `tracing` event logs them.
fn millis(d: Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}

/// The access line of `r` as JSON, with the fields of [`event`] in its order.
fn json_line(r: &RequestRecord<'_>) -> JsonLine {
    let pod = r.pod.map(|p| p.to_string());
    let mut line = JsonLine::new("INFO", TARGET, "request", LINE_CAPACITY);
    line.str("namespace", r.namespace())
        .str("function", r.function_name())
        .str("revision", r.revision_name().unwrap_or(""))
        .str("method", r.method.as_str())
        .u64("status", r.status.into())
        .str("outcome", r.outcome.label())
        .opt_str("reason", r.outcome.reason())
        .millis("duration_ms", r.total())
        .millis("queued_ms", r.queued())
        .millis("invocation_ms", r.invocation())
        .bool("cold", r.cold)
        .opt_str("pod", pod.as_deref())
        .str("request_id", r.request_id)
        .str("trace_id", r.trace_id())
        .str("span_id", r.span_id())
        .u64("request_bytes", r.request_bytes)
        .u64("response_bytes", r.response_bytes);
    line
}

/// The access line of `r` as a `tracing` event, for the plain log format.
fn event(r: &RequestRecord<'_>) {
    let pod = r.pod.map(|p| p.to_string());
    tracing::info!(
        target: TARGET,
        namespace = r.namespace(),
        function = r.function_name(),
        revision = r.revision_name().unwrap_or(""),
        method = r.method.as_str(),
        status = r.status,
        outcome = r.outcome.label(),
        reason = r.outcome.reason(),
        duration_ms = millis(r.total()),
        queued_ms = millis(r.queued()),
        invocation_ms = millis(r.invocation()),
        cold = r.cold,
        pod = pod.as_deref(),
        request_id = r.request_id,
        trace_id = r.trace_id(),
        span_id = r.span_id(),
        request_bytes = r.request_bytes,
        response_bytes = r.response_bytes,
        "request"
    );
}

#[cfg(test)]
#[path = "access_log_tests.rs"]
mod tests;
