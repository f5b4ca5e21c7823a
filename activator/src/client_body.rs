//! The body of a request from a client, whichever server read its head: hyper's (HTTP/2, and
//! HTTP/1.1 requests with streamed bodies, `Expect` or upgrades), or the activator's own HTTP/1.1
//! reader ([`crate::server`]), which takes only requests whose whole body arrived with the head.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

/// A request as the pipeline receives it.
pub type ClientRequest = http::Request<ClientBody>;

/// A client's request body.
#[derive(Debug)]
pub enum ClientBody {
    /// Read by hyper as it arrives.
    Hyper(Incoming),
    /// Read whole with the head; `None` once taken (or when there was none).
    Read(Option<Bytes>),
}

impl ClientBody {
    /// The whole body, when it was read with the head: the pipeline keeps it without reading.
    pub fn take_read(&mut self) -> Option<Bytes> {
        match self {
            Self::Read(bytes) => Some(bytes.take().unwrap_or_default()),
            Self::Hyper(_) => None,
        }
    }
}

impl From<Incoming> for ClientBody {
    fn from(body: Incoming) -> Self {
        Self::Hyper(body)
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            Self::Hyper(body) => Pin::new(body).poll_frame(cx),
            Self::Read(bytes) => {
                Poll::Ready(bytes.take().filter(|b| !b.is_empty()).map(|b| Ok(Frame::data(b))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Hyper(body) => body.is_end_stream(),
            Self::Read(bytes) => bytes.as_ref().is_none_or(Bytes::is_empty),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Hyper(body) => body.size_hint(),
            Self::Read(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_read_with_its_head_is_one_frame_then_ends() {
        let mut body = ClientBody::Read(Some(Bytes::from_static(b"abc")));
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
        assert_eq!(body.take_read(), Some(Bytes::new()), "taken: empty, still read");
    }
}
