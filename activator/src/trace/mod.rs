//! The trace of one request through the activator (docs/observability.md).
//!
//! Every request gets a trace id (the caller's W3C `traceparent`'s, else a new one) and a span id of
//! its own — the activator's hop, which the pod sees as its parent — and runs inside a `tracing` span
//! `request` carrying `request_id`, `trace_id` and `span_id`, so every log line about it names them.
//! When OTLP export is on ([`zeroscale_common::tracing_otlp`]) the hop is a real span: a server span
//! continuing the caller's `traceparent` and `tracestate`, and a client span for the forward to the
//! pod (or to the peer activator owning the function), whose context goes out in `traceparent`.
//! When export is off nothing else happens: no OpenTelemetry span is built and no extension is added
//! to the request.

mod args;
mod body;
mod spans;

use std::net::SocketAddr;

use http::{HeaderValue, Request};

use self::spans::ServerSpan;
pub use self::{args::TracingArgs, body::Traced, spans::event_at};
use crate::headers::{self, TRACEPARENT};
pub use crate::trace_ids::Hex;
pub(crate) use crate::trace_ids::new_hex;

/// One request's ids and, when exporting, its server span; ends the span when dropped.
#[derive(Debug)]
pub struct RequestTrace {
    trace_id: Hex<32>,
    span_id: Hex<16>,
    server: Option<Box<ServerSpan>>,
}

impl RequestTrace {
    /// The request's trace id (32 hex digits).
    pub fn trace_id(&self) -> &str {
        self.trace_id.as_str()
    }

    /// The activator's span id for the request (16 hex digits): the parent the pod sees.
    pub fn span_id(&self) -> &str {
        self.span_id.as_str()
    }

    /// The `tracing` span the request is handled in; log lines inside it carry its ids.
    pub fn log_span(&self, request_id: &HeaderValue) -> tracing::Span {
        tracing::info_span!(
            "request",
            request_id = request_id.to_str().unwrap_or_default(),
            trace_id = self.trace_id(),
            span_id = self.span_id()
        )
    }

    /// What lasts of the trace until the response is done. The ids are left behind: by then they
    /// are in the log span and in `traceparent`.
    pub fn into_server(self) -> ServerTrace {
        ServerTrace(self.server)
    }
}

/// What of a request's trace lasts until its response is done: the server span when exporting
/// (ended when this is dropped), else nothing. A pointer's size, where the [`RequestTrace`] it comes
/// from is 56 bytes: a parked request's future holds it (SPEC P6, `server/served.rs`).
#[derive(Debug, Default)]
pub struct ServerTrace(Option<Box<ServerSpan>>);

impl ServerTrace {
    /// Records the response status on the server span (ended when the response body is done).
    pub fn set_status(&mut self, status: u16) {
        if let Some(server) = self.0.as_mut() {
            server.set_status(status);
        }
    }
}

/// Starts the trace of `request`, which came from `remote`: gives it the activator's span in
/// `traceparent` (keeping the caller's trace id and sampled flag) and, when exporting, starts its
/// server span. Call once per request, after its request id is ensured.
pub fn start<B>(request: &mut Request<B>, remote: SocketAddr, request_id: &HeaderValue) -> RequestTrace {
    if let Some(tracer) = zeroscale_common::tracing_otlp::tracer() {
        let server = ServerSpan::start(tracer, request, remote, request_id);
        return RequestTrace {
            trace_id: server.trace_id(),
            span_id: server.span_id(),
            server: Some(Box::new(server)),
        };
    }
    let mut rng = rand::rng();
    let incoming = request
        .headers()
        .get(&TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(headers::parse_traceparent)
        .and_then(|(trace, flags)| Some((Hex::<32>::parse(trace)?, Hex::<2>::parse(flags)?)));
    let (trace_id, flags) = incoming.unwrap_or_else(|| (new_hex(&mut rng), Hex::zero()));
    let span_id = new_hex(&mut rng);
    headers::set_traceparent(request.headers_mut(), &trace_id, &span_id, &flags);
    RequestTrace {
        trace_id,
        span_id,
        server: None,
    }
}

/// Gets `request` ready for its next hop (the pod, or the activator owning its function): its request
/// id ensured, and its `traceparent` that of a client span when exporting, else the activator's own
/// span as [`start`] set it. A request that did not come through [`start`] gets a new span id.
pub fn hop<B>(request: &mut Request<B>) {
    if spans::start_client(request) {
        return;
    }
    let h = request.headers_mut();
    // [`start`] wrote a valid `traceparent` and a request id: checking the shape tells its value
    // from none (or a client's malformed one on a request that skipped `start`) without parsing it
    // again on every request.
    let [id, traceparent] = headers::first_values(h, [&headers::X_REQUEST_ID, &TRACEPARENT]);
    let ours = id.is_some() && traceparent.is_some_and(|v| headers::traceparent_shaped(v.as_bytes()));
    if !ours {
        headers::ensure_ids(h);
    }
}

#[cfg(test)]
mod tests;
