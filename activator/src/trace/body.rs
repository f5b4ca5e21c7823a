//! The response body as the client gets it: polled inside the request's `tracing` span (so log lines
//! written while it streams — a pod's body failing, the request's end — carry the request's ids), and
//! holding the request's trace until the body is done, which ends its spans.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::ServerTrace;

pin_project! {
    /// A body with its request's trace (see the module docs).
    pub struct Traced<B> {
        #[pin]
        inner: B,
        span: tracing::Span,
        trace: ServerTrace,
    }
}

impl<B: Body> Traced<B> {
    /// `inner`, answering the request traced by `trace` and logged in `span`.
    pub fn new(inner: B, trace: ServerTrace, span: tracing::Span) -> Self {
        Self { inner, span, trace }
    }

    /// The body it wraps.
    pub fn inner(&self) -> &B {
        &self.inner
    }
}

impl<B: Body> Body for Traced<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let _entered = this.span.enter();
        let polled = this.inner.poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            // Done (or failed): the spans end now rather than when hyper drops the body.
            drop(std::mem::take(this.trace));
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
