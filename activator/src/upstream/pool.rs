//! hyper's HTTP/1.1 client on one of a pod's pooled connections, for a request whose body is streamed
//! (the pools themselves: [`super::idle_pool`], and [`super::pools`] for which belongs to which
//! endpoint).
//!
//! Idle connections are kept as plain sockets ([`RawConn`]): most requests go out on them directly
//! (`h1.rs`). A streamed body needs hyper's client, which takes a pooled socket over and gives it
//! back once its response ended ([`UpstreamConn::into_raw`]). Either way the connection is driven by
//! whoever holds it: the request future while it waits for the response head, then the response body
//! while the client reads it. Everything runs in the client connection's task, as in one event loop.

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
};

use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};

use super::{OutBody, h1::RawConn};

/// The connection future of one upstream HTTP/1.1 connection.
type Driver = http1::Connection<TokioIo<CountingIo>, OutBody>;

/// A pod socket that counts the bytes the kernel accepted for writing, so a request found to have
/// failed can be told apart: nothing of it left (safe to send elsewhere) or some of it did.
#[derive(Debug)]
pub struct CountingIo {
    stream: TcpStream,
    written: Arc<AtomicU64>,
}

impl CountingIo {
    /// Wraps `stream`; the count is shared with the [`UpstreamConn`] built on it.
    pub fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            written: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The shared count of bytes written.
    pub fn written(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.written)
    }

    fn count(&self, result: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if let Poll::Ready(Ok(n)) = &result {
            self.written.fetch_add(*n as u64, Ordering::Relaxed);
        }
        result
    }
}

impl AsyncRead for CountingIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountingIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.count(result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.count(result)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// One upstream HTTP/1.1 connection: the handle to send on and the future that does its IO.
pub struct UpstreamConn {
    sender: http1::SendRequest<OutBody>,
    driver: Driver,
    written: Arc<AtomicU64>,
    // A finished connection future must not be polled again.
    finished: bool,
}

impl std::fmt::Debug for UpstreamConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConn")
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl UpstreamConn {
    /// hyper's client on `conn`'s socket (idle, so nothing is left unread).
    pub async fn from_raw(conn: RawConn) -> Result<Box<Self>, hyper::Error> {
        let io = CountingIo::new(conn.into_stream());
        let written = io.written();
        let (sender, driver) = http1::Builder::new().handshake(TokioIo::new(io)).await?;
        Ok(Box::new(Self {
            sender,
            driver,
            written,
            finished: false,
        }))
    }

    /// The socket back, once the response ended and the connection can carry another request with
    /// nothing left unread.
    pub fn into_raw(mut self: Box<Self>, cx: &mut Context<'_>) -> Option<Box<RawConn>> {
        if !self.reusable(cx) {
            return None;
        }
        let parts = self.driver.into_parts();
        parts
            .read_buf
            .is_empty()
            .then(|| Box::new(RawConn::new(parts.io.into_inner().stream)))
    }

    /// The handle requests are sent on.
    pub fn sender(&mut self) -> &mut http1::SendRequest<OutBody> {
        &mut self.sender
    }

    /// Bytes written to the socket so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Polls the connection's IO once. Returns true when the connection has ended (closed by either
    /// side or failed); its errors surface on the request or body it carried.
    pub fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.finished
            && let Poll::Ready(result) = Pin::new(&mut self.driver).poll(cx)
        {
            if let Err(e) = result {
                tracing::debug!(error = %e, "upstream connection ended with an error");
            }
            self.finished = true;
        }
        self.finished
    }

    /// Whether the connection is open and idle, ready for another request. Polls it first, which
    /// notices a close by the pod and lets a connection that just finished a response become idle.
    pub fn reusable(&mut self, cx: &mut Context<'_>) -> bool {
        !self.drive(cx) && !self.sender.is_closed() && self.sender.is_ready()
    }

    /// Sends `request` and drives the connection until the response head arrives. A request that
    /// was never written (the connection closed first) comes back in the error.
    pub async fn send(
        &mut self,
        request: http::Request<OutBody>,
    ) -> Result<
        http::Response<hyper::body::Incoming>,
        hyper::client::conn::TrySendError<http::Request<OutBody>>,
    > {
        let mut response = std::pin::pin!(self.sender.try_send_request(request));
        let (driver, finished) = (&mut self.driver, &mut self.finished);
        std::future::poll_fn(|cx| {
            // IO first, so the response the connection delivers is seen in the same poll.
            if !*finished && let Poll::Ready(result) = Pin::new(&mut *driver).poll(cx) {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "upstream connection ended with an error");
                }
                *finished = true;
            }
            response.as_mut().poll(cx)
        })
        .await
    }
}
