//! The access log: one line per request (`--access-log`), written from its record ([`crate::function::record`])
//! as a `tracing` event with target `access`, so the JSON log format (the chart's default) makes it
//! one JSON object per line. It names the request's id, trace id and the activator's span id
//! (`crate::trace`), the same ids the exported spans and the request's other log lines carry.

use crate::function::record::{RecordSink, RequestRecord};

/// The record sink writing the access log.
#[derive(Clone, Copy, Debug, Default)]
pub struct AccessLog;

/// Milliseconds with microsecond precision, as logged.
fn millis(d: std::time::Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}

impl RecordSink for AccessLog {
    fn record(&self, r: &RequestRecord<'_>) {
        let pod = r.pod.map(|p| p.to_string());
        tracing::info!(
            target: "access",
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
}
