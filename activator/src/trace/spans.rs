//! The OpenTelemetry spans of a request when export is on: the server span the request is handled
//! in, and the client span of its forward. The forward finds the server span through the request's
//! extensions ([`HopHandle`]); both end when the response body is done (or dropped).

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::SystemTime,
};

use http::{HeaderValue, Request};
use opentelemetry::{
    Context, KeyValue,
    propagation::TextMapPropagator,
    trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer as _},
};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::{
    propagation::TraceContextPropagator,
    trace::{SdkTracer, Span},
};

use super::Hex;

/// A request's spans, shared by the server side (which ends them) and the forward (which starts the
/// client span and may add events).
#[derive(Debug)]
struct Hop {
    tracer: &'static SdkTracer,
    /// The server span's context: the client span's parent.
    context: Context,
    name: String,
    server: Mutex<Option<Span>>,
    client: Mutex<Option<Span>>,
}

/// The request extension the forward finds the server span by.
#[derive(Clone, Debug)]
struct HopHandle(Arc<Hop>);

fn lock(slot: &Mutex<Option<Span>>) -> MutexGuard<'_, Option<Span>> {
    // Held for a field update only, never across an await; a panic elsewhere leaves a usable span.
    slot.lock().unwrap_or_else(|e| e.into_inner())
}

/// The server span of a request (see the module docs).
#[derive(Debug)]
pub(super) struct ServerSpan {
    hop: Arc<Hop>,
    trace_id: Hex<32>,
    span_id: Hex<16>,
}

impl ServerSpan {
    /// Starts the server span of `request`, continuing its `traceparent`/`tracestate`, which are
    /// rewritten to the new span's; the request carries a handle to it for the forward.
    pub(super) fn start<B>(
        tracer: &'static SdkTracer,
        request: &mut Request<B>,
        remote: SocketAddr,
        request_id: &HeaderValue,
    ) -> Self {
        let propagator = TraceContextPropagator::new();
        let parent = propagator.extract(&HeaderExtractor(request.headers()));
        let method = request.method().as_str().to_string();
        let host = host(request);
        let name = format!("{method} {host}");
        let attributes = vec![
            KeyValue::new("http.request.method", method),
            KeyValue::new("url.path", request.uri().path().to_string()),
            KeyValue::new("url.scheme", "http"),
            KeyValue::new("server.address", host),
            KeyValue::new("client.address", remote.ip().to_string()),
            KeyValue::new("network.protocol.version", protocol_version(request.version())),
            KeyValue::new(
                "zeroscale.request_id",
                request_id.to_str().unwrap_or_default().to_string(),
            ),
        ];
        let span = tracer
            .span_builder(name.clone())
            .with_kind(SpanKind::Server)
            .with_attributes(attributes)
            .start_with_context(tracer, &parent);
        let span_context = span.span_context().clone();
        let trace_id = Hex::of_bytes(&span_context.trace_id().to_bytes());
        let span_id = Hex::of_bytes(&span_context.span_id().to_bytes());
        let context = Context::new().with_remote_span_context(span_context);
        propagator.inject_context(&context, &mut HeaderInjector(request.headers_mut()));
        let hop = Arc::new(Hop {
            tracer,
            context,
            name,
            server: Mutex::new(Some(span)),
            client: Mutex::new(None),
        });
        request.extensions_mut().insert(HopHandle(Arc::clone(&hop)));
        Self {
            hop,
            trace_id,
            span_id,
        }
    }

    pub(super) fn trace_id(&self) -> Hex<32> {
        self.trace_id
    }

    pub(super) fn span_id(&self) -> Hex<16> {
        self.span_id
    }

    /// Records the response's status: `http.response.status_code`, and an error status for 5xx (as
    /// the HTTP semantic conventions have it for server spans).
    pub(super) fn set_status(&mut self, status: u16) {
        if let Some(span) = lock(&self.hop.server).as_mut() {
            span.set_attribute(KeyValue::new("http.response.status_code", i64::from(status)));
            if status >= 500 {
                span.set_status(Status::error(format!("status {status}")));
            }
        }
        if let Some(span) = lock(&self.hop.client).as_mut() {
            span.set_attribute(KeyValue::new("http.response.status_code", i64::from(status)));
            if status >= 400 {
                span.set_status(Status::error(format!("status {status}")));
            }
        }
    }
}

impl Drop for ServerSpan {
    fn drop(&mut self) {
        // The forward's span first: it ends inside the server span.
        let client = lock(&self.hop.client).take();
        if let Some(mut client) = client {
            client.end();
        }
        let server = lock(&self.hop.server).take();
        if let Some(mut server) = server {
            server.end();
        }
    }
}

/// When `request` has a server span, starts the client span of its forward as its child and puts
/// that span's context in `traceparent`/`tracestate`; `false` when it has none.
pub(super) fn start_client<B>(request: &mut Request<B>) -> bool {
    let Some(HopHandle(hop)) = request.extensions().get::<HopHandle>().cloned() else {
        return false;
    };
    let span = hop
        .tracer
        .span_builder(hop.name.clone())
        .with_kind(SpanKind::Client)
        .with_attributes([KeyValue::new(
            "http.request.method",
            request.method().as_str().to_string(),
        )])
        .start_with_context(hop.tracer, &hop.context);
    let context = Context::new().with_remote_span_context(span.span_context().clone());
    TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(request.headers_mut()));
    // A second forward of the same request (never today) ends the first one's span.
    *lock(&hop.client) = Some(span);
    true
}

/// Adds an event stamped `at` to the server span of the request whose extensions are `extensions`;
/// nothing when export is off or the request has no span (cold-start phases use this).
pub fn event_at(
    extensions: &http::Extensions,
    name: &'static str,
    at: SystemTime,
    attributes: Vec<KeyValue>,
) {
    if let Some(HopHandle(hop)) = extensions.get::<HopHandle>()
        && let Some(span) = lock(&hop.server).as_mut()
    {
        span.add_event_with_timestamp(name, at, attributes);
    }
}

/// The request's `Host`, else its target's authority (HTTP/2), as the client sent it; empty if neither
/// (such a request is refused, and its span says so).
fn host<B>(request: &Request<B>) -> String {
    match request.headers().get(http::header::HOST) {
        Some(v) => String::from_utf8_lossy(v.as_bytes()).into_owned(),
        None => request
            .uri()
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default(),
    }
}

fn protocol_version(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}
