//! The first request head on a new connection, read before hyper takes the connection over.
//!
//! A request that has to wait for a pod may wait minutes; over HTTP/1.1 each one is a connection of its
//! own. Reading its head here, into a buffer of exactly its size, lets it wait without hyper's
//! per-connection buffers (8 KiB each way) and connection state, which would otherwise make up almost
//! all of a parked request's memory. Once a pod is chosen the bytes read are replayed to hyper
//! ([`Prefixed`]), which parses the request for real.

use std::{
    cell::RefCell,
    future::Future,
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use pin_project_lite::pin_project;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    time::{Sleep, sleep},
};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// The HTTP/2 connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Most header fields the head parser looks at; heads with more are left to hyper.
const MAX_HEADERS: usize = 64;

/// What the first bytes of a connection turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Head {
    /// A complete HTTP/1.x request head naming `host`.
    Http1 {
        /// The `Host` header's value.
        host: String,
    },
    /// The HTTP/2 preface.
    Http2,
    /// Not complete yet.
    Partial,
    /// Something hyper should parse and answer itself: malformed, no `Host`, too many headers; an
    /// async invocation (`Prefer: respond-async`), which is stored at once rather than admitted; or a
    /// request a peer activator forwarded with its pick of revision (`zeroscale-peer-revision`),
    /// which is admitted with that revision once its headers are read.
    Other,
}

/// Classifies the bytes received so far.
pub fn classify(bytes: &[u8]) -> Head {
    let n = bytes.len().min(H2_PREFACE.len());
    if bytes[..n] == H2_PREFACE[..n] {
        return if n == H2_PREFACE.len() {
            Head::Http2
        } else {
            Head::Partial
        };
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(bytes) {
        Ok(httparse::Status::Complete(_)) if prefers_async(request.headers) => Head::Other,
        Ok(httparse::Status::Complete(_)) if names_peer_revision(request.headers) => Head::Other,
        Ok(httparse::Status::Complete(_)) => request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("host"))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map_or(Head::Other, |host| Head::Http1 {
                host: host.to_string(),
            }),
        Ok(httparse::Status::Partial) => Head::Partial,
        Err(_) => Head::Other,
    }
}

/// Whether a head asks for an async invocation, which must not wait for a pod.
fn prefers_async(headers: &[httparse::Header<'_>]) -> bool {
    headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("prefer")
            && std::str::from_utf8(h.value)
                .is_ok_and(zeroscale_eventing::async_invocation::prefer::value_prefers_async)
    })
}

/// Whether a head carries a peer's pick of revision, which early admission (host only) would ignore.
fn names_peer_revision(headers: &[httparse::Header<'_>]) -> bool {
    let name = crate::peers::PEER_REVISION.as_str();
    headers.iter().any(|h| h.name.eq_ignore_ascii_case(name))
}

/// Whether `bytes` contain an empty line (`\n\n` or `\n\r\n`): the end of a head.
fn ends_head(bytes: &[u8]) -> bool {
    bytes.windows(2).any(|w| w == b"\n\n") || bytes.windows(3).any(|w| w == b"\n\r\n")
}

thread_local! {
    // Reads land here first and are copied into a buffer of exactly the size received, so a waiting
    // connection holds no spare capacity.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; 16 * 1024]);
}

pin_project! {
    /// A new connection until its first head has arrived: reads from the socket until the bytes form
    /// a complete head (or the preface, or something to leave to hyper), or `max` bytes have arrived.
    /// Yields the socket, the bytes and what they are; `None` when the client closed or failed first,
    /// was too slow (`header_read_timeout`), or the listener is draining.
    ///
    /// Written out by hand rather than as an `async fn` over `readable()` and a `select!` because a
    /// burst's connections wait here in thousands, accepted while their clients are still sending
    /// (the listen queue holds 4,096): it keeps only the socket, the bytes, the deadline timer and the
    /// drain's waiter, with the socket's own read readiness rather than a waiter of its own.
    pub struct FirstHead {
        // Taken when done.
        stream: Option<TcpStream>,
        bytes: Vec<u8>,
        max: usize,
        #[pin]
        deadline: Sleep,
        #[pin]
        stopped: WaitForCancellationFutureOwned,
    }
}

impl FirstHead {
    /// Reads `stream`'s first head, at most `max` bytes within `timeout`, until `stop` is cancelled.
    pub fn new(stream: TcpStream, max: usize, timeout: Duration, stop: CancellationToken) -> Self {
        Self {
            stream: Some(stream),
            bytes: Vec::new(),
            max,
            deadline: sleep(timeout),
            stopped: stop.cancelled_owned(),
        }
    }
}

impl Future for FirstHead {
    type Output = Option<(TcpStream, Vec<u8>, Head)>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // Draining: a connection that has not sent a whole request yet is closed; so is a slow one.
        if this.stopped.poll(cx).is_ready() || this.deadline.poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        let Some(stream) = this.stream.as_ref() else {
            return Poll::Ready(None);
        };
        loop {
            match stream.poll_read_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => return Poll::Ready(None),
                Poll::Ready(Ok(())) => {}
            }
            // Where the end of the head could start in what this read adds (it may straddle reads).
            let scan_from = this.bytes.len().saturating_sub(3);
            let bytes = &mut *this.bytes;
            let max = *this.max;
            let read = SCRATCH.with_borrow_mut(|scratch| {
                let room = max.saturating_sub(bytes.len()).clamp(1, scratch.len());
                stream
                    .try_read(&mut scratch[..room])
                    .inspect(|&n| bytes.extend_from_slice(&scratch[..n]))
            });
            match read {
                Ok(0) => return Poll::Ready(None),
                Ok(_) => {}
                // The readiness was stale; `try_read` cleared it, so the next poll waits.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(_) => return Poll::Ready(None),
            }
            if let Some(head) = complete(bytes, scan_from, max) {
                let taken = std::mem::take(bytes);
                return Poll::Ready(this.stream.take().map(|stream| (stream, taken, head)));
            }
        }
    }
}

/// What `bytes` are, once they can be told: `None` while more may complete a head. Parses only once
/// the end of a head may have arrived (after `scan_from`), so a client sending a byte at a time
/// costs linear work, not quadratic.
fn complete(bytes: &[u8], scan_from: usize, max: usize) -> Option<Head> {
    let preface = bytes.len() >= H2_PREFACE.len() && bytes.starts_with(H2_PREFACE);
    if !preface && !ends_head(&bytes[scan_from..]) && bytes.len() < max {
        return None;
    }
    match classify(bytes) {
        Head::Partial if bytes.len() < max => None,
        // Too large: hyper answers it (431).
        Head::Partial => Some(Head::Other),
        head => Some(head),
    }
}

/// A connection whose first bytes were already read: replays them, then reads from the socket.
#[derive(Debug)]
pub struct Prefixed {
    prefix: Vec<u8>,
    offset: usize,
    stream: TcpStream,
}

impl Prefixed {
    /// `stream`, with `prefix` read from it earlier.
    pub fn new(prefix: Vec<u8>, stream: TcpStream) -> Self {
        Self {
            prefix,
            offset: 0,
            stream,
        }
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.offset < this.prefix.len() {
            let rest = &this.prefix[this.offset..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.offset += n;
            if this.offset == this.prefix.len() {
                // Replayed: free it for the connection's remaining life.
                this.prefix = Vec::new();
                this.offset = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
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

#[cfg(test)]
#[path = "head_props.rs"]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_ends_are_found() {
        assert!(ends_head(b"Host: x\r\n\r\n"));
        assert!(ends_head(b"\n\n"));
        assert!(!ends_head(b"Host: x\r\n"));
    }

    #[test]
    fn heads_are_classified() {
        assert_eq!(
            classify(b"GET / HTTP/1.1\r\nHost: f.ns\r\n\r\n"),
            Head::Http1 { host: "f.ns".into() }
        );
        assert_eq!(
            classify(b"POST /x HTTP/1.1\r\nhOsT: f.ns:80\r\ncontent-length: 3\r\n\r\nabc"),
            Head::Http1 {
                host: "f.ns:80".into()
            }
        );
        assert_eq!(classify(b"GET / HTTP/1.1\r\nHost: f.ns\r\n"), Head::Partial);
        assert_eq!(classify(b"PRI * HTTP/2"), Head::Partial);
        assert_eq!(classify(H2_PREFACE), Head::Http2);
        assert_eq!(classify(b"GET / HTTP/1.0\r\n\r\n"), Head::Other, "no host");
        assert_eq!(classify(b"\x16\x03\x01garbage\r\n\r\n"), Head::Other);
        let many: String = (0..100).map(|i| format!("x-{i}: 1\r\n")).collect();
        let head = format!("GET / HTTP/1.1\r\nHost: f.ns\r\n{many}\r\n");
        assert_eq!(classify(head.as_bytes()), Head::Other, "too many headers");
    }

    #[test]
    fn a_head_is_told_once_it_may_be_complete() {
        let head = b"GET / HTTP/1.1\r\nHost: f.ns\r\n\r\n";
        assert_eq!(complete(head, 0, 1024), Some(Head::Http1 { host: "f.ns".into() }));
        assert_eq!(complete(&head[..20], 0, 1024), None, "no empty line yet");
        assert_eq!(
            complete(&head[..20], 0, 20),
            Some(Head::Other),
            "too large: hyper's 431"
        );
        assert_eq!(complete(H2_PREFACE, 0, 1024), Some(Head::Http2));
        // An empty line before `scan_from` was looked at by an earlier read.
        assert_eq!(complete(head, 0, 1024), complete(head, head.len() - 4, 1024));
    }

    /// A connected pair: the client's socket and the server's, as accepted.
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("address"));
        let (client, accepted) = tokio::join!(client, listener.accept());
        (client.expect("connect"), accepted.expect("accept").0)
    }

    #[tokio::test]
    async fn the_first_head_is_read_across_writes() {
        use tokio::io::AsyncWriteExt;
        let (mut client, server) = pair().await;
        let stop = CancellationToken::new();
        let first = tokio::spawn(FirstHead::new(server, 1024, Duration::from_secs(10), stop));
        client.write_all(b"GET / HTTP/1.1\r\nHo").await.expect("write");
        tokio::task::yield_now().await;
        client.write_all(b"st: f.ns\r\n\r\n").await.expect("write");
        let (_, bytes, head) = first.await.expect("join").expect("a head");
        assert_eq!(head, Head::Http1 { host: "f.ns".into() });
        assert_eq!(bytes, b"GET / HTTP/1.1\r\nHost: f.ns\r\n\r\n");
    }

    #[tokio::test]
    async fn a_client_that_closes_is_too_slow_or_meets_a_drain_gets_nothing() {
        use tokio::io::AsyncWriteExt;
        // Each ends well within this; a step that never ends fails the test here.
        let within = |first| tokio::time::timeout(Duration::from_secs(5), tokio::spawn(first));
        let stop = CancellationToken::new();
        let long = Duration::from_secs(60);

        let (mut client, server) = pair().await;
        let first = within(FirstHead::new(server, 1024, long, stop.clone()));
        client.write_all(b"GET / HTTP/1.1\r\n").await.expect("write");
        drop(client);
        assert!(first.await.expect("in time").expect("join").is_none(), "closed");

        let (_slow, server) = pair().await;
        let first = FirstHead::new(server, 1024, Duration::from_millis(50), stop.clone());
        assert!(
            within(first).await.expect("in time").expect("join").is_none(),
            "too slow"
        );

        let (_idle, server) = pair().await;
        let first = within(FirstHead::new(server, 1024, long, stop.clone()));
        stop.cancel();
        assert!(first.await.expect("in time").expect("join").is_none(), "draining");
    }

    #[test]
    fn an_async_invocation_is_left_to_hyper_rather_than_admitted_early() {
        let head = b"POST / HTTP/1.1\r\nHost: f.ns\r\nPrefer: wait=1, Respond-Async\r\n\r\n";
        assert_eq!(classify(head), Head::Other);
        let other = b"POST / HTTP/1.1\r\nHost: f.ns\r\nPrefer: return=minimal\r\n\r\n";
        assert_eq!(classify(other), Head::Http1 { host: "f.ns".into() });
        let pinned = b"GET / HTTP/1.1\r\nHost: f.ns\r\nZeroscale-Peer-Revision: f-0123456789.ns\r\n\r\n";
        assert_eq!(
            classify(pinned),
            Head::Other,
            "a peer's pick is admitted once read"
        );
    }
}
