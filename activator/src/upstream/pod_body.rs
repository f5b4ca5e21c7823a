//! The body of a response from a pod (or a peer activator), whichever client read its head.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::h1::{H1Body, H1Error, PassedFields, RawConn};

/// A response body from upstream.
#[derive(Debug)]
pub enum PodBody {
    /// Read by hyper's client: HTTP/2, upgrades, and responses to streamed request bodies.
    Hyper(Incoming),
    /// Read from a raw HTTP/1.1 connection (`h1.rs`).
    H1(H1Body),
}

/// Why a response body from upstream failed.
#[derive(Debug, thiserror::Error)]
pub enum PodBodyError {
    /// hyper's client reported it.
    #[error(transparent)]
    Hyper(#[from] hyper::Error),
    /// The raw HTTP/1.1 connection reported it.
    #[error(transparent)]
    H1(#[from] H1Error),
}

impl PodBody {
    /// The raw connection the body came on, once the body has ended and the connection can carry
    /// another request.
    pub fn take_idle(&mut self) -> Option<Box<RawConn>> {
        match self {
            Self::H1(body) => body.take_idle(),
            Self::Hyper(_) => None,
        }
    }

    /// The head's fields for the client, when they were passed rather than put in the response's
    /// header map ([`H1Body::passed_fields`]).
    pub fn passed_fields(&self) -> Option<&PassedFields> {
        match self {
            Self::H1(body) => body.passed_fields(),
            Self::Hyper(_) => None,
        }
    }
}

impl Body for PodBody {
    type Data = Bytes;
    type Error = PodBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, PodBodyError>>> {
        match self.get_mut() {
            Self::Hyper(body) => Pin::new(body).poll_frame(cx).map_err(PodBodyError::from),
            Self::H1(body) => Pin::new(body).poll_frame(cx).map_err(PodBodyError::from),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Hyper(body) => body.is_end_stream(),
            Self::H1(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Hyper(body) => body.size_hint(),
            Self::H1(body) => body.size_hint(),
        }
    }
}
