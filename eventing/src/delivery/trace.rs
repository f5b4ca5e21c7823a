//! A span per delivery attempt when OTLP export is on (`zeroscale_common::tracing_otlp`,
//! docs/observability.md): a client span continuing the event's own trace — its CloudEvents
//! distributed-tracing extension, `ce-traceparent`/`ce-tracestate` in the binary-mode message — whose
//! context goes out in the attempt's `traceparent`, so the activator serving a Function continues it.
//! Off: nothing is built and the message is sent as it is.

use http::HeaderMap;
use opentelemetry::{
    Context, KeyValue,
    propagation::{Extractor, TextMapPropagator},
    trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer as _},
};
use opentelemetry_http::HeaderInjector;
use opentelemetry_sdk::{propagation::TraceContextPropagator, trace::Span};
use zeroscale_common::tracing_otlp;

use super::{Answer, SendError, Target};

/// The event's trace context, read from its `ce-` extension headers.
struct EventContext<'a>(&'a HeaderMap);

impl Extractor for EventContext<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(format!("ce-{key}"))?.to_str().ok()
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

fn text(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The span of one attempt; ended by [`AttemptSpan::finish_with`] (or when dropped).
#[derive(Debug, Default)]
pub struct AttemptSpan(Option<Span>);

impl AttemptSpan {
    /// Starts the span of attempt number `attempt` (from 1; 0 when the caller does not count) to send
    /// the event encoded in `headers` to `target`, and adds its `traceparent` to them; does nothing
    /// when export is off.
    pub fn start(target: &Target, attempt: u32, headers: &mut HeaderMap) -> Self {
        let Some(tracer) = tracing_otlp::tracer() else {
            return Self(None);
        };
        let propagator = TraceContextPropagator::new();
        let parent = propagator.extract(&EventContext(headers));
        let ty = text(headers, "ce-type");
        let mut attributes = vec![
            KeyValue::new("cloudevents.event_id", text(headers, "ce-id")),
            KeyValue::new("cloudevents.event_source", text(headers, "ce-source")),
            KeyValue::new("cloudevents.event_type", ty.clone()),
            KeyValue::new("server.address", target.address()),
        ];
        if attempt > 0 {
            attributes.push(KeyValue::new("zeroscale.delivery.attempt", i64::from(attempt)));
        }
        let span = tracer
            .span_builder(format!("deliver {ty}"))
            .with_kind(SpanKind::Client)
            .with_attributes(attributes)
            .start_with_context(tracer, &parent);
        let context = Context::new().with_remote_span_context(span.span_context().clone());
        propagator.inject_context(&context, &mut HeaderInjector(headers));
        Self(Some(span))
    }

    /// Ends the span with what the attempt got: the subscriber's status (an error from 400 on), a
    /// transport failure, or the attempt's timeout.
    pub fn finish_with<E>(mut self, sent: &Result<Result<Answer, SendError>, E>) {
        let Some(span) = self.0.as_mut() else {
            return;
        };
        match sent {
            Ok(Ok(answer)) => {
                let status = answer.status.as_u16();
                span.set_attribute(KeyValue::new("http.response.status_code", i64::from(status)));
                if status >= 400 {
                    span.set_status(Status::error(format!("status {status}")));
                }
            }
            Ok(Err(error)) => span.set_status(Status::error(error.to_string())),
            Err(_) => span.set_status(Status::error("attempt timed out")),
        }
        span.end();
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn nothing_is_built_or_sent_when_export_is_off() {
        let mut headers = HeaderMap::new();
        headers.insert("ce-id", HeaderValue::from_static("1"));
        headers.insert(
            "ce-traceparent",
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let target = Target::uri("http://sink.example/").expect("uri");
        let span = AttemptSpan::start(&target, 1, &mut headers);
        assert!(span.0.is_none());
        assert_eq!(headers.len(), 2, "no traceparent added: {headers:?}");
        span.finish_with::<()>(&Err(()));
    }

    #[test]
    fn the_events_trace_context_is_read_from_its_extension_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("ce-tracestate", HeaderValue::from_static("v=1"));
        let context = EventContext(&headers);
        assert_eq!(context.get("tracestate"), Some("v=1"));
        assert_eq!(context.get("traceparent"), None);
    }
}
