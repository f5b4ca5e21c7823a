//! A pod's response body read from its [`RawConn`], delimited as its head said, and the connection
//! handed back once the body has ended and the connection can carry another request.

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::{
    H1Error, PassedFields, RawConn, chunked,
    decode::{Framing, Head},
};

/// Where the body is.
#[derive(Debug)]
enum State {
    /// This many bytes left.
    Length(u64),
    /// Chunked, decoding.
    Chunked(chunked::Decoder),
    /// Until the pod closes the connection.
    Close,
    /// Ended (or failed).
    Done,
}

/// A response body read from a pod connection.
#[derive(Debug)]
pub struct H1Body {
    conn: Option<Box<RawConn>>,
    state: State,
    keep_alive: bool,
    // The head's fields are in the connection's `passed` buffer, not the response's header map.
    passed: bool,
}

impl H1Body {
    /// The body that follows `head` on `conn`.
    pub fn new(conn: Box<RawConn>, head: &Head) -> Self {
        let (framing, keep_alive, passed) = (head.framing, head.keep_alive, head.passed);
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Chunked(chunked::Decoder::default()),
            Framing::Close => State::Close,
        };
        Self {
            conn: Some(conn),
            state,
            keep_alive,
            passed,
        }
    }

    /// The head's fields for the client, when they were passed ([`Head::passed`]) rather than put in
    /// the response's header map. They are there until the body has ended, so a head must be
    /// written (or its fields taken) before the body is read.
    pub fn passed_fields(&self) -> Option<&PassedFields> {
        self.conn.as_deref().filter(|_| self.passed).map(|c| &c.passed)
    }

    /// The connection, once the body has ended, if it can carry another request: nothing of a next
    /// response was read with this one, and the pod did not ask to close.
    pub fn take_idle(&mut self) -> Option<Box<RawConn>> {
        if !matches!(self.state, State::Done) || !self.keep_alive {
            return None;
        }
        let mut conn = self.conn.take()?;
        if !conn.buf.is_empty() {
            return None;
        }
        conn.shrink();
        Some(conn)
    }

    fn fail(&mut self, error: H1Error) -> Poll<Option<Result<Frame<Bytes>, H1Error>>> {
        self.state = State::Done;
        self.keep_alive = false;
        Poll::Ready(Some(Err(error)))
    }
}

impl Body for H1Body {
    type Data = Bytes;
    type Error = H1Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, H1Error>>> {
        let this = self.get_mut();
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match &mut this.state {
                State::Done => return Poll::Ready(None),
                State::Length(left) if !conn.buf.is_empty() => {
                    let n = usize::try_from(*left).unwrap_or(usize::MAX).min(conn.buf.len());
                    *left -= n as u64;
                    if *left == 0 {
                        this.state = State::Done;
                    }
                    return Poll::Ready(Some(Ok(Frame::data(conn.buf.split_to(n).freeze()))));
                }
                State::Chunked(decoder) => match decoder.step(&mut conn.buf) {
                    Ok(chunked::Step::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    Ok(chunked::Step::Trailers(trailers)) => {
                        this.state = State::Done;
                        return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                    }
                    Ok(chunked::Step::End) => {
                        this.state = State::Done;
                        return Poll::Ready(None);
                    }
                    Ok(chunked::Step::More) => {}
                    Err(e) => return this.fail(e.into()),
                },
                State::Close if !conn.buf.is_empty() => {
                    return Poll::Ready(Some(Ok(Frame::data(conn.buf.split().freeze()))));
                }
                State::Length(_) | State::Close => {}
            }
            match ready!(conn.poll_read(cx)) {
                Ok(0) if matches!(this.state, State::Close) => {
                    this.state = State::Done;
                    return Poll::Ready(None);
                }
                Ok(0) => return this.fail(H1Error::Incomplete),
                Ok(_) => {}
                Err(e) => return this.fail(H1Error::Read(e)),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Length(n) => SizeHint::with_exact(n),
            State::Done => SizeHint::with_exact(0),
            State::Chunked(_) | State::Close => SizeHint::default(),
        }
    }
}
