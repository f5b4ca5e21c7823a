//! The request as it goes to a pod, kept so it can be sent again when the pod goes away.
//!
//! A small body (a `Content-Length` up to [`REPLAY_LIMIT`], or none) is read whole before the first
//! attempt, so every attempt gets its own copy; a larger or streamed body goes through as it arrives
//! and can only be sent again while it was never handed to a pod connection.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use super::h1::HeadRef;
use crate::{client_body::ClientBody, forwarding::Forwarding};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, request::Parts};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Limited};

/// Largest request body kept in memory so the request can be replayed on another pod.
pub const REPLAY_LIMIT: usize = 64 * 1024;

/// The body of a request to a pod.
#[derive(Debug)]
pub enum OutBody {
    /// A body read whole up front, with its trailers; `None` parts once sent.
    Buffered(Option<Bytes>, Option<HeaderMap>),
    /// The client's body, streamed as it arrives.
    Streamed(ClientBody),
}

impl OutBody {
    /// An empty body.
    pub fn empty() -> Self {
        Self::Buffered(None, None)
    }
}

impl Body for OutBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            Self::Buffered(data, trailers) => {
                if let Some(data) = data.take().filter(|d| !d.is_empty()) {
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Poll::Ready(trailers.take().map(|t| Ok(Frame::trailers(t))))
            }
            Self::Streamed(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Buffered(data, trailers) => data.as_ref().is_none_or(Bytes::is_empty) && trailers.is_none(),
            Self::Streamed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Buffered(data, _) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Self::Streamed(body) => body.size_hint(),
        }
    }
}

/// Whether `method` may be sent twice without changing the outcome (RFC 9110 §9.2.2).
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// A request and what is needed to send it again.
#[derive(Debug)]
pub struct Outgoing {
    head: Parts,
    body: Pending,
    /// This hop's forwarding fields, not yet in `head`'s map ([`Outgoing::forward_for`]).
    forwarding: Option<Forwarding>,
}

#[derive(Debug)]
enum Pending {
    /// Read whole: every attempt gets a copy.
    Buffered(Bytes, Option<HeaderMap>),
    /// Streamed, until handed to a pod connection.
    Streamed(Option<ClientBody>),
}

/// The client's body could not be read.
#[derive(Debug, thiserror::Error)]
#[error("reading the request body: {0}")]
pub struct BodyReadError(#[source] Box<dyn std::error::Error + Send + Sync>);

impl Outgoing {
    /// Takes `request` apart, reading its body first when it is small enough to keep (see the module
    /// docs). Waits for the client to send that body.
    pub async fn read(request: Request<ClientBody>) -> Result<Self, BodyReadError> {
        let (head, mut body) = request.into_parts();
        if let Some(read) = body.take_read() {
            // Read whole with its head (see `crate::server`): kept as it is, without trailers.
            return Ok(Self {
                head,
                body: Pending::Buffered(read, None),
                forwarding: None,
            });
        }
        let small =
            body.is_end_stream() || body.size_hint().exact().is_some_and(|n| n <= REPLAY_LIMIT as u64);
        let body = if small {
            let collected = Limited::new(body, REPLAY_LIMIT)
                .collect()
                .await
                .map_err(BodyReadError)?;
            let trailers = collected.trailers().cloned();
            Pending::Buffered(collected.to_bytes(), trailers)
        } else {
            Pending::Streamed(Some(body))
        };
        Ok(Self {
            head,
            body,
            forwarding: None,
        })
    }

    /// The request head, to read its headers.
    pub fn head(&self) -> &Parts {
        &self.head
    }

    /// Gives the request this hop's forwarding fields: written with its head by the activator's own
    /// client ([`Outgoing::head_ref`]), put into the map of each request [`Outgoing::attempt`] makes.
    pub fn forward_for(&mut self, forwarding: Forwarding) {
        self.forwarding = Some(forwarding);
    }

    /// The head to write, its forwarding fields with it.
    pub fn head_ref(&self) -> HeadRef<'_> {
        HeadRef::of_parts(&self.head, self.forwarding.as_ref())
    }

    /// The body kept whole with its trailers, when it was: every attempt sends them as they are.
    pub fn kept_body(&self) -> Option<(&Bytes, Option<&HeaderMap>)> {
        match &self.body {
            Pending::Buffered(data, trailers) => Some((data, trailers.as_ref())),
            Pending::Streamed(_) => None,
        }
    }

    /// Whether the request may be sent again after a pod may have seen it: idempotent by method and
    /// with its body kept.
    pub fn replayable(&self) -> bool {
        matches!(self.body, Pending::Buffered(..)) && is_idempotent(&self.head.method)
    }

    /// Whether another attempt can be made at all (a streamed body can be sent once).
    pub fn can_send(&self) -> bool {
        !matches!(self.body, Pending::Streamed(None))
    }

    /// Bytes accounted for the request while it waits again in the queue: the head, as for any parked
    /// request, plus a kept body.
    pub fn parked_bytes(&self) -> usize {
        let body = match &self.body {
            Pending::Buffered(b, _) => b.len(),
            Pending::Streamed(_) => 0,
        };
        let mut head = Request::new(());
        *head.uri_mut() = self.head.uri.clone();
        *head.headers_mut() = self.head.headers.clone();
        crate::queue::parked_request_bytes(&head) + body
    }

    /// The request for one attempt, or `None` when a streamed body was already sent.
    pub fn attempt(&mut self) -> Option<Request<OutBody>> {
        let body = match &mut self.body {
            Pending::Buffered(data, trailers) => OutBody::Buffered(Some(data.clone()), trailers.clone()),
            Pending::Streamed(body) => OutBody::Streamed(body.take()?),
        };
        let mut request = Request::new(body);
        *request.method_mut() = self.head.method.clone();
        *request.uri_mut() = self.head.uri.clone();
        *request.version_mut() = self.head.version;
        *request.headers_mut() = self.head.headers.clone();
        if let Some(forwarding) = &self.forwarding {
            forwarding.add_to(request.headers_mut());
        }
        Some(request)
    }

    /// Takes back a request that never left, so its streamed body can be sent elsewhere.
    pub fn unsent(&mut self, request: Request<OutBody>) {
        if let (Pending::Streamed(slot), OutBody::Streamed(body)) = (&mut self.body, request.into_body()) {
            *slot = Some(body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotent_methods() {
        for m in ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"] {
            assert!(
                is_idempotent(&Method::from_bytes(m.as_bytes()).unwrap_or(Method::POST)),
                "{m}"
            );
        }
        assert!(!is_idempotent(&Method::POST));
        assert!(!is_idempotent(&Method::PATCH));
    }

    #[test]
    fn a_buffered_body_is_sent_whole_then_ends() {
        let mut body = OutBody::Buffered(Some(Bytes::from_static(b"abc")), None);
        assert_eq!(body.size_hint().exact(), Some(3));
        assert!(!body.is_end_stream());
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let frame = Pin::new(&mut body).poll_frame(&mut cx);
        assert!(matches!(frame, Poll::Ready(Some(Ok(f))) if f.data_ref().is_some_and(|d| d == "abc")));
        assert!(body.is_end_stream());
        assert!(matches!(
            Pin::new(&mut body).poll_frame(&mut cx),
            Poll::Ready(None)
        ));
    }
}
