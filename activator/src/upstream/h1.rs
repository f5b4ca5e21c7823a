//! HTTP/1.1 to pods without a general-purpose client in between: a request whose body is kept whole
//! (nearly all of them) is written as one head plus body with a single `writev`, and the response head
//! is parsed straight out of the connection's read buffer, its header values and body bytes slices of
//! what was read. No channel, no callback, no connection task: the request's own task does the IO.
//!
//! hyper's client is still used for what needs it: a body streamed while it is sent (written while
//! the response may already be arriving), upgrades, and HTTP/2. Nothing here retries: a failure comes
//! back with how many bytes went out, so the caller can tell a request the pod never saw.

pub mod body;
mod chunked;
mod decode;
mod encode;
mod names;
mod passed;

use std::{
    io::{self, IoSlice},
    pin::pin,
    task::{Context, Poll},
};

use bytes::BytesMut;
use http::{HeaderMap, Method};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::Instant,
};

pub use self::{
    body::H1Body,
    chunked::ChunkError,
    decode::{FieldSpans, Framing, Head, HeadError, has_token, parse_length},
    encode::{Delimited, HeadRef, digits, last_chunk},
    names::header_name,
    passed::PassedFields,
};

#[cfg(test)]
pub(crate) use self::decode::read as read_head;

/// Room made in the read buffer before each read.
const READ_CHUNK: usize = 8 * 1024;

/// Largest buffer of passed response fields an idle connection keeps (a typical head's are a few
/// hundred bytes).
const PASSED_KEPT: usize = 2 * 1024;

/// Why an exchange on a raw HTTP/1.1 connection failed.
#[derive(Debug, thiserror::Error)]
pub enum H1Error {
    /// Writing the request failed.
    #[error("writing the request: {0}")]
    Write(#[source] io::Error),
    /// Reading the response failed.
    #[error("reading the response: {0}")]
    Read(#[source] io::Error),
    /// The pod closed the connection before a whole response head arrived.
    #[error("the connection closed before the response head")]
    Closed,
    /// The response head was not valid HTTP/1.1.
    #[error(transparent)]
    Head(#[from] HeadError),
    /// The chunked body was malformed.
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    /// The pod closed the connection before the body's end.
    #[error("the connection closed before the end of the body")]
    Incomplete,
}

impl H1Error {
    /// Whether the pod ended the exchange without sending anything invalid: the connection closed or
    /// failed, as when the pod shuts down.
    pub fn is_closed(&self) -> bool {
        matches!(
            self,
            Self::Write(_) | Self::Read(_) | Self::Closed | Self::Incomplete
        )
    }
}

/// One HTTP/1.1 connection to a pod: the socket and what was read from it but not yet used.
#[derive(Debug)]
pub struct RawConn {
    stream: TcpStream,
    buf: BytesMut,
    head: Vec<u8>,
    // Scratch for reading response heads (`decode::read`).
    names: decode::FieldSpans,
    // The last response's fields for the client (`passed.rs`), the buffer kept between responses.
    passed: PassedFields,
    written: u64,
    /// When it last went back to its pool.
    pub idle_since: Instant,
}

impl RawConn {
    /// A connection on `stream`, fresh or taken back from hyper with nothing left unread.
    pub fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: BytesMut::new(),
            head: Vec::new(),
            names: Vec::new(),
            passed: PassedFields::default(),
            written: 0,
            idle_since: Instant::now(),
        }
    }

    /// Bytes the socket took for writing so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The socket, for a client that takes the connection over (nothing is left unread on an idle one).
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }

    /// Whether the connection is open and idle: nothing unread and nothing to read. A close by the
    /// pod (or bytes nobody asked for) makes it unfit. Costs no system call while the socket has
    /// reported nothing since the last read.
    pub fn reusable(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Writes `request`'s head with `body` (the request's, kept whole, and its trailers if it had
    /// some) and reads until the response head, which it returns; the body follows from
    /// [`RawConn::poll_read`] through [`H1Body`].
    pub async fn send(
        &mut self,
        request: HeadRef<'_>,
        body: &[u8],
        trailers: Option<&HeaderMap>,
    ) -> Result<Head, H1Error> {
        let mut out = std::mem::take(&mut self.head);
        out.clear();
        let wrote = match trailers {
            None => {
                encode::request_head(request, Delimited::Length(body.len()), &mut out);
                self.write_all(&out, body).await
            }
            // Rare (an HTTP/2 client's body with trailers): copied into the head's buffer.
            Some(trailers) => {
                encode::request_head(request, Delimited::Chunked, &mut out);
                encode::chunked_body(body, trailers, &mut out);
                self.write_all(&out, &[]).await
            }
        };
        self.head = out;
        wrote.map_err(H1Error::Write)?;
        let to_head_request = request.method == Method::HEAD;
        loop {
            if let Some(head) = decode::read(
                &mut self.buf,
                to_head_request,
                &mut self.names,
                Some(&mut self.passed),
            )? {
                return Ok(head);
            }
            self.buf.reserve(READ_CHUNK);
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) => return Err(H1Error::Closed),
                Ok(_) => {}
                Err(e) => return Err(H1Error::Read(e)),
            }
        }
    }

    /// Writes `head` and `body` with as few `writev` calls as the socket allows, counting the bytes.
    async fn write_all(&mut self, head: &[u8], body: &[u8]) -> io::Result<()> {
        let mut done = 0;
        let total = head.len() + body.len();
        while done < total {
            let slices = if done < head.len() {
                [IoSlice::new(&head[done..]), IoSlice::new(body)]
            } else {
                [IoSlice::new(&body[done - head.len()..]), IoSlice::new(&[])]
            };
            let n = self.stream.write_vectored(&slices).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            done += n;
            self.written += n as u64;
        }
        Ok(())
    }

    /// Reads more of the response into the buffer; `Ok(0)` at the end of the stream.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        self.buf.reserve(READ_CHUNK);
        pin!(self.stream.read_buf(&mut self.buf)).poll(cx)
    }

    /// Lets go of a large read buffer, and of the buffer of a large head's passed fields, before the
    /// connection idles in its pool (up to 1,024 per pod).
    fn shrink(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 2 * READ_CHUNK {
            self.buf = BytesMut::new();
        }
        if self.passed.lines.capacity() > PASSED_KEPT {
            self.passed.lines = Vec::new();
        }
    }
}
