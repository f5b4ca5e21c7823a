//! One request through the pipeline ([`Proxy::handle`]) with what the server adds around it: its
//! request id, trace and log span, and for hyper the pod's passed fields.
//!
//! Written as a future by hand rather than as an `async fn`: an `async fn` keeps each argument twice
//! (the argument and the binding it is moved into), and awaiting a captured future moves it into a
//! slot of its own. Each is a copy of the request (264 bytes) or of the pipeline's future, which an
//! h2c stream's task holds for as long as its request is parked: 10,000 of them are held to SPEC P6's
//! 20 MiB (`tests/parked_memory.rs`).

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use futures::future::Either;
use pin_project_lite::pin_project;

use crate::{
    body::ResponseBody,
    client_body::{ClientBody, ClientRequest},
    headers::ensure_request_id,
    proxy::{Early, Proxy},
    respond::with_request_id,
    settings::Port,
    trace,
};

/// A response as the servers write it: the pod's body (or the activator's), with the request's trace.
pub(super) type ServedResponse = http::Response<trace::Traced<ResponseBody>>;

/// The pipeline's future for one request: the first of a connection boxed (its future is twice the
/// others' and would make every request's as large).
type Handling<First, Next> = Either<Pin<Box<First>>, Next>;

pin_project! {
    /// [`serve_request`]'s future: the pipeline's, polled in the request's log span, then the
    /// response traced. The span is entered here rather than with `Instrumented`, which would keep
    /// a second copy of it in the future; with the level off (no span) it is not entered at all.
    pub(super) struct Served<F> {
        #[pin]
        handling: F,
        request_id: http::HeaderValue,
        // Taken when the response is ready.
        trace: trace::ServerTrace,
        span: tracing::Span,
    }
}

/// One request through the pipeline; `early` is the outcome of its admission from the head, for the
/// first request of a connection.
pub(super) fn serve_request(
    proxy: Arc<Proxy>,
    port: Port,
    remote: SocketAddr,
    mut request: ClientRequest,
    early: Option<Early>,
) -> Served<impl Future<Output = Result<http::Response<ResponseBody>, Infallible>>> {
    let request_id = ensure_request_id(request.headers_mut());
    let trace = trace::start(&mut request, remote, &request_id);
    let span = trace.log_span(&request_id);
    let handling: Handling<_, _> = match early {
        Some(early) => Either::Left(Box::pin(proxy.handle_first(port, remote, request, early))),
        None => Either::Right(proxy.handle(port, remote, request)),
    };
    Served {
        handling,
        request_id,
        trace: trace.into_server(),
        span,
    }
}

/// [`serve_request`] for a request hyper read, answered with the pod's passed fields in the header
/// map (hyper writes only the map).
pub(super) fn for_hyper(
    proxy: Arc<Proxy>,
    port: Port,
    remote: SocketAddr,
    request: http::Request<hyper::body::Incoming>,
    early: Option<Early>,
) -> impl Future<Output = Result<ServedResponse, Infallible>> {
    let served = serve_request(proxy, port, remote, request.map(ClientBody::Hyper), early);
    futures::FutureExt::map(served, |response| Ok(with_passed_fields(response)))
}

impl<F> Future for Served<F>
where
    F: Future<Output = Result<http::Response<ResponseBody>, Infallible>>,
{
    type Output = ServedResponse;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<ServedResponse> {
        let this = self.project();
        let entered = (!this.span.is_disabled()).then(|| this.span.enter());
        let polled = this.handling.poll(cx);
        drop(entered);
        let response = match ready!(polled) {
            Ok(response) => response,
            Err(never) => match never {},
        };
        // Polled again after this, the pipeline's future panics, as a finished `async fn` does.
        let trace = std::mem::take(this.trace);
        let span = std::mem::replace(this.span, tracing::Span::none());
        Poll::Ready(traced(response, this.request_id, trace, span))
    }
}

/// The answer with its request's trace, which ends when the body is done (see [`trace::Traced`]).
/// The request id is added (and an error logged) inside the request's log span.
fn traced(
    response: http::Response<ResponseBody>,
    request_id: &http::HeaderValue,
    mut trace: trace::ServerTrace,
    span: tracing::Span,
) -> ServedResponse {
    let response = span.in_scope(|| with_request_id(response, request_id));
    trace.set_status(response.status().as_u16());
    response.map(|body| trace::Traced::new(body, trace, span))
}

/// `response` with its pod's passed fields (`upstream/h1/passed.rs`) in its header map, for hyper,
/// which writes only the map. The activator's own HTTP/1.1 server writes them as lines instead.
fn with_passed_fields(response: ServedResponse) -> ServedResponse {
    let (mut parts, body) = response.into_parts();
    if let Some(passed) = body.inner().passed_fields() {
        passed.append_to(&mut parts.headers);
    }
    http::Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn future_size<F: Future>(
        _: fn(Arc<Proxy>, Port, SocketAddr, ClientRequest, Option<Early>) -> F,
    ) -> usize {
        std::mem::size_of::<F>()
    }

    #[test]
    fn a_request_future_holds_the_pipeline_once() {
        // The pipeline's future (`Proxy::handle`, bounded by its own test) and what the response
        // needs: request id, server span and log span. An h2c stream's task holds this while its
        // request is parked; as an `async fn` it was 2,072 bytes, with the request and the pipeline
        // twice, and 520 while it kept the trace's ids. At 464 the stream's task (with tokio's and
        // hyper's parts, in 128-byte steps) takes 640 bytes instead of 768.
        let size = future_size(serve_request);
        assert!(size <= 464, "request future is {size} bytes");
    }
}
